"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel (Bińkowski et al.).

k(x, y) = (xᵀy / d + 1)³. The estimate is averaged over random subsets of equal size drawn
without replacement from each side; the mean and standard deviation over subsets are reported.
Unlike FID, KID is unbiased in N, but its variance still depends on the subset size.
"""
from __future__ import annotations

import numpy as np

from datasets.errors import UserError

from .features import ExtractorConfig, check_features, make_extractor, needs_extractor, side_features


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(aᵀb / d + 1)³ for the rows of a and b."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² estimate between two equal-size samples with the cubic kernel."""
    m = len(x)
    if m < 2 or len(y) != m:
        raise ValueError("mmd2_unbiased needs two samples of equal size ≥ 2")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid_from_features(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> dict:
    """KID mean/std over `subsets` random subsets of min(subset_size, N_real, N_fake) rows each."""
    real = check_features(real, "real features")
    fake = check_features(fake, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise UserError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    if subsets < 1:
        raise UserError(f"number of KID subsets must be ≥ 1, got {subsets}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise UserError(f"KID subset size must be ≥ 2, got {m}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        xi = real[rng.choice(len(real), m, replace=False)]
        yi = fake[rng.choice(len(fake), m, replace=False)]
        values[i] = mmd2_unbiased(xi, yi)
    return {"kid": float(values.mean()), "kid_std": float(values.std()), "subsets": subsets, "subset_size": m}


def kid(real, fake, features: str = "inception", n: int | None = None, subsets: int = 100, subset_size: int = 1000,
        inception_weights: str | None = None, judge: str | None = None, batch_size: int = 64, device: str = "cpu",
        seed: int = 0, height: int | None = None, width: int | None = None) -> dict:
    """KID between two image sets or feature matrices (same inputs as `fid`).

    Returns {kid, kid_std, subsets, subset_size, features, n_real, n_fake}.
    """
    cfg = ExtractorConfig(features, inception_weights, judge, batch_size, device)
    extractor = make_extractor(cfg) if needs_extractor(real, fake) else None
    label = features if extractor is not None else "given"  # both sides were feature matrices
    r, f = (side_features(source, cfg, n, seed, need_feats=True, extractor=extractor, height=height, width=width)
            for source in (real, fake))
    out = kid_from_features(r.feats, f.feats, subsets, subset_size, seed)
    out.update(features=label, n_real=r.n, n_fake=f.n)
    return out
