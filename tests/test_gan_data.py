"""Tiny drawn word-image datasets for the GAN tests (no fonts needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.alphabet import Alphabet
from datasets.format import DatasetMeta, DatasetWriter, StagingDir, load_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


TINY_ALPHABET = Alphabet("abcdelmnorst", "tiny")
TINY_WORDS = ["le", "des", "mot", "tres", "bal", "cane", "sort", "nerd"]


def make_tiny(out: Path, n: int = 24, height: int = 16, width: int = 64, language: str = "xx",
              direction: str = "ltr", alphabet: Alphabet = TINY_ALPHABET, seed: int = 0) -> Path:
    """A dataset directory of `n` noisy stroke images labelled with short words."""
    rng = np.random.default_rng(seed)
    meta = DatasetMeta(name="tiny", language=language, direction=direction, alphabet=alphabet,
                       height=height, width=width, split="train")
    with StagingDir(out) as tmp:
        writer = DatasetWriter(tmp, meta)
        for i in range(n):
            word = TINY_WORDS[i % len(TINY_WORDS)]
            img = np.full((height, int(rng.integers(width // 3, width))), 255, np.uint8)
            for _ in range(3 * len(word)):
                x, y = int(rng.integers(0, img.shape[1])), int(rng.integers(2, height - 2))
                img[y - 1:y + 2, max(0, x - 2):x + 2] = int(rng.integers(0, 80))
            writer.add(img, word)
        writer.close()
    return Path(out)


def test_make_tiny(tmp_path):
    ds = load_dataset(make_tiny(tmp_path / "d", n=8))
    assert len(ds) == 8 and ds.meta.alphabet.fingerprint == TINY_ALPHABET.fingerprint
