"""Stand-in builder: byte-identical output for a seed (any worker count), writer-disjoint splits,
atomic output, CLI."""
import hashlib
import json
from pathlib import Path

import pytest

from datasets.build import build_standin, make_writers, split_writers
from datasets.errors import UserError
from datasets.format import load_dataset

SMALL = dict(n_train=70, n_val=12, n_test=12, height=32, width=128, show_progress=False)


def tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rimes_like(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "rimes"
    return build_standin("rimes-like", out, seed=7, workers=1, **SMALL)


def test_same_seed_is_byte_identical_for_any_worker_count(rimes_like, tmp_path):
    again = build_standin("rimes-like", tmp_path / "again", seed=7, workers=2, **SMALL)
    a, b = tree_hash(rimes_like), tree_hash(again)
    assert len(a) == 70 + 12 + 12 + 3 * 2 + 2  # images, labels+meta per split, collection meta + grid
    assert a == b
    other = build_standin("rimes-like", tmp_path / "other", seed=8, workers=1, **SMALL)
    assert tree_hash(other) != a


def test_collection_layout_and_meta(rimes_like):
    meta = json.loads((rimes_like / "meta.json").read_text())
    assert meta["kind"] == "collection" and meta["splits"] == ["train", "val", "test"]
    assert meta["stats"]["train"]["images"] == 70
    assert set(meta["rejected"]["train"]) == {"rejected_too_wide", "rejected_no_font"}
    assert (rimes_like / "samples.png").is_file()
    ds = load_dataset(rimes_like / "val", check_images=True)
    assert ds.meta.direction == "ltr" and ds.meta.height == 32 and ds.meta.width == 128
    assert len(ds.meta.writers) == len(ds) == 12
    assert ds.load_image(0).shape == (32, 128)
    assert "time" not in json.dumps(meta).lower()  # no timestamps: byte-identical rebuilds


def test_splits_share_no_writer(rimes_like):
    seen = {}
    for split in ("train", "val", "test"):
        seen[split] = set(load_dataset(rimes_like / split).meta.writers.values())
        assert seen[split]
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"]) and not (seen["val"] & seen["test"])
    declared = json.loads((rimes_like / "meta.json").read_text())["writers"]
    assert all(seen[s] <= set(declared[s]) for s in seen)


def test_writer_assignment_is_disjoint_and_proportional():
    from datasets.fonts import FontInfo
    pool = [FontInfo(f"f{i}.ttf", Path("/x"), "", frozenset("a")) for i in range(4)]
    writers = make_writers(pool, 10, "ltr", seed=0)
    splits = split_writers(writers, {"train": 800, "val": 100, "test": 100}, seed=0)
    ids = [w.writer_id for s in splits.values() for w in s]
    assert len(ids) == len(set(ids)) == 40
    assert len(splits["train"]) > len(splits["val"]) >= 4 and len(splits["test"]) >= 4


def test_arabic_build_and_failure_leaves_nothing(tmp_path):
    out = build_standin("arabic-like", tmp_path / "ar", 16, 4, 4, height=32, width=128, seed=1, workers=1,
                        show_progress=False, writers_per_font=3)
    ds = load_dataset(out / "train")
    assert ds.meta.direction == "rtl" and ds.meta.language == "ar"
    with pytest.raises(UserError, match="already exists"):
        build_standin("arabic-like", out, 4, 1, 1, height=32, width=128, show_progress=False)
    with pytest.raises(UserError, match="not found"):
        build_standin("rimes-like", tmp_path / "bad", 4, 1, 1, fonts="Missing.ttf", show_progress=False)
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))
    with pytest.raises(UserError, match="--dataset.*klingon-like"):
        build_standin("klingon-like", tmp_path / "k", 4, 1, 1, show_progress=False)


def test_cli_build_and_stats(tmp_path, capsys):
    from benchmark.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["data", "build", "--dataset", "rimes-like", "--out", str(tmp_path / "c"),
                              "--train", "8", "--val", "3", "--test", "3", "--height", "16", "--width", "64",
                              "--workers", "1", "--writers-per-font", "3"])
    assert args.func(args) == 0
    args = parser.parse_args(["data", "stats", str(tmp_path / "c")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "train" in out and "characters" in out
    help_text = parser.format_help()
    assert "data" in help_text
