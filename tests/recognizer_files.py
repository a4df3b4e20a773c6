"""Helpers shared by the recognize and export tests: a small recognizer trained to read "bar words"
(each letter a dark bar whose width encodes it), and a dataset directory of such words stored in
several file formats, modes and sizes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.alphabet import Alphabet
from datasets.format import DatasetMeta, DatasetWriter

ALPHABET = Alphabet("abcd", "bars")
HEIGHT = 16
WORDS = ["cd", "abd", "b", "dab", "ca", "bcd", "dd", "acb", "bad", "c", "dcba", "ab"]


def bar_word(word: str, rng: np.random.Generator, height: int = HEIGHT, width: int | None = None) -> np.ndarray:
    """Letter j of `word` is a bar at x = 2 + 12 j, 2 + 2k px wide for the alphabet's k-th symbol."""
    width = width or 12 * len(word) + 4
    img = np.full((height, width), 255, np.uint8)
    for j, ch in enumerate(word):
        k = ALPHABET.symbols.index(ch)
        x0 = 2 + j * 12
        img[3:13, x0:x0 + 2 + 2 * k] = int(rng.integers(0, 60))
    return img


def write_bar_dataset(root: Path, n: int, seed: int, direction: str = "ltr") -> Path:
    """A 16×64 dataset directory of random bar words (1–4 letters)."""
    rng = np.random.default_rng(seed)
    meta = DatasetMeta(name=root.name, language="xx", direction=direction, alphabet=ALPHABET, height=HEIGHT,
                       width=4 * HEIGHT, split=root.name)
    w = DatasetWriter(root, meta)
    for _ in range(n):
        word = "".join(rng.choice(list(ALPHABET.symbols), int(rng.integers(1, 5))))
        img = bar_word(word, rng, width=4 * HEIGHT)
        w.add(img[:, ::-1] if direction == "rtl" else img, word)
    w.close()
    return root


def train_bar_recognizer(base: Path, direction: str = "ltr") -> Path:
    """A recognizer that reads bar words well enough to give varied text (about 8 s on one thread)."""
    from htr.train import HtrTrainConfig, train

    train_dir = write_bar_dataset(base / f"train-{direction}", 64, 0, direction)
    val_dir = write_bar_dataset(base / f"val-{direction}", 16, 1, direction)
    return train(HtrTrainConfig(train=str(train_dir), val=str(val_dir), out=str(base / f"run-{direction}"),
                                max_epochs=30, patience=100, batch_size=8, lr=8e-3, optimizer="adam",
                                width_mult=0.25, show_progress=False))


# (suffix, Pillow mode, save options, stored height, horizontal stretch): none at the 16-px canvas
FORMATS = [(".png", "L", {}, 16, 1.0), (".png", "RGB", {}, 32, 1.0), (".png", "LA", {}, 24, 1.1),
           (".jpg", "L", {"quality": 92}, 40, 1.0), (".jpeg", "RGB", {"quality": 85}, 28, 0.9),
           (".tif", "L", {}, 48, 1.0), (".tiff", "RGB", {"compression": "tiff_lzw"}, 20, 1.0),
           (".bmp", "L", {}, 36, 1.0), (".PNG", "P", {}, 30, 1.0), (".jpg", "L", {"quality": 75}, 64, 1.0),
           (".tif", "I;16", {}, 18, 1.0), (".png", "L", {}, 40, 2.5)]   # the last is too wide for the canvas


def write_mixed_dataset(root: Path, direction: str = "ltr", seed: int = 0) -> Path:
    """A dataset directory (labels.tsv, meta.json, images/) of bar words stored as PNG, JPEG, TIFF
    and BMP files of several modes and sizes."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    lines = []
    for i, (suffix, mode, options, height, stretch) in enumerate(FORMATS):
        word = WORDS[i % len(WORDS)]
        grey = bar_word(word, rng)
        if direction == "rtl":
            grey = grey[:, ::-1]
        size = (int(round(grey.shape[1] * height / HEIGHT * stretch)), height)
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.BILINEAR))
        if mode == "I;16":
            im = Image.fromarray(grey.astype(np.uint16) * 257)                       # 16-bit grey
        elif mode == "LA":
            im = Image.merge("LA", (Image.fromarray(grey), Image.new("L", size, 255)))
        else:
            im = Image.fromarray(grey).convert(mode)
        name = f"{i:03d}{suffix}"
        im.save(images / name, **options)
        lines.append(f"images/{name}\t{word}\n")
    (root / "labels.tsv").write_text("".join(lines), encoding="utf-8")
    meta = {"kind": "dataset", "name": "mixed", "language": "xx", "direction": direction,
            "alphabet": ALPHABET.to_json(), "height": HEIGHT, "width": 4 * HEIGHT, "split": "test"}
    (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return root
