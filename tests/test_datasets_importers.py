"""Importers: round trips of small fixtures in every format, and one-line errors with no output.

The fixtures here are minimal layouts (images beside their ground truth); the layouts the datasets
are distributed in are tested in tests/test_import_*.py. Tests of strict behaviour pass
on_bad="error" (the real-dataset formats skip bad records by default).
"""
import json

import numpy as np
import pytest
from PIL import Image

from datasets.errors import UserError
from datasets.format import load_dataset
from datasets.importers import import_dataset
from benchmark.cli import build_parser


def _img(path, h=20, w=50, seed=0, mode="L"):
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)
    return arr


def _all(out):
    meta = json.loads((out / "meta.json").read_text())
    rows = {}
    for split in meta["splits"]:
        ds = load_dataset(out / split, check_images=True)
        for i, (rel, text) in enumerate(ds.entries):
            rows.setdefault(text, []).append((split, ds.load_image(i), ds.meta.writers.get(rel)))
    return meta, rows


def test_rimes_round_trip_with_bom_and_spaces(tmp_path):
    root = tmp_path / "rimes"
    a = _img(root / "train" / "a.png", seed=1)
    b = _img(root / "train" / "b.png", seed=2, mode="RGB")
    c = _img(root / "test" / "c.png", seed=3)
    (root / "gt_training.txt").write_text("\ufefftrain/a.png Bonjour\ntrain\\b.png 12,50€\n\n", encoding="utf-8")
    (root / "gt_test.txt").write_text("test/c.png l'école\n", encoding="utf-8")
    out = import_dataset("rimes", root, tmp_path / "out", show_progress=False, height=16, width=32, on_bad="error")
    meta, rows = _all(out)
    assert meta["splits"] == ["train", "test"] and meta["language"] == "fr"
    assert np.array_equal(rows["Bonjour"][0][1], a) and rows["Bonjour"][0][0] == "train"
    assert rows["12,50€"][0][1].shape == b.shape  # colour converted to grey, not resized
    assert np.array_equal(rows["l'école"][0][1], c) and rows["l'école"][0][0] == "test"
    assert meta["stats"]["train"]["too_wide"] == 2  # 50/20 > 32/16: kept and counted in error mode
    # a label with a space (split on the first space only) keeps a visible separator
    (root / "gt_training.txt").write_text("train/a.png au revoir\n", encoding="utf-8")
    out2 = import_dataset("rimes", root, tmp_path / "out2", show_progress=False, alphabet_from_data=True)
    assert "au▁revoir" in _all(out2)[1]


def test_iam_skips_err_lines_and_broken_images(tmp_path):
    root = tmp_path / "iam"
    img = _img(root / "words" / "a01" / "a01-000u" / "a01-000u-00-00.png", seed=4)
    _img(root / "words" / "a01" / "a01-000u" / "a01-000u-00-01.png", seed=5)
    (root / "words" / "a01" / "a01-000u" / "a01-000u-00-02.png").write_bytes(b"")  # broken
    _img(root / "words" / "b02" / "b02-001" / "b02-001-00-00.png", seed=6)
    (root / "words.txt").write_text(     # id, ok|err, grey level, components, x y w h, tag, word
        "#--- words.txt ---\n"
        "a01-000u-00-00 ok 154 1 408 768 27 51 AT A\n"
        "a01-000u-00-01 err 154 1 507 766 213 48 NN MOVE\n"
        "a01-000u-00-02 ok 154 1 796 764 70 50 TO to\n"
        "b02-001-00-00 ok 170 1 1 2 3 4 NN stop\n", encoding="utf-8")
    (root / "forms.txt").write_text("# forms\na01-000u 000 2 prt 7 5 52 36\nb02-001 042 2 prt 7 5 52 36\n")
    (root / "tr.txt").write_text("a01-000u\n")
    (root / "te.txt").write_text("b02-001-00\n")
    out = import_dataset("iam", root, tmp_path / "out", lists={"train": "tr.txt", "test": "te.txt"}, show_progress=False)
    meta, rows = _all(out)
    assert set(rows) == {"A", "stop"}
    assert np.array_equal(rows["A"][0][1], img) and rows["A"][0][2] == "000" and rows["stop"][0][0] == "test"
    assert meta["skipped"] == {"unreadable_image": 1, "err_segmentation": 1}
    assert meta["language"] == "en" and meta["alphabet"]["symbols"] == "Aopst"


