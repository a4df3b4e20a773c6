"""Paper preprocessing (§III-A): isometric resize to the height, drop wider than the width,
pad with white to the width (right padding for LTR scripts, left padding for RTL)."""
from __future__ import annotations

import numpy as np
from PIL import Image

WHITE = 255


def fit_to_canvas(image: np.ndarray | Image.Image, height: int, width: int, direction: str = "ltr") -> np.ndarray | None:
    """Return a uint8 (height, width) array, or None when the resized image is wider than `width`.

    `image` is a greyscale page fragment (dark ink on light paper); colour images are converted.
    """
    if direction not in ("ltr", "rtl"):
        raise ValueError(f"direction must be 'ltr' or 'rtl', got {direction!r}")
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
    if direction == "ltr":
        canvas[:, :new_w] = arr
    else:
        canvas[:, width - new_w:] = arr
    return canvas


def to_unit_range(u8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [-1, 1] (white = +1), the tensor convention of every model."""
    return u8.astype(np.float32) / 127.5 - 1.0


def from_unit_range(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] → uint8 [0, 255], clipping out-of-range values."""
    return np.clip((np.asarray(x, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
