"""The study's cost model: projected seconds per kind of stage, for ETAs and the paper profile's
projected duration before any work starts."""
from __future__ import annotations

from dataclasses import replace
import os
from typing import Mapping

from ..profiles import PROFILES, Profile

# Seconds per image-pass at 32×128 with width multiplier 1 (scaled by pixels and width²), plus a
# per-iteration GAN overhead (φ's BiLSTM, R, gradient balancing). CPU figures: measured on the
# shared 2-core machine under load and rounded. GPU figures: the perf harness's rates on an H100
# (benchmark/RESULTS.md "GPU (H100)"): the real GAN trainer's 3.19 it/s at 128×512, batch 64, and
# the recognizer's 1.8k img/s. The runner rescales every ETA by the speed it observes, so these
# only set the first estimate.
_COST = {"cpu": {"render": 2.2e-3, "htr": 2.5e-3, "gan": 2e-2, "gan_iter": 0.5, "gen": 2e-3, "metric": 4e-3},
         "gpu": {"render": 2.2e-3, "htr": 3.5e-5, "gan": 2.76e-4, "gan_iter": 0.03, "gen": 5e-5, "metric": 2e-4}}


# What the GAN recipe adds to a CPU iteration of the paper's networks (the cost table's and the
# calibration's), measured in the real trainer at the quick size, two runs × 1 thread at once
# (Intel Xeon, 2 vCPUs, 2026-12-03; benchmark/RESULTS.md "The GAN's share of the first ETA"): spatial
# conditioning ×1.32 (0.86 against 0.65 s per iteration with CBN), each frozen reader +4 %;
# distorting the fakes and mode seeking cost nothing measurable. Each D update past the first adds
# a generated batch and D's step: +27 % of the quick recipe's iteration (1.57–1.64 against
# 1.23–1.30 s, one thread; AMD EPYC Zen 4, 2026-12-07, RESULTS "D's update ratio and learning rate").
GAN_COND_COST = {"spatial": 1.32}
GAN_READER_COST = 0.04
GAN_D_STEP_COST = 0.27


def gan_recipe_factor(p: Profile) -> float:
    """The CPU cost of one of profile `p`'s GAN iterations over one of the paper's networks."""
    readers = sum(len(p.seeds_of(row, 1.0, 0)) for row in p.gan_readers)
    d_updates = 1.0 + GAN_D_STEP_COST * (p.gan.d_steps - 1)
    return GAN_COND_COST.get(p.gan.cond, 1.0) * (1.0 + GAN_READER_COST * readers) * d_updates


def htr_images(p: Profile, scale: float) -> float:
    """Training images one recognizer sees on `scale` × n_train images (step cap included)."""
    images = p.htr.max_epochs * (scale * p.n_train + p.n_val)
    return min(images, p.htr.max_steps * p.htr.batch_size) if p.htr.max_steps else images


def cost_model(p: Profile, device: str, speed: dict[str, float] | None = None) -> dict[str, float]:
    """Projected seconds for each kind of stage of profile `p` on `device` ('cpu' or 'gpu');
    `speed` (from `calibrate`) scales the CPU figures to this machine."""
    c = dict(_COST[device])
    if device == "cpu":
        for key in ("gan", "gan_iter"):
            c[key] *= gan_recipe_factor(p)
    if speed:
        for key in ("htr",):
            c[key] *= speed["htr"]
        for key in ("gan", "gan_iter", "gen", "metric"):
            c[key] *= speed["gan"]
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


# The calibration workloads: recognizer training steps at 32×128, width 1.0, batch 32, and GAN
# iterations at the quick size (channel multiplier 0.5, batch 16). What the CPU cost table predicts
# for one of each is the reference their measured time is divided by.
CAL_HTR_BATCH, CAL_GAN_BATCH, CAL_GAN_MULT = 32, 16, 0.5


def calibration_reference() -> dict[str, float]:
    """The CPU cost table's seconds for one calibration step of each kind (32×128: px = 1)."""
    c = _COST["cpu"]
    return {"htr": c["htr"] * CAL_HTR_BATCH, "gan": c["gan_iter"] + c["gan"] * CAL_GAN_MULT ** 2 * CAL_GAN_BATCH}


def calibration_workloads(threads: int, amp: Mapping[str, str] | None = None) -> dict[str, float]:
    """Median seconds of a recognizer training step (5 timed) and of a GAN iteration (D + R +
    balanced G, 2 timed) of the calibration workloads on `threads` torch threads, each under bf16
    autocast where its recipe's precision mode (`amp`: {'htr': mode, 'gan': mode}, Profile.amp_modes)
    turns it on here."""
    import statistics
    import time

    import torch

    from datasets.cpus import bf16_autocast, torch_threads

    from ..perf.harness import NAIVE, make_gan_step, make_recognizer_step

    amp = amp or {}

    def median_time(step, warmup: int, reps: int) -> float:
        for _ in range(warmup):
            step()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    with torch_threads(threads):
        htr_step = make_recognizer_step(32, 1.0, CAL_HTR_BATCH, bf16_autocast(amp.get("htr", "off"), "cpu"))
        quick = PROFILES["quick"]
        assert quick.gan.channel_mult == CAL_GAN_MULT and (quick.height, quick.width) == (32, 128)
        gan_variant = replace(NAIVE, amp=bf16_autocast(amp.get("gan", "off"), "cpu"))
        gan_step, _ = make_gan_step(quick, torch.device("cpu"), gan_variant, CAL_GAN_BATCH)
        return {"htr": median_time(htr_step, 2, 5), "gan": median_time(gan_step, 1, 2)}


def _calibration_worker(threads: int, amp: Mapping[str, str] | None, start, out) -> None:
    start.wait()
    out.put(calibration_workloads(threads, amp))


def calibrate(threads: int, jobs: int = 1, amp: Mapping[str, str] | None = None) -> dict[str, float]:
    """This machine's CPU speed against the cost table: {'htr': f, 'gan': f}, each the ratio of a
    calibration step's measured time to the table's (2: stages will take twice the table's time).
    With `jobs` > 1 that many workers measure at once, as the study's stages will run; each step
    runs in its recipe's precision (`amp`, Profile.amp_modes)."""
    if jobs <= 1:
        measured = [calibration_workloads(threads, amp)]
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")     # fresh interpreters: no OpenMP pool crosses a fork
        start, out = ctx.Barrier(jobs), ctx.Queue()
        procs = [ctx.Process(target=_calibration_worker, args=(threads, amp, start, out)) for _ in range(jobs)]
        for proc in procs:
            proc.start()
        measured = [out.get() for _ in procs]
        for proc in procs:
            proc.join()
    reference = calibration_reference()
    return {k: sum(m[k] for m in measured) / len(measured) / reference[k] for k in reference}