def test_tsv_split_by_writer(tmp_path):
    root = tmp_path / "tsv"
    lines = []
    for i in range(30):
        _img(root / "img" / f"{i}.png", seed=i)
        lines.append(f"img/{i}.png\tmot{i}\twriter{i % 10}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = import_dataset("tsv", root, tmp_path / "out", language="fr", show_progress=False)
    meta, rows = _all(out)
    assert meta["splits"] == ["train", "val", "test"] and len(rows) == 30
    writers = {s: {w for r in rows.values() for (sp, _, w) in r if sp == s} for s in meta["splits"]}
    assert not (writers["train"] & writers["test"]) and not (writers["train"] & writers["val"])
    again = import_dataset("tsv", root, tmp_path / "again", language="fr", show_progress=False)
    assert (again / "test" / "labels.tsv").read_bytes() == (out / "test" / "labels.tsv").read_bytes()


def test_khatt_folders_and_encodings(tmp_path):
    root = tmp_path / "khatt"
    a = _img(root / "Training" / "AHTD3A0001_Para1_1.tif", seed=1)
    (root / "Training" / "AHTD3A0001_Para1_1.txt").write_text("كتاب\n", encoding="utf-8")
    _img(root / "Testing" / "AHTD3A0002_Para1_1.png", seed=2)
    (root / "Testing" / "AHTD3A0002_Para1_1.txt").write_bytes("قلم".encode("cp1256"))
    _img(root / "Testing" / "orphan.png", seed=3)
    out = import_dataset("khatt", root, tmp_path / "out", show_progress=False)
    meta, rows = _all(out)
    assert meta["direction"] == "rtl" and meta["splits"] == ["train", "test"]
    assert np.array_equal(rows["كتاب"][0][1], a) and rows["قلم"][0][0] == "test"
    assert meta["skipped"] == {"no_transcription": 1}


MADCAT = """<?xml version="1.0" encoding="UTF-8"?>
<madcat>
  <document id="DOC1"><writer id="W7"/></document>
  <segmentation>
    <token-image id="ti1"><point x="10" y="5"/><point x="39" y="5"/><point x="39" y="24"/><point x="10" y="24"/></token-image>
    <token-image id="ti2"><point x="50" y="8"/><point x="89" y="30"/></token-image>
  </segmentation>
  <text>
    <token id="t1"><source>كلمة</source><token-image-ref ref_id="ti1"/></token>
    <token id="t2"><source>ثانية</source><token-image-ref ref_id="ti2"/></token>
  </text>
</madcat>
"""


def test_madcat_crops_word_boxes(tmp_path):
    root = tmp_path / "madcat"
    page = _img(root / "page1.png", h=40, w=100, seed=9)
    (root / "page1.xml").write_text(MADCAT, encoding="utf-8")
    out = import_dataset("madcat", root, tmp_path / "out", val_fraction=0, test_fraction=0, show_progress=False)
    meta, rows = _all(out)
    assert np.array_equal(rows["كلمة"][0][1], page[5:25, 10:40])
    assert np.array_equal(rows["ثانية"][0][1], page[8:31, 50:90])
    assert rows["كلمة"][0][2] == "W7"
    (root / "page1.xml").write_text(MADCAT.replace('ref_id="ti2"', 'ref_id="nope"'), encoding="utf-8")
    with pytest.raises(UserError, match=r"page1.xml:10: token t2: unknown token-image"):
        import_dataset("madcat", root, tmp_path / "bad", show_progress=False, on_bad="error")
    (root / "page1.xml").write_text(MADCAT.replace("</text>", ""), encoding="utf-8")
    with pytest.raises(UserError, match=r"page1.xml:\d+: malformed XML"):
        import_dataset("madcat", root, tmp_path / "bad", show_progress=False, on_bad="error")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("content,match", [
    ("a.png Bonjour\nlonely\n", r"gt\.txt:2: expected 'image_path label'"),
    ("a.png Bonjour\nmissing.png mot\n", r"gt\.txt:2: image .*missing.png does not exist"),
    ("a.png Bonjour\ncorrupt.png mot\n", r"gt\.txt:2: cannot read image"),
    ("a.png Bonjour\nb.png ÿ\n", r"gt\.txt:2: .*outside the built-in alphabet.*--alphabet-from-data"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, content, match):
    root = tmp_path / "r"
    _img(root / "a.png")
    _img(root / "b.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "gt.txt").write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=match) as e:
        import_dataset("rimes", root, tmp_path / "out", lists={"train": "gt.txt"}, show_progress=False, on_bad="error")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["r"]


def test_empty_transcription_and_unknown_format(tmp_path):
    root = tmp_path / "t"
    _img(root / "a.png")
    (root / "labels.tsv").write_text("a.png\tmot\na.png\t   \n", encoding="utf-8")
    with pytest.raises(UserError, match=r"labels\.tsv:2: empty transcription"):
        import_dataset("tsv", root, tmp_path / "out", language="fr", show_progress=False)
    with pytest.raises(UserError, match="unknown dataset format"):
        import_dataset("hwdb", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_import_and_stats(tmp_path, capsys):
    from datasets import cli

    root = tmp_path / "t"
    for i in range(4):
        _img(root / f"{i}.png", h=10, w=60, seed=i)
    (root / "train.tsv").write_text("".join(f"{i}.png\tmot{i}\n" for i in range(3)), encoding="utf-8")
    (root / "test.tsv").write_text("3.png\tfin\n", encoding="utf-8")
    parser = build_parser()
    args = parser.parse_args(["data", "import", "--format", "tsv", "--root", str(root), "--out", str(tmp_path / "o"),
                              "--language", "fr", "--height", "16", "--width", "64"])
    assert args.func(args) == 0
    stats = cli.collection_stats(tmp_path / "o")
    assert stats["train"]["images"] == 3 and stats["test"]["images"] == 1 and stats["train"]["too_wide"] == 3
    args = parser.parse_args(["data", "import", "--format", "tsv", "--root", str(root), "--out", str(tmp_path / "p"),
                              "--list", "train"])
    with pytest.raises(UserError, match="expected SPLIT=FILE"):
        args.func(args)
    assert not (tmp_path / "p").exists()
