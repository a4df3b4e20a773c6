"""`tsv`: a folder with TSV files `image_path<TAB>transcription[<TAB>writer]`."""
from __future__ import annotations

from pathlib import Path

from ..errors import located
from .common import ImportConfig, Sample, Scan, _list_files, _read_text, _resolve


def read_tsv(root: Path, cfg: ImportConfig) -> Scan:
    """Folder + TSV: `image_path<TAB>transcription[<TAB>writer]`, paths relative to the TSV."""
    samples = []
    for tsv, split in _list_files(root, cfg, "*.tsv"):
        for lineno, line in enumerate(_read_text(tsv).splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) not in (2, 3) or not parts[0].strip():
                raise located(tsv, lineno, "expected 'image_path<TAB>transcription[<TAB>writer]'")
            writer = parts[2].strip() or None if len(parts) == 3 else None
            samples.append(Sample((tsv, lineno), _resolve(parts[0].strip(), tsv.parent), parts[1], writer, split))
    return Scan(samples)
