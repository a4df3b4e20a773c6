"""Geometry Score (Khrulkov & Oseledets, ICML 2018), docs/DESIGN.md §7.3.

Per repetition: L₀ landmarks drawn at random (without replacement) from the N points; all N
points are witnesses; the witness→landmark table holds plain Euclidean distances (as in the
authors' code, which passes `cdist` distances, not squared ones, although gudhi calls the table
entries "squared distances"); gudhi `WitnessComplex(...).create_simplex_tree(max_alpha_square =
α_max = γ·max_dist, limit_dimension=2)` with γ = 1/128 · N/5000; persistence over Z/2; the
H₁ intervals (infinite deaths set to α_max) give the relative living times RLT[i] = share of
[0, α_max] during which β₁ = i, for i < i_max. MRLT = mean RLT over repetitions; GS = Σᵢ
(MRLT_real[i] − MRLT_fake[i])².

Speed: the witness→landmark distances come from the Gram matrix G = X Xᵀ (one BLAS pass per set)
as √max(0, ‖x‖² + ‖l‖² − 2 G), gathered per repetition. For integer inputs (uint8 images) G is
exact — float32 block products whose partial sums stay below 2²⁴, added in float64 — so the
distances equal scipy's `cdist` bit for bit; float inputs are centred and use float64.
Table rows are cut after the entries gudhi can use at dimension ≤ 2
(distance − α_max ≤ distance of the 3rd-nearest landmark: gudhi's own stopping rule), which leaves
the complex unchanged. Repetitions are seeded independently (SeedSequence.spawn) and run in
worker processes; results do not depend on the number of workers.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import multiprocessing as mp

import numpy as np

from datasets.cpus import available_cpus
from datasets.errors import UserError

LIMIT_DIMENSION = 2
HOMOLOGY_FIELD = 2
GRAM_BLOCK = 2048                 # columns converted to float64 at a time
GRAM_LIMIT_BYTES = 1 << 30        # above this the N×N Gram matrix is skipped for per-rep products


@dataclass(frozen=True)
class GSConfig:
    """Parameters of the Geometry Score protocol (defaults: the paper's)."""

    landmarks: int = 64
    reps: int = 100
    gamma: float | None = None    # None: 1/128 · N/5000
    i_max: int = 100
    seed: int = 0
    workers: int | None = None    # None: the CPUs available to this process

    def __post_init__(self):
        if self.landmarks < 2:
            raise UserError(f"GS needs at least 2 landmarks, got {self.landmarks}")
        if self.reps < 1:
            raise UserError(f"GS repetitions must be ≥ 1, got {self.reps}")
        if self.i_max < 1:
            raise UserError(f"i_max must be ≥ 1, got {self.i_max}")
        if self.gamma is not None and not self.gamma > 0:
            raise UserError(f"gamma must be > 0, got {self.gamma}")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"workers must be ≥ 1, got {self.workers}")

    def gamma_for(self, n: int) -> float:
        """γ for a set of n points."""
        return self.gamma if self.gamma is not None else n / 5000.0 / 128.0


# ----------------------------------------------------------------------------------------------
# Distances


