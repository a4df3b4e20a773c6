"""Fréchet Inception Distance (docs/DESIGN.md §7.2) with the `inception` or `htr` feature extractor.

FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(√Σ₁ Σ₂ √Σ₁), in float64. The trace of the matrix
square root uses the symmetric form and two symmetric eigendecompositions (no scipy sqrtm):
√Σ₁ Σ₂ √Σ₁ is symmetric positive semi-definite and has the eigenvalues of Σ₁Σ₂, so its trace
square root equals tr √(Σ₁Σ₂). FID is biased by N: compare values only at equal sample sizes.
"""
from __future__ import annotations

import time

import numpy as np

from datasets.errors import UserError

from .features import ExtractorConfig, make_extractor, needs_extractor, side_features


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a (numerically) PSD matrix; negative eigenvalues clipped to 0."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(√Σ₁ Σ₂ √Σ₁) through eigh (float64)."""
    s1 = _psd_sqrt(sigma1)
    m = s1 @ sigma2 @ s1
    m = 0.5 * (m + m.T)
    w = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def _check_stats(mu: np.ndarray, sigma: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(f"{name}: mean has shape {mu.shape} but covariance {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UserError(f"{name}: statistics contain NaN or infinity")
    return mu, sigma


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    mu1, sigma1 = _check_stats(mu1, sigma1, "first set")
    mu2, sigma2 = _check_stats(mu2, sigma2, "second set")
    if mu1.shape != mu2.shape:
        raise UserError(f"feature dimensions differ: {len(mu1)} vs {len(mu2)}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))


def fid(real, fake, features: str = "inception", n: int | None = None, inception_weights: str | None = None,
        judge: str | None = None, batch_size: int = 64, device: str = "cpu", seed: int = 0,
        height: int | None = None, width: int | None = None, cache: bool = True) -> dict:
    """FID between two image sets (arrays, dataset directories, image folders) or feature
    matrices (2-D arrays / .npy). `n` draws the same-size seeded subsample from each side.

    Returns {fid, features, n_real, n_fake, dim, singular, cached_real, cached_fake}: `singular`
    when a side has no more samples than feature dimensions, so that its covariance is singular
    and the value says little (the CLI warns).
    """
    cfg = ExtractorConfig(features, inception_weights, judge, batch_size, device)
    extractor = make_extractor(cfg) if needs_extractor(real, fake) else None
    label = features if extractor is not None else "given"  # both sides were feature matrices
    r, f = (side_features(source, cfg, n, seed, need_feats=False, extractor=extractor, height=height, width=width,
                          use_cache=cache) for source in (real, fake))
    t0 = time.perf_counter()
    value = frechet_distance(r.mu, r.sigma, f.mu, f.sigma)
    dim = int(np.atleast_1d(r.mu).shape[0])
    return {"fid": value, "features": label, "n_real": r.n, "n_fake": f.n, "dim": dim, "singular": min(r.n, f.n) <= dim,
            "cached_real": r.cached, "cached_fake": f.cached,
            "seconds": {"load": round(r.load_seconds + f.load_seconds, 3),
                        "features": round(r.feature_seconds + f.feature_seconds, 3),
                        "frechet": round(time.perf_counter() - t0, 3)}}
