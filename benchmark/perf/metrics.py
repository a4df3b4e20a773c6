"""Performance of the metrics (RESULTS.md "## Metrics").

    python -m benchmark.perf.metrics [--only gs,frechet,inception] [--n 5000] [--dim 65536]
                                     [--reps 100] [--ref-reps 2] [--workers 2] [--json FILE]

* gs — Geometry Score, N vs N points of dimension D (default 5k vs 5k at 128×512 = 65,536, the
  paper's protocol, 100 repetitions), with the fast implementation against a straightforward
  single-process reference of the same algorithm (scipy `cdist`, full `argsort`, the full
  witness→landmark table, gudhi, a plain-loop RLT) timed on a few repetitions and extrapolated.
  Both are run on the same landmarks and their RLTs compared.
* frechet — Fréchet distance at d = 2048: eigh-based symmetric form vs scipy `sqrtm`.
* inception — FID InceptionV3 feature extraction speed (random weights; the speed does not
  depend on them) on 128×512 grey images.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from datasets.cpus import available_cpus


# ----------------------------------------------------------------------------------------------
# Reference Geometry Score (straightforward, one process)


def reference_rlt(x: np.ndarray, idx: np.ndarray, gamma: float, i_max: int = 100) -> np.ndarray:
    """One repetition of Khrulkov & Oseledets' Algorithm 1, written plainly."""
    import gudhi
    from scipy.spatial.distance import cdist

    dist = cdist(np.asarray(x, dtype=np.float64), np.asarray(x[idx], dtype=np.float64))
    alpha_max = gamma * dist.max()
    order = np.argsort(dist, axis=1, kind="stable")
    table = [[(int(j), float(row[j])) for j in o] for row, o in zip(dist, order)]
    st = gudhi.WitnessComplex(nearest_landmark_table=table).create_simplex_tree(
        max_alpha_square=alpha_max, limit_dimension=2)
    st.persistence(homology_coeff_field=2)
    intervals = [(b, alpha_max if np.isinf(d) else d) for b, d in st.persistence_intervals_in_dimension(1)]
    rlt = np.zeros(i_max)
    cuts = sorted({0.0, alpha_max, *[v for iv in intervals for v in iv]})
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        mid = (lo + hi) / 2
        alive = sum(1 for b, d in intervals if b <= mid < d)
        if alive < i_max:
            rlt[alive] += hi - lo
    return rlt / alpha_max


