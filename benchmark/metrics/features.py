"""Inputs of the distribution metrics: one loader for image sets, feature extractors, cached stats.

An image set is given as a uint8 array (N, H, W), a dataset directory (meta.json + labels.tsv,
preprocessed through the packed cache), a folder of image files of one size, or a `.npy` file.
Feature statistics (mu, sigma) are cached under `<set>/.cache/` keyed by the content hash of
the exact images used, the extractor identity and N.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from datasets.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
CACHE_DIR = ".cache"
STATS_VERSION = 1
INCEPTION_ENV = "HTRAUG_INCEPTION_WEIGHTS"


# ----------------------------------------------------------------------------------------------
# Loading image sets and point sets


def subsample_indices(n_total: int, n: int | None, seed: int, where: str) -> np.ndarray | None:
    """Sorted indices of a seeded subsample of size n (None = take everything)."""
    if n is None or n == n_total:
        return None
    if n < 1:
        raise UserError(f"{where}: sample size must be ≥ 1, got {n}")
    if n > n_total:
        raise UserError(f"{where}: has {n_total} images, fewer than the {n} asked for")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def _check_image_array(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim != 3:
        raise UserError(f"{where}: expected images of shape (N, H, W), got shape {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise UserError(f"{where}: expected uint8 images, got dtype {arr.dtype}")
    return arr


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise UserError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return files


def _load_folder(folder: Path, height: int | None, width: int | None, n: int | None, seed: int) -> np.ndarray:
    """All images of a folder (greyscale), which must share one size."""
    from datasets.format import read_grey_png

    files = _folder_files(folder)
    idx = subsample_indices(len(files), n, seed, str(folder))
    chosen = files if idx is None else [files[i] for i in idx]
    first = read_grey_png(chosen[0])
    want = (height or first.shape[0], width or first.shape[1])
    out = np.empty((len(chosen), *want), dtype=np.uint8)
    for i, path in enumerate(chosen):
        img = first if i == 0 else read_grey_png(path)
        if img.shape != want:
            ref = f"{height}x{width} (asked for)" if height or width else f"{want[0]}x{want[1]} like {chosen[0].name}"
            raise UserError(f"{path}: image is {img.shape[0]}x{img.shape[1]}, expected {ref}; all images of a folder "
                            f"must have one size (use a dataset directory to resize)")
        out[i] = img
    return out


def _load_dataset_dir(root: Path, height: int | None, width: int | None, n: int | None, seed: int,
                      use_cache: bool = True) -> np.ndarray:
    """Images of a dataset directory, preprocessed to (height, width) through the packed cache
    (`use_cache=False`: in memory, without it)."""
    from datasets.format import load_dataset
    from datasets.packed import load_packed

    ds = load_dataset(root)
    height = height or ds.meta.height
    width = width or ds.meta.width
    if not height or not width:
        raise UserError(f"{root}: meta.json has no height/width; give the image size (--height/--width)")
    packed = load_packed(ds, int(height), int(width), show_progress=False, use_cache=use_cache)
    idx = subsample_indices(len(packed), n, seed, str(root))
    return np.array(packed.images if idx is None else packed.images[idx])


def load_images(path, height: int | None = None, width: int | None = None, n: int | None = None,
                seed: int = 0, use_cache: bool = True) -> np.ndarray:
    """Load an image set as uint8 (N, H, W).

    `path` is a uint8 array, a dataset directory, a folder of images of one size, or a `.npy`
    file holding (N, H, W) uint8. `n` draws a seeded subsample without replacement (sorted
    order); `height`/`width` set the preprocessing size of dataset directories and are checked
    against folders and arrays.
    """
    if isinstance(path, np.ndarray):
        arr = _check_image_array(path, "image array")
        idx = subsample_indices(len(arr), n, seed, "image array")
        arr = arr if idx is None else arr[idx]
    else:
        p = Path(path)
        if p.is_dir():
            if (p / "meta.json").is_file():
                return _load_dataset_dir(p, height, width, n, seed, use_cache)
            return _load_folder(p, height, width, n, seed)
        if p.suffix == ".npy" and p.is_file():
            arr = _check_image_array(_read_npy(p), str(p))
            idx = subsample_indices(len(arr), n, seed, str(p))
            arr = np.asarray(arr if idx is None else arr[idx])
        elif not p.exists():
            raise UserError(f"{p}: no such dataset directory, image folder or .npy file")
        else:
            raise UserError(f"{p}: expected a dataset directory, an image folder or a .npy file")
    if (height and arr.shape[1] != height) or (width and arr.shape[2] != width):
        raise UserError(f"images are {arr.shape[1]}x{arr.shape[2]}, expected {height or arr.shape[1]}x{width or arr.shape[2]}")
    return arr


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/… for bad files
        raise UserError(f"{path}: cannot read .npy ({type(exc).__name__}: {exc})") from None


def load_points(path, height: int | None = None, width: int | None = None, n: int | None = None,
                seed: int = 0) -> np.ndarray:
    """A point cloud (N, D) for the Geometry Score: a 2-D array / `.npy` as is (any numeric
    dtype), or an image set flattened to (N, H·W) uint8 (uint8 is kept: it makes GS exact)."""
    if isinstance(path, (str, os.PathLike)) and Path(path).suffix == ".npy" and Path(path).is_file():
        arr = _read_npy(Path(path))
        where = str(path)
    elif isinstance(path, np.ndarray):
        arr, where = path, "array"
    else:
        arr, where = load_images(path, height, width, n, seed), str(path)
        return arr.reshape(len(arr), -1)
    if arr.ndim == 3:
        arr = arr.reshape(len(arr), -1)
    if arr.ndim != 2:
        raise UserError(f"{where}: expected points (N, D) or images (N, H, W), got shape {tuple(arr.shape)}")
    if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)):
        raise UserError(f"{where}: expected real numbers, got dtype {arr.dtype}")
    idx = subsample_indices(len(arr), n, seed, where)
    return np.asarray(arr if idx is None else arr[idx])


def check_features(feats: np.ndarray, where: str, minimum: int = 2) -> np.ndarray:
    """Validate a feature matrix (N, D): enough rows, all finite. Returns float64."""
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise UserError(f"{where}: expected features (N, D), got shape {tuple(feats.shape)}")
    if len(feats) < minimum:
        raise UserError(f"{where}: needs at least {minimum} samples, got {len(feats)}")
    feats = feats.astype(np.float64, copy=False)
    if not np.isfinite(feats).all():
        bad = int((~np.isfinite(feats)).any(axis=1).sum())
        raise UserError(f"{where}: {bad} of {len(feats)} feature vectors contain NaN or infinity")
    return feats


# ----------------------------------------------------------------------------------------------
# Feature extractors


@dataclass(frozen=True)
class ExtractorConfig:
    """Which features the distribution metrics (FID, KID) use and how they are computed."""

    name: str = "inception"                  # "inception" | "htr"
    inception_weights: str | None = None      # pt_inception-2015-12-05 state dict (or $HTRAUG_INCEPTION_WEIGHTS)
    judge: str | None = None                  # run directory / checkpoint of the judge recognizer
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self):
        if self.name not in EXTRACTORS:
            raise UserError(f"unknown feature extractor {self.name!r} (choose from {', '.join(EXTRACTORS)})")
        if self.batch_size < 1:
            raise UserError(f"batch size must be ≥ 1, got {self.batch_size}")


@dataclass
class Extractor:
    """A loaded feature extractor: `fn(images_u8 (N,H,W)) -> (N, F)` plus its identity."""

    name: str
    identity: str                    # goes into the stats cache key
    fn: Callable[[np.ndarray], np.ndarray]
    height: int | None = None        # preferred preprocessing size of dataset directories
    width: int | None = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.fn(images)


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def inception_weights_path(explicit: str | None) -> Path:
    """The local pt_inception weights file from the option or $HTRAUG_INCEPTION_WEIGHTS."""
    value = explicit or os.environ.get(INCEPTION_ENV)
    if not value:
        raise UserError(f"inception features need the pytorch-fid weights file pt_inception-2015-12-05-6726825d.pth: "
                        f"pass --inception-weights FILE or set {INCEPTION_ENV} (never downloaded)")
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: inception weights file not found (pass --inception-weights FILE or set {INCEPTION_ENV})")
    return path


def _inception_extractor(cfg: ExtractorConfig) -> Extractor:
    """The FID InceptionV3; the network is built on first use (stats-cache hits never load it)."""
    from .inception import inception_features, load_inception

    path = inception_weights_path(cfg.inception_weights)
    loaded: list = []  # the model, once built

    def fn(imgs: np.ndarray) -> np.ndarray:
        if not loaded:
            loaded.append(load_inception(path, cfg.device))
        return inception_features(loaded[0], imgs, cfg.batch_size, cfg.device)

    return Extractor("inception", f"inception:{file_digest(path)[:16]}", fn)


def _htr_extractor(cfg: ExtractorConfig) -> Extractor:
    if not cfg.judge:
        raise UserError("htr features need a judge recognizer: pass --judge RUN (a run directory or checkpoint)")
    from htr.checkpoint import canvas_of, load_recognizer

    model, _alphabet, info = load_recognizer(cfg.judge, cfg.device)
    fn = lambda imgs: judge_features(model, imgs, cfg.batch_size, cfg.device)  # noqa: E731
    ident = f"htr:{file_digest(Path(info['path']))[:16]}"
    height, width = canvas_of(model, info)
    return Extractor("htr", ident, fn, height=height, width=width)


EXTRACTORS = {"inception": _inception_extractor, "htr": _htr_extractor}


def make_extractor(cfg: ExtractorConfig) -> Extractor:
    """Load the feature extractor named by `cfg` (one-line UserError when it cannot be)."""
    return EXTRACTORS[cfg.name](cfg)


def judge_features(model, images: np.ndarray, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Pooled encoder features of a frozen recognizer: uint8 (N,H,W) → float64 (N, F)."""
    import torch

    from datasets.torch_dataset import unit_batch

    if images.shape[1] != model.height:
        raise UserError(f"images are {images.shape[1]} pixels high but the judge recognizer expects {model.height}")
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = unit_batch(np.asarray(images[start:start + batch_size]), device)
                out.append(model.features(x).double().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0))


