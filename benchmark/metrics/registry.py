"""Metric registry (in the style of StyleGAN2-ADA's `metric_main`): one function per metric name.

    compute("fid", real, fake, features="inception", inception_weights=FILE, n=5000)
    compute("kid", real, fake, features="htr", judge=RUN)
    compute("gs", real, fake, reps=100, workers=2)
    compute("readability", None, fake_dataset_dir, judge=RUN)
    compute("diversity", real_dataset_dir, fake_dataset_dir, judge=RUN, k=32, m=8)

`real`/`fake` are uint8 image arrays (N, H, W), dataset directories, image folders, `.npy` files,
or (FID/KID/GS) feature / point matrices (N, D). Every metric returns a JSON-serialisable dict.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable

import numpy as np

from datasets.errors import UserError


def _fid(real, fake, **options) -> dict:
    from .fid import fid

    return fid(real, fake, **options)


def _kid(real, fake, **options) -> dict:
    from .kid import kid

    return kid(real, fake, **options)


def _gs(real, fake, n: int | None = None, height: int | None = None, width: int | None = None,
        sample_seed: int = 0, **options) -> dict:
    """Geometry Score of flattened images or given points; `n` subsamples both sides."""
    from .features import load_points
    from .geometry_score import geometry_score

    x = load_points(real, height, width, n, sample_seed)
    y = load_points(fake, height, width, n, sample_seed)
    return geometry_score(x, y, **options)


def _readability(real, fake, judge=None, words: list[str] | None = None, n: int | None = None, seed: int = 0,
                 batch_size: int = 64, device: str = "cpu") -> dict:
    """Readability of `fake` (a generated dataset directory, or uint8 images with `words`);
    `real` is not used."""
    from .readability import readability, readability_of_dataset

    if judge is None:
        raise UserError("readability needs a judge recognizer (judge=RUN)")
    if isinstance(fake, np.ndarray):
        if words is None:
            raise UserError("readability of an image array needs the words it should show (words=[...])")
        out = readability(judge, fake, list(words), batch_size, device)
    else:
        out = readability_of_dataset(judge, fake, n, seed, batch_size, device)
    return out


def _diversity(real, fake, **options) -> dict:
    """Same-word variation of generated images against real writers' (1 = as varied, 0 = collapse)."""
    from .diversity import diversity

    return diversity(real, fake, **options)


METRICS: MappingProxyType = MappingProxyType({
    "fid": _fid,
    "kid": _kid,
    "gs": _gs,
    "readability": _readability,
    "diversity": _diversity,
})


def list_metrics() -> list[str]:
    """Names accepted by `compute`."""
    return list(METRICS)


def is_valid_metric(name: str) -> bool:
    return name in METRICS


def compute(name: str, real, fake, **options) -> dict:
    """Compute metric `name` between `real` and `fake`; options go to the metric's function."""
    fn: Callable | None = METRICS.get(name)
    if fn is None:
        raise UserError(f"unknown metric {name!r} (choose from {', '.join(METRICS)})")
    try:
        result = fn(real, fake, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise UserError(f"metric {name!r}: {exc}") from None
        raise
    return {"metric": name, **result}
