"""The bad-record policy through `htraug data import`: every malformed record kind of every format
is a counted skip listed with its file and line in import_report.tsv (--on-bad skip) or a
one-line error naming the file and line, exit 2, nothing written (--on-bad error); never a
traceback, never a partial output directory.

Each case starts from a clean published layout (`import_layouts`, bad=False) and adds one bad
record of one kind to it, knowing the file and line it wrote.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmark.cli import main
from import_layouts import (RIMES_FILES, build_iam, build_khatt, build_madcat, build_rimes, corrupt_image,
                            read_report, word_image)


def _append(path: Path, line: str) -> int:
    """Append a line to a text file (keeping its encoding and BOM); returns its line number."""
    data = path.read_bytes()
    bom = data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    text = text if text.endswith("\n") or not text else text + "\n"
    text += line + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return text.count("\n")


# --- one bad record per case: (format, kind) -> builder(root) -> (file relative to root, line, count, extra flags)

def _rimes(kind):
    def make(root):
        build_rimes(root, n=3, bad=False)
        gt, folder = RIMES_FILES["train"]
        img = root / folder / "lot_7/99999_L/99999_L_0_0.png"
        if kind == "unreadable_image":
            corrupt_image(img)
        elif kind == "too_wide":
            word_image(img, 4, 1, width=200)
        elif kind != "missing_image":
            word_image(img, 4, 1)
        line = {"malformed_line": "lot_7/99999_L/99999_L_0_0.png", "out_of_alphabet": "lot_7/99999_L/99999_L_0_0.png n°"}
        n = _append(root / gt, line.get(kind, "lot_7/99999_L/99999_L_0_0.png Monsieur"))
        return gt, n, 1, ["--height", "16"] if kind == "too_wide" else []
    return make


def _iam(kind):
    def make(root):
        build_iam(root, n_forms=5, bad=False, split_files=False)
        img = root / "words/a01/a01-000/a01-000-05-00.png"
        if kind == "unreadable_image":
            img.parent.mkdir(parents=True, exist_ok=True)
            img.write_bytes(b"")
        elif kind == "too_wide":
            word_image(img, 4, 1, width=300)
        line = "a01-000-05-00 ok 154 1 408 768 27 51 NN word"
        if kind == "malformed_line":
            line = "a01-000-05-00 ok 154 408 768 27 51 NN word"        # one field short
        n = _append(root / "ascii/words.txt", line)
        return "ascii/words.txt", n, 1, ["--height", "16"] if kind == "too_wide" else []
    return make


def _tsv(kind):
    def make(root):
        lines = []
        for i in range(4):
            word_image(root / "img" / f"{i}.png", 3, i)
            lines.append(f"img/{i}.png\tmot{i % 2}")
        bad = {"malformed_line": "img/0.png", "missing_image": "img/none.png\tmot", "unreadable_image": "img/bad.png\tmot",
               "empty_transcription": "img/1.png\t   ", "out_of_alphabet": "img/1.png\tn°"}[kind]
        if kind == "unreadable_image":
            corrupt_image(root / "img/bad.png")
        (root / "train.tsv").write_text("\n".join(lines + [bad]) + "\n", encoding="utf-8")
        return "train.tsv", len(lines) + 1, 1, ["--language", "fr"]
    return make


def _khatt(kind):
    def make(root):
        build_khatt(root, writers_per_split=1, lines_per_writer=2, bad=False)
        stem = "AHTD3A0999_Para2_1"
        img = root / f"KHATT_v1.0/LineImages_v1.0/UniqueTextLineImages/Train/{stem}.tif"
        gt_rel = f"KHATT_v1.0/GroundTruth_v1.0/UniqueTextUnicodeTruthValues-v1.0/Train/{stem}.txt"
        (corrupt_image if kind == "unreadable_image" else lambda p: word_image(p, 3, 1, fmt="TIFF"))(img)
        text = {"empty_transcription": "   ", "out_of_alphabet": "abc"}.get(kind, "كتاب")
        (root / gt_rel).parent.mkdir(parents=True, exist_ok=True)
        (root / gt_rel).write_bytes(text.encode("cp1256"))
        return gt_rel, 1, 1, []
    return make


def _madcat(kind):
    def make(root):
        build_madcat(root, n_pages=2, lines_per_page=1, words_per_line=2, bad=False, split_lists=False)
        xml = sorted(root.rglob("*.madcat.xml"))[0]
        page = xml.parent.parent / "images" / (xml.name[: -len(".madcat.xml")] + ".tif")
        text = xml.read_text(encoding="utf-8")
        rel = xml.relative_to(root).as_posix()
        count, flags = 1, []
        if kind == "malformed_xml":
            xml.write_text(text[: len(text) // 2], encoding="utf-8")
            return rel, None, 1, []
        if kind == "no_word_box":
            text = text.replace(' ref_id="w0_0"', "")
        elif kind == "unknown_word_box":
            text = text.replace('ref_id="w0_0"', 'ref_id="nope"')
        elif kind in ("box_outside_page", "too_wide"):
            pts = ('<point x="5000" y="5000"/><point x="5050" y="5030"/>' if kind == "box_outside_page"
                   else '<point x="2" y="20"/><point x="170" y="40"/>')
            text = re.sub(r'(<token-image id="w0_0">)(.*?)(</token-image>)', rf"\g<1>{pts}\g<3>", text, flags=re.S)
            flags = ["--height", "16"] if kind == "too_wide" else []
        elif kind == "out_of_alphabet":
            text = re.sub(r'(<token id="t0_0"[^>]*><source>)[^<]*', r"\g<1>abc", text)
        elif kind == "empty_transcription":
            text = re.sub(r'(<token id="t0_0"[^>]*><source>)[^<]*', r"\g<1>", text)
        elif kind == "missing_image":
            page.unlink()
            count = 2
        elif kind == "unreadable_image":
            page.write_bytes(b"II*\x00 not a tiff")
            count = 2
        xml.write_text(text, encoding="utf-8")
        token_line = 1 + next(i for i, line in enumerate(text.split("\n")) if '<token id="t0_0"' in line)
        return rel, token_line, count, flags
    return make


CASES = {
    ("rimes", k): _rimes(k) for k in ("malformed_line", "missing_image", "unreadable_image", "out_of_alphabet", "too_wide")
} | {
    ("iam", k): _iam(k) for k in ("malformed_line", "missing_image", "unreadable_image", "too_wide")
} | {
    ("tsv", k): _tsv(k) for k in ("malformed_line", "missing_image", "unreadable_image", "empty_transcription",
                                  "out_of_alphabet")
} | {
    ("khatt", k): _khatt(k) for k in ("empty_transcription", "out_of_alphabet", "unreadable_image")
} | {
    ("madcat", k): _madcat(k) for k in ("malformed_xml", "no_word_box", "unknown_word_box", "box_outside_page",
                                       "missing_image", "unreadable_image", "out_of_alphabet", "empty_transcription",
                                       "too_wide")
}


@pytest.mark.parametrize("fmt,kind", sorted(CASES), ids=[f"{f}-{k}" for f, k in sorted(CASES)])
def test_skip_counts_and_reports(tmp_path, capsys, fmt, kind):
    root = tmp_path / "data"
    rel, line, count, flags = CASES[fmt, kind](root)
    out = tmp_path / "out"
    assert main(["data", "import", "--format", fmt, "--root", str(root), "--out", str(out), "--on-bad", "skip", *flags]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line_ for line_ in err.splitlines() if line_.startswith("skipped")] == [
        next(line_ for line_ in err.splitlines() if line_.startswith(f"skipped {count} {kind}:"))]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["skipped"] == {kind: count}
    rows = [(f, n, r) for f, n, r, _ in read_report(out)]
    assert len(rows) == count and all(f == rel and r == kind for f, _, r in rows)
    assert line is None or rows[0][1] == line


@pytest.mark.parametrize("fmt,kind", sorted(CASES), ids=[f"{f}-{k}" for f, k in sorted(CASES)])
def test_error_is_one_line_naming_file_and_line(tmp_path, capsys, monkeypatch, fmt, kind):
    monkeypatch.setenv("HTRAUG_PROGRESS", "0")       # stderr holds only what the command says
    root = tmp_path / "data"
    rel, line, count, flags = CASES[fmt, kind](root)
    out = tmp_path / "out"
    rc = main(["data", "import", "--format", fmt, "--root", str(root), "--out", str(out), "--on-bad", "error", *flags])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if kind == "too_wide":                       # error mode keeps too-wide images and counts them
        assert rc == 0 and json.loads((out / "meta.json").read_text())["skipped"] == {}
        assert sum(s.get("too_wide", 0) for k, s in json.loads((out / "meta.json").read_text())["stats"].items()
                   if k != "all") == 1
        return
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("htraug: error: ")
    where = f"{root / rel}:{line}:" if line is not None else f"{root / rel}:"
    assert where in lines[0] and (line is not None or re.search(re.escape(str(root / rel)) + r":\d+:", lines[0]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]     # no output, no staging folder left


@pytest.mark.parametrize("fmt,args,words", [
    ("iam", ["--gt", "train=words.txt"], ["--gt", "train", "iam"]),
    ("madcat", ["--images-dir", "test=pages"], ["--images-dir", "test"]),
    ("rimes", ["--list", "train"], ["--list", "SPLIT=FILE"]),
    ("rimes", ["--list", "dev=a.txt"], ["--list", "dev", "train, val, test"]),
    ("rimes", ["--split-map", "Validate=dev"], ["--split-map", "dev"]),
    ("rimes", ["--gt", "train=a.txt", "--gt", "train=b.txt"], ["--gt", "train", "twice"]),
    ("khatt", ["--level", "word"], ["--level", "KHATT has no word boxes"]),
    ("rimes", ["--width", "64"], ["--width", "--height"]),
    ("rimes", ["--val-fraction", "0.6", "--test-fraction", "0.5"], ["--val-fraction", "--test-fraction"]),
    ("rimes", ["--space-symbol", "ab"], ["--space-symbol"]),
])
def test_option_errors_are_one_line(tmp_path, capsys, fmt, args, words):
    (tmp_path / "data").mkdir()
    assert main(["data", "import", "--format", fmt, "--root", str(tmp_path / "data"), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not (tmp_path / "o").exists()
