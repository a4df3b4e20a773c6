"""`khatt`: KHATT text-line images with their ground truth, as distributed.

The line images and the ground truth are two parallel trees:

    KHATT_v1.0/LineImages_v1.0/FixedTextLineImages/{Train,Validate,Test}/AHTD3A0001_Para1_1.tif
    KHATT_v1.0/GroundTruth_v1.0/FixedTextUnicodeTruthValues-v1.0/{Train,Validate,Test}/AHTD3A0001_Para1_1.txt

(and the same for `UniqueText...`); a ground-truth file holds the line's text, commonly in
Windows-1256 (UTF-8, with or without a BOM, is read too). The ground-truth tree is every folder
under ROOT whose name contains `TruthValues` (or `--gt DIR`); images are read from the folders
named `LineImages...` (or `--images-dir DIR`, else all of ROOT but the ground truth). An image
finds its text by file name, preferring the file of its own split; a `.txt` beside the image is
used when no tree has one. Splits come from the folder names (Train, Validate, Test and the usual
variants; `--split-map` adds others) or `--list SPLIT=FILE` (image names); writers from the file
name (`AHTD3A0001` of `AHTD3A0001_Para1_1`).

KHATT is line level and has no word boxes: every line is imported whole, its spaces written as the
space symbol. A 4:1 word canvas drops most lines; with --height the too-wide ones are reported.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .common import (IMAGE_EXTENSIONS, Sample, find_dirs, list_path, read_id_lists, read_text, split_from_name,
                     walk_files)
from .options import ImportOptions
from .policy import BadRecords

ENCODINGS = ("utf-8-sig", "cp1256")


def _gt_roots(root: Path, opts: ImportOptions) -> list[Path]:
    given = opts.given_path("gt")
    if given:
        p = list_path(root, given)
        if not p.is_dir():
            raise UserError(f"--gt {given}: expected the ground-truth folder (…TextUnicodeTruthValues…)")
        return [p]
    found = find_dirs(root, lambda n: "truthvalues" in n.lower(), max_depth=4)
    return found or find_dirs(root, lambda n: n.lower().startswith("groundtruth"), max_depth=2)


def _image_roots(root: Path, opts: ImportOptions) -> list[Path]:
    given = opts.given_path("images_dir")
    if given:
        return [list_path(root, given)]
    return find_dirs(root, lambda n: n.lower().startswith("lineimages"), max_depth=3) or [root]


def read_khatt(root: Path, opts: ImportOptions, bad: BadRecords) -> list[Sample]:
    if not root.is_dir():
        raise UserError(f"--root {root}: expected the KHATT folder (LineImages…/ and GroundTruth…/)")
    gt_roots = _gt_roots(root, opts)
    texts: dict[str, list[tuple[str | None, Path]]] = {}
    for g in gt_roots:
        for txt in walk_files(g, (".txt",)):
            texts.setdefault(txt.stem, []).append((split_from_name(txt.relative_to(g).parent, opts.split_map), txt))
    listed = read_id_lists(root, [(list_path(root, p), s) for s, p in opts.lists.items()]) if opts.lists else {}
    samples = []
    for image_root in _image_roots(root, opts):
        for path in walk_files(image_root, IMAGE_EXTENSIONS, skip=gt_roots):
            split = split_from_name(path.relative_to(image_root).parent, opts.split_map)
            if listed:
                split = listed.get(path.stem)
                if split is None:
                    bad.excluded((path, None), "not_in_lists", f"image {path.name}")
                    continue
            txt = _text_file(path, split, texts)
            if txt is None:
                bad.excluded((path, None), "no_transcription", f"no {path.stem}.txt in the ground truth")
                continue
            text, _ = read_text(txt, ENCODINGS)
            samples.append(Sample((txt, 1), path, " ".join(text.split()), path.stem.split("_")[0], split))
    return samples


def _text_file(image: Path, split: str | None, texts: dict) -> Path | None:
    cands = texts.get(image.stem, [])
    same = [t for s, t in cands if s == split]
    if same or cands:
        return (same or [t for _, t in cands])[0]
    beside = image.with_suffix(".txt")
    return beside if beside.is_file() else None
