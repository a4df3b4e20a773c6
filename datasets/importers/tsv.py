"""`tsv`: a folder with TSV files `image_path<TAB>transcription[<TAB>writer]`, paths relative to
the TSV file (or to --images-dir); the split of a file comes from --gt/--list or its name."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .common import Sample, list_path, read_text, resolve, split_from_name
from .options import ImportOptions
from .policy import BadRecords


def _files(root: Path, opts: ImportOptions) -> list[tuple[Path, str | None]]:
    given = {**opts.lists, **opts.gt}
    if given:
        return [(list_path(root, p), None if split == "all" else split) for split, p in given.items()]
    if root.is_file():
        return [(root, split_from_name(Path(root.name), opts.split_map))]
    files = sorted(root.glob("*.tsv"))
    if not files:
        raise UserError(f"{root}: no *.tsv file found (pass --gt SPLIT=FILE)")
    return [(f, split_from_name(Path(f.name), opts.split_map)) for f in files]


def read_tsv(root: Path, opts: ImportOptions, bad: BadRecords) -> list[Sample]:
    samples = []
    for tsv, split in _files(root, opts):
        given = opts.given_path("images_dir", split)
        bases = (list_path(root, given),) if given else (tsv.parent,)
        text, _ = read_text(tsv)
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) not in (2, 3) or not parts[0].strip():
                bad.bad((tsv, lineno), "malformed_line", "expected 'image_path<TAB>transcription[<TAB>writer]'")
                continue
            writer = (parts[2].strip() or None) if len(parts) == 3 else None
            samples.append(Sample((tsv, lineno), resolve(parts[0].strip(), *bases), parts[1], writer, split))
    return samples
