"""`rimes`: RIMES ICDAR 2011 word level, as distributed.

The download holds three ground-truth files at its top, UTF-8 with a byte-order mark, one
`relative/path word` line per image (the transcription is everything after the first space):

    groundtruth_training_icdar2011.txt      → train, paths under trainingsnippets_icdar/training_WR/
    ground_truth_validation_icdar2011.txt   → val,   paths under validationsnippets_icdar/testdataset_ICDAR/
    grount_truth_test_icdar2011.txt (sic)   → test,  paths under data_test/

beside `test_dictionary_task_wr_icdar_2011.txt` (the task's lexicon, not ground truth). These are
found in ROOT (or up to two folders down) and their image folders anywhere below ROOT; each
ground-truth file resolves its paths against the candidate folder that holds most of its first
images (the known folder, the file's own folder, ROOT), or against `--images-dir SPLIT=DIR`.
Without the known files, every `*.txt` in ROOT but a dictionary or lexicon is ground truth and
its split comes from its name. RIMES word ground truth names no writers.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .common import Sample, find_dirs, find_file, list_path, read_text, split_from_name
from .options import ImportOptions
from .policy import BadRecords

# ground-truth file name (lower case) → split and the image folder its paths are relative to
KNOWN = {
    "groundtruth_training_icdar2011.txt": ("train", ("trainingsnippets_icdar", "training_WR")),
    "ground_truth_training_icdar2011.txt": ("train", ("trainingsnippets_icdar", "training_WR")),
    "ground_truth_validation_icdar2011.txt": ("val", ("validationsnippets_icdar", "testdataset_ICDAR")),
    "groundtruth_validation_icdar2011.txt": ("val", ("validationsnippets_icdar", "testdataset_ICDAR")),
    "grount_truth_test_icdar2011.txt": ("test", ("data_test",)),
    "ground_truth_test_icdar2011.txt": ("test", ("data_test",)),
    "groundtruth_test_icdar2011.txt": ("test", ("data_test",)),
}
NOT_GROUND_TRUTH = ("dictionary", "lexicon", "readme", "licen")
SAMPLE_LINES = 50   # lines of a ground-truth file tried against each candidate image folder


def read_rimes(root: Path, opts: ImportOptions, bad: BadRecords) -> list[Sample]:
    samples: list[Sample] = []
    for gt, split in ground_truth_files(root, opts):
        entries = _parse(gt, bad)
        base = image_folder(root, gt, split, [rel for _, rel, _ in entries], opts)
        for lineno, rel, label in entries:
            p = Path(rel.replace("\\", "/"))
            samples.append(Sample((gt, lineno), p if p.is_absolute() else base / p, label, None, split))
    return samples


def ground_truth_files(root: Path, opts: ImportOptions) -> list[tuple[Path, str | None]]:
    """(ground-truth file, split) pairs: --gt / --list, else the distributed names, else *.txt."""
    given = {**opts.lists, **opts.gt}
    if given:
        out = []
        for split, p in given.items():
            path = list_path(root, p)
            split = None if split == "all" else split
            out.append((path, split or _known_split(path) or split_from_name(Path(path.name), opts.split_map)))
        return sorted(out, key=lambda fs: ("train", "val", "test", None).index(fs[1]))
    if root.is_file():
        return [(root, _known_split(root) or split_from_name(Path(root.name), opts.split_map))]
    found = []
    for name in KNOWN:
        f = find_file(root, [name])
        if f is not None and f not in [g for g, _ in found]:
            found.append((f, KNOWN[name][0]))
    if found:
        return sorted(found, key=lambda fs: ("train", "val", "test").index(fs[1]))
    files = [f for f in sorted(root.glob("*.txt")) if not any(w in f.name.lower() for w in NOT_GROUND_TRUTH)]
    if not files:
        raise UserError(f"{root}: no RIMES ground truth found (expected groundtruth_training_icdar2011.txt, "
                        f"ground_truth_validation_icdar2011.txt, grount_truth_test_icdar2011.txt; or pass --gt SPLIT=FILE)")
    return [(f, split_from_name(Path(f.name), opts.split_map)) for f in files]


def _known_split(path: Path) -> str | None:
    return KNOWN.get(path.name.lower(), (None,))[0]


def _parse(gt: Path, bad: BadRecords) -> list[tuple[int, str, str]]:
    text, _ = read_text(gt)
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.lstrip("\ufeff").strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            bad.bad((gt, lineno), "malformed_line", f"expected 'image_path label', got {line[:60]!r}")
            continue
        out.append((lineno, parts[0], parts[1]))
    return out


def image_folder(root: Path, gt: Path, split: str | None, rels: list[str], opts: ImportOptions) -> Path:
    """The folder a ground-truth file's image paths are relative to."""
    given = opts.given_path("images_dir", split)
    if given:
        return list_path(root, given)
    base_root = root if root.is_dir() else root.parent
    candidates: list[Path] = []
    known = KNOWN.get(gt.name.lower())
    if known:
        parts = known[1]
        candidates += find_dirs(base_root, lambda n: n.lower() == parts[-1].lower())
    candidates += [gt.parent, base_root]
    probe = [Path(r.replace("\\", "/")) for r in rels[:SAMPLE_LINES]]
    scores = [sum((c / p).is_file() for p in probe) for c in candidates]
    return candidates[max(range(len(candidates)), key=lambda i: (scores[i], -i))]
