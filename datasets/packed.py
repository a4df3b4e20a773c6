"""Packed cache: all preprocessed images of a dataset directory in one memory-mapped uint8 array.

Files live in `<dataset>/.cache/packed-<H>x<W>.{u8,json}`. The JSON index records a key built
from labels.tsv, meta.json and the preprocessing size; a stale or missing cache is rebuilt.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
import multiprocessing as mp
import os
from pathlib import Path
import sys

import numpy as np

from .cpus import available_cpus
from .files import atomic_file, atomic_write_json
from .format import LABELS, META, Dataset, load_dataset
from .preprocess import fit_to_canvas
from .progress import progress

CACHE_DIR = ".cache"
CACHE_VERSION = 1
PACK_CHUNK = 256          # images per task when packing in several processes
PACK_MAX_WORKERS = 16


@dataclass
class PackedImages:
    """Preprocessed images (N, H, W) uint8 plus the transcriptions that survived preprocessing."""

    images: np.ndarray
    texts: list[str]
    paths: list[str]
    dropped: int
    direction: str

    def __len__(self) -> int:
        return len(self.texts)


def _cache_key(root: Path, height: int, width: int) -> str:
    h = hashlib.sha256()
    for name in (LABELS, META):
        h.update((root / name).read_bytes())
    h.update(f"{height}x{width}:v{CACHE_VERSION}".encode())
    return h.hexdigest()


def load_packed(dataset: Dataset | str | os.PathLike, height: int, width: int, show_progress: bool = True) -> PackedImages:
    """Return the packed images of `dataset` at (height, width), building the cache when stale."""
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    root = ds.root
    cache = root / CACHE_DIR
    base = cache / f"packed-{height}x{width}"
    index_path, data_path = base.with_suffix(".json"), base.with_suffix(".u8")
    key = _cache_key(root, height, width)
    index = None
    if index_path.is_file() and data_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            index = None
    if index is None or index.get("key") != key:
        index = _build(ds, height, width, data_path, index_path, key, show_progress)
    n = len(index["texts"])
    images = np.memmap(data_path, dtype=np.uint8, mode="r", shape=(n, height, width)) if n else np.zeros((0, height, width), np.uint8)
    return PackedImages(images, index["texts"], index["paths"], index["dropped"], ds.meta.direction)


def pack_workers(n_images: int) -> int:
    """Processes used to decode and preprocess: the CPUs this process may use (at most
    PACK_MAX_WORKERS), one for sets too small to repay starting a pool."""
    return 1 if n_images < 2 * PACK_CHUNK else max(1, min(available_cpus(), PACK_MAX_WORKERS, n_images // PACK_CHUNK))


_WORKER_DS: list = []   # the dataset a packing worker process reads (set by its initializer)


def _init_pack_worker(root: str) -> None:
    _WORKER_DS[:] = [load_dataset(root)]


def _packed_row(ds: Dataset, i: int, height: int, width: int, direction: str) -> bytes | None:
    """Preprocessed bytes of image i (None where the image does not fit the canvas)."""
    canvas = fit_to_canvas(ds.load_image(i), height, width, direction)
    return None if canvas is None else canvas.tobytes()


def _pack_chunk(task: tuple[int, int, int, int, str]) -> list[bytes | None]:
    """Preprocessed bytes of images [start, stop) (None where the image does not fit)."""
    start, stop, height, width, direction = task
    return [_packed_row(_WORKER_DS[0], i, height, width, direction) for i in range(start, stop)]


def _packed_rows(ds: Dataset, height: int, width: int, workers: int):
    """Yield (index, bytes or None) for every image in order, decoding in `workers` processes."""
    if workers <= 1:
        for i in range(len(ds)):
            yield i, _packed_row(ds, i, height, width, ds.meta.direction)
        return
    tasks = [(a, min(a + PACK_CHUNK, len(ds)), height, width, ds.meta.direction) for a in range(0, len(ds), PACK_CHUNK)]
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with mp.get_context(method).Pool(workers, initializer=_init_pack_worker, initargs=(str(ds.root),)) as pool:
        for (start, *_), rows in zip(tasks, pool.imap(_pack_chunk, tasks)):
            for k, row in enumerate(rows):
                yield start + k, row


def _build(ds: Dataset, height: int, width: int, data_path: Path, index_path: Path, key: str, show_progress: bool) -> dict:
    """Write the packed file (the same bytes whatever the number of worker processes)."""
    texts, paths, dropped = [], [], 0
    bar = progress(total=len(ds), desc=f"packing {ds.root.name} {height}x{width}", disable=not show_progress)
    try:
        with atomic_file(data_path, "wb") as f:
            for i, row in _packed_rows(ds, height, width, pack_workers(len(ds))):
                bar.update(1)
                if row is None:
                    dropped += 1
                    continue
                f.write(row)
                texts.append(ds.entries[i][1])
                paths.append(ds.entries[i][0])
    finally:
        bar.close()
    index = {"key": key, "height": height, "width": width, "texts": texts, "paths": paths, "dropped": dropped}
    atomic_write_json(index_path, index)
    return index
