"""Writing the collection: every sample's image copied (or cropped from its page) into
stage/<split>/images as grey PNG, with missing, unreadable, outside-the-page and too-wide images
handled by the bad-record policy."""
from __future__ import annotations

from pathlib import Path
import warnings

import numpy as np
from PIL import Image

from ..alphabet import Alphabet
from ..errors import UserError
from ..format import Dataset, DatasetMeta, DatasetWriter
from ..progress import progress
from .common import SPLITS, Sample, relative_to_root
from .options import ImportOptions
from .policy import BadRecords


def resized_width(width: int, height: int, canvas_height: int) -> int:
    """The width of a `width` × `height` image resized isometrically to `canvas_height`, rounded
    as `datasets.preprocess.fit_to_canvas` rounds it (an image is too wide when this exceeds the
    canvas width)."""
    return max(1, int(round(width * canvas_height / height)))


def write_collection(samples: list[Sample], opts: ImportOptions, alphabet: Alphabet, direction: str, stage: Path,
                     bad: BadRecords, show_progress: bool) -> dict[str, Dataset]:
    """Copy (or crop) every image into stage/<split>/images; returns the closed datasets."""
    root = Path(opts.root)
    writers: dict[str, DatasetWriter] = {}
    too_wide: dict[str, int] = {}
    canvas = (opts.height, opts.width) if opts.height else None
    pages = _PageCache(bad)
    for s in progress(samples, desc=f"importing {opts.fmt}", disable=not show_progress):
        image = _read_image(s, root, bad) if s.box is None else pages.crop(s, root)
        if image is None:
            continue
        if canvas is not None and resized_width(image.shape[1], image.shape[0], canvas[0]) > canvas[1]:
            too_wide[s.split] = too_wide.get(s.split, 0) + 1
            if bad.mode == "skip":
                bad.skip_too_wide(s.where, f"image {relative_to_root(s.image, root)} ({image.shape[1]}x{image.shape[0]}"
                                           f"{'' if s.box is None else f' box {s.box}'}) is wider than {canvas[1]} "
                                           f"at height {canvas[0]}")
                continue
        if s.split not in writers:
            meta = DatasetMeta(name=opts.name, language=opts.language, direction=direction, alphabet=alphabet,
                               height=opts.height, width=opts.width,   # the intended canvas, when given
                               split=s.split, provenance={"importer": opts.fmt, "root": opts.root})
            writers[s.split] = DatasetWriter(stage / s.split, meta)
        writers[s.split].add(image, s.text, writer=s.writer)
    if not writers:
        counts = ", ".join(f"{k} {v}" for k, v in bad.counts().items())
        raise UserError(f"{opts.root}: every record was left out ({counts}); nothing to import")
    if canvas is not None:
        kept = bad.mode == "error"
        for split, w in writers.items():
            w.meta.stats = {"too_wide": too_wide.get(split, 0), "canvas": f"{canvas[0]}x{canvas[1]}",
                            "too_wide_policy": "kept" if kept else "skipped"}
    return {split: writers[split].close() for split in SPLITS if split in writers}


def _decode(path: Path) -> np.ndarray:
    with warnings.catch_warnings():    # PIL warns about damaged metadata; a damaged image raises below
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
    if arr.size == 0:
        raise ValueError("empty image")
    return arr


def _read_image(s: Sample, root: Path, bad: BadRecords) -> np.ndarray | None:
    """An image as grey uint8, or None when it is missing or unreadable (skip mode)."""
    if not s.image.is_file():
        bad.bad(s.where, "missing_image", f"image {s.image} does not exist")
        return None
    try:
        return _decode(s.image)
    except Exception as exc:  # PIL raises many types for corrupt data
        bad.bad(s.where, "unreadable_image", f"cannot read image {s.image} ({type(exc).__name__})")
        return None


class _PageCache:
    """The page image of the latest sample (page-level formats list a page's words together)."""

    def __init__(self, bad: BadRecords):
        self.bad = bad
        self.path: Path | None = None
        self.page: np.ndarray | None = None
        self.error: tuple[str, str] | None = None

    def crop(self, s: Sample, root: Path) -> np.ndarray | None:
        if s.image != self.path:
            self.path, self.page, self.error = s.image, None, None
            if not s.image.is_file():
                self.error = ("missing_image", f"page image {s.image} does not exist")
            else:
                try:
                    self.page = _decode(s.image)
                except Exception as exc:
                    self.error = ("unreadable_image", f"cannot read page image {s.image} ({type(exc).__name__})")
        if self.error is not None:
            self.bad.bad(s.where, *self.error)
            return None
        h, w = self.page.shape
        x0, y0, x1, y1 = s.box
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            self.bad.bad(s.where, "box_outside_page", f"word box {s.box} lies outside the page image "
                                                      f"{s.image.name} ({w}x{h})")
            return None
        return np.ascontiguousarray(self.page[y0:y1, x0:x1])
