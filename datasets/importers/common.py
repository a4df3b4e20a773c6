"""What the importers share: the import options, the samples a reader finds, the constants, and the
helpers the format readers use to read text files, list files and resolve paths."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import re

from ..errors import UserError, located

FORMATS = ("rimes", "iam", "tsv", "khatt", "madcat")
DEFAULT_LANGUAGE = {"rimes": "fr", "iam": "en", "khatt": "ar", "madcat": "ar"}
RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "he", "ps", "ug", "ku", "sd", "yi"})
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".gif")
SPLITS = ("train", "val", "test")
_SPLIT_WORDS = {"train": ("train", "training"), "val": ("val", "valid", "validation", "dev"),
                "test": ("test", "testing", "eval")}


@dataclass(frozen=True)
class ImportConfig:
    """Options of an import (recorded in the collection's meta.json)."""

    fmt: str
    root: str
    lists: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    name: str | None = None
    alphabet_from_data: bool = False
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    space_symbol: str = "▁"


@dataclass
class Sample:
    """One word image to import: where it was listed (for errors), its image and label."""

    where: tuple[Path, int | None]
    image: Path
    text: str
    writer: str | None = None
    split: str | None = None
    box: tuple[int, int, int, int] | None = None  # crop (x0, y0, x1, y1) for page-level formats


@dataclass
class Scan:
    """What a format reader found: samples and counts of entries it skipped on purpose."""

    samples: list[Sample]
    skipped: dict[str, int] = field(default_factory=dict)


def _read_text(path: Path, encodings=("utf-8-sig",)) -> str:
    if not path.is_file():
        raise UserError(f"{path}: does not exist")
    for enc in encodings:
        try:
            return path.read_text(encoding=enc)
        except UnicodeDecodeError as exc:
            last = exc
    raise located(path, None, f"cannot decode text ({last.reason})")


def _split_from_name(path: Path) -> str | None:
    """'train' / 'val' / 'test' when a file or folder name says so."""
    for part in reversed([p.lower() for p in path.parts]):
        tokens = re.split(r"[^a-z]+", part)
        for split, words in _SPLIT_WORDS.items():
            if any(t in words for t in tokens):
                return split
    return None


def _list_path(root: Path, p: str) -> Path:
    """A --list file: relative to ROOT when it exists there, else as given."""
    base = root if root.is_dir() else root.parent
    return base / p if not Path(p).is_absolute() and (base / p).exists() else Path(p)


def _list_files(root: Path, cfg: ImportConfig, pattern: str) -> list[tuple[Path, str | None]]:
    """(file, split) pairs from --list, else the files matching `pattern` in root."""
    if cfg.lists:
        return [(_list_path(root, p), split)
                for split, p in sorted(cfg.lists.items(), key=lambda kv: SPLITS.index(kv[0]))]
    if root.is_file():
        return [(root, None)]
    files = sorted(root.glob(pattern))
    if not files:
        raise UserError(f"{root}: no {pattern} file found (pass --list SPLIT=FILE)")
    return [(f, _split_from_name(Path(f.name))) for f in files]


def _resolve(rel: str, *bases: Path) -> Path:
    rel = rel.replace("\\", "/")
    p = Path(rel)
    if p.is_absolute():
        return p
    for b in bases:
        if (b / p).exists():
            return b / p
    return bases[0] / p
