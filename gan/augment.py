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


def _rand(shape, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(device)


def _chosen(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 1, 1, 1) float mask: 1 where a sample gets the transform (probability p)."""
    return (_rand((x.shape[0], 1, 1, 1), generator, x.device) < p).to(x.dtype)


def translate(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """Integer shifts of up to 1/8 of each side, the border filled with white (differentiable gather)."""
    b, _, h, w = x.shape
    sy, sx = max(1, int(h * TRANSLATION_RATIO)), max(1, int(w * TRANSLATION_RATIO))
    dy = torch.floor(_rand((b,), generator, "cpu") * (2 * sy + 1)).long() - sy
    dx = torch.floor(_rand((b,), generator, "cpu") * (2 * sx + 1)).long() - sx
    keep = _chosen(x, p, generator).view(b).cpu() > 0
    dy, dx = dy * keep, dx * keep
    padded = torch.nn.functional.pad(x, (sx, sx, sy, sy), value=1.0)
    rows = (torch.arange(h)[None, :] + sy - dy[:, None]).to(x.device)        # (B, H)
    cols = (torch.arange(w)[None, :] + sx - dx[:, None]).to(x.device)        # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def cutout(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """A white rectangle (half the height, a quarter of the width) at a random place."""
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * CUTOUT_SIZE[0])), max(1, int(w * CUTOUT_SIZE[1]))
    y0 = torch.floor(_rand((b, 1, 1), generator, x.device) * (h - ch + 1))
    x0 = torch.floor(_rand((b, 1, 1), generator, x.device) * (w - cw + 1))
    ys = torch.arange(h, device=x.device, dtype=x.dtype)[None, :, None]
    xs = torch.arange(w, device=x.device, dtype=x.dtype)[None, None, :]
    hole = ((ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)).to(x.dtype).unsqueeze(1)
    hole = hole * _chosen(x, p, generator)
    return x * (1 - hole) + hole


def ink(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """Ink darkness scaled around white paper: 1 − c·(1 − x), c ~ U(0.5, 1.5)."""
    lo, hi = INK_RANGE
    c = lo + (hi - lo) * _rand((x.shape[0], 1, 1, 1), generator, x.device)
    c = 1 + (c - 1) * _chosen(x, p, generator)
    return 1 - c * (1 - x)


def brightness(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """The whole image shifted by U(−0.25, 0.25)."""
    shift = (2 * _rand((x.shape[0], 1, 1, 1), generator, x.device) - 1) * BRIGHTNESS_RANGE
    return x + shift * _chosen(x, p, generator)


_FUNCTIONS = {"translation": translate, "cutout": cutout, "ink": ink, "brightness": brightness}


class DiffAugment:
    """The augmentation before every call of D: a policy, its probability p (adaptive with ADA)
    and its random stream."""

    def __init__(self, policy: tuple[str, ...], generator: torch.Generator, p: float = 1.0,
                 ada_target: float | None = None, ada_speed: float = 10_000):
        self.policy, self.generator, self.p = policy, generator, float(p)
        self.ada_target, self.ada_speed = ada_target, float(ada_speed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0:
            return x
        for name in self.policy:
            x = _FUNCTIONS[name](x, self.generator, self.p)
        return x

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
