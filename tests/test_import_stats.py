"""`htraug data stats DIR`: counts, writers, alphabet, the width histogram and the canvas drops,
checked against the packed cache's own count of dropped images (datasets.packed) and the layout."""
from __future__ import annotations

import json

from benchmark.cli import main
from datasets.packed import load_packed
from datasets.stats import HISTOGRAM_BINS, dataset_report
from import_layouts import build_iam, build_khatt, build_rimes, quiet


def test_report_of_an_imported_collection(tmp_path):
    from datasets.importers import import_dataset

    lay = build_iam(tmp_path / "IAM")
    out = import_dataset("iam", tmp_path / "IAM", tmp_path / "out", **quiet())
    rep = dataset_report(out, 16, 40)
    assert rep["canvas"] == [16, 40]
    for split in ("train", "val", "test"):
        r = rep["splits"][split]
        assert r["images"] == lay.count(split)
        assert r["writers"] == len({x["writer"] for x in lay.records() if x["split"] == split})
        assert r["dropped"] == load_packed(out / split, 16, 40, show_progress=False).dropped
        assert sum(r["width_histogram"]) == r["images"] and r["width_histogram"][HISTOGRAM_BINS] == r["dropped"]
        if split != "train":
            assert r["writers_shared_with_train"] == 0
    assert rep["splits"]["all"]["images"] == lay.count() and 0 < rep["splits"]["all"]["dropped"] < lay.count()
    used = set("".join(x["label"] for x in lay.records()))
    assert set(rep["alphabet"]["used"]) == used and rep["alphabet"]["unused"] == ""
    assert rep["skipped_at_import"] == json.loads((out / "meta.json").read_text())["skipped"]
    assert rep["import_report"].endswith("import_report.tsv")


def test_cli_table_and_json(tmp_path, capsys):
    build_rimes(tmp_path / "RIMES", bad=False)
    assert main(["data", "import", "--format", "rimes", "--root", str(tmp_path / "RIMES"), "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(tmp_path / "o"), "--height", "16", "--width", "40"]) == 0
    text = capsys.readouterr().out
    assert "dropped at 16x40" in text and "width at height 16" in text and "> 40" in text
    assert "alphabet rimes-like-fr: 86 symbols" in text and "left out at import: nothing" in text
    assert main(["data", "stats", str(tmp_path / "o"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["canvas"] == [128, 512] and rep["splits"]["train"]["images"] == 90    # the paper's canvas by default
    assert main(["data", "stats", str(tmp_path / "nothing")]) == 2


def test_line_dataset_drops_most_lines_at_a_word_canvas(tmp_path):
    from datasets.importers import import_dataset

    build_khatt(tmp_path / "KHATT", bad=False)
    out = import_dataset("khatt", tmp_path / "KHATT", tmp_path / "out", **quiet())
    rep = dataset_report(out, 32, 128)
    all_ = rep["splits"]["all"]
    assert all_["dropped"] == sum(load_packed(out / s, 32, 128, show_progress=False).dropped for s in ("train", "val", "test"))
    assert all_["dropped"] > all_["images"] / 2