def synthetic_word_images(n: int, height: int = 128, width: int = 512, seed: int = 0, chunk: int = 250) -> np.ndarray:
    """Smooth uint8 "ink blob" images (N, H, W): dark separable Gaussian strokes on white."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, height, width), dtype=np.uint8)
    ys, xs = np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        k = 8
        cy = rng.uniform(0.3, 0.7, (m, k, 1)) * height
        cx = rng.uniform(0.1, 0.9, (m, k, 1)) * width
        sy = rng.uniform(0.03, 0.12, (m, k, 1)) * height
        sx = rng.uniform(0.005, 0.04, (m, k, 1)) * width
        amp = rng.uniform(0.5, 1.2, (m, k, 1))
        gy = (amp * np.exp(-0.5 * ((ys - cy) / sy) ** 2)).astype(np.float32)
        gx = np.exp(-0.5 * ((xs - cx) / sx) ** 2).astype(np.float32)
        ink = np.einsum("mkh,mkw->mhw", gy, gx)
        out[start:start + m] = np.clip(255.0 - 255.0 * ink, 0, 255).astype(np.uint8)
    return out


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the GS workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def perf_gs(n: int, dim: int, reps: int, ref_reps: int, workers: int) -> dict:
    """Fast GS (n vs n, `reps` repetitions) vs the reference timed on `ref_reps` repetitions."""
    from benchmark.metrics import geometry_score as gsm

    height = 128
    width = max(1, dim // height)
    t0 = time.perf_counter()
    real = synthetic_word_images(n, height, width, seed=1).reshape(n, -1)
    fake = synthetic_word_images(n, height, width, seed=2).reshape(n, -1)
    t_data = time.perf_counter() - t0

    t0, c0 = time.perf_counter(), _cpu_seconds()
    result = gsm.geometry_score(real, fake, landmarks=64, reps=reps, seed=0, workers=workers)
    t_fast, c_fast = time.perf_counter() - t0, _cpu_seconds() - c0

    # Stage timings of the fast path (one set): Gram matrix, then per repetition.
    t0 = time.perf_counter()
    source = gsm.PointDistances.build(real)
    t_gram = time.perf_counter() - t0
    gamma = gsm.GSConfig().gamma_for(n)
    sets = gsm.landmark_sets(n, 64, reps, 0)[:ref_reps]
    t0 = time.perf_counter()
    fast_rlts = [gsm.rlt_for_landmarks(source, idx, gamma, 100) for idx in sets]
    t_fast_rep = (time.perf_counter() - t0) / len(sets)

    t0, c0 = time.perf_counter(), _cpu_seconds()
    ref_rlts = [reference_rlt(real, idx, gamma, 100) for idx in sets]
    t_ref_rep, c_ref_rep = (time.perf_counter() - t0) / len(sets), (_cpu_seconds() - c0) / len(sets)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(fast_rlts, ref_rlts))
    exact = all(np.array_equal(a, b) for a, b in zip(fast_rlts, ref_rlts))
    # The reference's own protocol: the same `reps` repetitions for each of the two sets.
    t_ref_total = 2 * reps * t_ref_rep
    return {
        "n": n, "dim": real.shape[1], "reps": reps, "workers": workers, "gs": result["gs"],
        "data_s": t_data, "fast_total_s": t_fast, "fast_total_cpu_s": c_fast, "ref_per_rep_cpu_s": c_ref_rep, "fast_gram_one_set_s": t_gram, "fast_per_rep_s": t_fast_rep,
        "ref_per_rep_s": t_ref_rep, "ref_reps_timed": len(sets), "ref_total_extrapolated_s": t_ref_total,
        "speedup": t_ref_total / t_fast, "rlt_max_abs_diff": diff, "rlt_identical": exact,
    }


# ----------------------------------------------------------------------------------------------
# Fréchet distance and inception speed


def perf_frechet(d: int = 2048, seed: int = 0) -> dict:
    """eigh-based Fréchet distance vs the scipy sqrtm formula at dimension d."""
    from scipy import linalg

    from benchmark.metrics.fid import frechet_distance

    rng = np.random.default_rng(seed)
    feats1 = rng.normal(size=(2 * d, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    feats2 = feats1 + 0.3 * rng.normal(size=feats1.shape)
    mu1, mu2 = feats1.mean(0), feats2.mean(0) + 0.1
    s1, s2 = np.cov(feats1, rowvar=False), np.cov(feats2, rowvar=False)
    t0 = time.perf_counter()
    ours = frechet_distance(mu1, s1, mu2, s2)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    covmean = linalg.sqrtm(s1 @ s2)
    ref = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))
    t_ref = time.perf_counter() - t0
    return {"d": d, "ours_s": t_ours, "scipy_sqrtm_s": t_ref, "fid_ours": ours, "fid_scipy": ref,
            "rel_diff": abs(ours - ref) / abs(ref), "speedup": t_ref / t_ours}


def perf_inception(n: int = 64, batch: int = 32, seed: int = 0, threads: int | None = None) -> dict:
    """Images/s of FID InceptionV3 features on CPU (random weights), 128×512 grey inputs."""
    import torch

    from benchmark.metrics.inception import FIDInceptionV3, inception_features

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = FIDInceptionV3().eval().requires_grad_(False)
    images = synthetic_word_images(n, seed=seed)
    inception_features(model, images[:2], batch)  # warm-up
    t0 = time.perf_counter()
    feats = inception_features(model, images, batch)
    dt = time.perf_counter() - t0
    return {"images": n, "batch": batch, "threads": torch.get_num_threads(), "seconds": dt,
            "images_per_s": n / dt, "feature_dim": int(feats.shape[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="gs,frechet,inception")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=65536)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--ref-reps", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inception-images", type=int, default=64)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    out = {"load_average_at_start": os.getloadavg(), "cpus": available_cpus()}
    if "frechet" in parts:
        out["frechet"] = perf_frechet()
        print(json.dumps({"frechet": out["frechet"]}), flush=True)
    if "inception" in parts:
        for threads in (1, 2):
            out[f"inception_{threads}t"] = perf_inception(args.inception_images, threads=threads)
            print(json.dumps({f"inception_{threads}t": out[f"inception_{threads}t"]}), flush=True)
    if "gs" in parts:
        out["gs"] = perf_gs(args.n, args.dim, args.reps, args.ref_reps, args.workers)
        print(json.dumps({"gs": out["gs"]}), flush=True)
    out["load_average_at_end"] = os.getloadavg()
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