# ----------------------------------------------------------------------------------------------
# Cached feature statistics


def images_digest(images: np.ndarray) -> str:
    """Content hash of an image array (shape + bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


def cache_dir_for(source) -> Path | None:
    """`<dir>/.cache` for a dataset directory or an image folder; None for arrays and files."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return Path(source) / CACHE_DIR
    return None


def stats_from_features(feats: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of a feature matrix (N ≥ 2)."""
    feats = check_features(feats, where)
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def cached_stats(images: np.ndarray, extractor: Extractor, source, where: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(mu, sigma, from_cache) of the extractor's features of `images`, using `<source>/.cache`."""
    cache = cache_dir_for(source)
    path = None
    if cache is not None:  # hashing the images costs about a second per GB: only with a cache
        key = f"featstats-{extractor.name}-n{len(images)}-" + hashlib.sha256(
            f"{images_digest(images)}|{extractor.identity}|v{STATS_VERSION}".encode()).hexdigest()[:24]
        path = cache / f"{key}.npz"
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                return z["mu"], z["sigma"], True
        except Exception:  # a damaged cache file is recomputed
            pass
    mu, sigma = stats_from_features(extractor(images), where)
    if path is not None:
        _save_npz_atomic(path, mu=mu, sigma=sigma)
    return mu, sigma, False


def _save_npz_atomic(path: Path, **arrays) -> None:
    from datasets.files import atomic_file

    try:
        with atomic_file(path, "wb") as f:
            np.savez(f, **arrays)
    except UserError:
        pass  # read-only dataset: run without the cache


@dataclass
class FeatureSet:
    """Features (or their statistics) of one side of a comparison."""

    n: int
    feats: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    cached: bool = False
    load_seconds: float = 0.0        # reading / preprocessing the images
    feature_seconds: float = 0.0     # the extractor and the statistics


def side_features(source, extractor_cfg: ExtractorConfig, n: int | None, seed: int, need_feats: bool,
                  extractor: Extractor | None = None, height: int | None = None, width: int | None = None,
                  use_cache: bool = True) -> FeatureSet:
    """Features of one side: 2-D arrays / `.npy` files are taken as features as they are;
    image sets go through the extractor (statistics cached when only statistics are needed)."""
    given = _given_features(source)
    if given is not None:
        idx = subsample_indices(len(given), n, seed, str(source) if not isinstance(source, np.ndarray) else "features")
        feats = check_features(given if idx is None else given[idx], "features")
        return FeatureSet(len(feats), feats=feats, mu=feats.mean(axis=0), sigma=np.cov(feats, rowvar=False) if len(feats) > 1 else None)
    if extractor is None:
        extractor = make_extractor(extractor_cfg)
    t0 = time.perf_counter()
    images = load_images(source, height or extractor.height, width or extractor.width, n, seed, use_cache)
    t1 = time.perf_counter()
    where = source if isinstance(source, (str, os.PathLike)) else "images"
    if len(images) < 2:
        raise UserError(f"{where}: needs at least 2 images, got {len(images)}")
    if need_feats:
        feats = check_features(extractor(images), f"{where} features")
        return FeatureSet(len(feats), feats=feats, load_seconds=t1 - t0, feature_seconds=time.perf_counter() - t1)
    mu, sigma, hit = cached_stats(images, extractor, source if use_cache else None, f"{where} features")
    return FeatureSet(len(images), mu=mu, sigma=sigma, cached=hit, load_seconds=t1 - t0,
                      feature_seconds=time.perf_counter() - t1)


def needs_extractor(*sources) -> bool:
    """Whether any of the sources is an image set (not already a feature matrix); a missing
    path is reported first (before any extractor is loaded)."""
    for s in sources:
        if isinstance(s, (str, os.PathLike)) and not Path(s).exists():
            raise UserError(f"{s}: no such dataset directory, image folder or .npy file")
    return any(_given_features(s) is None for s in sources)


def _given_features(source) -> np.ndarray | None:
    """A 2-D array or `.npy` file of features, else None."""
    if isinstance(source, np.ndarray):
        return source if source.ndim == 2 else None
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix == ".npy" and Path(source).is_file():
        arr = _read_npy(Path(source))
        return np.asarray(arr) if arr.ndim == 2 else None
    return None
