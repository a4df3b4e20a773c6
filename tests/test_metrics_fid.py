"""FID / KID: Fréchet distance against the scipy sqrtm formula, stats, caching, inputs, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import linalg

from benchmark.metrics.features import load_images, load_points
from benchmark.metrics.fid import fid, frechet_distance
from benchmark.metrics.kid import kid, kid_from_features, mmd2_unbiased
from benchmark.metrics.registry import compute, list_metrics
from datasets.errors import UserError


def _random_cov(rng, d, n=None):
    x = rng.normal(size=(n or 3 * d, d)) @ rng.normal(size=(d, d))
    return x.mean(0), np.cov(x, rowvar=False)


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2)
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, s1 = _random_cov(rng, d)
    mu2, s2 = _random_cov(rng, d)
    ours, ref = frechet_distance(mu1, s1, mu2, s2), _scipy_fid(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ours, rel=1e-8)


def test_frechet_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    mu, s = _random_cov(rng, 32)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8 * np.trace(s))


def test_frechet_rank_deficient_covariances():
    """N < d gives singular covariances; the eigh form stays finite and ≥ 0."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 1
    v = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert np.isfinite(v) and v > 0


def test_frechet_rejects_bad_stats():
    with pytest.raises(UserError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(UserError, match="dimensions differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_fid_on_feature_matrices_and_registry():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 0.5
    same = fid(a, a)
    assert same["fid"] == pytest.approx(0.0, abs=1e-9) and same["n_real"] == 400 and same["features"] == "given"
    r = compute("fid", a, b)
    assert r["metric"] == "fid" and 1.5 < r["fid"] < 3.5  # ‖Δμ‖² = 2 plus sampling bias
    assert set(list_metrics()) == {"fid", "kid", "gs", "readability", "diversity"}
    with pytest.raises(UserError, match="unknown metric"):
        compute("nope", a, b)


def test_nan_features_and_too_few_samples_are_user_errors():
    a = np.zeros((10, 4))
    a[3, 1] = np.nan
    with pytest.raises(UserError, match="NaN"):
        fid(a, np.ones((10, 4)))
    with pytest.raises(UserError, match="at least 2"):
        fid(np.ones((1, 4)), np.ones((10, 4)))


def test_kid_zero_for_same_distribution_positive_when_shifted():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same = kid_from_features(a, b, subsets=20, subset_size=200)
    shifted = kid_from_features(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert shifted["kid"] > 10 * max(same["kid_std"], 1e-4)
    # unbiased estimator: exact value on a tiny case computed by hand
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    k = lambda u, v: (u * v + 1) ** 3  # noqa: E731
    expect = k(0, 1) * 2 / 2 + k(1, 2) * 2 / 2 - 2 * (k(0, 1) + k(0, 2) + k(1, 1) + k(1, 2)) / 4
    assert mmd2_unbiased(x, y) == pytest.approx(expect)
    r = kid(a, b + 1.0, subsets=5, subset_size=100)
    assert r["n_real"] == 600 and r["subset_size"] == 100 and r["kid"] > 0


def _write_folder(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")


def test_load_images_folder_npy_array_and_errors(tmp_path):
    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (6, 8, 12), dtype=np.uint8)
    _write_folder(tmp_path / "f", imgs)
    assert np.array_equal(load_images(tmp_path / "f"), imgs)
    np.save(tmp_path / "x.npy", imgs)
    sub = load_images(tmp_path / "x.npy", n=3, seed=1)
    assert sub.shape == (3, 8, 12) and np.array_equal(sub, load_images(imgs, n=3, seed=1))
    assert load_points(tmp_path / "f").shape == (6, 96)
    Image.fromarray(np.zeros((9, 12), np.uint8)).save(tmp_path / "f" / "999.png")
    with pytest.raises(UserError, match="one size"):
        load_images(tmp_path / "f")
    with pytest.raises(UserError, match="fewer than"):
        load_images(imgs, n=7)
    with pytest.raises(UserError, match="no such"):
        load_images(tmp_path / "missing")
    with pytest.raises(UserError, match="uint8"):
        load_images(imgs.astype(np.float32))


def test_load_images_dataset_directory(tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(5)
    lines = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 20 + i), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        lines.append(f"images/{i}.png\tword{i}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"name": "t", "language": "en", "direction": "ltr",
                                                 "alphabet": "abcdefghijklmnopqrstuvwxyz0123456789",
                                                 "height": 16, "width": 64}), encoding="utf-8")
    imgs = load_images(root)
    assert imgs.shape == (4, 16, 64) and imgs.dtype == np.uint8
    assert load_images(root, height=8, width=32).shape == (4, 8, 32)


def test_missing_inception_weights_is_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HTRAUG_INCEPTION_WEIGHTS", raising=False)
    imgs = np.zeros((3, 8, 8), np.uint8)
    with pytest.raises(UserError) as e:
        fid(imgs, imgs)
    assert "--inception-weights" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError, match="not found"):
        fid(imgs, imgs, inception_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(UserError, match="judge"):
        fid(imgs, imgs, features="htr")
