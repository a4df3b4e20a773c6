"""OpenHaRT / MADCAT imported as distributed (the layout of `import_layouts.build_madcat`:
LDC2012T15/data/madcat/<page>.madcat.xml beside LDC2012T15/data/images/<page>.tif, tokens that
name their token-image with a `ref_id` attribute, `<writer id>`, presentation forms, and the
madcat.{train,dev,test}.raw.lineid page lists)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from datasets.errors import UserError
from datasets.importers import import_dataset
from import_layouts import MADCAT_RELEASE, as_multiset, build_madcat, quiet, read_collection, report_matches


def test_pages_tokens_and_lists_as_distributed(tmp_path):
    lay = build_madcat(tmp_path / "MADCAT")
    out = import_dataset("madcat", tmp_path / "MADCAT", tmp_path / "out", **quiet())
    meta, rows = read_collection(out)
    assert meta["splits"] == ["train", "val", "test"]
    assert as_multiset(rows) == as_multiset(lay.kept)
    got, want = report_matches(out, lay.bad)
    assert got == want
    assert {r for *_, r in got} == {"no_word_box", "unknown_word_box", "box_outside_page", "missing_image",
                                    "malformed_xml", "not_in_lists"}
    assert meta["text_normalization"] == "NFKC" and any(r["label"] == "لاعب" for r in rows)
    # every word image is the page cropped to its token-image's box
    images = tmp_path / "MADCAT" / MADCAT_RELEASE / "data" / "images"
    for want_row in lay.kept[:12]:
        page = np.asarray(Image.open(images / f"{want_row['page']}.tif"))
        x0, y0, x1, y1 = want_row["box"]
        match = [r for r in rows if r["label"] == want_row["label"] and r["size"] == want_row["size"]
                 and np.array_equal(np.asarray(Image.open(r["path"])), page[y0:y1, x0:x1])]
        assert match


def test_without_lists_a_seeded_split_by_writer(tmp_path):
    lay = build_madcat(tmp_path / "MADCAT", bad=False, split_lists=False)
    out = import_dataset("madcat", tmp_path / "MADCAT", tmp_path / "out", **quiet(val_fraction=0.25, test_fraction=0.25))
    meta, rows = read_collection(out)
    assert len(rows) == len(lay.kept) and meta["splits"] == ["train", "val", "test"]
    writers = {s: {r["writer"] for r in rows if r["split"] == s} for s in meta["splits"]}
    assert not (writers["train"] & writers["test"]) and not (writers["train"] & writers["val"])
    assert set().union(*writers.values()) == {"LDC0009", "LDC0016", "LDC0023"}    # the <writer id> of each page


def test_list_and_images_dir_overrides(tmp_path):
    lay = build_madcat(tmp_path / "MADCAT", bad=False)
    shutil.move(tmp_path / "MADCAT" / MADCAT_RELEASE / "data" / "images", tmp_path / "pages")
    pages = sorted({r["page"] for r in lay.kept})
    (tmp_path / "test.txt").write_text(f"{pages[0]}\n")            # a bare page name
    out = import_dataset("madcat", tmp_path / "MADCAT", tmp_path / "out", **quiet(
        lists={"test": str(tmp_path / "test.txt")}, images_dir={"all": str(tmp_path / "pages")}))
    meta, rows = read_collection(out)
    assert meta["splits"] == ["test"] and len(rows) == sum(r["page"] == pages[0] for r in lay.kept)
    assert meta["skipped"] == {"not_in_lists": len(list((tmp_path / "MADCAT").rglob("*.madcat.xml"))) - 1}


def test_error_mode_is_one_line_and_writes_nothing(tmp_path):
    build_madcat(tmp_path / "MADCAT")
    with pytest.raises(UserError, match=r"\.madcat\.xml:\d+: ") as e:
        import_dataset("madcat", tmp_path / "MADCAT", tmp_path / "out", **quiet(on_bad="error"))
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MADCAT"]
    with pytest.raises(UserError, match="--level line: format madcat is word level"):
        import_dataset("madcat", tmp_path / "MADCAT", tmp_path / "out", **quiet(level="line"))
