"""IAM imported as distributed (the layout of `import_layouts.build_iam`: ascii/words.txt with its
comment header and `err` segmentations, ascii/lines.txt, ascii/forms.txt, words/ and lines/
image trees, the empty word images of the release, and the writer-independent split files
trainset.txt, validationset1.txt, validationset2.txt, testset.txt)."""
from __future__ import annotations

import pytest

from datasets.errors import UserError
from datasets.importers import import_dataset
from import_layouts import IAM_SPLIT_FOLDER, as_multiset, build_iam, quiet, read_collection, report_matches


def test_words_with_official_splits_and_writers(tmp_path):
    lay = build_iam(tmp_path / "IAM")
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet())
    meta, rows = read_collection(out)
    assert meta["splits"] == ["train", "val", "test"]
    assert {s: meta["stats"][s]["images"] for s in meta["splits"]} == {s: lay.count(s) for s in ("train", "val", "test")}
    assert as_multiset(rows) == as_multiset(lay.records("word"))
    got, want = report_matches(out, lay.bad)
    assert got == want
    assert {r for _, _, r in got} == {"err_segmentation", "not_in_lists", "unreadable_image"}
    # writers come from forms.txt, and the official splits are writer independent
    by_split = {s: {r["writer"] for r in rows if r["split"] == s} for s in meta["splits"]}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    assert meta["language"] == "en" and meta["alphabet"]["name"] == "iam-import-data"


def test_list_files_override_the_official_splits(tmp_path):
    build_iam(tmp_path / "IAM", bad=False, lines_per_form=2, words_per_line=4)
    forms = sorted({r.split(" ")[0].rsplit("-", 2)[0] for r in (tmp_path / "IAM/ascii/words.txt").read_text().splitlines()
                    if not r.startswith("#")})
    (tmp_path / "tr.txt").write_text("\n".join(forms[:-2]) + "\n")          # form ids
    (tmp_path / "te.txt").write_text(f"{forms[-2]}-00\n{forms[-1]}-01-02\n")  # a line id and a word id
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet(
        lists={"train": str(tmp_path / "tr.txt"), "test": str(tmp_path / "te.txt")}))
    meta, rows = read_collection(out)
    n_test = sum(1 for r in rows if r["split"] == "test")
    assert meta["splits"] == ["train", "test"] and n_test == 4 + 1
    assert len(rows) == 8 * (len(forms) - 2) + n_test       # 2 lines of 4 words per form


def test_seeded_writer_split_without_split_files(tmp_path):
    lay = build_iam(tmp_path / "IAM", split_files=False)
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet(val_fraction=0.2, test_fraction=0.2))
    meta, rows = read_collection(out)
    assert len(rows) == len(lay.records("word")) and meta["splits"] == ["train", "val", "test"]
    writers = {s: {r["writer"] for r in rows if r["split"] == s} for s in meta["splits"]}
    assert not (writers["train"] & writers["val"]) and not (writers["train"] & writers["test"])


def test_line_level_reads_lines_txt(tmp_path):
    lay = build_iam(tmp_path / "IAM")
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet(level="line"))
    meta, rows = read_collection(out)
    want = [{**r, "label": r["label"].replace(" ", "▁")} for r in lay.records("line")]
    assert as_multiset(rows) == as_multiset(want)     # `err` lines are kept at line level
    assert meta["importer"]["level"] == "line" and "▁" in meta["alphabet"]["symbols"]


def test_error_mode_and_malformed_lines(tmp_path):
    build_iam(tmp_path / "IAM")
    with pytest.raises(UserError, match=r"words\.txt:\d+: cannot read image .*\.png") as e:
        import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet(on_bad="error"))
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()
    words = tmp_path / "IAM/ascii/words.txt"
    lines = words.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    f = lines[n].split()
    lines[n] = " ".join(f[:3] + f[4:])          # one field short (no component count)
    words.write_text("\n".join(lines) + "\n")
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "skip", **quiet())
    assert read_collection(out)[0]["skipped"]["malformed_line"] == 1
    with pytest.raises(UserError, match=rf"words\.txt:{n + 1}: expected 'a01-000u-00-00 ok 154 1 408 768 27 51 AT A'"):
        import_dataset("iam", tmp_path / "IAM", tmp_path / "err", **quiet(on_bad="error"))


def test_split_files_found_under_root(tmp_path):
    """The split files may also sit at the top of ROOT."""
    lay = build_iam(tmp_path / "IAM", bad=False)
    for p in (tmp_path / "IAM" / IAM_SPLIT_FOLDER).iterdir():
        p.rename(tmp_path / "IAM" / p.name)
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet())
    assert as_multiset(read_collection(out)[1]) == as_multiset(lay.records("word"))
