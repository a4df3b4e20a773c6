"""The dataset directory: `labels.tsv`, `images/` (8-bit grey PNG) and `meta.json` (docs/DESIGN.md §4).

A dataset directory holds one split. A builder or importer writes a *collection*: a folder with
one dataset directory per split (`train/`, `val/`, `test/`) and a `meta.json` of kind
"collection" that summarises them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from pathlib import Path

import numpy as np
from PIL import Image

from .alphabet import DIRECTIONS, Alphabet, normalize_text
from .errors import UserError, located
from .files import atomic_write_json, atomic_write_text, parse_json_file, read_text_file

LABELS = "labels.tsv"
META = "meta.json"
IMAGES = "images"
FORMAT_VERSION = 1


@dataclass
class DatasetMeta:
    """Contents of a dataset directory's meta.json."""

    name: str
    language: str
    direction: str
    alphabet: Alphabet
    height: int | None = None
    width: int | None = None
    split: str = "all"
    writers: dict[str, str] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["alphabet"] = self.alphabet.to_json()
        d["kind"] = "dataset"
        d["format_version"] = FORMAT_VERSION
        return d

    @staticmethod
    def from_json(obj: dict, path: Path) -> "DatasetMeta":
        required = ("name", "language", "direction", "alphabet")
        for key in required:
            if key not in obj:
                raise located(path, None, f"missing field '{key}' (expected {', '.join(required)})")
        if obj["direction"] not in DIRECTIONS:
            raise located(path, None, f"field 'direction' is {obj['direction']!r}, expected 'ltr' or 'rtl'")
        try:
            alphabet = Alphabet.from_json(obj["alphabet"])
        except (KeyError, TypeError):
            raise located(path, None, "field 'alphabet' must be a string or {name, symbols}") from None
        return DatasetMeta(
            name=str(obj["name"]), language=str(obj["language"]), direction=obj["direction"],
            alphabet=alphabet, height=obj.get("height"), width=obj.get("width"),
            split=obj.get("split", "all"), writers=dict(obj.get("writers", {})),
            provenance=dict(obj.get("provenance", {})), stats=dict(obj.get("stats", {})),
        )


@dataclass
class Dataset:
    """A loaded dataset directory: its meta and (relative image path, transcription) pairs."""

    root: Path
    meta: DatasetMeta
    entries: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def texts(self) -> list[str]:
        return [t for _, t in self.entries]

    def image_path(self, i: int) -> Path:
        return self.root / self.entries[i][0]

    def load_image(self, i: int) -> np.ndarray:
        """Read image i as a uint8 greyscale array; a corrupt or missing file is a UserError."""
        return read_grey_png(self.image_path(i), self.root / LABELS, i + 1)


