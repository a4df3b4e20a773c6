"""`rimes`: RIMES ICDAR 2011 word-level ground truth."""
from __future__ import annotations

from pathlib import Path

from ..errors import located
from .common import ImportConfig, Sample, Scan, _list_files, _read_text, _resolve


def read_rimes(root: Path, cfg: ImportConfig) -> Scan:
    """RIMES ICDAR 2011 word ground truth: `path label` lines (split on the first whitespace)."""
    samples = []
    base_root = root if root.is_dir() else root.parent
    for gt, split in _list_files(root, cfg, "*.txt"):
        text = _read_text(gt)
        for lineno, line in enumerate(text.splitlines(), start=1):
            line = line.strip("\ufeff").rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.strip().split(None, 1)
            if len(parts) != 2:
                raise located(gt, lineno, "expected 'image_path label'")
            rel, label = parts
            samples.append(Sample((gt, lineno), _resolve(rel, gt.parent, base_root), label, None, split))
    return Scan(samples)
