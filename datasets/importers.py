"""Importers of real word datasets into the htraug collection format (SPEC §4).

Formats:
- `rimes`: RIMES ICDAR 2011 word level: ground-truth files with lines `image_path label` (UTF-8,
  possibly with a BOM); the label is everything after the first space. Paths are relative to the
  ground-truth file's folder (or to ROOT).
- `iam`: IAM `words.txt` (`id status graylevel x y w h tag transcription`); `err` segmentations
  are skipped, as are empty or unreadable images (the known-broken ones); `forms.txt`, when
  present, gives writer ids.
- `tsv`: a folder with TSV files `image_path<TAB>transcription[<TAB>writer]`.
- `khatt`: images with a same-name `.txt` transcription next to each (UTF-8 or Windows-1256).
- `madcat`: OpenHaRT/MADCAT XML: `token-image` elements (with `point x= y=` polygons) give word
  boxes, `token` elements give the word (`source` text) and point at boxes through
  `token-image-ref ref_id=`; the page image has the XML file's stem.

Originals are stored as grey PNG without resizing (the packed cache preprocesses them). Splits come
from `lists` (SPLIT -> list file) or folder names, otherwise from a seeded split by writer
(or document) groups. Whitespace inside a transcription becomes `space_symbol`, since alphabets
have no whitespace. Any bad input is a one-line UserError naming file:line, and nothing is written.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import os
from pathlib import Path
import re
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from .alphabet import Alphabet, alphabet_from_texts, for_language, normalize_text
from .errors import UserError, located
from .files import StagingDir
from .format import DatasetMeta, DatasetWriter, write_collection_meta
from .progress import progress

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


def import_dataset(fmt: str, root, out, lists: dict[str, str] | None = None, language: str | None = None,
                   name: str | None = None, alphabet_from_data: bool = False, val_fraction: float = 0.1,
                   test_fraction: float = 0.1, seed: int = 0, space_symbol: str = "▁",
                   overwrite: bool = False, show_progress: bool = True,
                   height: int | None = None, width: int | None = None) -> Path:
    """Import a real dataset at `root` into the collection `out` (train/val/test splits).

    Images are stored unresized; `height`/`width` (a profile's canvas) only let the import count
    the images that preprocessing will drop as too wide (`stats.too_wide` per split).
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    root = Path(root)
    if not root.exists():
        raise UserError(f"--root {root}: does not exist")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError("--val-fraction and --test-fraction must be in [0, 1) with a sum below 1")
    if not space_symbol or any(c.isspace() for c in space_symbol) or len(space_symbol) != 1:
        raise UserError(f"--space-symbol must be one non-space character, got {space_symbol!r}")
    language = language or DEFAULT_LANGUAGE.get(fmt)
    if not language:
        raise UserError(f"format {fmt}: pass --language (e.g. fr, en, ar)")
    cfg = ImportConfig(fmt, str(root), {k: str(v) for k, v in (lists or {}).items()}, language,
                       name or f"{fmt}-import", alphabet_from_data, val_fraction, test_fraction, seed, space_symbol)
    for split in cfg.lists:
        if split not in SPLITS:
            raise UserError(f"--list {split}=...: split must be one of {', '.join(SPLITS)}")
    scan = READERS[fmt](root, cfg)
    if not scan.samples:
        raise UserError(f"{root}: no word images found for format {fmt}")
    for s in scan.samples:
        s.text = _clean_text(s, space_symbol)
    alphabet = _choose_alphabet(scan.samples, cfg)
    assign_splits(scan.samples, cfg)
    direction = "rtl" if language in RTL_LANGUAGES else "ltr"
    skipped = dict(scan.skipped)
    with StagingDir(Path(out), overwrite=overwrite) as stage:
        canvas = (height, width) if height and width else None
        datasets = _write(scan.samples, cfg, alphabet, direction, stage, skipped, show_progress, canvas)
        extra = {"importer": {"command": "htraug data import", **asdict(cfg)}, "skipped": skipped}
        write_collection_meta(stage, cfg.name, language, direction, alphabet, datasets, extra)
    return Path(out)


def _clean_text(s: Sample, space_symbol: str) -> str:
    text = normalize_text(s.text).strip()
    if not text:
        raise located(*s.where, f"empty transcription for {s.image.name}")
    return re.sub(r"\s+", space_symbol, text)


def _choose_alphabet(samples: list[Sample], cfg: ImportConfig) -> Alphabet:
    """The language's built-in alphabet, or one derived from the labels."""
    if cfg.alphabet_from_data or cfg.language not in ("fr", "ar"):
        return alphabet_from_texts([s.text for s in samples], f"{cfg.name}-data")
    alphabet = for_language(cfg.language)
    for s in samples:
        if not alphabet.covers(s.text):
            bad = "".join(alphabet.missing(s.text))
            raise located(*s.where, f"transcription {s.text!r} has characters {bad!r} outside the built-in "
                                    f"alphabet '{alphabet.name}' (use --alphabet-from-data)")
    return alphabet


def assign_splits(samples: list[Sample], cfg: ImportConfig) -> None:
    """Give every sample without a split one, by seeded groups of writers (or documents)."""
    todo = [s for s in samples if s.split is None]
    if not todo:
        return
    groups = sorted({s.writer if s.writer is not None else str(s.image) for s in todo})
    order = np.random.default_rng(np.random.SeedSequence([cfg.seed, 7])).permutation(len(groups))
    n = len(groups)
    n_val = int(round(n * cfg.val_fraction)) if cfg.val_fraction > 0 else 0
    n_test = int(round(n * cfg.test_fraction)) if cfg.test_fraction > 0 else 0
    if n >= 3:
        n_val, n_test = max(n_val, 1 if cfg.val_fraction > 0 else 0), max(n_test, 1 if cfg.test_fraction > 0 else 0)
    n_val, n_test = min(n_val, max(0, n - 1)), min(n_test, max(0, n - 1 - n_val))
    split_of = {}
    for rank, gi in enumerate(order):
        split_of[groups[gi]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    for s in todo:
        s.split = split_of[s.writer if s.writer is not None else str(s.image)]


def _write(samples: list[Sample], cfg: ImportConfig, alphabet: Alphabet, direction: str, stage: Path,
           skipped: dict[str, int], show_progress: bool, canvas: tuple[int, int] | None = None) -> dict:
    """Copy (or crop) every image into stage/<split>/images as grey PNG; returns closed datasets."""
    writers: dict[str, DatasetWriter] = {}
    too_wide: dict[str, int] = {}
    page_cache: tuple[Path, Image.Image] | None = None
    for s in progress(samples, desc=f"importing {cfg.fmt}", disable=not show_progress):
        if s.box is None:
            image = _read_image(s, cfg.fmt, skipped)
            if image is None:
                continue
        else:
            if page_cache is None or page_cache[0] != s.image:
                page_cache = (s.image, _open_page(s))
            image = _crop(page_cache[1], s)
        if s.split not in writers:
            meta = DatasetMeta(name=cfg.name, language=cfg.language, direction=direction, alphabet=alphabet,
                               split=s.split, provenance={"importer": cfg.fmt, "root": cfg.root})
            writers[s.split] = DatasetWriter(stage / s.split, meta)
        writers[s.split].add(image, s.text, writer=s.writer)
        if canvas is not None and max(1, int(round(image.shape[1] * canvas[0] / image.shape[0]))) > canvas[1]:
            too_wide[s.split] = too_wide.get(s.split, 0) + 1
    if not writers:
        raise UserError(f"{cfg.root}: every image was skipped ({skipped}); nothing to import")
    if canvas is not None:
        for split, w in writers.items():
            w.meta.stats = {"too_wide": too_wide.get(split, 0), "canvas": f"{canvas[0]}x{canvas[1]}"}
    return {split: writers[split].close() for split in SPLITS if split in writers}


def _read_image(s: Sample, fmt: str, skipped: dict[str, int]) -> np.ndarray | None:
    """Load an image as grey uint8; IAM's empty/unreadable images are skipped and counted."""
    if not s.image.is_file():
        raise located(*s.where, f"image {s.image} does not exist")
    try:
        with Image.open(s.image) as im:
            im.load()
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
        if arr.size == 0:
            raise ValueError("empty image")
        return arr
    except Exception as exc:  # PIL raises many types for corrupt data
        if fmt == "iam":
            skipped["unreadable_images"] = skipped.get("unreadable_images", 0) + 1
            return None
        raise located(*s.where, f"cannot read image {s.image} ({type(exc).__name__})") from None


def _open_page(s: Sample) -> Image.Image:
    if not s.image.is_file():
        raise located(*s.where, f"page image {s.image} does not exist")
    try:
        with Image.open(s.image) as im:
            im.load()
            return im.convert("L")
    except Exception as exc:
        raise located(*s.where, f"cannot read page image {s.image} ({type(exc).__name__})") from None


def _crop(page: Image.Image, s: Sample) -> np.ndarray:
    x0, y0, x1, y1 = s.box
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(page.width, x1), min(page.height, y1)
    if x1 <= x0 or y1 <= y0:
        raise located(*s.where, f"word box {s.box} lies outside the page image {s.image.name} ({page.width}x{page.height})")
    return np.asarray(page.crop((x0, y0, x1, y1)), dtype=np.uint8)


# ---------------------------------------------------------------- format readers


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


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_madcat(root: Path, cfg: ImportConfig) -> Scan:
    """OpenHaRT/MADCAT XML: word boxes from token-image polygons, words from token/source."""
    xmls = [root] if root.is_file() else sorted(root.rglob("*.xml"))
    if not xmls:
        raise UserError(f"{root}: no .xml files found")
    samples = []
    for xml_path in xmls:
        samples.extend(_madcat_file(xml_path, root if root.is_dir() else root.parent))
    return Scan(samples)


def _parse_xml(path: Path) -> tuple[ET.Element, dict]:
    """Parse an XML file with expat; returns the root element and element -> source line."""
    from xml.parsers import expat

    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag, attrs):
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(path.read_bytes(), True)
        root = builder.close()
    except expat.ExpatError as exc:
        raise located(path, exc.lineno, f"malformed XML ({expat.ErrorString(exc.code)})") from None
    except AssertionError:
        raise located(path, None, "malformed XML (no root element)") from None
    return root, lines


def _madcat_file(xml_path: Path, root: Path) -> list[Sample]:
    tree, lines = _parse_xml(xml_path)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    writer, document = None, None
    for el in tree.iter():
        tag = _local(el.tag)
        if tag == "writer" and writer is None:
            writer = el.get("id")
        elif tag == "document" and document is None:
            document = el.get("id")
        elif tag == "token-image":
            pts = [(p.get("x"), p.get("y")) for p in el if _local(p.tag) == "point"]
            try:
                xs, ys = [int(float(x)) for x, _ in pts], [int(float(y)) for _, y in pts]
            except (TypeError, ValueError):
                raise located(xml_path, lines.get(el), f"token-image {el.get('id')}: point without numeric x/y") from None
            if not xs:
                raise located(xml_path, lines.get(el), f"token-image {el.get('id')}: no points")
            boxes[el.get("id")] = (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
    image = next((p for ext in IMAGE_EXTENSIONS for p in (xml_path.with_suffix(ext),
                  xml_path.parent / "images" / f"{xml_path.stem}{ext}", root / "images" / f"{xml_path.stem}{ext}")
                  if p.is_file()), xml_path.with_suffix(".tif"))
    samples = []
    for el in tree.iter():
        if _local(el.tag) != "token":
            continue
        source = next((c for c in el if _local(c.tag) == "source"), None)
        refs = [c.get("ref_id") or c.get("ref-id") or c.get("ref") for c in el if _local(c.tag) == "token-image-ref"]
        text = (source.text if source is not None else el.text) or ""
        if not refs:
            raise located(xml_path, lines.get(el), f"token {el.get('id')}: no token-image-ref")
        try:
            bs = [boxes[r] for r in refs]
        except KeyError as exc:
            raise located(xml_path, lines.get(el), f"token {el.get('id')}: unknown token-image {exc.args[0]!r}") from None
        box = (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))
        samples.append(Sample((xml_path, lines.get(el)), image, text, writer or document or xml_path.stem,
                              _split_from_name(xml_path.relative_to(root).parent) if xml_path.is_relative_to(root) else None,
                              box))
    return samples


READERS = {"rimes": read_rimes, "iam": read_iam, "tsv": read_tsv, "khatt": read_khatt, "madcat": read_madcat}
