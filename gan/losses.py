"""Adversarial losses (paper Table III): hinge (Geometric GAN, the paper's model), vanilla GAN
(binary cross-entropy with logits; non-saturating generator form) and least-squares GAN.

`d_loss(kind, real, fake)` takes D's raw scores on a real batch and a generated batch;
`g_loss(kind, fake)` takes D's scores on generated images. Both return batch means.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from datasets.errors import UserError

from .options import LOSSES


def check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise UserError(f"adversarial loss {kind!r} must be one of {', '.join(LOSSES)}")
    return kind


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss on real-batch and fake-batch scores."""
    real, fake = real.float(), fake.float()
    if kind == "hinge":   # −E[min(0, −1 + D(x))] − E[min(0, −1 − D(G(z)))]
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "gan":     # BCE: real → 1, fake → 0
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "lsgan":   # ½E[(D(x) − 1)²] + ½E[D(G(z))²]
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
    raise UserError(f"adversarial loss {kind!r} must be one of {', '.join(LOSSES)}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss on fake-batch scores."""
    fake = fake.float()
    if kind == "hinge":   # −E[D(G(z))]
        return -fake.mean()
    if kind == "gan":     # non-saturating: BCE with target 1
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":   # ½E[(D(G(z)) − 1)²]
        return 0.5 * ((fake - 1) ** 2).mean()
    raise UserError(f"adversarial loss {kind!r} must be one of {', '.join(LOSSES)}")
