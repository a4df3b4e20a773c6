"""Rendering word images in the style of a synthetic writer (docs/DESIGN.md §5).

A writer is a font plus a fixed style (slant, stroke weight, size, letter spacing, horizontal
stretch, baseline drift, ink level). Each image adds per-sample variation: elastic distortion,
small rotation, slant and scale jitter, ink texture noise. All geometry is one inverse mapping evaluated
by `scipy.ndimage.map_coordinates`; right-to-left words are shaped by raqm (direction 'rtl',
language 'ar'). The result is fitted to the (height, width) canvas by `fit_to_canvas`.
"""
from __future__ import annotations

from dataclasses import dataclass
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy.ndimage import map_coordinates

from .alphabet import is_rtl
from .fonts import FontInfo
from .preprocess import fit_to_canvas

# Strings whose ink extent defines a font's text band (ascenders to descenders).
BAND_TEXT = {"ltr": "Hdlbgjpqy", "rtl": "الجيملكع"}
MIN_RENDER_HEIGHT = 64  # render at least this tall, then resize: small canvases stay legible


@dataclass(frozen=True)
class WriterStyle:
    """The fixed style of one synthetic writer."""

    writer_id: str
    font: int            # index into the font pool
    slant: float         # horizontal shear: x += slant * height above the band centre
    weight: int          # stroke weight: -1 thin (eroded), 0 regular, 1..2 bolder
    size: float          # text band height as a share of the image height
    spacing: float       # extra letter spacing in ems (left-to-right scripts only)
    x_scale: float       # horizontal stretch
    drift: float         # baseline drift amplitude, share of the band height
    drift_period: float  # baseline drift period, in band heights
    ink: int             # ink grey level (0 black … 255 white)


@dataclass(frozen=True)
class Variation:
    """Ranges of the per-sample variation added to each image."""

    rotation_deg: float = 1.5     # std of the rotation (clipped at 2.5 std)
    slant_jitter: float = 0.04    # std of the slant change
    scale_jitter: float = 0.05    # uniform ± relative size change
    elastic: float = 0.025        # max elastic displacement, share of the band height
    elastic_cell: float = 0.3     # elastic field smoothness: grid cell, share of the band height
    noise: float = 12.0           # max std of the ink texture noise (grey levels)


def random_writer(writer_id: str, font: int, direction: str, rng: np.random.Generator) -> WriterStyle:
    """Draw one writer's style (handwriting-like ranges; Arabic gets no letter spacing)."""
    ltr = direction == "ltr"
    return WriterStyle(
        writer_id=writer_id,
        font=font,
        slant=float(rng.uniform(-0.15, 0.45) if ltr else rng.uniform(-0.12, 0.2)),
        weight=int(rng.choice([-1, 0, 0, 1, 1, 2])),
        size=float(rng.uniform(0.62, 0.86)),
        spacing=float(rng.uniform(-0.02, 0.09)) if ltr else 0.0,
        x_scale=float(rng.uniform(0.82, 1.12)),
        drift=float(rng.uniform(0.0, 0.05)),
        drift_period=float(rng.uniform(2.0, 6.0)),
        ink=int(rng.integers(0, 90)),
    )


@dataclass
class _Font:
    font: ImageFont.FreeTypeFont
    px: int
    band_top: int
    band_height: int


