"""Gradient balancing (paper §II-C) and the adversarial losses."""
import pytest
import torch
import torch.nn.functional as F

from gan.balance import balance_gradients, combined_gradient, gradient_stats
from gan.losses import d_loss, g_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _grads():
    g = torch.Generator().manual_seed(0)
    grad_d = 0.3 + 2.0 * torch.randn(8, 1, 16, 64, generator=g)         # μ_D ≈ 0.3, σ_D ≈ 2
    grad_r = -5.0 + 400.0 * torch.randn(8, 1, 16, 64, generator=g)      # 200× larger
    return grad_d, grad_r


@pytest.mark.parametrize("alpha", [1.0, 10.0, 0.1])
def test_balanced_gradient_has_alpha_times_d_statistics(alpha):
    """Tested: over the whole batch tensor, mean(balanced ∇_R) = α·μ_D and
    std(balanced ∇_R) = α·σ_D (population std); α = 1 gives exactly D's mean and std."""
    grad_d, grad_r = _grads()
    out = balance_gradients(grad_d, grad_r, alpha)
    mu_d, sd_d = grad_d.mean().item(), grad_d.std(correction=0).item()
    assert out.shape == grad_r.shape
    assert out.mean().item() == pytest.approx(alpha * mu_d, rel=1e-4, abs=1e-6)
    assert out.std(correction=0).item() == pytest.approx(alpha * sd_d, rel=1e-5)
    # the map is affine and increasing: the ranking of the elements is unchanged
    assert torch.equal(out.flatten().argsort(), grad_r.flatten().argsort())


def test_no_balancing_is_plain_sum():
    grad_d, grad_r = _grads()
    assert torch.equal(balance_gradients(grad_d, grad_r, None), grad_r)
    assert torch.allclose(combined_gradient(grad_d, grad_r, None), grad_d + grad_r)
    assert torch.allclose(combined_gradient(grad_d, grad_r, 1.0), grad_d + balance_gradients(grad_d, grad_r, 1.0))


def test_constant_recognizer_gradient_stays_finite():
    grad_d, _ = _grads()
    out = balance_gradients(grad_d, torch.zeros_like(grad_d), 1.0)
    assert torch.isfinite(out).all() and out.mean().item() == pytest.approx(grad_d.mean().item(), rel=1e-5)


def test_gradient_stats_ratio():
    grad_d, grad_r = _grads()
    s = gradient_stats(grad_d, grad_r)
    assert s["grad_ratio_r_d"] == pytest.approx(s["grad_norm_r"] / s["grad_norm_d"]) and 100 < s["grad_ratio_r_d"] < 300


def test_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    assert d_loss("hinge", real, fake).item() == pytest.approx((0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3)
    assert g_loss("hinge", fake).item() == pytest.approx(-fake.mean().item())
    bce = F.binary_cross_entropy_with_logits
    assert d_loss("gan", real, fake).item() == pytest.approx((bce(real, torch.ones(3)) + bce(fake, torch.zeros(3))).item())
    assert g_loss("gan", fake).item() == pytest.approx(bce(fake, torch.ones(3)).item())
    assert d_loss("lsgan", real, fake).item() == pytest.approx(0.5 * ((real - 1) ** 2).mean().item() + 0.5 * (fake ** 2).mean().item())
    assert g_loss("lsgan", fake).item() == pytest.approx(0.5 * ((fake - 1) ** 2).mean().item())
