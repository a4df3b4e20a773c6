"""The three updates of one GAN training step (paper §II-C), module-level so that tests call them.

    D      one real batch and one generated batch (batches of one kind), adversarial loss.
    R      the real batch only, CTC (R never learns from generated images).
    (G, φ) a fresh generated batch x_fake = G(z, φ(s)), s ~ p_w. The two gradients w.r.t. the
           images, ∇_D = ∂L_adv(D(x_fake))/∂x_fake and ∇_R = ∂CTC(s, R(x_fake))/∂x_fake, are
           taken with torch.autograd.grad on a detached copy of x_fake (so D's and R's parameters
           receive nothing), ∇_R is balanced (gan/balance.py) and x_fake.backward(∇_D + ∇_R).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn.utils import parametrize

from htr.model import ctc_loss

from .balance import balance_gradients
from .losses import d_loss, g_loss

# The values one step reports, in this order (the loop keeps them on the device between reads).
LOSS_NAMES = ("loss_d", "loss_r", "loss_g_adv", "loss_g_ctc", "grad_norm_d", "grad_norm_r")


def _clip(params, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def d_step(D, opt, x_real, x_fake, loss: str, clip: float, autocast=nullcontext) -> torch.Tensor:
    """One discriminator update on a real batch and a generated batch (separate forwards)."""
    opt.zero_grad(set_to_none=True)
    # Spectral-norm weights are computed once (one power iteration) for both forwards.
    with autocast(), parametrize.cached():
        real_scores, fake_scores = D(x_real), D(x_fake)
    value = d_loss(loss, real_scores, fake_scores)
    value.backward()
    _clip(D.parameters(), clip)
    opt.step()
    return value.detach()


def r_step(R, opt, x_real, targets, target_lengths, clip: float, autocast=nullcontext) -> torch.Tensor:
    """One recognizer update: CTC on real images only."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        log_probs = R(x_real)
    value = ctc_loss(log_probs, targets, target_lengths)
    value.backward()
    _clip(R.parameters(), clip)
    opt.step()
    return value.detach()


def g_step(phi, G, D, R, opt, tokens, lengths, targets, z, alpha: float | None, loss: str,
           autocast=nullcontext, readers=(), augment=None) -> dict[str, torch.Tensor]:
    """One (G, φ) update from the balanced image gradients of D and R.

    `D` and `R` are only differentiated w.r.t. the generated images (never their parameters).
    The R term is the mean CTC of R and the frozen `readers`, on `augment(x)` when given (a
    differentiable distortion of the generated batch)."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        x_fake = G(z, phi(tokens, lengths))
    x = x_fake.detach().float().requires_grad_(True)
    with autocast():
        adv = g_loss(loss, D(x))
    (grad_d,) = torch.autograd.grad(adv, x)
    x_read = augment(x) if augment is not None else x
    target_lengths = lengths.to(x.device)
    ctcs = []
    for reader in (R, *readers):
        with autocast():
            log_probs = reader(x_read)
        ctcs.append(ctc_loss(log_probs, targets, target_lengths))
    ctc = torch.stack(ctcs).mean()
    (grad_r,) = torch.autograd.grad(ctc, x)
    total = grad_d.float() + balance_gradients(grad_d, grad_r, alpha)
    x_fake.backward(total.to(x_fake.dtype))
    opt.step()
    return {"loss_g_adv": adv.detach(), "loss_g_ctc": ctc.detach(),
            "grad_norm_d": grad_d.float().norm(), "grad_norm_r": grad_r.float().norm()}