class Renderer:
    """Renders words with a font pool at one canvas size; fonts are loaded once per process."""

    def __init__(self, pool: list[FontInfo], direction: str, height: int, width: int,
                 variation: Variation | None = None):
        if direction not in ("ltr", "rtl"):
            raise ValueError(f"direction must be 'ltr' or 'rtl', got {direction!r}")
        self.pool = pool
        self.direction = direction
        self.height = height
        self.width = width
        self.variation = variation or Variation()
        self.work_height = max(height, MIN_RENDER_HEIGHT)  # band height at size 1.0 before fitting
        self._fonts: dict[int, _Font] = {}

    def _font(self, i: int) -> _Font:
        """The i-th pool font at the size whose text band is `work_height` pixels tall."""
        if i not in self._fonts:
            path = str(self.pool[i].path)
            layout = ImageFont.Layout.RAQM if is_rtl(self.direction) else ImageFont.Layout.BASIC
            probe = ImageFont.truetype(path, 100, layout_engine=layout)
            top, bottom = self._bbox(probe, BAND_TEXT[self.direction])[1::2]
            px = max(8, int(round(100 * self.work_height / max(1, bottom - top))))
            font = ImageFont.truetype(path, px, layout_engine=layout)
            top, bottom = self._bbox(font, BAND_TEXT[self.direction])[1::2]
            self._fonts[i] = _Font(font, px, top, max(1, bottom - top))
        return self._fonts[i]

    def _bbox(self, font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
        if is_rtl(self.direction):
            return font.getbbox(text, direction="rtl", language="ar")
        return font.getbbox(text)

    def text_mask(self, text: str, style: WriterStyle) -> tuple[Image.Image, _Font, int]:
        """Ink coverage (0..255, 'L') of `text` drawn unstyled except spacing and weight.

        Returns the mask, the font record and the y of the band top inside the mask.
        """
        f = self._font(style.font)
        stroke = max(0, style.weight) * max(1, f.px // 48)
        pad = f.band_height // 2 + stroke + 2
        if is_rtl(self.direction) or abs(style.spacing) < 1e-3 or len(text) == 1:
            x0, y0, x1, y1 = self._bbox(f.font, text)
            w = x1 - x0 + 2 * pad
            h = max(y1, f.band_top + f.band_height) - min(y0, f.band_top) + 2 * pad
            top = pad - min(y0, f.band_top)
            mask = Image.new("L", (max(1, w), max(1, h)), 0)
            draw = ImageDraw.Draw(mask)
            kw = {"direction": "rtl", "language": "ar"} if is_rtl(self.direction) else {}
            draw.text((pad - x0, top), text, fill=255, font=f.font, stroke_width=stroke, **kw)
        else:
            advances = [f.font.getlength(c) for c in text]
            extra = style.spacing * f.px
            total = sum(advances) + extra * (len(text) - 1)
            x0, y0, x1, y1 = f.font.getbbox(text)
            over = max(0, int(x1 - sum(advances)))  # overhang of the last glyph
            w = int(math.ceil(max(total, 1) + over - min(0, x0))) + 2 * pad
            h = max(y1, f.band_top + f.band_height) - min(y0, f.band_top) + 2 * pad
            top = pad - min(y0, f.band_top)
            mask = Image.new("L", (max(1, w), max(1, h)), 0)
            draw = ImageDraw.Draw(mask)
            x = pad - min(0, x0)
            for c, adv in zip(text, advances):
                draw.text((x, top), c, fill=255, font=f.font, stroke_width=stroke)
                x += adv + extra
        if style.weight < 0:
            mask = mask.filter(ImageFilter.MinFilter(3))
        return mask, f, top + f.band_top

    def estimated_width(self, text: str, style: WriterStyle) -> float:
        """Cheap upper estimate of the fitted width (before per-sample jitter) for pre-filtering."""
        f = self._font(style.font)
        kw = {"direction": "rtl", "language": "ar"} if is_rtl(self.direction) else {}
        length = f.font.getlength(text, **kw) + style.spacing * f.px * (len(text) - 1)
        return length * style.size * style.x_scale * self.height / self.work_height

    def render_word(self, text: str, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
        """The styled, distorted word as a uint8 grey crop (dark ink on white), not yet fitted."""
        mask, f, band_top = self.text_mask(text, style)
        src = np.asarray(mask, dtype=np.float32)
        v = self.variation
        H = self.work_height
        bh = f.band_height
        scale = style.size * float(rng.uniform(1 - v.scale_jitter, 1 + v.scale_jitter)) * H / bh
        slant = style.slant + float(np.clip(rng.normal(0, v.slant_jitter), -2.5 * v.slant_jitter, 2.5 * v.slant_jitter))
        theta = math.radians(float(np.clip(rng.normal(0, v.rotation_deg), -2.5 * v.rotation_deg, 2.5 * v.rotation_deg)))
        # forward map: source (centred on the band) -> scale -> shear -> rotate -> output
        S = np.array([[scale * style.x_scale, 0.0], [0.0, scale]])
        Sh = np.array([[1.0, -slant], [0.0, 1.0]])
        R = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        M = R @ Sh @ S
        Minv = np.linalg.inv(M)
        ink_box = mask.getbbox() or (0, 0, mask.width, mask.height)
        cx, cy = (ink_box[0] + ink_box[2]) / 2.0, band_top + bh / 2.0
        corners = np.array([[ink_box[0], ink_box[1]], [ink_box[2], ink_box[1]],
                            [ink_box[0], ink_box[3]], [ink_box[2], ink_box[3]]], dtype=np.float64) - (cx, cy)
        fwd = corners @ M.T
        amp = style.drift * H
        el = v.elastic * H
        margin_x = float(rng.uniform(0.02, 0.08)) * H
        x_lo, x_hi = fwd[:, 0].min() - margin_x - el, fwd[:, 0].max() + margin_x + el
        y_lo = min(fwd[:, 1].min() - amp - el, -H / 2.0)
        y_hi = max(fwd[:, 1].max() + amp + el, H / 2.0)
        Wo, Ho = max(1, int(math.ceil(x_hi - x_lo))), max(1, int(math.ceil(y_hi - y_lo)))
        xo = (np.arange(Wo, dtype=np.float32) + np.float32(x_lo))[None, :]
        yo = (np.arange(Ho, dtype=np.float32) + np.float32(y_lo))[:, None]
        phase = float(rng.uniform(0, 2 * math.pi))
        drift = (amp * np.sin(xo * np.float32(2 * math.pi / (style.drift_period * H)) + np.float32(phase))).astype(np.float32)
        y1 = yo - drift
        a, b, c, d = (float(m) for m in Minv.ravel())  # Python floats keep the arrays float32
        xs = a * xo + b * y1 + float(cx)
        ys = c * xo + d * y1 + float(cy)
        dx, dy = self._elastic_field(Ho, Wo, el / scale, v.elastic_cell * H, rng)
        coords = np.stack([np.broadcast_to(ys, (Ho, Wo)) + dy, np.broadcast_to(xs, (Ho, Wo)) + dx])
        cover = map_coordinates(src, coords, order=1, mode="constant", cval=0.0, prefilter=False)
        img = 255.0 - cover * np.float32((255.0 - style.ink) / 255.0)
        sigma = float(rng.uniform(0, v.noise))
        inked = cover > 8.0
        if sigma > 0 and inked.any():
            # ink texture only: white paper stays white (noisy paper made PNGs ~40x larger and slower)
            img[inked] += rng.normal(0.0, sigma, size=int(inked.sum())).astype(np.float32)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    @staticmethod
    def _elastic_field(h: int, w: int, alpha: float, cell: float, rng: np.random.Generator):
        """Smooth random displacement fields (dx, dy) with values in about ±alpha pixels."""
        gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
        out = []
        for _ in range(2):
            coarse = rng.uniform(-alpha, alpha, size=(gh, gw)).astype(np.float32)
            out.append(np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC)))
        return out[0], out[1]

    def render(self, text: str, style: WriterStyle, rng: np.random.Generator) -> np.ndarray | None:
        """The word fitted to the (height, width) canvas, or None when it is too wide to fit."""
        if self.estimated_width(text, style) > 1.5 * self.width:  # surely too wide: skip the work
            return None
        crop = self.render_word(text, style, rng)
        return fit_to_canvas(crop, self.height, self.width, self.direction)


def encode_png(image_u8: np.ndarray) -> bytes:
    """Deterministic 8-bit grey PNG encoding (no timestamps or text chunks)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image_u8, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
