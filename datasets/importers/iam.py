"""`iam`: IAM words.txt, with writer ids from forms.txt when present."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError, located
from .common import ImportConfig, Sample, Scan, _list_path, _read_text


def _iam_writers(root: Path) -> dict[str, str]:
    """form id -> writer id from IAM's forms.txt, when present."""
    for cand in (root / "forms.txt", root / "ascii" / "forms.txt"):
        if cand.is_file():
            out = {}
            for lineno, line in enumerate(_read_text(cand).splitlines(), start=1):
                if not line.strip() or line.startswith("#"):
                    continue
                f = line.split()
                if len(f) < 2:
                    raise located(cand, lineno, "expected 'form_id writer_id ...'")
                out[f[0]] = f[1]
            return out
    return {}


def _iam_split_lists(root: Path, cfg: ImportConfig) -> dict[str, str]:
    """id (form, line or word) -> split from --list files with one id per line."""
    out = {}
    for split, p in cfg.lists.items():
        path = _list_path(root, p)
        for line in _read_text(path).splitlines():
            if line.strip() and not line.startswith("#"):
                out[line.split()[0]] = split
    return out


def read_iam(root: Path, cfg: ImportConfig) -> Scan:
    """IAM words.txt: skip comments and `err` segmentations; images under words/<a>/<a-b>/."""
    words_txt = next((p for p in (root / "words.txt", root / "ascii" / "words.txt") if p.is_file()), None)
    if words_txt is None:
        raise UserError(f"{root}: no words.txt (expected {root}/words.txt or {root}/ascii/words.txt)")
    writers = _iam_writers(root)
    split_of = _iam_split_lists(root, cfg)
    samples, skipped = [], {"err_segmentation": 0}
    for lineno, line in enumerate(_read_text(words_txt).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(" ")
        if len(f) < 9 or f[1] not in ("ok", "err"):
            raise located(words_txt, lineno, "expected 'word_id ok|err graylevel x y w h tag transcription'")
        if f[1] == "err":
            skipped["err_segmentation"] += 1
            continue
        wid = f[0]
        parts = wid.split("-")
        if len(parts) < 4:
            raise located(words_txt, lineno, f"word id {wid!r} is not of the form a01-000u-00-00")
        form, line_id = "-".join(parts[:2]), "-".join(parts[:3])
        image = root / "words" / parts[0] / form / f"{wid}.png"
        split = split_of.get(wid) or split_of.get(line_id) or split_of.get(form)
        if split_of and split is None:
            skipped["not_in_lists"] = skipped.get("not_in_lists", 0) + 1
            continue
        samples.append(Sample((words_txt, lineno), image, " ".join(f[8:]), writers.get(form, form), split))
    return Scan(samples, skipped)
