"""Sample grids (docs/DESIGN.md §9, paper Figs. 5–6): fixed word × varying z and fixed z × varying word."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datasets.errors import UserError
from datasets.files import atomic_file
from datasets.fonts import FontSpec, find_font

GAP = 4
GAP_GREY = 160
LABEL_WIDTH_CHARS = 14
# Row labels need every letter of the alphabets (é, œ, €…): Pillow's built-in font lacks some.
LABEL_FONT = FontSpec("NotoSans-Regular.ttf", "fonts-noto-core")


@lru_cache(maxsize=1)
def _label_font_path() -> str | None:
    try:
        return str(find_font(LABEL_FONT.file, package=LABEL_FONT.package))
    except UserError:
        return None


def label_font(size: int) -> ImageFont.ImageFont:
    """Noto Sans at `size` px when installed, else Pillow's built-in font."""
    path = _label_font_path()
    if path is not None:
        return ImageFont.truetype(path, size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """uint8 images (rows·cols, H, W), row-major → one uint8 grid with grey gaps."""
    n, h, w = images.shape
    assert n == rows * cols, (n, rows, cols)
    grid = np.full((rows * h + (rows + 1) * GAP, cols * w + (cols + 1) * GAP), GAP_GREY, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = GAP + r * (h + GAP), GAP + c * (w + GAP)
        grid[y:y + h, x:x + w] = images[k]
    return grid


def add_row_labels(grid: np.ndarray, labels: list[str], row_height: int) -> np.ndarray:
    """Prepend a white column with one text label per row (Latin scripts only)."""
    size = max(10, min(24, row_height // 2))
    font = label_font(size)
    width = int(size * 0.62 * LABEL_WIDTH_CHARS) + 2 * GAP
    canvas = Image.new("L", (grid.shape[1] + width, grid.shape[0]), 255)
    canvas.paste(Image.fromarray(grid), (width, 0))
    draw = ImageDraw.Draw(canvas)
    for r, text in enumerate(labels):
        y = GAP + r * (row_height + GAP) + row_height // 2 - size // 2
        draw.text((GAP, y), text[:LABEL_WIDTH_CHARS], fill=0, font=font)
    return np.asarray(canvas)


def word_and_style_grids(images: np.ndarray, words: list[str], n_styles: int, label: bool) -> tuple[np.ndarray, np.ndarray]:
    """`images` (len(words)·n_styles, H, W) ordered word-major (word i, style j at i·n_styles + j).

    Returns (words grid: one row per word, one column per z;
             styles grid: one row per z, one column per word)."""
    n_words, h = len(words), images.shape[1]
    by_word = tile(images, n_words, n_styles)
    order = [i * n_styles + j for j in range(n_styles) for i in range(n_words)]
    by_style = tile(images[order], n_styles, n_words)
    if label:
        by_word = add_row_labels(by_word, words, h)
    return by_word, by_style


def save_png(grid: np.ndarray, path: Path) -> Path:
    """Write a uint8 grey image as a PNG file, atomically."""
    path = Path(path)
    with atomic_file(path, "wb") as f:
        Image.fromarray(grid, mode="L").save(f, format="PNG")
    return path


def stack_vertically(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """One image with `top` above `bottom` (white-padded to the wider one)."""
    w = max(top.shape[1], bottom.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, w - a.shape[1])), constant_values=255)
    sep = np.full((3 * GAP, w), 255, np.uint8)
    return np.concatenate([pad(top), sep, pad(bottom)], axis=0)
