"""The study's cost model: projected seconds per kind of stage, for ETAs and the paper profile's
projected duration before any work starts."""
from __future__ import annotations

import os

from ..profiles import Profile

# Seconds per image-pass at 32×128 with width multiplier 1 (scaled by pixels and width²), plus a
# per-iteration GAN overhead (φ's BiLSTM, R, gradient balancing). CPU figures: measured on the
# shared 2-core machine under load and rounded. GPU figures: the perf harness's rates on an H100
# (benchmark/RESULTS.md "GPU (H100)"): the real GAN trainer's 3.19 it/s at 128×512, batch 64, and
# the recognizer's 1.8k img/s. The runner rescales every ETA by the speed it observes, so these
# only set the first estimate.
_COST = {"cpu": {"render": 2.2e-3, "htr": 2.5e-3, "gan": 2e-2, "gan_iter": 0.5, "gen": 2e-3, "metric": 4e-3},
         "gpu": {"render": 2.2e-3, "htr": 3.5e-5, "gan": 2.76e-4, "gan_iter": 0.03, "gen": 5e-5, "metric": 2e-4}}


def htr_images(p: Profile, scale: float) -> float:
    """Training images one recognizer sees on `scale` × n_train images (step cap included)."""
    images = p.htr.max_epochs * (scale * p.n_train + p.n_val)
    return min(images, p.htr.max_steps * p.htr.batch_size) if p.htr.max_steps else images


def cost_model(p: Profile, device: str) -> dict[str, float]:
    """Projected seconds for each kind of stage of profile `p` on `device` ('cpu' or 'gpu')."""
    c = _COST[device]
    px = p.height * p.width / (32 * 128)
    n_all = p.n_train + p.n_val + p.n_test
    evals = max(1, p.gan.iterations // max(1, p.gan.eval_every))
    metric = c["metric"] * px * (p.fid_n * 2 + p.gs_n * 2) + 1e-4 * p.gs_n * p.gs_reps
    return {
        "data": 2.0 + c["render"] * (px / 16) ** 0.5 * n_all,
        "htr": 3.0 + c["htr"] * px * p.htr.width_mult ** 2 * htr_images(p, 1.0),
        "gan": 5.0 + p.gan.iterations * (c["gan_iter"] + c["gan"] * px * p.gan.channel_mult ** 2 * p.gan.batch_size)
               + evals * metric,
        "generate": 1.0 + c["gen"] * px * p.n_synthetic,
        "final": 2.0 + metric + c["gen"] * px * p.fid_n,
        "eval": 1.0 + c["htr"] * px * p.htr.width_mult ** 2 * p.n_test / 3,
    }


def detect_device() -> str:
    """'gpu' when CUDA is available, else 'cpu'; asked through NVML, so the parent of forked stage
    workers never initialises CUDA itself."""
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    try:
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"
