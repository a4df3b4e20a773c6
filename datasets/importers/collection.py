"""Writing the collection: every sample's image copied (or cropped from its page) into
stage/<split>/images as grey PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..alphabet import Alphabet
from ..errors import UserError, located
from ..format import DatasetMeta, DatasetWriter
from ..progress import progress
from .common import SPLITS, ImportConfig, Sample


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
