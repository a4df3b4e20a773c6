"""`iam`: the IAM Handwriting Database as distributed.

`ascii/words.txt` (or ROOT/words.txt) starts with a `#` comment header, then one line per word:
`a01-000u-00-00 ok 154 1 408 768 27 51 AT A` — id, segmentation result (`ok` or `err`), grey
level, number of components, bounding box x y w h, grammatical tag, transcription. The image is
`words/a01/a01-000u/a01-000u-00-00.png`. Words whose segmentation is `err` are excluded (and
reported). `--level line` reads `ascii/lines.txt` instead (`a01-000u-00 ok 154 19 408 746 1661
89 A|MOVE|to|stop`, words joined by `|`) with the images under `lines/`; there `err` only flags
the line's word segmentation, so the line is kept. Writers come from `ascii/forms.txt`
(`a01-000u 000 2 prt 7 5 52 36`: form id, writer id, ...).

Splits: `--list SPLIT=FILE` files of form, line or word ids, else the official writer-independent
line splits when they are found under ROOT (`trainset.txt` → train, `validationset1.txt` and
`validationset2.txt` → val, `testset.txt` → test), else a seeded split by writer. Entries in no
list are excluded.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError, located
from .common import Sample, find_file, list_path, read_id_lists, read_text
from .options import ImportOptions
from .policy import BadRecords

OFFICIAL_SPLITS = {"trainset.txt": "train", "validationset1.txt": "val", "validationset2.txt": "val",
                   "testset.txt": "test"}


def _writers(root: Path, near: Path) -> dict[str, str]:
    """form id → writer id from IAM's forms.txt, when present."""
    cand = next((p for p in (near.parent / "forms.txt", root / "ascii" / "forms.txt", root / "forms.txt") if p.is_file()), None)
    if cand is None:
        return {}
    out = {}
    text, _ = read_text(cand)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if len(f) < 2:
            raise located(cand, lineno, "expected 'form_id writer_id ...'")
        out[f[0]] = f[1]
    return out


def split_lists(root: Path, opts: ImportOptions) -> dict[str, str]:
    """id (form, line or word) → split, from --list files or the official split files."""
    if opts.lists:
        files = [(list_path(root, p), split) for split, p in opts.lists.items()]
    else:
        files = [(p, split) for name, split in OFFICIAL_SPLITS.items() if (p := find_file(root, [name])) is not None]
    return read_id_lists(root, files)


def read_iam(root: Path, opts: ImportOptions, bad: BadRecords) -> list[Sample]:
    line_level = opts.level == "line"
    listing = "lines.txt" if line_level else "words.txt"
    given = opts.given_path("gt")
    if given:
        txt = list_path(root, given)
        if not txt.is_file():
            raise UserError(f"--gt {given}: does not exist")
    else:
        txt = next((p for p in (root / "ascii" / listing, root / listing) if p.is_file()), None)
        if txt is None:
            raise UserError(f"{root}: no {listing} (expected {root}/ascii/{listing} or {root}/{listing}, or pass --gt FILE)")
    images = list_path(root, opts.given_path("images_dir")) if opts.given_path("images_dir") else \
        root / ("lines" if line_level else "words")
    writers = _writers(root, txt)
    split_of = split_lists(root, opts)
    n_fields = 9 if line_level else 10
    form_of = "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop" if line_level else \
        "a01-000u-00-00 ok 154 1 408 768 27 51 AT A"
    samples = []
    text, _ = read_text(txt)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if len(f) < n_fields or f[1] not in ("ok", "err"):
            bad.bad((txt, lineno), "malformed_line", f"expected '{form_of}', got {line[:60]!r}")
            continue
        item = f[0]
        parts = item.split("-")
        if len(parts) != (3 if line_level else 4):
            bad.bad((txt, lineno), "malformed_line", f"id {item!r} is not of the form {form_of.split()[0]}")
            continue
        if f[1] == "err" and not line_level:
            bad.excluded((txt, lineno), "err_segmentation", f"word {item}")
            continue
        form, line_id = "-".join(parts[:2]), "-".join(parts[:3])
        split = split_of.get(item) or split_of.get(line_id) or split_of.get(form)
        if split_of and split is None:
            bad.excluded((txt, lineno), "not_in_lists", f"{'line' if line_level else 'word'} {item}")
            continue
        label = " ".join(f[n_fields - 1:])
        if line_level:
            label = label.replace("|", " ")
        image = images / parts[0] / form / f"{item}.png"
        samples.append(Sample((txt, lineno), image, label, writers.get(form, form), split))
    return samples
