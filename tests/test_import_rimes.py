"""RIMES 2011 word level imported as distributed (the layout of `import_layouts.build_rimes`: the
three ground-truth files at the top of the download, UTF-8 with a BOM, paths relative to
trainingsnippets_icdar/training_WR/, validationsnippets_icdar/testdataset_ICDAR/ and data_test/,
the task's dictionary beside them, and the missing first training image)."""
from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from datasets.errors import UserError
from datasets.importers import import_dataset
from datasets.preprocess import fit_to_canvas
from import_layouts import RIMES_FILES, as_multiset, build_rimes, quiet, read_collection, report_matches


def test_splits_labels_and_bad_records_as_distributed(tmp_path):
    lay = build_rimes(tmp_path / "RIMES")
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "out", **quiet())
    meta, rows = read_collection(out)
    assert meta["splits"] == ["train", "val", "test"]
    assert {s: meta["stats"][s]["images"] for s in meta["splits"]} == {"train": 90, "val": 30, "test": 30}
    assert as_multiset(rows) == as_multiset(lay.kept)
    got, want = report_matches(out, lay.bad)
    assert got == want and ("groundtruth_training_icdar2011.txt", 1, "missing_image") in got
    assert meta["skipped"] == {"malformed_line": 1, "missing_image": 1, "unreadable_image": 1, "out_of_alphabet": 1}
    assert meta["importer"]["on_bad"] == "skip" and meta["text_normalization"] == "NFC"
    assert meta["language"] == "fr" and meta["alphabet"]["name"] == "rimes-like-fr"
    # the stored image is the snippet itself, converted to grey and not resized
    first = next(r for r in lay.kept if r["split"] == "test")
    stored = next(r for r in rows if r["split"] == "test")
    src = np.asarray(Image.open(tmp_path / "RIMES" / first["rel"]))
    assert np.array_equal(np.asarray(Image.open(stored["path"])), src) and stored["label"] == first["label"]


def test_error_mode_names_every_bad_line_and_writes_nothing(tmp_path):
    """Error mode stops at a bad record with one line naming file:line; blanking that line and
    importing again reaches the next, until every bad record of the layout has been named."""
    lay = build_rimes(tmp_path / "RIMES")
    named = []
    for _ in range(len(lay.bad) + 1):
        try:
            import_dataset("rimes", tmp_path / "RIMES", tmp_path / "out", **quiet(on_bad="error"))
            break
        except UserError as exc:
            msg = str(exc)
            assert "\n" not in msg and sorted(p.name for p in tmp_path.iterdir()) == ["RIMES"]
            path, line = msg.split(": ", 1)[0].rsplit(":", 1)
            named.append((path.rsplit("/", 1)[-1], int(line)))
            gt = tmp_path / "RIMES" / path.rsplit("/", 1)[-1]
            lines = gt.read_text(encoding="utf-8-sig").split("\n")
            lines[int(line) - 1] = ""
            gt.write_text("\ufeff" + "\n".join(lines), encoding="utf-8")
    assert sorted(named) == sorted((f, n) for f, n, _ in lay.bad)
    assert ("groundtruth_training_icdar2011.txt", 1) in named
    assert (tmp_path / "out" / "meta.json").is_file()


def test_images_dir_and_gt_overrides(tmp_path):
    lay = build_rimes(tmp_path / "RIMES", bad=False)
    shutil.move(tmp_path / "RIMES" / "data_test", tmp_path / "elsewhere")
    # without the override, every test image is missing
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "a", **quiet())
    meta, _ = read_collection(out)
    assert "test" not in meta["splits"] and meta["skipped"] == {"missing_image": 30}
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "b", images_dir={"test": str(tmp_path / "elsewhere")},
                         **quiet())
    meta, rows = read_collection(out)
    assert as_multiset(rows) == as_multiset(lay.kept) and meta["skipped"] == {}
    # --gt for one split: only that file is read (and its split is its key)
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "c", gt={"test": RIMES_FILES["val"][0]}, **quiet())
    meta, rows = read_collection(out)
    assert meta["splits"] == ["test"] and as_multiset(rows) == as_multiset(
        [{**r, "split": "test"} for r in lay.kept if r["split"] == "val"])


def test_unpacked_without_the_snippets_folder(tmp_path):
    """Some copies unpack the image folders straight into the download folder."""
    lay = build_rimes(tmp_path / "RIMES", bad=False)
    shutil.move(tmp_path / "RIMES" / "trainingsnippets_icdar" / "training_WR", tmp_path / "RIMES" / "training_WR")
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "out", **quiet())
    assert as_multiset(read_collection(out)[1]) == as_multiset(lay.kept)


def test_too_wide_images_against_the_preprocessing(tmp_path):
    """With a canvas, skip mode leaves out exactly the images `fit_to_canvas` would drop; error mode
    keeps and counts them."""
    lay = build_rimes(tmp_path / "RIMES", bad=False)
    h, w = 16, 40
    expected_wide = {s: 0 for s in ("train", "val", "test")}
    for r in lay.kept:
        img = np.asarray(Image.open(tmp_path / "RIMES" / r["rel"]))
        expected_wide[r["split"]] += fit_to_canvas(img, h, w) is None
    assert 0 < sum(expected_wide.values()) < len(lay.kept)
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "skip", height=h, width=w, **quiet())
    meta, rows = read_collection(out)
    assert len(rows) == len(lay.kept) - sum(expected_wide.values())
    assert all(fit_to_canvas(np.asarray(Image.open(r["path"])), h, w) is not None for r in rows)
    assert meta["skipped"] == {"too_wide": sum(expected_wide.values())}
    assert {s: meta["stats"][s]["too_wide"] for s in meta["splits"]} == expected_wide
    out = import_dataset("rimes", tmp_path / "RIMES", tmp_path / "keep", height=h, width=w, **quiet(on_bad="error"))
    meta, rows = read_collection(out)
    assert len(rows) == len(lay.kept) and meta["skipped"] == {}
    assert {s: meta["stats"][s]["too_wide"] for s in meta["splits"]} == expected_wide


def test_cli_summary_is_one_line_per_reason(tmp_path, capsys):
    from benchmark.cli import main

    build_rimes(tmp_path / "RIMES")
    assert main(["data", "import", "--format", "rimes", "--root", str(tmp_path / "RIMES"), "--out", str(tmp_path / "o")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("skipped", "excluded"))]
    assert sorted(line.split()[2].rstrip(":") for line in err) == sorted(
        ["malformed_line", "missing_image", "unreadable_image", "out_of_alphabet"])
    assert any("groundtruth_training_icdar2011.txt:1" in line for line in err)
    assert main(["data", "import", "--format", "rimes", "--root", str(tmp_path / "RIMES"), "--out", str(tmp_path / "p"),
                 "--on-bad", "error"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "groundtruth_training_icdar2011.txt:50: expected 'image_path label'" in err[0]
    assert "Traceback" not in err[0]
    assert not (tmp_path / "p").exists()
