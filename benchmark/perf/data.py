"""Throughput of the dataset layer (RESULTS.md "## Dataset layer").

    python -m benchmark.perf.data [--kind rimes-like] [--n 2000] [--height 128] [--width 512]
                                  [--workers 2] [--batches 300] [--batch-size 64] [--json FILE]

* build — `build_standin` of N training images: wall-clock images/s including set-up (word prior,
  font pool, worker start), and the steady rendering rate with the set-up time taken out.
* pack — first `load_packed` of the built split (PNG decode + preprocessing into the cache).
* loader — random batches from the memory-mapped packed cache via `batch_from_indices`
  (float tensors in [-1, 1] plus CTC targets), images/s.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import tempfile
import time

import numpy as np

from datasets.cpus import available_cpus


@dataclass(frozen=True)
class DataPerfConfig:
    kind: str = "rimes-like"
    n: int = 2000
    height: int = 128
    width: int = 512
    workers: int = 2
    batches: int = 300
    batch_size: int = 64
    seed: int = 0


def measure_setup(kind: str) -> float:
    """Seconds to build the word prior and resolve the font pool (paid once per build)."""
    from datasets.alphabet import for_language
    from datasets.build import KINDS
    from datasets.fonts import load_pool
    from datasets.words import make_prior

    lang = KINDS[kind]
    t0 = time.perf_counter()
    make_prior(lang, for_language(lang))
    load_pool(lang, for_language(lang))
    return time.perf_counter() - t0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the rendering workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure_build(cfg: DataPerfConfig, out: Path) -> dict:
    """Build N training images; images/s with and without the one-off set-up."""
    from datasets.build import build_standin

    setup = measure_setup(cfg.kind)
    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    build_standin(cfg.kind, out, cfg.n, 0, 0, cfg.height, cfg.width, cfg.seed, workers=cfg.workers,
                  show_progress=False)
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds() - c0
    result = {"images": cfg.n, "seconds": round(wall, 2), "images_per_s": round(cfg.n / wall, 1),
              "cpu_seconds": round(cpu, 2), "images_per_cpu_s": round(cfg.n / cpu, 1),
              "setup_seconds": round(setup, 2)}
    # The steady rate is only meaningful when rendering, not the set-up, dominates the build.
    if wall - setup > 0.5 * wall:
        steady = cfg.n / (wall - setup)
        result["steady_images_per_s"] = round(steady, 1)
        result["projected_minutes_paper_profile_141534"] = round(141534 / steady / 60 + setup / 60, 1)
    return result


def measure_loader(cfg: DataPerfConfig, split_dir: Path) -> tuple[dict, dict]:
    """Pack the split once (timed), then draw random batches from the memory map (timed)."""
    from datasets.alphabet import for_language
    from datasets.build import KINDS
    from datasets.packed import load_packed
    from datasets.torch_dataset import WordImageDataset, batch_from_indices

    t0 = time.perf_counter()
    packed = load_packed(split_dir, cfg.height, cfg.width, show_progress=False)
    pack_s = time.perf_counter() - t0
    ds = WordImageDataset(packed, for_language(KINDS[cfg.kind]), cfg.height, cfg.width)
    rng = np.random.default_rng(cfg.seed)
    batch = min(cfg.batch_size, len(ds))
    batch_from_indices(ds, rng.choice(len(ds), batch, replace=False))  # warm the page cache
    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    for _ in range(cfg.batches):
        images, _, _ = batch_from_indices(ds, rng.choice(len(ds), batch, replace=False))
    load_s = time.perf_counter() - t0
    load_cpu = _cpu_seconds() - c0
    n = cfg.batches * batch
    pack = {"images": len(packed), "seconds": round(pack_s, 2), "images_per_s": round(len(packed) / pack_s, 1)}
    loader = {"batches": cfg.batches, "batch_size": batch, "seconds": round(load_s, 2),
              "images_per_s": round(n / load_s, 1), "cpu_seconds": round(load_cpu, 2),
              "batch_shape": list(images.shape)}
    return pack, loader


def run(cfg: DataPerfConfig) -> dict:
    """All dataset-layer measurements in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="htraug-perf-data-") as tmp:
        out = Path(tmp) / cfg.kind
        build = measure_build(cfg, out)
        pack, loader = measure_loader(cfg, out / "train")
    return {"config": asdict(cfg), "cpu_cores": available_cpus(),
            "build": build, "pack": pack, "loader": loader}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf.data", description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="rimes-like", choices=["rimes-like", "arabic-like"])
    p.add_argument("--n", type=int, default=2000, help="training images to build (default 2000)")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    p.add_argument("--batches", type=int, default=300, help="random batches for the loader test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    res = run(DataPerfConfig(a.kind, a.n, a.height, a.width, a.workers, a.batches, a.batch_size))
    print(json.dumps(res, indent=1))
    if a.json:
        from datasets.files import atomic_write_json
        atomic_write_json(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
