"""The three updates of one GAN training step (paper §II-C), module-level so that tests call them.

    D      one real batch and one generated batch (batches of one kind), adversarial loss.
    R      the real batch only, CTC (R never learns from generated images).
    (G, φ) a fresh generated batch x_fake = G(z, φ(s)), s ~ p_w. The two gradients w.r.t. the
           images, ∇_D = ∂L_adv(D(x_fake))/∂x_fake and ∇_R = ∂CTC(s, R(x_fake))/∂x_fake, are
           taken with torch.autograd.grad on a detached copy of x_fake (so D's and R's parameters
           receive nothing), ∇_R is balanced (gan/balance.py) and x_fake.backward(∇_D + ∇_R).
Remedies (not in the paper, off by default): DiffAugment before D in both D's and G's step
(gan/augment.py) and a mode-seeking term on z in G's step.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn.utils import parametrize

from htr.model import ctc_loss

from .balance import balance_gradients
from .losses import d_loss, g_loss

# The values one step reports, in this order (the loop keeps them on the device between reads):
# losses, the raw image-gradient norms of D and R, the norm of R's balanced gradient, E[sign(D(real))]
# and the mode-seeking term (0 when off).
LOSS_NAMES = ("loss_d", "loss_r", "loss_g_adv", "loss_g_ctc", "grad_norm_d", "grad_norm_r", "grad_norm_r_bal",
              "d_real_sign", "loss_ms")
MS_EPS = 1e-5


def _clip(params, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def d_step(D, opt, x_real, x_fake, loss: str, clip: float, autocast=nullcontext,
           augment=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One discriminator update on a real batch and a generated batch (separate forwards), each
    through `augment` (DiffAugment, independent draws) when given. Returns the loss and
    E[sign(D(real))], ADA's overfitting signal."""
    opt.zero_grad(set_to_none=True)
    if augment is not None:
        x_real, x_fake = augment(x_real), augment(x_fake)
    # Spectral-norm weights are computed once (one power iteration) for both forwards.
    with autocast(), parametrize.cached():
        real_scores, fake_scores = D(x_real), D(x_fake)
    value = d_loss(loss, real_scores, fake_scores)
    value.backward()
    _clip(D.parameters(), clip)
    opt.step()
    return value.detach(), torch.sign(real_scores.detach().float()).mean()


def r_step(R, opt, x_real, targets, target_lengths, clip: float, autocast=nullcontext,
           ctc_reduction: str = "char") -> torch.Tensor:
    """One recognizer update: CTC on real images only."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        log_probs = R(x_real)
    value = ctc_loss(log_probs, targets, target_lengths, ctc_reduction)
    value.backward()
    _clip(R.parameters(), clip)
    opt.step()
    return value.detach()


def mode_seeking(x: torch.Tensor, z: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """Mode-seeking term (Mao et al. CVPR 2019) over pairs (i, i + B/2) of one word and two z:
    mean over pairs of 1 / (mean|x_i − x_j| / mean|z_i − z_j| + ε); small when images follow z.
    `columns` (B, W) bool: the mean |x_i − x_j| is taken over these columns only (the word's)."""
    half = x.shape[0] // 2
    gap = (x[:half] - x[half:2 * half]).abs()
    if columns is None:
        image_gap = gap.flatten(1).mean(dim=1)
    else:
        keep = columns[:half, None, None, :].to(gap)
        image_gap = (gap * keep).flatten(1).sum(dim=1) / (keep.flatten(1).sum(dim=1) * x.shape[1] * x.shape[2]).clamp(min=1)
    z_gap = (z[:half] - z[half:2 * half]).abs().mean(dim=1).to(image_gap)
    return (1.0 / (image_gap / z_gap + MS_EPS)).mean()


def g_step(phi, G, D, R, opt, tokens, lengths, targets, z, alpha: float | None, loss: str,
           autocast=nullcontext, readers=(), r_augment=None, d_augment=None,
           ms_weight: float = 0.0, ctc_reduction: str = "char",
           ms_columns: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One (G, φ) update from the balanced image gradients of D and R.

    `D` and `R` are only differentiated w.r.t. the generated images (never their parameters).
    D reads `d_augment(x)` when given (DiffAugment; G's gradient flows through it). The R term
    is the mean CTC of R and the frozen `readers`, on `r_augment(x)` when given (a differentiable
    distortion of the generated batch). With `ms_weight` > 0 the batch holds pairs of one word
    (i and i + B/2) and the mode-seeking term's image gradient, × ms_weight, joins the sum
    (measured over `ms_columns` only when given)."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        x_fake = G(z, phi(tokens, lengths))
    x = x_fake.detach().float().requires_grad_(True)
    with autocast():
        adv = g_loss(loss, D(d_augment(x) if d_augment is not None else x))
    (grad_d,) = torch.autograd.grad(adv, x)
    x_read = r_augment(x) if r_augment is not None else x
    target_lengths = lengths.to(x.device)
    ctcs = []
    for reader in (R, *readers):
        with autocast():
            log_probs = reader(x_read)
        ctcs.append(ctc_loss(log_probs, targets, target_lengths, ctc_reduction))
    ctc = torch.stack(ctcs).mean()
    (grad_r,) = torch.autograd.grad(ctc, x)
    balanced = balance_gradients(grad_d, grad_r, alpha)
    total = grad_d.float() + balanced
    out = {"loss_g_adv": adv.detach(), "loss_g_ctc": ctc.detach(),
           "grad_norm_d": grad_d.float().norm(), "grad_norm_r": grad_r.float().norm(),
           "grad_norm_r_bal": balanced.norm()}
    if ms_weight > 0:
        ms = mode_seeking(x, z, ms_columns)
        (grad_ms,) = torch.autograd.grad(ms, x)
        total = total + ms_weight * grad_ms.float()
        out["loss_ms"] = ms.detach()
    x_fake.backward(total.to(x_fake.dtype))
    opt.step()
    return out
