"""`khatt`: images with a same-name .txt transcription next to each."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from .common import IMAGE_EXTENSIONS, ImportConfig, Sample, Scan, _read_text, _split_from_name


def read_khatt(root: Path, cfg: ImportConfig) -> Scan:
    """KHATT: every image with a same-name .txt transcription; split from folder names."""
    if not root.is_dir():
        raise UserError(f"--root {root}: expected a folder of images and .txt transcriptions")
    samples, skipped = [], {"images_without_txt": 0}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            path = Path(dirpath) / f
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            txt = path.with_suffix(".txt")
            if not txt.is_file():
                skipped["images_without_txt"] += 1
                continue
            text = _read_text(txt, ("utf-8-sig", "cp1256"))
            writer = path.stem.split("_")[0]
            samples.append(Sample((txt, 1), path, " ".join(text.split()), writer,
                                  _split_from_name(path.relative_to(root).parent)))
    return Scan(samples, skipped)
