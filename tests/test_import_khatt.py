"""KHATT imported as distributed (the layout of `import_layouts.build_khatt`: line images under
LineImages_v1.0/{Fixed,Unique}TextLineImages/{Train,Validate,Test}/ and the parallel ground truth
under GroundTruth_v1.0/{Fixed,Unique}TextUnicodeTruthValues-v1.0/..., Windows-1256 with a UTF-8
file among them, a diacritised line, a presentation-form ligature, an empty ground truth and an
image without one). KHATT is line level: lines are imported whole."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from datasets.errors import UserError
from datasets.importers import import_dataset
from datasets.preprocess import fit_to_canvas
from import_layouts import as_multiset, build_khatt, quiet, read_collection, report_matches


def _stored(records):
    return [{**r, "label": r["label"].replace(" ", "▁")} for r in records]


def test_parallel_ground_truth_tree_and_validate_folder(tmp_path):
    lay = build_khatt(tmp_path / "KHATT")
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "out", **quiet())
    meta, rows = read_collection(out)
    plain = [r for r in lay.kept if "diacritics" not in r]
    diacritised = [r for r in lay.kept if "diacritics" in r]
    assert meta["splits"] == ["train", "val", "test"] and meta["direction"] == "rtl"
    assert {s: meta["stats"][s]["images"] for s in meta["splits"]} == {
        s: sum(r["split"] == s for r in plain) for s in ("train", "val", "test")}
    assert as_multiset(rows) == as_multiset(_stored(plain))
    # the built-in Arabic alphabet (plus the space symbol for lines) has no tashkeel
    got, want = report_matches(out, lay.bad + [(r["gt"], 1, "out_of_alphabet") for r in diacritised])
    assert got == want
    assert meta["text_normalization"] == "NFKC" and meta["alphabet"]["name"] == "arabic+space"
    assert any(r["label"].startswith("لاعب") for r in rows)          # ﻻ (U+FEFB) read as لا by NFKC


def test_strip_diacritics_and_nfc(tmp_path):
    lay = build_khatt(tmp_path / "KHATT")
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "strip", **quiet(strip_diacritics=True))
    meta, rows = read_collection(out)
    assert as_multiset(rows) == as_multiset(_stored(lay.kept))
    assert meta["text_normalization"] == "NFKC, Arabic diacritics and tatweel removed"
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "nfc", **quiet(normalization="nfc"))
    meta, rows = read_collection(out)
    assert meta["skipped"]["out_of_alphabet"] == 2      # the diacritised line and the ligature


def test_a_word_canvas_reports_the_lines_it_drops(tmp_path):
    lay = build_khatt(tmp_path / "KHATT", bad=False)
    wide = sum(fit_to_canvas(np.asarray(Image.open(tmp_path / "KHATT" / r["gt"].replace("GroundTruth_v1.0", "LineImages_v1.0")
                                                   .replace("UnicodeTruthValues-v1.0", "LineImages").replace(".txt", ".tif"))),
                             16, 64) is None for r in lay.kept)
    assert 0 < wide < len(lay.kept)
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "out", **quiet(height=16, strip_diacritics=True))
    meta, rows = read_collection(out)
    assert meta["skipped"] == {"too_wide": wide} and len(rows) == len(lay.kept) - wide
    with pytest.raises(UserError, match="KHATT has no word boxes"):
        import_dataset("khatt", tmp_path / "KHATT", tmp_path / "w", **quiet(level="word"))


def test_split_map_and_lists(tmp_path):
    lay = build_khatt(tmp_path / "KHATT", bad=False)
    for d in sorted((tmp_path / "KHATT").rglob("Validate"), reverse=True):
        d.rename(d.with_name("Held"))
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "map", **quiet(split_map={"held": "val"},
                                                                                  strip_diacritics=True))
    assert as_multiset(read_collection(out)[1]) == as_multiset(_stored(lay.kept))
    stems = sorted(p.stem for p in (tmp_path / "KHATT").rglob("*.tif"))
    (tmp_path / "test.lst").write_text("".join(f"test/{s}\n" for s in stems[:3]))
    (tmp_path / "train.lst").write_text("".join(f"{s}.tif\n" for s in stems[3:-2]))
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "lists", **quiet(
        lists={"train": str(tmp_path / "train.lst"), "test": str(tmp_path / "test.lst")}, strip_diacritics=True))
    meta, rows = read_collection(out)
    assert meta["splits"] == ["train", "test"] and sum(r["split"] == "test" for r in rows) == 3
    assert len(rows) == len(stems) - 2 and meta["skipped"] == {"not_in_lists": 2}


def test_error_mode_names_the_empty_ground_truth(tmp_path):
    build_khatt(tmp_path / "KHATT")
    with pytest.raises(UserError, match=r"AHTD3A0004_Para3_4\.txt:1: empty transcription") as e:
        import_dataset("khatt", tmp_path / "KHATT", tmp_path / "out", **quiet(on_bad="error", strip_diacritics=True))
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