def check_points(x, name: str, landmarks: int) -> np.ndarray:
    """Validate a point cloud (N, D) (or images (N, H, W), flattened): enough points, finite."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x.reshape(len(x), -1)
    if x.ndim != 2:
        raise UserError(f"{name}: expected points (N, D), got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UserError(f"{name}: expected real numbers, got dtype {x.dtype}")
    if len(x) < landmarks:
        raise UserError(f"{name}: has {len(x)} points, fewer than the {landmarks} landmarks")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise UserError(f"{name}: {int((~np.isfinite(x)).any(axis=1).sum())} points contain NaN or infinity")
    return x


def _as_float64(block: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    out = block.astype(np.float64)
    if shift is not None:
        out -= shift
    return out


FLOAT32_EXACT = 1 << 24           # integers up to 2^24 are exact in float32


def _exact_integer_gram(x: np.ndarray) -> np.ndarray | None:
    """Exact Gram matrix of integer points (shifted to centre their range) via float32 BLAS.

    With values |v| ≤ m after the shift, every partial sum over k columns is an integer of
    magnitude ≤ k·m², exact in float32 while k·m² ≤ 2^24 (k = 1024 for uint8 images), so each
    block product is exact in any summation order; blocks are accumulated in float64 (exact
    below 2^53). Three times faster than a float64 GEMM. None when the range is too wide.
    """
    lo, hi = int(x.min()), int(x.max())
    shift = (lo + hi) // 2
    m = max(hi - shift, shift - lo, 1)
    k = FLOAT32_EXACT // (m * m)
    if k < 256 or x.shape[1] * m * m >= 1 << 53:
        return None
    k = min(k, 4096)
    n = len(x)
    gram = np.zeros((n, n))
    for start in range(0, x.shape[1], k):
        block = x[:, start:start + k].astype(np.float32)
        block -= np.float32(shift)
        gram += block @ block.T
    return gram


@dataclass
class PointDistances:
    """Euclidean distances from all points to chosen landmarks, via a Gram matrix when it fits.

    Integer inputs are used as they are (exact in float64); float inputs are centred first,
    which leaves distances unchanged and reduces cancellation in ‖x‖² + ‖l‖² − 2xᵀl.
    """

    x: np.ndarray
    gram: np.ndarray | None
    sqnorm: np.ndarray
    shift: np.ndarray | None

    @staticmethod
    def build(x: np.ndarray, use_gram: bool | None = None) -> "PointDistances":
        n = len(x)
        shift = None if np.issubdtype(x.dtype, np.integer) else x.mean(axis=0, dtype=np.float64)
        if use_gram is None:
            use_gram = n * n * 8 <= GRAM_LIMIT_BYTES
        if use_gram:
            gram = _exact_integer_gram(x) if shift is None else None
            if gram is None:
                gram = np.zeros((n, n))
                for start in range(0, x.shape[1], GRAM_BLOCK):
                    block = _as_float64(x[:, start:start + GRAM_BLOCK], None if shift is None else shift[start:start + GRAM_BLOCK])
                    gram += block @ block.T
            return PointDistances(x, gram, np.diagonal(gram).copy(), shift)
        sq = np.zeros(n)
        for start in range(0, x.shape[1], GRAM_BLOCK):
            block = _as_float64(x[:, start:start + GRAM_BLOCK], None if shift is None else shift[start:start + GRAM_BLOCK])
            sq += np.einsum("ij,ij->i", block, block)
        return PointDistances(x, None, sq, shift)

    def products(self, idx: np.ndarray) -> np.ndarray:
        """xᵢᵀ l_j for all points i and landmarks j (N, L)."""
        if self.gram is not None:
            return self.gram[idx].T
        out = np.zeros((len(self.x), len(idx)))
        for start in range(0, self.x.shape[1], GRAM_BLOCK):
            sl = slice(start, start + GRAM_BLOCK)
            sh = None if self.shift is None else self.shift[sl]
            block = _as_float64(self.x[:, sl], sh)
            out += block @ block[idx].T
        return out

    def to_landmarks(self, idx: np.ndarray) -> np.ndarray:
        """Distance table (N, L): √max(0, ‖x‖² + ‖l‖² − 2xᵀl)."""
        sq = self.sqnorm[:, None] + self.sqnorm[idx][None, :] - 2.0 * self.products(idx)
        np.maximum(sq, 0.0, out=sq)
        return np.sqrt(sq, out=sq)


# ----------------------------------------------------------------------------------------------
# One repetition


def nearest_landmark_table(dist: np.ndarray, alpha_max: float, limit_dimension: int = LIMIT_DIMENSION) -> list:
    """gudhi's input: per witness, [(landmark, distance), …] by increasing distance, cut after
    the entries usable up to `limit_dimension` (distance − α_max ≤ distance of the
    (limit_dimension+1)-th nearest landmark)."""
    order = np.argsort(dist, axis=1, kind="stable")
    sorted_d = np.take_along_axis(dist, order, axis=1)
    k = min(limit_dimension, dist.shape[1] - 1)
    keep = (sorted_d - alpha_max <= sorted_d[:, k:k + 1]).sum(axis=1)
    width = int(keep.max())               # rows are sorted, so the kept entries are a prefix
    orders, dists = order[:, :width].tolist(), sorted_d[:, :width].tolist()
    return [list(zip(o[:m], d[:m])) for o, d, m in zip(orders, dists, keep.tolist())]


def relative_living_times(intervals, alpha_max: float, i_max: int = 100) -> np.ndarray:
    """RLT[i] = share of [0, α_max] on which exactly i of the H₁ intervals [b, d) are alive
    (infinite deaths count as α_max); counts ≥ i_max are dropped."""
    iv = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    births = np.sort(iv[:, 0])
    deaths = np.sort(np.where(np.isinf(iv[:, 1]), alpha_max, iv[:, 1]))
    points = np.unique(np.concatenate([births, deaths, [0.0, alpha_max]]))
    mids = 0.5 * (points[:-1] + points[1:])
    alive = np.searchsorted(births, mids, side="right") - np.searchsorted(deaths, mids, side="right")
    lengths = np.diff(points)
    ok = alive < i_max
    return np.bincount(alive[ok], weights=lengths[ok], minlength=i_max)[:i_max] / alpha_max


def h1_intervals(table: list, alpha_max: float) -> np.ndarray:
    """H₁ persistence intervals (Z/2) of the weak witness complex of relaxation α_max."""
    import gudhi

    st = gudhi.WitnessComplex(nearest_landmark_table=table).create_simplex_tree(
        max_alpha_square=alpha_max, limit_dimension=LIMIT_DIMENSION)
    st.compute_persistence(homology_coeff_field=HOMOLOGY_FIELD)
    return np.asarray(st.persistence_intervals_in_dimension(1), dtype=np.float64).reshape(-1, 2)


def rlt_for_landmarks(dist_source: PointDistances, idx: np.ndarray, gamma: float, i_max: int) -> np.ndarray:
    """RLT of one repetition with the given landmark indices."""
    dist = dist_source.to_landmarks(idx)
    max_dist = float(dist.max())
    if max_dist <= 0:
        raise UserError("all points coincide: the Geometry Score is undefined")
    alpha_max = gamma * max_dist
    return relative_living_times(h1_intervals(nearest_landmark_table(dist, alpha_max), alpha_max), alpha_max, i_max)


def landmark_sets(n: int, landmarks: int, reps: int, seed: int) -> list[np.ndarray]:
    """Landmark indices of every repetition, each from its own spawned seed."""
    children = np.random.SeedSequence(seed).spawn(reps)
    return [np.sort(np.random.default_rng(c).choice(n, size=landmarks, replace=False)) for c in children]


# ----------------------------------------------------------------------------------------------
# Repetitions in worker processes

_WORKER_SOURCES: dict = {}   # set once per worker process by _init_worker (process-local)


def _init_worker(sources: tuple) -> None:
    _WORKER_SOURCES["sources"] = sources


def _worker_rlt(task: tuple) -> np.ndarray:
    which, idx, gamma, i_max = task
    return rlt_for_landmarks(_WORKER_SOURCES["sources"][which], idx, gamma, i_max)


def _run_tasks(sources: tuple, tasks: list, workers: int) -> list[np.ndarray]:
    """Run (set index, landmarks, γ, i_max) tasks in order, in-process or in a process pool."""
    if workers <= 1 or len(tasks) <= 1:
        return [rlt_for_landmarks(sources[w], idx, g, m) for w, idx, g, m in tasks]
    method = "fork" if "fork" in mp.get_all_start_methods() else None
    ctx = mp.get_context(method)
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                             initializer=_init_worker, initargs=(sources,)) as pool:
        return list(pool.map(_worker_rlt, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


def _rlts_many(point_sets: list[np.ndarray], cfg: GSConfig, names: list[str]) -> list[np.ndarray]:
    """RLTs (reps, i_max) of each point set."""
    checked = [check_points(x, name, cfg.landmarks) for x, name in zip(point_sets, names)]
    sources = tuple(PointDistances.build(x) for x in checked)
    tasks = []
    for which, x in enumerate(checked):
        gamma = cfg.gamma_for(len(x))
        tasks += [(which, idx, gamma, cfg.i_max) for idx in landmark_sets(len(x), cfg.landmarks, cfg.reps, cfg.seed)]
    results = _run_tasks(sources, tasks, cfg.workers or available_cpus())
    return [np.stack(results[i * cfg.reps:(i + 1) * cfg.reps]) for i in range(len(checked))]


def rlts(x, landmarks: int = 64, reps: int = 100, gamma: float | None = None, i_max: int = 100, seed: int = 0,
         workers: int | None = None) -> np.ndarray:
    """RLT of every repetition (reps, i_max) of point cloud x (N, D)."""
    cfg = GSConfig(landmarks, reps, gamma, i_max, seed, workers)
    return _rlts_many([x], cfg, ["points"])[0]


def mrlt(x, landmarks: int = 64, reps: int = 100, gamma: float | None = None, i_max: int = 100, seed: int = 0,
         workers: int | None = None) -> np.ndarray:
    """Mean relative living times (i_max,) of point cloud x (N, D)."""
    return rlts(x, landmarks, reps, gamma, i_max, seed, workers).mean(axis=0)


def geometry_score(x, y, landmarks: int = 64, reps: int = 100, gamma: float | None = None, i_max: int = 100,
                   seed: int = 0, workers: int | None = None) -> dict:
    """GS between point clouds x ("real") and y ("fake"): Σ (MRLT_x − MRLT_y)².

    Both sets use the same seed (so `mrlt(x, seed=s)` equals this call's `mrlt_real`).
    Returns {gs, mrlt_real, mrlt_fake, n_real, n_fake, landmarks, reps, gamma_real, gamma_fake}.
    """
    cfg = GSConfig(landmarks, reps, gamma, i_max, seed, workers)
    r, f = _rlts_many([x, y], cfg, ["real", "fake"])
    m_r, m_f = r.mean(axis=0), f.mean(axis=0)
    return {"gs": float(((m_r - m_f) ** 2).sum()), "mrlt_real": m_r.tolist(), "mrlt_fake": m_f.tolist(),
            "n_real": len(np.asarray(x)), "n_fake": len(np.asarray(y)), "landmarks": landmarks, "reps": reps,
            "gamma_real": cfg.gamma_for(len(np.asarray(x))), "gamma_fake": cfg.gamma_for(len(np.asarray(y)))}
