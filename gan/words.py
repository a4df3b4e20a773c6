"""Which words the GAN may render, and the word prior p_w it samples from.

A word is renderable when
  * every character is in the training alphabet,
  * it has at most `max_chars` characters — by default the longest transcription of the GAN's
    training data: preprocessing dropped images wider than the canvas, so that is the longest
    word the canvas has been seen to hold — and
  * its CTC alignment fits the recognizer's frames: len(word) + number of adjacent repeated
    characters ≤ T (R emits T = width / 4 frames), otherwise R's CTC loss is infinite.
"""
from __future__ import annotations

import numpy as np
import torch

from datasets.alphabet import ctc_order
from datasets.errors import UserError


def ctc_frames_needed(word: str) -> int:
    """Minimum number of CTC frames to emit `word` (a blank separates repeated characters)."""
    return len(word) + sum(a == b for a, b in zip(word, word[1:]))


def ctc_targets(words: list[str], alphabet, direction: str) -> torch.Tensor:
    """Concatenated CTC targets in the order R's frames meet the characters: the logical order,
    except digit runs of RTL words, which bidi draws left to right (`datasets.alphabet.ctc_order`).
    Adjacent repeats never change under that reordering, so `ctc_frames_needed` is unaffected."""
    return torch.cat([torch.tensor(alphabet.encode(ctc_order(w, direction)), dtype=torch.long) for w in words])


def word_fits(word: str, alphabet, max_chars: int, frames: int) -> bool:
    return bool(word) and len(word) <= max_chars and ctc_frames_needed(word) <= frames and alphabet.covers(word)


def build_prior(language: str, alphabet, max_chars: int, frames: int, texts=None, stored: dict | None = None):
    """p_w: the built-in wordfreq prior for 'fr'/'ar', otherwise the training labels' empirical
    prior (`texts`, or `stored` = {"words", "probs"} from a checkpoint), restricted to words that fit."""
    from datasets.words import WordPrior, make_prior, prior_from_texts

    if stored is not None:
        prior = WordPrior(language, tuple(stored["words"]), np.asarray(stored["probs"], dtype=np.float64), stored.get("source", "labels"))
    elif language in ("fr", "ar"):
        prior = make_prior(language, alphabet, max_chars)
    else:
        if not texts:
            raise UserError(f"no word prior for language {language!r} and no training labels to estimate one")
        prior = prior_from_texts(texts, language)
    return prior.filtered(lambda w: word_fits(w, alphabet, max_chars, frames))


def stored_prior(prior) -> dict | None:
    """The prior's words and probabilities for a checkpoint (only for label-estimated priors)."""
    if prior.source.startswith("wordfreq"):
        return None
    return {"words": list(prior.words), "probs": torch_free_list(prior.probs), "source": prior.source}


def torch_free_list(a) -> list[float]:
    return [float(x) for x in np.asarray(a, dtype=np.float64)]


def distinct_words(prior, k: int, rng: np.random.Generator, tries: int = 20) -> list[str]:
    """Up to k different words drawn from the prior (for sample grids)."""
    out: list[str] = []
    for _ in range(tries):
        for w in prior.sample(4 * k, rng):
            if w not in out:
                out.append(w)
            if len(out) == k:
                return out
    return out


INK_THRESHOLD = 128   # uint8 value below which a pixel counts as ink


def ink_columns(image: np.ndarray) -> np.ndarray:
    """Indices of an image's columns holding ink (any pixel darker than `INK_THRESHOLD`)."""
    return np.flatnonzero((np.asarray(image) < INK_THRESHOLD).any(axis=0))


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """Up to `limit` evenly spaced indices of range(n), first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64))


def estimate_char_px(images: np.ndarray, texts: list[str], direction: str, limit: int = 4000) -> float:
    """Median canvas pixels per character of the real words: the inked extent from the writing
    side (LTR: from the left edge, RTL: from the right edge) over the transcription length,
    on up to `limit` evenly spaced images. The layout rule of aligned conditioning."""
    n = len(texts)
    if n == 0:
        raise UserError("cannot estimate the character width of an empty dataset")
    ratios = []
    for i in evenly_spaced(n, limit):
        ink = ink_columns(images[i])
        if len(ink) == 0 or not texts[i]:
            continue
        width = images[i].shape[1]
        extent = ink[-1] + 1 if direction == "ltr" else width - ink[0]
        ratios.append(extent / len(texts[i]))
    if not ratios:
        raise UserError("no inked real image to estimate the character width from")
    return float(np.median(ratios))
