"""Gradient balancing between the discriminator and the recognizer (paper §II-C).

(G, φ) learn from two gradients taken with respect to the generated images x_fake:
    ∇_D = ∂L_adv(D(x_fake)) / ∂x_fake      (hinge: −∂D(x_fake)/∂x_fake)
    ∇_R = ∂CTC(s, R(x_fake)) / ∂x_fake
Their norms can differ by orders of magnitude, so ∇_R is mapped to D's statistics first:
    ∇_R ← α · (σ_D / σ_R · (∇_R − μ_R) + μ_D)
μ and σ are per-batch scalars: the mean and the (population, ddof = 0) standard deviation over
every element of the whole batch gradient tensor (B × 1 × H × W), not per image or per pixel.
After the map, ∇_R has mean α·μ_D and standard deviation α·σ_D (α scales both); with α = 1 it
has exactly D's mean and standard deviation. α = None disables balancing: the plain sum
∇_D + ∇_R is propagated. Statistics are computed in float32 whatever the autocast dtype.
"""
from __future__ import annotations

import torch

EPS = 1e-12


def balance_gradients(grad_d: torch.Tensor, grad_r: torch.Tensor, alpha: float | None) -> torch.Tensor:
    """Return the balanced recognizer gradient (float32, same shape as `grad_r`)."""
    gr = grad_r.float()
    if alpha is None:
        return gr
    gd = grad_d.float()
    mu_d, sigma_d = gd.mean(), gd.std(correction=0)
    mu_r, sigma_r = gr.mean(), gr.std(correction=0)
    return alpha * (sigma_d / (sigma_r + EPS) * (gr - mu_r) + mu_d)


def combined_gradient(grad_d: torch.Tensor, grad_r: torch.Tensor, alpha: float | None) -> torch.Tensor:
    """The gradient propagated into G: ∇_D + balanced ∇_R (float32)."""
    return grad_d.float() + balance_gradients(grad_d, grad_r, alpha)


def gradient_stats(grad_d: torch.Tensor, grad_r: torch.Tensor) -> dict[str, float]:
    """L2 norms of both raw gradients and their ratio ‖∇_R‖ / ‖∇_D‖ (the paper saw 10²–10³)."""
    nd, nr = grad_d.float().norm().item(), grad_r.float().norm().item()
    return {"grad_norm_d": nd, "grad_norm_r": nr, "grad_ratio_r_d": nr / max(nd, EPS)}
