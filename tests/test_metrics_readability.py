"""Judge-recognizer metrics: readability (ED/WER against the asked words), htr features for
FID/KID, and the `htraug metrics` command line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.metrics.fid import fid
from benchmark.metrics.kid import kid
from benchmark.metrics.readability import readability, readability_of_dataset
from benchmark.metrics.registry import compute
from datasets.alphabet import Alphabet
from datasets.errors import UserError
from htr.checkpoint import FORMAT, VERSION
from htr.model import GatedCRNN
from benchmark.cli import build_parser

H, W = 16, 64
ALPHABET = Alphabet("abcdefghij", name="test")


@pytest.fixture(scope="module")
def judge_run(tmp_path_factory):
    """A run directory with an (untrained) recognizer checkpoint best.pt."""
    torch.manual_seed(0)
    model = GatedCRNN(ALPHABET.num_classes, H, width_mult=0.25)
    run = tmp_path_factory.mktemp("judge")
    torch.save({"format": FORMAT, "version": VERSION, "model": model.state_dict(), "model_config": model.config(),
                "alphabet": ALPHABET.to_json(), "alphabet_fingerprint": ALPHABET.fingerprint, "direction": "ltr",
                "width": W}, run / "best.pt")
    return run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    words = ["abc", "hij", "be", "ceded", "jig", "fig"]
    for i, w in enumerate(words):
        Image.fromarray(rng.integers(0, 256, (H, 10 * len(w)), dtype=np.uint8)).save(root / "images" / f"{i}.png")
    (root / "labels.tsv").write_text("".join(f"images/{i}.png\t{w}\n" for i, w in enumerate(words)), encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"name": "gen", "language": "en", "direction": "ltr",
                                                 "alphabet": ALPHABET.to_json(), "height": H, "width": W}), encoding="utf-8")
    return root, words


def test_readability_against_words(judge_run):
    images = np.full((3, H, W), 255, np.uint8)
    r = readability(str(judge_run), images, ["abc", "de", "f"])
    assert r["n"] == 3 and len(r["hypotheses"]) == 3 and 0 <= r["cer"] and r["wer"] <= 100
    with pytest.raises(UserError, match="3 images but 2 words"):
        readability(str(judge_run), images, ["a", "b"])
    with pytest.raises(UserError, match="pixels high"):
        readability(str(judge_run), np.zeros((2, H + 4, W), np.uint8), ["a", "b"])


def test_readability_of_dataset_and_registry(judge_run, dataset):
    root, words = dataset
    r = readability_of_dataset(str(judge_run), root)
    assert r["n"] == len(words) and r["dropped"] == 0
    r2 = compute("readability", None, root, judge=str(judge_run), n=3)
    assert r2["metric"] == "readability" and r2["n"] == 3
    with pytest.raises(UserError, match="judge"):
        compute("readability", None, root)


def test_htr_features_for_fid_and_kid(judge_run, dataset):
    root, _ = dataset
    r = fid(root, root, features="htr", judge=str(judge_run), cache=False)
    assert r["features"] == "htr" and r["fid"] == pytest.approx(0.0, abs=1e-6) and r["n_real"] == 6
    imgs = np.random.default_rng(1).integers(0, 256, (6, H, W), dtype=np.uint8)
    r = fid(root, imgs, features="htr", judge=str(judge_run))
    assert r["fid"] > 0 and list((root / ".cache").glob("featstats-htr-n6-*.npz"))
    assert fid(root, imgs, features="htr", judge=str(judge_run))["cached_real"]
    k = kid(root, imgs, features="htr", judge=str(judge_run), subsets=3, subset_size=4)
    assert k["subset_size"] == 4 and np.isfinite(k["kid"])


def _cli(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_json_outputs(tmp_path, capsys, judge_run, dataset):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "a.npy", rng.normal(size=(100, 3)))
    np.save(tmp_path / "b.npy", rng.normal(size=(100, 3)) + 1)
    assert _cli(["metrics", "gs", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "b.npy"),
                 "--reps", "2", "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"gs", "mrlt_real", "mrlt_fake"} <= out.keys() and len(out["mrlt_real"]) == 100
    assert _cli(["metrics", "fid", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "b.npy"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"fid", "features", "n_real", "n_fake"} <= out.keys() and out["n_fake"] == 100
    assert _cli(["metrics", "kid", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "b.npy"),
                 "--subsets", "3", "--subset-size", "50"]) == 0
    assert "KID" in capsys.readouterr().out
    root, _ = dataset
    assert _cli(["metrics", "readability", "--fake", str(root), "--judge", str(judge_run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 6 and "hypotheses" not in out


def test_cli_errors_are_user_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((10, 2)))
    with pytest.raises(UserError, match="fewer than the 64 landmarks"):
        _cli(["metrics", "gs", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "a.npy")])
    with pytest.raises(UserError, match="no such"):
        _cli(["metrics", "fid", "--real", str(tmp_path / "nope"), "--fake", str(tmp_path / "a.npy")])
