"""`htraug htr recognize`: raw image files of any format read exactly as `htr eval` reads a dataset,
corrupt files reported and skipped, lists, lexicons, JSON, exit codes and one-line errors."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
import shutil

import numpy as np
import pytest
import torch

from benchmark.cli import main
from datasets.errors import UserError
from datasets.format import read_grey_png
from datasets.preprocess import fit_to_canvas, to_unit_range
from htr.checkpoint import load_recognizer
from htr.evaluate import evaluate
from htr.recognize import collect_images, open_recognizer, recognize_files

from recognizer_files import FORMATS, train_bar_recognizer, write_mixed_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("recognize")
    torch.set_num_threads(1)
    return {"base": base, "model": train_bar_recognizer(base), "data": write_mixed_dataset(base / "mixed")}


def eval_hypotheses(model, data: Path, tmp: Path) -> dict[str, str]:
    """`htr eval --out-tsv`'s hypotheses, by image file name."""
    tsv = tmp / "eval.tsv"
    assert main(["htr", "eval", "--model", str(model), "--data", str(data), "--out-tsv", str(tsv), "--json"]) == 0
    rows = list(csv.DictReader(tsv.open(encoding="utf-8"), delimiter="\t"))
    return {Path(r["path"]).name: r["hypothesis"] for r in rows}


def read_tsv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def test_a_folder_of_mixed_formats_reads_as_htr_eval_reads_its_dataset(setup, tmp_path, capsys):
    images = tmp_path / "images"
    shutil.copytree(setup["data"] / "images", images)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))     # corrupt
    good_jpeg = next(images.glob("*.jpg")).read_bytes()
    (images / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 3])            # cut short
    (images / "notes.txt").write_text("not an image")                                 # ignored: no image suffix
    expected = eval_hypotheses(setup["model"], setup["data"], tmp_path)
    capsys.readouterr()

    code = main(["htr", "recognize", "--model", str(setup["model"]), str(images), "--batch-size", "5"])
    out, err = capsys.readouterr()
    assert code == 1                                            # some images were skipped
    rows = read_tsv(out)
    got = {Path(r["path"]).name: r["text"] for r in rows}
    assert got == expected                                      # the same images, the same text
    assert len(got) == len(FORMATS) - 1                         # every format but the too-wide image
    assert len(set(got.values())) > 4                           # varied transcriptions
    assert all(0.0 < float(r["confidence"]) <= 1.0 for r in rows)
    lines = err.strip().splitlines()
    assert any("broken.png: cannot read image" in ln for ln in lines)
    assert any("truncated.jpg: cannot read image" in ln for ln in lines)
    assert any("011.png" in ln and "wider than the 64×16 canvas" in ln for ln in lines)
    assert lines[-1] == f"recognized {len(got)} of {len(got) + 3} images (2 unreadable, 1 too wide for the canvas)"
    assert "Traceback" not in err and "notes.txt" not in out + err


def test_confidence_is_the_mean_per_frame_max_posterior(setup):
    rec = open_recognizer(setup["model"])
    path = str(setup["data"] / "images" / "003.jpg")
    (result,), skipped = recognize_files(rec, [path])
    assert not skipped
    model, _, _ = load_recognizer(setup["model"])
    canvas = fit_to_canvas(read_grey_png(Path(path)), 16, 64, "ltr")
    with torch.no_grad():
        probs = model(torch.from_numpy(to_unit_range(canvas))[None, None]).exp()[:, 0]     # (T, C)
    assert result.confidence == pytest.approx(float(probs.max(dim=1).values.mean()), abs=1e-6)


def test_list_file_lexicon_json_and_out(setup, tmp_path, capsys):
    data = setup["data"]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("abd\ncd\nb\n", encoding="utf-8")
    out = tmp_path / "results.json"
    code = main(["htr", "recognize", "--model", str(setup["model"]), "--list", str(data / "labels.tsv"),
                 "--lexicon", str(lexicon), "--out", str(out)])
    assert code == 1                                            # the too-wide image is skipped
    obj = json.loads(out.read_text(encoding="utf-8"))
    assert obj["recognized"] == len(FORMATS) - 1 and obj["images"] == len(FORMATS)
    assert [s["problem"] for s in obj["skipped"]] == ["too wide"]
    assert {r["text"] for r in obj["results"]} <= {"abd", "cd", "b"}
    expected = eval_hypotheses(setup["model"], data, tmp_path)
    assert {Path(r["path"]).name: r["greedy"] for r in obj["results"]} == expected
    assert "recognized 11 of 12 images" in capsys.readouterr().err


def test_list_paths_are_relative_to_the_list_and_rtl_pads_left(tmp_path, capsys):
    torch.set_num_threads(1)
    model = train_bar_recognizer(tmp_path, "rtl")
    data = write_mixed_dataset(tmp_path / "rtl-data", direction="rtl", seed=5)
    listing = tmp_path / "sub" / "list.txt"
    listing.parent.mkdir()
    names = sorted(p.name for p in (data / "images").iterdir())[:-1]           # without the too-wide image
    listing.write_text("# images\n\n" + "".join(f"../rtl-data/images/{n}\n" for n in names), encoding="utf-8")
    expected = eval_hypotheses(model, data, tmp_path)
    capsys.readouterr()
    assert main(["htr", "recognize", "--model", str(model), "--list", str(listing), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["direction"] == "rtl" and obj["skipped"] == []
    got = {Path(r["path"]).name: r["text"] for r in obj["results"]}
    assert got == expected and len(set(got.values())) > 4


def test_collect_images_and_one_line_errors(setup, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no image files in this folder"):
        collect_images([str(empty)])
    with pytest.raises(UserError, match="no images given"):
        collect_images([])
    assert collect_images(["missing.png"]) == ["missing.png"]      # reported when read, not dropped
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    for argv in (["htr", "recognize", "--model", str(setup["model"]), str(bad)],
                 ["htr", "recognize", "--model", str(tmp_path / "no-run"), str(bad)],
                 ["htr", "recognize", "--model", str(setup["model"]), "--list", str(tmp_path / "none.txt")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith("htraug: error: ") and "Traceback" not in err
    assert main(["htr", "recognize", "--model", str(setup["model"]), str(bad), str(tmp_path / "gone.png")]) == 2
    err = capsys.readouterr().err
    assert "gone.png: image does not exist" in err and "none of the 2 images could be recognized" in err
