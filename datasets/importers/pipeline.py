"""`import_dataset`: check the options, run the format's reader, clean the labels, choose the
alphabet, assign the splits and write the collection."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
import re

import numpy as np

from ..alphabet import Alphabet, alphabet_from_texts, for_language, normalize_text
from ..errors import UserError, located
from ..files import StagingDir
from ..format import write_collection_meta
from .collection import _write
from .common import DEFAULT_LANGUAGE, FORMATS, RTL_LANGUAGES, SPLITS, ImportConfig, Sample
from .iam import read_iam
from .khatt import read_khatt
from .madcat import read_madcat
from .rimes import read_rimes
from .tsv import read_tsv

READERS = {"rimes": read_rimes, "iam": read_iam, "tsv": read_tsv, "khatt": read_khatt, "madcat": read_madcat}


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