def read_grey_png(path: Path, labels_path: Path | None = None, line: int | None = None,
                  data: bytes | None = None) -> np.ndarray:
    """Load an image as uint8 greyscale (from `data`, its bytes, when given), with a one-line
    error naming the file on failure."""
    import io

    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            im.load()
            if im.mode.startswith("I;16"):   # 16-bit grey: Pillow's convert("L") would clip it at 255
                return (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except FileNotFoundError:
        where = located(labels_path, line, f"image {path} does not exist") if labels_path else UserError(f"{path}: image does not exist")
        raise where from None
    except Exception as exc:  # PIL raises many types for corrupt data
        raise UserError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


def read_lines(path) -> list[str]:
    """Lines of a UTF-8 text file (BOM tolerated, NFC-normalised, line ends removed, empty lines kept)."""
    lines = read_text_file(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [normalize_text(ln.rstrip("\r")) for ln in lines]


def read_meta(root: Path) -> dict:
    """Parse root/meta.json into a dict, with one-line errors."""
    path = Path(root) / META
    if not path.is_file():
        raise UserError(f"{root}: not a dataset directory (no {META})")
    obj = parse_json_file(path)
    if not isinstance(obj, dict):
        raise located(path, None, "expected a JSON object")
    return obj


def parse_labels(path: Path, alphabet: Alphabet | None = None) -> list[tuple[str, str]]:
    """Read labels.tsv: `relative/path<TAB>transcription` per line, validated line by line."""
    entries: list[tuple[str, str]] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: missing (every dataset directory needs {LABELS})") from None
    except UnicodeDecodeError as exc:
        raise located(path, None, f"not valid UTF-8 ({exc.reason})") from None
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise located(path, lineno, f"expected 'image_path<TAB>transcription', found {len(parts) - 1} tabs")
        rel, label = parts[0].strip(), normalize_text(parts[1])
        if not rel:
            raise located(path, lineno, "empty image path")
        if not label.strip():
            raise located(path, lineno, f"empty transcription for {rel}")
        if rel in seen:
            raise located(path, lineno, f"image {rel} is listed twice")
        seen.add(rel)
        if alphabet is not None and not alphabet.covers(label):
            bad = "".join(alphabet.missing(label))
            raise located(path, lineno, f"transcription {label!r} has characters {bad!r} outside the alphabet '{alphabet.name}'")
        entries.append((rel, label))
    return entries


def load_dataset(root, check_images: bool = False) -> Dataset:
    """Open and validate a dataset directory (optionally checking every image exists)."""
    root = Path(root)
    obj = read_meta(root)
    if obj.get("kind") == "collection":
        splits = ", ".join(f"{root}/{s}" for s in obj.get("splits", []))
        raise UserError(f"{root}: is a dataset collection; pass one of its splits ({splits})")
    meta = DatasetMeta.from_json(obj, root / META)
    entries = parse_labels(root / LABELS, meta.alphabet)
    if not entries:
        raise UserError(f"{root / LABELS}: the dataset is empty")
    if check_images:
        for i, (rel, _) in enumerate(entries):
            if not (root / rel).is_file():
                raise located(root / LABELS, i + 1, f"image {rel} does not exist")
    return Dataset(root, meta, entries)


class DatasetWriter:
    """Write images and transcriptions into a (staging) dataset directory."""

    def __init__(self, root: Path, meta: DatasetMeta):
        self.root = Path(root)
        self.meta = meta
        self.entries: list[tuple[str, str]] = []
        (self.root / IMAGES).mkdir(parents=True, exist_ok=True)

    def add(self, image_u8: np.ndarray, text: str, writer: str | None = None, stem: str | None = None) -> str:
        """Store one uint8 greyscale image with its transcription; returns its relative path."""
        text = self._check_text(text)
        rel = self._next_rel(stem)
        Image.fromarray(np.asarray(image_u8, dtype=np.uint8), mode="L").save(self.root / rel, optimize=False, compress_level=1)
        return self._record(rel, text, writer)

    def add_png(self, png: bytes, text: str, writer: str | None = None, stem: str | None = None) -> str:
        """Store an already encoded 8-bit grey PNG (e.g. made by a worker process); see `add`."""
        text = self._check_text(text)
        rel = self._next_rel(stem)
        (self.root / rel).write_bytes(png)
        return self._record(rel, text, writer)

    def _check_text(self, text: str) -> str:
        text = normalize_text(text)
        if not text.strip():
            raise UserError(f"empty transcription for image #{len(self.entries) + 1}")
        if "\t" in text or "\n" in text:
            raise UserError(f"transcription {text!r} contains a tab or newline")
        return text

    def _next_rel(self, stem: str | None) -> str:
        return f"{IMAGES}/{stem or f'{len(self.entries):07d}'}.png"

    def _record(self, rel: str, text: str, writer: str | None) -> str:
        self.entries.append((rel, text))
        if writer is not None:
            self.meta.writers[rel] = str(writer)
        return rel

    def close(self) -> Dataset:
        """Write labels.tsv and meta.json (with Table I statistics); returns the dataset."""
        if not self.entries:
            raise UserError(f"{self.root}: refusing to write an empty dataset")
        self.meta.stats = {**table1_stats([t for _, t in self.entries]), **self.meta.stats}
        lines = "".join(f"{rel}\t{text}\n" for rel, text in self.entries)
        atomic_write_text(self.root / LABELS, lines)
        atomic_write_json(self.root / META, self.meta.to_json())
        return Dataset(self.root, self.meta, list(self.entries))


def table1_stats(texts: list[str]) -> dict:
    """The paper's Table I figures: number of images, distinct words, distinct characters."""
    return {
        "images": len(texts),
        "words": len(set(texts)),
        "characters": len({c for t in texts for c in t}),
    }


def write_collection_meta(root: Path, name: str, language: str, direction: str, alphabet: Alphabet,
                          splits: dict[str, Dataset], extra: dict | None = None) -> dict:
    """Write the collection-level meta.json summarising each split and the whole (Table I)."""
    all_texts = [t for ds in splits.values() for t in ds.texts]
    obj = {
        "kind": "collection", "format_version": FORMAT_VERSION, "name": name, "language": language,
        "direction": direction, "alphabet": alphabet.to_json(), "splits": list(splits),
        "stats": {"all": table1_stats(all_texts), **{k: ds.meta.stats for k, ds in splits.items()}},
        **(extra or {}),
    }
    atomic_write_json(Path(root) / META, obj)
    return obj
