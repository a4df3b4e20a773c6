"""Geometry Score: topology of known point clouds, determinism across workers, equality with a
plain reference implementation, relative living times, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.metrics import geometry_score as gsm
from benchmark.metrics.registry import compute
from benchmark.perf.metrics import reference_rlt, synthetic_word_images
from datasets.errors import UserError

N = 500
GAMMA = 0.1          # the default γ = N/5000/128 is meant for N ≈ 5000 image sets; toy clouds need more
REPS = 8


def circle(rng, n, center=(0.0, 0.0), radius=1.0):
    t = rng.uniform(0, 2 * np.pi, n)
    return np.c_[center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)] + rng.normal(0, 0.01, (n, 2))


def disc(rng, n):
    t, r = rng.uniform(0, 2 * np.pi, n), np.sqrt(rng.uniform(0, 1, n))
    return np.c_[r * np.cos(t), r * np.sin(t)]


def two_circles(rng, n):
    return np.r_[circle(rng, n // 2, (-1.5, 0)), circle(rng, n - n // 2, (1.5, 0))]


@pytest.fixture(scope="module")
def clouds():
    rng = np.random.default_rng(0)
    return {"circle": circle(rng, N), "circle2": circle(rng, N), "disc": disc(rng, N), "two": two_circles(rng, N)}


@pytest.fixture(scope="module")
def mrlts(clouds):
    return {k: gsm.mrlt(v, reps=REPS, gamma=GAMMA, workers=1) for k, v in clouds.items()}


def test_betti_modes_match_topology(mrlts):
    assert int(np.argmax(mrlts["circle"])) == 1
    assert int(np.argmax(mrlts["two"])) == 2
    assert int(np.argmax(mrlts["disc"])) == 0
    for m in mrlts.values():
        assert m.shape == (100,) and m.sum() == pytest.approx(1.0)


def test_gs_same_distribution_much_smaller_than_across_topologies(mrlts):
    gs = lambda a, b: float(((mrlts[a] - mrlts[b]) ** 2).sum())  # noqa: E731
    same = gs("circle", "circle2")
    assert same < 0.05 * min(gs("circle", "disc"), gs("circle", "two"), gs("disc", "two"))


def test_same_seed_same_result_with_one_or_two_workers(clouds):
    one = gsm.geometry_score(clouds["circle"], clouds["two"], reps=4, gamma=GAMMA, seed=3, workers=1)
    two = gsm.geometry_score(clouds["circle"], clouds["two"], reps=4, gamma=GAMMA, seed=3, workers=2)
    assert one == two
    other = gsm.geometry_score(clouds["circle"], clouds["two"], reps=4, gamma=GAMMA, seed=4, workers=1)
    assert other["mrlt_real"] != one["mrlt_real"]
    alone = gsm.mrlt(clouds["circle"], reps=4, gamma=GAMMA, seed=3, workers=1)
    assert alone.tolist() == one["mrlt_real"]


def test_fast_path_equals_plain_reference_on_images():
    """uint8 images: Gram-matrix distances are exact, so RLTs equal scipy cdist's bit for bit."""
    x = synthetic_word_images(300, 16, 64, seed=5).reshape(300, -1)
    src = gsm.PointDistances.build(x)
    gamma = 0.05
    for idx in gsm.landmark_sets(len(x), 64, 3, seed=0):
        assert np.array_equal(gsm.rlt_for_landmarks(src, idx, gamma, 100), reference_rlt(x, idx, gamma, 100))


def test_fast_path_close_to_reference_on_float_points(clouds):
    x = clouds["two"]
    src = gsm.PointDistances.build(x)
    for idx in gsm.landmark_sets(len(x), 64, 2, seed=1):
        assert np.allclose(gsm.rlt_for_landmarks(src, idx, GAMMA, 100), reference_rlt(x, idx, GAMMA, 100), atol=1e-9)
    direct = gsm.PointDistances.build(x, use_gram=False)
    idx = gsm.landmark_sets(len(x), 64, 1, seed=2)[0]
    assert np.allclose(direct.to_landmarks(idx), src.to_landmarks(idx), atol=1e-6)  # √ of rounding near 0


def test_relative_living_times():
    # β₁ = 1 on [0.2, 0.6), 2 on [0.4, 0.6), infinite death → α_max = 1
    rlt = gsm.relative_living_times([[0.2, 0.6], [0.4, np.inf]], 1.0, i_max=5)
    assert rlt.tolist() == pytest.approx([0.2, 0.2 + 0.4, 0.2, 0, 0])
    assert gsm.relative_living_times(np.zeros((0, 2)), 2.0, 3).tolist() == [1.0, 0.0, 0.0]


def test_table_truncation_keeps_the_complex():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 3))
    src = gsm.PointDistances.build(x)
    idx = gsm.landmark_sets(200, 20, 1, 0)[0]
    d = src.to_landmarks(idx)
    alpha = 0.05 * d.max()
    order = np.argsort(d, axis=1, kind="stable")
    full = [list(zip(o.tolist(), d[i, o].tolist())) for i, o in enumerate(order)]
    cut = gsm.nearest_landmark_table(d, alpha)
    assert np.mean([len(row) for row in cut]) < 20
    assert np.array_equal(gsm.h1_intervals(cut, alpha), gsm.h1_intervals(full, alpha))


def test_bad_input_is_user_error(tmp_path):
    rng = np.random.default_rng(8)
    with pytest.raises(UserError, match="fewer than the 64 landmarks"):
        gsm.geometry_score(rng.normal(size=(30, 2)), rng.normal(size=(100, 2)), reps=1)
    bad = rng.normal(size=(100, 2))
    bad[5, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        gsm.mrlt(bad, reps=1)
    with pytest.raises(UserError, match="coincide"):
        gsm.mrlt(np.ones((100, 2)), reps=1)
    with pytest.raises(UserError, match="repetitions"):
        gsm.mrlt(rng.normal(size=(100, 2)), reps=0)
    np.save(tmp_path / "p.npy", rng.normal(size=(80, 2)))
    np.save(tmp_path / "q.npy", rng.normal(size=(80, 5)))
    r = compute("gs", tmp_path / "p.npy", tmp_path / "p.npy", reps=2, workers=1)
    assert r["gs"] == 0.0 and r["n_real"] == 80
    r = compute("gs", tmp_path / "p.npy", tmp_path / "q.npy", reps=2, workers=1)
    assert r["gs"] >= 0


def test_exact_integer_gram_equals_float64():
    x = np.random.default_rng(9).integers(0, 256, (40, 3000), dtype=np.uint8)
    c = x.astype(np.float64) - 127
    assert np.array_equal(gsm._exact_integer_gram(x), c @ c.T)
    assert gsm._exact_integer_gram(np.array([[0, 100000], [5, 7]], dtype=np.int64)) is None
