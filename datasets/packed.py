"""Packed cache: all preprocessed images of a dataset directory in one memory-mapped uint8 array
(docs/DESIGN.md §4.2).

Files live in `<dataset>/.cache/packed-<H>x<W>.{u8,json}`. The JSON index records a key built
from labels.tsv, meta.json, the preprocessing size and the size and modification time of every
image, and a content digest of every image: a cache is used only when its key matches and a
random sample of `SAMPLED_CHECKS` images (all of them with `verify=True` or $HTRAUG_VERIFY_CACHE=1)
still has the recorded bytes. Anything else rebuilds it, so replacing, truncating or blanking an
image in place is seen. `use_cache=False` preprocesses in memory and neither reads nor writes
the cache.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import io
import json
import multiprocessing as mp
import os
from pathlib import Path
import random
import sys

import numpy as np

from .cpus import available_cpus
from .files import atomic_file, atomic_write_json, remove_stale
from .format import LABELS, META, Dataset, load_dataset, read_grey_png
from .preprocess import fit_to_canvas
from .progress import progress

CACHE_DIR = ".cache"
CACHE_VERSION = 2
PACK_CHUNK = 256          # images per task when packing in several processes
PACK_MAX_WORKERS = 16
SAMPLED_CHECKS = 16       # images whose bytes are compared with the index on every load
VERIFY_ENV = "HTRAUG_VERIFY_CACHE"


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


def _file_stats(ds: Dataset) -> list[tuple[int, int]]:
    """(size, mtime in ns) of every image in entry order; (-1, -1) for a missing one."""
    out = []
    for i in range(len(ds)):
        try:
            st = os.stat(ds.image_path(i))
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((-1, -1))
    return out


def _cache_key(root: Path, height: int, width: int, stats: list[tuple[int, int]]) -> str:
    h = hashlib.sha256()
    for name in (LABELS, META):
        h.update((root / name).read_bytes())
    h.update(f"{height}x{width}:v{CACHE_VERSION}".encode())
    h.update(json.dumps(stats, separators=(",", ":")).encode())
    return h.hexdigest()


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _verify_all() -> bool:
    return os.environ.get(VERIFY_ENV, "").strip().lower() not in ("", "0", "no", "false")


def _contents_match(ds: Dataset, digests: list, verify: bool) -> bool:
    """Whether the images still have the bytes the index recorded (a random sample, or all)."""
    if not isinstance(digests, list) or len(digests) != len(ds):
        return False
    n = len(ds)
    chosen = range(n) if verify or n <= SAMPLED_CHECKS else random.Random().sample(range(n), SAMPLED_CHECKS)
    for i in chosen:
        try:
            if _digest(ds.image_path(i).read_bytes()) != digests[i]:
                return False
        except OSError:
            return False
    return True


def load_packed(dataset: Dataset | str | os.PathLike, height: int, width: int, show_progress: bool = True,
                use_cache: bool = True, verify: bool = False) -> PackedImages:
    """Return the packed images of `dataset` at (height, width), building the cache when stale.

    `verify`: compare every image's bytes with the index (also $HTRAUG_VERIFY_CACHE=1); by default
    a random sample is compared. `use_cache=False`: preprocess in memory, no cache files."""
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if not use_cache:
        images, index = _build(ds, height, width, None, show_progress)
        return PackedImages(images, index["texts"], index["paths"], index["dropped"], ds.meta.direction)
    root = ds.root
    cache = root / CACHE_DIR
    base = cache / f"packed-{height}x{width}"
    index_path, data_path = base.with_suffix(".json"), base.with_suffix(".u8")
    remove_stale(cache)                   # temporary files of a packer that was killed
    key = _cache_key(root, height, width, _file_stats(ds))
    index = None
    if index_path.is_file() and data_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            index = None
    n_bytes = None
    if isinstance(index, dict) and isinstance(index.get("texts"), list):
        n_bytes = len(index["texts"]) * height * width
    if (not isinstance(index, dict) or index.get("key") != key or data_path.stat().st_size != n_bytes
            or not _contents_match(ds, index.get("digests"), verify or _verify_all())):
        _, index = _build(ds, height, width, data_path, show_progress)
        index["key"] = key
        atomic_write_json(index_path, index)
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


def _packed_row(ds: Dataset, i: int, height: int, width: int, direction: str) -> tuple[bytes | None, str]:
    """Preprocessed bytes of image i (None where the image does not fit the canvas) and the
    digest of its file."""
    path = ds.image_path(i)
    try:
        data = path.read_bytes()
    except OSError:
        ds.load_image(i)                  # the one-line error naming labels.tsv's line
        raise
    canvas = fit_to_canvas(read_grey_png(path, ds.root / LABELS, i + 1, data=data), height, width, direction)
    return (None if canvas is None else canvas.tobytes()), _digest(data)


def _pack_chunk(task: tuple[int, int, int, int, str]) -> list[tuple[bytes | None, str]]:
    """Preprocessed bytes of images [start, stop) (None where the image does not fit)."""
    start, stop, height, width, direction = task
    return [_packed_row(_WORKER_DS[0], i, height, width, direction) for i in range(start, stop)]


def _packed_rows(ds: Dataset, height: int, width: int, workers: int):
    """Yield (index, (bytes or None, digest)) for every image in order, decoding in `workers` processes."""
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


def _build(ds: Dataset, height: int, width: int, data_path: Path | None, show_progress: bool) -> tuple[np.ndarray | None, dict]:
    """Preprocess every image into `data_path` (the same bytes whatever the number of worker
    processes), or into memory when `data_path` is None; returns (images in memory, index)."""
    texts, paths, digests, dropped = [], [], [], 0
    bar = progress(total=len(ds), desc=f"packing {ds.root.name} {height}x{width}", disable=not show_progress)

    def fill(f) -> None:
        nonlocal dropped
        for i, (row, digest) in _packed_rows(ds, height, width, pack_workers(len(ds))):
            bar.update(1)
            digests.append(digest)
            if row is None:
                dropped += 1
                continue
            f.write(row)
            texts.append(ds.entries[i][1])
            paths.append(ds.entries[i][0])

    images = None
    try:
        if data_path is None:
            buf = io.BytesIO()
            fill(buf)
            images = np.frombuffer(buf.getbuffer(), dtype=np.uint8).reshape(len(texts), height, width).copy()
        else:
            with atomic_file(data_path, "wb") as f:
                fill(f)
    finally:
        bar.close()
    index = {"key": None, "height": height, "width": width, "texts": texts, "paths": paths, "dropped": dropped,
             "digests": digests}
    return images, index
