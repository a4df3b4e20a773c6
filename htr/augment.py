"""Classic data augmentation for word images, applied to whole batches (the study's "classic" rows).

Each image independently gets, with its own probability: a random affine transform (rotation,
shear, scale, translation), an elastic distortion (smooth random displacement field), a stroke
width change (grey dilation or erosion of the ink), and additive Gaussian noise. Every random
number comes from the `torch.Generator` passed in, so a batch is augmented identically for the
same generator state (and the generator state is saved in training checkpoints).

Images use the tensor convention of every model: (B, 1, H, W) float in [-1, 1], white = +1.
Transforms work on ink = (1 − x) / 2 (paper = 0), so padding introduced by warping is white.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and magnitudes of the classic distortions."""

    p_affine: float = 0.7
    max_rotation_deg: float = 3.0
    max_shear: float = 0.3          # horizontal shear (slant), as tan(angle)
    scale_range: tuple[float, float] = (0.85, 1.05)
    max_translate: float = 0.04     # fraction of the half-size (grid units)
    p_elastic: float = 0.5
    elastic_alpha: float = 0.03     # displacement amplitude in grid units ([-1, 1] spans the image)
    elastic_cells: int = 4          # control points of the random field along the height
    p_stroke: float = 0.4           # half of them dilate (thicker), half erode (thinner)
    p_noise: float = 0.3
    max_noise_std: float = 0.08


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _chosen(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def affine_grids(n: int, height: int, width: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Sampling grids (n, H, W, 2) for random rotations, shears, scales and translations.

    Angles are in pixel space (the aspect ratio is accounted for), so a 3° rotation is 3°.
    """
    angle = _uniform(n, -1, 1, gen) * math.radians(cfg.max_rotation_deg)
    shear = _uniform(n, -1, 1, gen) * cfg.max_shear
    scale = _uniform(n, *cfg.scale_range, gen)
    tx, ty = (_uniform(n, -1, 1, gen) * cfg.max_translate for _ in range(2))
    aspect = width / height
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output→input map in normalised coordinates: x_in = A · x_out + t, built in pixel units.
    a11 = (cos + shear * sin) / scale
    a12 = (-sin + shear * cos) / scale / aspect
    a21 = sin * aspect / scale
    a22 = cos / scale
    theta = torch.stack([torch.stack([a11, a12, tx], 1), torch.stack([a21, a22, ty], 1)], 1)
    return F.affine_grid(theta, (n, 1, height, width), align_corners=False)


def elastic_offsets(n: int, height: int, width: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Smooth random displacement fields (n, H, W, 2): coarse noise upsampled bicubically."""
    ch = max(2, cfg.elastic_cells)
    cw = max(2, round(ch * width / height))
    coarse = torch.randn(n, 2, ch, cw, generator=gen) * cfg.elastic_alpha
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1)


def change_stroke(ink: torch.Tensor, thicker: torch.Tensor) -> torch.Tensor:
    """Grey dilation (3×3 max) where `thicker`, grey erosion (3×3 min) elsewhere."""
    dil = F.max_pool2d(ink, 3, stride=1, padding=1)
    ero = -F.max_pool2d(-ink, 3, stride=1, padding=1)
    return torch.where(thicker.view(-1, 1, 1, 1), dil, ero)


def draw_distortions(n: int, height: int, width: int, gen: torch.Generator,
                     cfg: AugmentConfig = AugmentConfig()) -> tuple[torch.Tensor, ...]:
    """Every random number of one batch's distortions, on the CPU generator in a fixed order
    (independent of which images are selected): (grid (n, H, W, 2), warped, thicker, do_stroke,
    noise (n, 1, H, W) already scaled, 0 where an image gets none)."""
    do_affine = _chosen(n, cfg.p_affine, gen)
    grids = affine_grids(n, height, width, cfg, gen)
    do_elastic = _chosen(n, cfg.p_elastic, gen)
    offsets = elastic_offsets(n, height, width, cfg, gen)
    do_stroke = _chosen(n, cfg.p_stroke, gen)
    thicker = torch.rand(n, generator=gen) < 0.5
    do_noise = _chosen(n, cfg.p_noise, gen)
    noise_std = _uniform(n, 0, cfg.max_noise_std, gen)
    noise = torch.randn(n, 1, height, width, generator=gen)

    identity = F.affine_grid(torch.eye(2, 3).expand(n, 2, 3), (n, 1, height, width), align_corners=False)
    grid = torch.where(do_affine.view(-1, 1, 1, 1), grids, identity)
    grid = grid + offsets * do_elastic.view(-1, 1, 1, 1).float()
    noise = noise * noise_std.view(-1, 1, 1, 1) * do_noise.view(-1, 1, 1, 1).float()
    return grid, do_affine | do_elastic, thicker, do_stroke, noise


def apply_distortions(x: torch.Tensor, grid: torch.Tensor, warped: torch.Tensor, thicker: torch.Tensor,
                      do_stroke: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The distortions drawn by `draw_distortions` on `x` (tensor operations only, differentiable).
    Images that are not selected pass through `torch.where` unchanged."""
    dev = x.device
    ink = (1.0 - x.float()) * 0.5
    moved = F.grid_sample(ink, grid.to(dev), mode="bilinear", padding_mode="zeros", align_corners=False)
    ink = torch.where(warped.to(dev).view(-1, 1, 1, 1), moved, ink)
    ink = torch.where(do_stroke.to(dev).view(-1, 1, 1, 1), change_stroke(ink, thicker.to(dev)), ink)
    out = 1.0 - 2.0 * ink
    out = out + noise.to(dev)
    return out.clamp(-1.0, 1.0).to(x.dtype)


def augment_batch(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """Return a distorted copy of images `x` (B, 1, H, W) in [-1, 1]; deterministic given `gen`.

    All random draws happen on the CPU generator in a fixed order (independent of which images
    are selected), then the work runs on `x`'s device.
    """
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images (B, 1, H, W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    return apply_distortions(x, *draw_distortions(n, h, w, gen, cfg))
