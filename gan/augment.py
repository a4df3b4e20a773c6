"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. NeurIPS 2020) for grey
handwriting, with an adaptive probability (ADA, Karras et al. NeurIPS 2020). Not in the paper.

D overfits a small training set within a few hundred iterations (its loss falls to 0 and G
gets no useful signal). Augmenting *both* real and generated images before every call of D,
with transforms that are differentiable so G's gradient flows through them, lets D see more
varied real images without G learning the augmentations (they apply to its images as well).

Transforms for images in [-1, 1] with white paper = +1 (each applied to a sample with
probability p, drawn independently per call of D):
    translation  shift by up to 1/8 of the height and width, the uncovered border white
    cutout       a white rectangle of half the height and a quarter of the width at a random place
    ink          the ink's darkness scaled by U(0.5, 1.5) around white paper (1 − c·(1 − x))
    brightness   the whole image shifted by U(−0.25, 0.25)

ADA: every time the trainer reads its losses it updates p by sign(r_t − target) · n / speed,
where r_t = E[sign(D(augmented real))] over the batches read, n the real images they held and
`speed` the number of images in which p may travel from 0 to 1; p stays in [0, 1].
The random draws come from the run's named stream "diffaug" (saved in last.pt with p).
"""
from __future__ import annotations

import torch

from .options import TRANSFORMS, parse_policy  # noqa: F401  (the policy's names live with the other switches)

TRANSLATION_RATIO = 1 / 8
CUTOUT_SIZE = (0.5, 0.25)       # (height, width) fractions
INK_RANGE = (0.5, 1.5)
BRIGHTNESS_RANGE = 0.25


def _rand(shape, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator)


def _chosen(b: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 1, 1, 1) float mask: 1 where a sample gets the transform (probability p)."""
    return (_rand((b, 1, 1, 1), generator) < p).float()


# Each transform is a draw (every random number, on the host, from the stream) and an apply
# (tensor operations only): the fast GAN step draws before the step and applies inside it.

def draw_translation(b: int, h: int, w: int, generator: torch.Generator, p: float) -> tuple[torch.Tensor, ...]:
    """(rows (B, H), cols (B, W)): the padded image's source row and column of every pixel."""
    sy, sx = max(1, int(h * TRANSLATION_RATIO)), max(1, int(w * TRANSLATION_RATIO))
    dy = torch.floor(_rand((b,), generator) * (2 * sy + 1)).long() - sy
    dx = torch.floor(_rand((b,), generator) * (2 * sx + 1)).long() - sx
    keep = _chosen(b, p, generator).view(b) > 0
    dy, dx = dy * keep, dx * keep
    return torch.arange(h)[None, :] + sy - dy[:, None], torch.arange(w)[None, :] + sx - dx[:, None]


def apply_translation(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = max(1, int(h * TRANSLATION_RATIO)), max(1, int(w * TRANSLATION_RATIO))
    padded = torch.nn.functional.pad(x, (sx, sx, sy, sy), value=1.0)
    rows, cols = rows.to(x.device), cols.to(x.device)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def draw_cutout(b: int, h: int, w: int, generator: torch.Generator, p: float) -> tuple[torch.Tensor, ...]:
    """(y0, x0, chosen): the rectangle's corner (B, 1, 1) and the (B, 1, 1, 1) mask of images that get one."""
    ch, cw = max(1, int(h * CUTOUT_SIZE[0])), max(1, int(w * CUTOUT_SIZE[1]))
    y0 = torch.floor(_rand((b, 1, 1), generator) * (h - ch + 1))
    x0 = torch.floor(_rand((b, 1, 1), generator) * (w - cw + 1))
    return y0, x0, _chosen(b, p, generator)


def apply_cutout(x: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    _, _, h, w = x.shape
    ch, cw = max(1, int(h * CUTOUT_SIZE[0])), max(1, int(w * CUTOUT_SIZE[1]))
    y0, x0 = y0.to(x.device, x.dtype), x0.to(x.device, x.dtype)
    ys = torch.arange(h, device=x.device, dtype=x.dtype)[None, :, None]
    xs = torch.arange(w, device=x.device, dtype=x.dtype)[None, None, :]
    hole = ((ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)).to(x.dtype).unsqueeze(1)
    hole = hole * chosen.to(x.device, x.dtype)
    return x * (1 - hole) + hole


def draw_ink(b: int, h: int, w: int, generator: torch.Generator, p: float) -> tuple[torch.Tensor, ...]:
    """(c,): each image's ink factor (B, 1, 1, 1), 1 where the image is not chosen."""
    lo, hi = INK_RANGE
    c = lo + (hi - lo) * _rand((b, 1, 1, 1), generator)
    return (1 + (c - 1) * _chosen(b, p, generator),)


def apply_ink(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return 1 - c.to(x.device, x.dtype) * (1 - x)


def draw_brightness(b: int, h: int, w: int, generator: torch.Generator, p: float) -> tuple[torch.Tensor, ...]:
    """(shift,): each image's brightness shift (B, 1, 1, 1), 0 where the image is not chosen."""
    shift = (2 * _rand((b, 1, 1, 1), generator) - 1) * BRIGHTNESS_RANGE
    return (shift * _chosen(b, p, generator),)


def apply_brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return x + shift.to(x.device, x.dtype)


_TRANSFORMS = {"translation": (draw_translation, apply_translation), "cutout": (draw_cutout, apply_cutout),
               "ink": (draw_ink, apply_ink), "brightness": (draw_brightness, apply_brightness)}


def _one(name: str):
    draw, apply = _TRANSFORMS[name]

    def transform(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
        b, _, h, w = x.shape
        return apply(x, *draw(b, h, w, generator, p))
    transform.__name__ = name
    transform.__doc__ = f"The {name} transform of one batch, drawn from `generator` (probability p per image)."
    return transform


translate, cutout, ink, brightness = (_one(n) for n in ("translation", "cutout", "ink", "brightness"))


class DiffAugment:
    """The augmentation before every call of D: a policy, its probability p (adaptive with ADA)
    and its random stream."""

    def __init__(self, policy: tuple[str, ...], generator: torch.Generator, p: float = 1.0,
                 ada_target: float | None = None, ada_speed: float = 10_000):
        self.policy, self.generator, self.p = policy, generator, float(p)
        self.ada_target, self.ada_speed = ada_target, float(ada_speed)

    def draw(self, shape) -> tuple | None:
        """Every random number of one call on a batch of `shape` (B, 1, H, W), in the policy's
        order; None when p is 0 (nothing is drawn, the images pass unchanged)."""
        if self.p <= 0:
            return None
        b, _, h, w = shape
        return tuple(_TRANSFORMS[name][0](b, h, w, self.generator, self.p) for name in self.policy)

    def apply(self, x: torch.Tensor, drawn: tuple | None) -> torch.Tensor:
        """The policy on `x` with the numbers of `draw` (tensor operations only)."""
        if drawn is None:
            return x
        for name, params in zip(self.policy, drawn):
            x = _TRANSFORMS[name][1](x, *params)
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x, self.draw(x.shape))

    def adapt(self, mean_real_sign: float, images: int) -> None:
        """ADA: move p toward keeping E[sign(D(real))] at the target (a no-op without a target)."""
        if self.ada_target is None or images <= 0:
            return
        step = images / self.ada_speed
        direction = 1.0 if mean_real_sign > self.ada_target else -1.0 if mean_real_sign < self.ada_target else 0.0
        self.p = min(1.0, max(0.0, self.p + direction * step))

    def state(self) -> dict:
        return {"p": self.p}

    def load(self, state: dict) -> None:
        self.p = float(state["p"])
