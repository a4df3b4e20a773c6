"""The GAN iteration as one function of tensors, for `torch.compile(fullgraph=True)` and CUDA graphs.

The same three updates as gan/steps.py (D, then R, then the balanced (G, φ) step), rewritten so
that nothing inside reads a value back to the host or changes shape with the data:

  * φ runs unpacked (`UnpackedWordEncoder`, φ's own parameters): packing needs the lengths on the host;
  * CTC is `htr.ctc.ctc_loss_dense` (padded targets of a fixed width) instead of `F.ctc_loss`;
  * gradients come from `torch.autograd.grad` and the optimisers are `DeviceAdam` (every state,
    the step count included, on the device) with gradient clipping on the device;
  * every random number (noise, words, DiffAugment, R's distortions) is drawn on the host before
    the step by the caller, from the same streams in the same order as the eager path, and passed in.

Inputs have static shapes (word rows padded to the run's longest word, real targets to the
longest real label), so one compiled graph serves the whole run. The function returns the
LOSS_NAMES row on the device; the trainer reads it every SYNC_EVERY iterations as before.
`DeviceAdam` works on the torch optimisers' own state tensors, so last.pt is the eager path's
checkpoint: either path resumes the other's run.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch.nn.utils import parametrize

from htr.augment import apply_distortions
from htr.ctc import ctc_loss_dense

from .balance import balance_gradients
from .losses import d_loss, g_loss
from .networks import UnpackedWordEncoder
from .steps import mode_seeking

CLIP_EPS = 1e-6     # torch.nn.utils.clip_grad_norm_'s ε


class DeviceAdam:
    """Adam (Kingma & Ba 2015, no weight decay) over a torch Adam's parameters and state tensors:
    one multi-tensor update, the step count a device tensor, no host synchronisation."""

    def __init__(self, opt: torch.optim.Adam):
        group = opt.param_groups[0]
        if len(opt.param_groups) != 1 or group["weight_decay"] or group["amsgrad"] or group["maximize"]:
            raise ValueError("DeviceAdam takes one plain Adam parameter group")
        self.params = list(group["params"])
        self.lr, (self.beta1, self.beta2), self.eps = float(group["lr"]), group["betas"], float(group["eps"])
        for p in self.params:
            state = opt.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] = state["step"].to(p.device, torch.float32)
        self.steps = [opt.state[p]["step"] for p in self.params]
        self.exp_avgs = [opt.state[p]["exp_avg"] for p in self.params]
        self.exp_avg_sqs = [opt.state[p]["exp_avg_sq"] for p in self.params]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor | None]) -> None:
        """One update with `grads` (aligned with the parameters; None: that parameter is left alone)."""
        keep = [i for i, g in enumerate(grads) if g is not None]
        params = [self.params[i] for i in keep]
        grads = [grads[i] for i in keep]
        steps, m, v = ([lst[i] for i in keep] for lst in (self.steps, self.exp_avgs, self.exp_avg_sqs))
        torch._foreach_add_(steps, 1.0)
        torch._foreach_lerp_(m, grads, 1 - self.beta1)
        torch._foreach_mul_(v, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, 1 - self.beta2)
        bias1 = [1 - torch.pow(self.beta1, s) for s in steps]
        bias2_sqrt = [(1 - torch.pow(self.beta2, s)).sqrt() for s in steps]
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, [-self.lr / b for b in bias1])
        torch._foreach_add_(params, update)


def clip_on_device(grads: list[torch.Tensor | None], max_norm: float) -> list[torch.Tensor | None]:
    """`clip_grad_norm_` without reading the norm back: grads × min(1, max_norm / (‖grads‖ + ε))."""
    present = [g for g in grads if g is not None]
    if max_norm <= 0 or not present:
        return grads
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present]))
    coef = (max_norm / (total + CLIP_EPS)).clamp(max=1.0)
    return [None if g is None else g * coef for g in grads]


@contextmanager
def power_iterations_off(module: torch.nn.Module):
    """Spectral norm without its power iteration inside the context: σ = uᵀ W v from the u, v the
    last forward left, so a second forward gets the first one's normalised weights, bitwise (the
    eager step shares them with `parametrize.cached()`, whose global cache torch.compile cannot
    trace). Batch norms keep their mode."""
    norms = [p for m in module.modules() if parametrize.is_parametrized(m)
             for plist in m.parametrizations.values() for p in plist if p.training]
    for p in norms:
        p.training = False
    try:
        yield
    finally:
        for p in norms:
            p.training = True


def _grads(output: torch.Tensor, params: list[torch.Tensor], grad_output: torch.Tensor | None = None):
    return list(torch.autograd.grad(output, params, grad_outputs=grad_output, allow_unused=True))


class FastGanStep:
    """One training iteration of (φ, G, D, R) as a function of the tensors the trainer draws.

    `recipe` carries loss, clipping, CTC reduction and mode-seeking weight (a GanRecipe);
    `readers` the frozen extra recognizers; `d_augment` the run's DiffAugment (its `apply`
    only: the caller draws); `autocast` bf16 on CUDA when asked."""

    def __init__(self, nets, recipe, readers=(), d_augment=None, autocast=nullcontext):
        self.phi, self.G, self.D, self.R = UnpackedWordEncoder(nets.phi), nets.G, nets.D, nets.R
        self.opt_g, self.opt_d, self.opt_r = DeviceAdam(nets.opt_g), DeviceAdam(nets.opt_d), DeviceAdam(nets.opt_r)
        self.loss, self.ctc_reduction = recipe.loss, recipe.ctc_reduction
        self.clip_d, self.clip_r, self.ms_weight = recipe.grad_clip_d, recipe.grad_clip_r, recipe.ms_weight
        self.readers, self.d_augment, self.autocast = tuple(readers), d_augment, autocast

    def _d_view(self, x, drawn):
        return self.d_augment.apply(x, drawn) if drawn is not None else x

    def __call__(self, x_real, real_targets, real_lengths, d_tokens, d_lengths, d_z, tokens, lengths, targets, z,
                 alpha: float | None, aug_real=None, aug_fake=None, aug_g=None, distortions=None, ms_columns=None):
        """The LOSS_NAMES row (float32, on the device) of one iteration; updates the networks in place."""
        ac = self.autocast
        # D: one real and one generated batch, spectral norms computed once for both forwards
        with torch.no_grad(), ac():
            x_fake = self.G(d_z, self.phi(d_tokens, d_lengths)).float()
        with ac():
            real_scores = self.D(self._d_view(x_real, aug_real))
            with power_iterations_off(self.D):      # the fake batch reuses the real batch's σ (as cached())
                fake_scores = self.D(self._d_view(x_fake, aug_fake))
        loss_d = d_loss(self.loss, real_scores, fake_scores)
        self.opt_d.step(clip_on_device(_grads(loss_d, self.opt_d.params), self.clip_d))
        with torch.no_grad():
            real_sign = torch.sign(real_scores.float()).mean()
        # R: CTC on the real batch
        with ac():
            log_probs = self.R(x_real)
        loss_r = ctc_loss_dense(log_probs, real_targets, real_lengths, self.ctc_reduction)
        self.opt_r.step(clip_on_device(_grads(loss_r, self.opt_r.params), self.clip_r))
        # (G, φ): the balanced image gradients of D and R
        with ac():
            x_gen = self.G(z, self.phi(tokens, lengths))
        x = x_gen.detach().float().requires_grad_(True)
        with ac():
            adv = g_loss(self.loss, self.D(self._d_view(x, aug_g)))
        (grad_d,) = torch.autograd.grad(adv, x)
        x_read = apply_distortions(x, *distortions) if distortions is not None else x
        ctcs = []
        for reader in (self.R, *self.readers):
            with ac():
                lp = reader(x_read)
            ctcs.append(ctc_loss_dense(lp, targets, lengths, self.ctc_reduction))
        ctc = torch.stack(ctcs).mean()
        (grad_r,) = torch.autograd.grad(ctc, x)
        balanced = balance_gradients(grad_d, grad_r, alpha)
        total = grad_d.float() + balanced
        ms = torch.zeros((), device=x.device)
        if self.ms_weight > 0:
            ms = mode_seeking(x, z, ms_columns)
            (grad_ms,) = torch.autograd.grad(ms, x)
            total = total + self.ms_weight * grad_ms.float()
        self.opt_g.step(_grads(x_gen, self.opt_g.params, total.to(x_gen.dtype)))
        with torch.no_grad():   # the row carries no autograd history out of the step
            return torch.stack([loss_d, loss_r, adv, ctc, grad_d.float().norm(), grad_r.float().norm(), balanced.norm(),
                                real_sign, ms]).float()


def compile_step(step, mode: str = "default"):
    """`step` compiled whole (`fullgraph=True`: any graph break is an error), called with autograd
    and RNN tracing on (the step takes `autograd.grad` and runs LSTMs)."""
    import torch._dynamo as dynamo

    compiled = torch.compile(step, fullgraph=True, mode=mode)

    def run(*args):
        with dynamo.config.patch(trace_autograd_ops=True, allow_rnn=True):
            return compiled(*args)
    return run
