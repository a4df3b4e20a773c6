"""Paper preprocessing (§III-A): isometric resize to the height, drop wider than the width,
pad with white to the width (right padding for LTR scripts, left padding for RTL)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .alphabet import is_rtl

WHITE = 255
CANVAS_ASPECT = 4   # every canvas is 4 × its height wide (paper: 128 × 512)


def default_width(height: int) -> int:
    """The canvas width that goes with `height` (4 × height)."""
    return CANVAS_ASPECT * int(height)


def fit_to_canvas(image: np.ndarray | Image.Image, height: int, width: int, direction: str = "ltr") -> np.ndarray | None:
    """Return a uint8 (height, width) array, or None when the resized image is wider than `width`.

    `image` is a greyscale page fragment (dark ink on light paper); colour images are converted.
    """
    rtl = is_rtl(direction)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    if pil.mode != "L":
        pil = pil.convert("L")
    w0, h0 = pil.size
    if w0 == 0 or h0 == 0:
        return None
    new_w = max(1, int(round(w0 * height / h0)))
    if new_w > width:
        return None
    if (new_w, height) != (w0, h0):
        pil = pil.resize((new_w, height), Image.BILINEAR)
    canvas = np.full((height, width), WHITE, dtype=np.uint8)
    arr = np.asarray(pil, dtype=np.uint8)
    if rtl:
        canvas[:, width - new_w:] = arr
    else:
        canvas[:, :new_w] = arr
    return canvas


# uint8 grey level → float32 in [-1, 1], exactly as `x / 127.5 - 1` computes it in float32.
_UNIT_LUT = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
_UNIT_LUT.setflags(write=False)


def to_unit_range(u8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [-1, 1] (white = +1), the tensor convention of every model
    (one table lookup instead of convert, divide and subtract passes; the same values)."""
    return np.take(_UNIT_LUT, np.asarray(u8, dtype=np.uint8))


def from_unit_range(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] → uint8 [0, 255], clipping out-of-range values."""
    return np.clip((np.asarray(x, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
