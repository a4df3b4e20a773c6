"""Readability of generated word images (docs/DESIGN.md §7.4): ED/WER of a frozen judge recognizer on the
generated images against the words they were asked to show — the automated form of the
paper's visual inspection.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.errors import UserError
from htr.checkpoint import as_recognizer, canvas_of


def readability(judge, images_u8: np.ndarray, words: list[str], batch_size: int = 64, device: str = "cpu") -> dict:
    """ED/WER (%) of the judge's greedy transcriptions of `images_u8` (N, H, W) against `words`.

    Returns benchmark.metrics.text.text_metrics' dict (cer, wer, *_ci, n, …) plus `hypotheses`.
    """
    from htr.evaluate import recognize

    from .text import text_metrics

    images_u8 = np.asarray(images_u8)
    if images_u8.ndim != 3 or images_u8.dtype != np.uint8:
        raise UserError(f"readability needs uint8 images (N, H, W), got {images_u8.dtype} {tuple(images_u8.shape)}")
    if len(words) != len(images_u8):
        raise UserError(f"{len(images_u8)} images but {len(words)} words")
    if len(words) == 0:
        raise UserError("readability needs at least one image")
    model, alphabet, _info = as_recognizer(judge, device)
    if images_u8.shape[1] != model.height:
        raise UserError(f"images are {images_u8.shape[1]} pixels high but the judge recognizer expects {model.height}")
    hyps = recognize(model, alphabet, images_u8, batch_size, device)   # converts batch by batch
    out = text_metrics(list(words), hyps)
    out["hypotheses"] = hyps
    return out


def readability_of_dataset(judge, data_dir, n: int | None = None, seed: int = 0, batch_size: int = 64,
                           device: str = "cpu") -> dict:
    """Readability of a generated dataset directory: its images against its own labels.tsv words,
    preprocessed to the judge's canvas; `n` takes a seeded subsample."""
    from datasets.format import load_dataset
    from datasets.packed import load_packed

    from .features import subsample_indices

    model, alphabet, info = as_recognizer(judge, device)
    ds = load_dataset(Path(data_dir))
    height, width = canvas_of(model, info)
    packed = load_packed(ds, height, width, show_progress=False)
    if len(packed) == 0:
        raise UserError(f"{data_dir}: no image fits {height}x{width} after preprocessing")
    idx = subsample_indices(len(packed), n, seed, str(data_dir))
    images = np.asarray(packed.images if idx is None else packed.images[idx])
    words = list(packed.texts) if idx is None else [packed.texts[i] for i in idx]
    out = readability((model, alphabet, info), images, words, batch_size, device)
    out["dropped"] = packed.dropped
    return out
