"""`import_dataset`: check the options, run the format's reader, clean the labels, choose the
alphabet, assign the splits and write the collection with its import report, all in a staging
directory (a failed import leaves nothing behind)."""
from __future__ import annotations

from dataclasses import MISSING, fields
import inspect
from pathlib import Path
import sys
from typing import Callable

import numpy as np

from ..alphabet import Alphabet, alphabet_from_texts, for_language
from ..errors import UserError
from ..files import StagingDir, check_new_output
from ..format import write_collection_meta
from .collection import write_collection
from .common import FORMATS, RTL_LANGUAGES, Sample
from .iam import read_iam
from .khatt import read_khatt
from .madcat import read_madcat
from .options import ImportOptions
from .policy import REPORT, BadRecords
from .rimes import read_rimes
from .text import clean, describe
from .tsv import read_tsv

READERS = {"rimes": read_rimes, "iam": read_iam, "tsv": read_tsv, "khatt": read_khatt, "madcat": read_madcat}


def import_dataset(fmt: str, root, out, *, overwrite: bool = False, show_progress: bool = True,
                   log: Callable[[str], None] | None = None, **options) -> Path:
    """Import a real dataset at `root` into the collection `out` (train/val/test splits).

    `options` are the fields of `ImportOptions` (lists, gt, images_dir, split_map, level, on_bad,
    language, name, alphabet_from_data, normalization, strip_diacritics, height, width,
    val_fraction, test_fraction, seed, space_symbol); unknown ones are errors. Images are stored
    unresized; `height`/`width` (a profile's canvas) let the import skip (or, with on_bad="error",
    count) the images that preprocessing will drop as too wide. `log` receives the one-line
    summary per reason of the records left out (default: stderr).
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not Path(root).exists():
        raise UserError(f"--root {root}: does not exist")
    opts = ImportOptions.from_json({**options, "fmt": fmt, "root": str(root)}, where="import options")
    return import_collection(opts, out, overwrite=overwrite, show_progress=show_progress, log=log)


# The study checks a config's importer options against this signature: the option fields.
import_dataset.__signature__ = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("fmt", "root", "out")]
    + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                         default=f.default if f.default is not MISSING else f.default_factory())
       for f in fields(ImportOptions) if f.name not in ("fmt", "root")]
    + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
       for n, d in (("overwrite", False), ("show_progress", True))])


def import_collection(opts: ImportOptions, out, overwrite: bool = False, show_progress: bool = True,
                      log: Callable[[str], None] | None = None) -> Path:
    """Import with checked options (see `import_dataset`)."""
    root = Path(opts.root)
    if not root.exists():
        raise UserError(f"--root {root}: does not exist")
    check_new_output(out, overwrite)   # before reading a large dataset
    bad = BadRecords(opts.on_bad, root)
    samples = READERS[opts.fmt](root, opts, bad)
    if not samples:
        counts = ", ".join(f"{k} {v}" for k, v in bad.counts().items())
        raise UserError(f"{root}: no images found for format {opts.fmt}" + (f" ({counts} left out)" if counts else ""))
    samples = _clean_texts(samples, opts, bad)
    alphabet = _choose_alphabet(samples, opts, bad)
    assign_splits(samples, opts)
    direction = "rtl" if opts.language in RTL_LANGUAGES else "ltr"
    with StagingDir(Path(out), overwrite=overwrite) as stage:
        datasets = write_collection(samples, opts, alphabet, direction, stage, bad, show_progress)
        bad.write_tsv(stage / REPORT)
        extra = {"importer": {"command": "htraug data import", **opts.to_json()},
                 "text_normalization": describe(opts.normalization, opts.strip_diacritics),
                 "skipped": bad.counts(), "report": REPORT}
        write_collection_meta(stage, opts.name, opts.language, direction, alphabet, datasets, extra)
    for line in bad.summary_lines(Path(out) / REPORT):
        (log or (lambda m: print(m, file=sys.stderr)))(line)
    return Path(out)


def _clean_texts(samples: list[Sample], opts: ImportOptions, bad: BadRecords) -> list[Sample]:
    kept = []
    for s in samples:
        text = clean(s.text, opts.normalization, opts.strip_diacritics, opts.space_symbol)
        if not text:
            bad.bad(s.where, "empty_transcription", f"empty transcription for {s.image.name}")
            continue
        s.text = text
        kept.append(s)
    return kept


def _choose_alphabet(samples: list[Sample], opts: ImportOptions, bad: BadRecords) -> Alphabet:
    """The language's built-in alphabet (plus the space symbol for line-level data), or one
    derived from the labels; samples with characters outside it are bad records (removed here)."""
    if opts.alphabet_from_data or opts.language not in ("fr", "ar"):
        return alphabet_from_texts([s.text for s in samples], f"{opts.name}-data")
    alphabet = for_language(opts.language)
    if opts.level == "line":
        alphabet = Alphabet(alphabet.symbols + opts.space_symbol, f"{alphabet.name}+space")
    kept = []
    for s in samples:
        if alphabet.covers(s.text):
            kept.append(s)
            continue
        chars = "".join(alphabet.missing(s.text))
        bad.bad(s.where, "out_of_alphabet", f"transcription {s.text!r} has characters {chars!r} outside the built-in "
                                           f"alphabet '{alphabet.name}' (use --alphabet-from-data)")
    samples[:] = kept
    return alphabet


def assign_splits(samples: list[Sample], opts: ImportOptions) -> None:
    """Give every sample without a split one, by seeded groups of writers (or documents)."""
    todo = [s for s in samples if s.split is None]
    if not todo:
        return
    groups = sorted({s.writer if s.writer is not None else str(s.image) for s in todo})
    order = np.random.default_rng(np.random.SeedSequence([opts.seed, 7])).permutation(len(groups))
    n = len(groups)
    n_val = int(round(n * opts.val_fraction)) if opts.val_fraction > 0 else 0
    n_test = int(round(n * opts.test_fraction)) if opts.test_fraction > 0 else 0
    if n >= 3:
        n_val, n_test = max(n_val, 1 if opts.val_fraction > 0 else 0), max(n_test, 1 if opts.test_fraction > 0 else 0)
    n_val, n_test = min(n_val, max(0, n - 1)), min(n_test, max(0, n - 1 - n_val))
    split_of = {}
    for rank, gi in enumerate(order):
        split_of[groups[gi]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    for s in todo:
        s.split = split_of[s.writer if s.writer is not None else str(s.image)]
