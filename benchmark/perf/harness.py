"""One perf harness for the hot paths (`htraug bench`, or `python -m benchmark.perf.harness`).

Every measurement runs a *naive* variant (fp32, eager, default settings) and, where the device
supports it, an *optimised* one (bf16 autocast, channels-last, fused Adam, optionally
torch.compile) in the same process, so speed-ups are ratios from one run. Results are printed as
a table and written as JSON.

Hot paths: GAN training iteration (D step + R step + balanced G step), HTR training and
inference images/s, generation images/s, FID feature extraction images/s (InceptionV3 with random
weights — speed does not depend on them — and the recognizer's pooled features), Fréchet distance
time, Geometry Score time, dataset build and packed-cache load images/s.
"""
from __future__ import annotations

import argparse
from contextlib import nullcontext
from dataclasses import dataclass
import platform
import time

import torch

from benchmark.profiles import get_profile
from datasets.cpus import allocator_settings, keep_freed_memory
from datasets.distributed import resolve_device


@dataclass(frozen=True)
class Variant:
    """How a hot path is run: the naive baseline or an optimised configuration."""

    name: str
    amp: bool = False             # bf16 autocast (CUDA, or a CPU asked for it); CTC and balancing stay fp32
    channels_last: bool = False
    fused_adam: bool = False
    compile: bool = False
    compile_mode: str = "default"  # torch.compile mode ('reduce-overhead' adds CUDA graphs)
    fast_step: bool = False       # GAN only: gan/fast.py's iteration (compile: the whole iteration, fullgraph)

    def autocast(self, device: torch.device):
        if self.amp:
            return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
        return nullcontext


NAIVE = Variant("naive fp32 eager")


def variants_for(device: torch.device, with_compile: bool, compile_mode: str = "default") -> list[Variant]:
    """The naive variant plus the optimisations that make sense on `device`."""
    out = [NAIVE]
    suffix = "" if compile_mode == "default" else f" ({compile_mode})"
    if device.type == "cuda":
        out.append(Variant("bf16 + channels-last + fused Adam", amp=True, channels_last=True, fused_adam=True))
        if with_compile:
            out.append(Variant("bf16 + channels-last + fused Adam + compile" + suffix, amp=True, channels_last=True,
                               fused_adam=True, compile=True, compile_mode=compile_mode))
    elif with_compile:
        out.append(Variant("fp32 + compile" + suffix, compile=True, compile_mode=compile_mode))
    return out


def fast_step_variants(device: torch.device, with_compile: bool, compile_mode: str = "default") -> list[Variant]:
    """The GAN's fast iteration (gan/fast.py), eager and, with `with_compile`, compiled whole."""
    amp = device.type == "cuda"
    base = "bf16 + channels-last + fast step" if amp else "fp32 + fast step"
    out = [Variant(base, amp=amp, channels_last=amp, fast_step=True)]
    if with_compile:
        suffix = "" if compile_mode == "default" else f" ({compile_mode})"
        out.append(Variant(base + " + compile (one graph)" + suffix, amp=amp, channels_last=amp, fast_step=True,
                           compile=True, compile_mode=compile_mode))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Seconds per call of `fn` after `warmup` calls (device synchronised around the timing)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def _prepare(module: torch.nn.Module, variant: Variant, device: torch.device):
    module = module.to(device)
    if variant.channels_last:
        module = module.to(memory_format=torch.channels_last)
    return torch.compile(module, mode=variant.compile_mode) if variant.compile else module


def _adam(params, variant: Variant, device: torch.device):
    fused = variant.fused_adam and device.type == "cuda"
    return torch.optim.Adam(params, lr=2e-4, betas=(0.0, 0.999), fused=fused)


def _random_batch(n: int, height: int, width: int, num_symbols: int, max_len: int, gen: torch.Generator):
    """Random images in [-1, 1], targets and lengths that fit the recognizer's frames."""
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen)
    targets = torch.randint(1, num_symbols + 1, (int(lengths.sum()),), generator=gen)
    x = torch.rand(n, 1, height, width, generator=gen) * 2 - 1
    return x, targets, lengths


def make_gan_step(profile, device, variant: Variant, batch: int, num_symbols: int = 86):
    """(step, modules): one full GAN training iteration on fixed random inputs, and φ, G, D, R;
    with `variant.fast_step` gan/fast.py's iteration on the same networks and inputs (compiled
    whole with `variant.compile`)."""
    from gan.networks import NetConfig, WordEncoder, Generator, Discriminator
    from gan.train import d_step, r_step, g_step
    from htr.model import GatedCRNN

    torch.manual_seed(0)
    cfg = NetConfig(num_symbols=num_symbols, height=profile.height, width=profile.width,
                    channel_mult=profile.gan.channel_mult)
    # the fast step compiles the whole iteration, not the modules one by one
    modules = Variant(variant.name, channels_last=variant.channels_last) if variant.fast_step else variant
    phi = _prepare(WordEncoder(cfg), NAIVE, device)
    G = _prepare(Generator(cfg), modules, device)
    D = _prepare(Discriminator(cfg), modules, device)
    R = _prepare(GatedCRNN(num_symbols + 1, profile.height, profile.htr.width_mult), modules, device)
    opt_g = _adam(list(phi.parameters()) + list(G.parameters()), variant, device)
    opt_d, opt_r = _adam(D.parameters(), variant, device), _adam(R.parameters(), variant, device)
    gen = torch.Generator().manual_seed(0)
    max_len = max(1, min(12, GatedCRNN.num_frames(profile.width) // 2))
    x_real, targets, lengths = _random_batch(batch, profile.height, profile.width, num_symbols, max_len, gen)
    x_real = x_real.to(device)
    if variant.channels_last:
        x_real = x_real.contiguous(memory_format=torch.channels_last)
    tokens = torch.randint(1, num_symbols + 1, (batch, max_len), generator=gen).to(device)
    tok_len = torch.full((batch,), max_len, dtype=torch.long)
    z = torch.randn(batch, cfg.z_dim, generator=gen).to(device)
    autocast = variant.autocast(device)
    nets = {"phi": phi, "G": G, "D": D, "R": R}
    if variant.fast_step:
        from types import SimpleNamespace

        from gan.fast import FastGanStep, compile_step
        from htr.ctc import padded_targets

        recipe = SimpleNamespace(loss="hinge", ctc_reduction="char", grad_clip_d=5.0, grad_clip_r=5.0, ms_weight=0.0)
        fast = FastGanStep(SimpleNamespace(**nets, opt_g=opt_g, opt_d=opt_d, opt_r=opt_r), recipe, autocast=autocast)
        fn = compile_step(fast, variant.compile_mode) if variant.compile else fast
        real_targets = padded_targets(targets, lengths, max_len).to(device)
        tok_len = tok_len.to(device)
        args = (x_real, real_targets, lengths.to(device), tokens, tok_len, z, tokens, tok_len, tokens, z, 1.0)
        return (lambda: fn(*args)), nets
    targets, lengths = targets.to(device), lengths.to(device)
    ftargets = tokens.flatten()

    def step():
        with torch.no_grad(), autocast():
            x_fake = G(z, phi(tokens, tok_len)).float()
        d_step(D, opt_d, x_real, x_fake, "hinge", 5.0, autocast)
        r_step(R, opt_r, x_real, targets, lengths, 5.0, autocast)
        g_step(phi, G, D, R, opt_g, tokens, tok_len, ftargets, z, 1.0, "hinge", autocast)

    return step, nets


def bench_gan(profile, device, variant: Variant, batch: int, warmup: int, iters: int, num_symbols: int = 86) -> dict:
    """GAN training iterations/s: one D step (real + fake batch), one R step, one balanced G step."""
    from gan.networks import count_parameters

    step, modules = make_gan_step(profile, device, variant, batch, num_symbols)
    sec = _timed(step, device, warmup, iters)
    out = {"it_per_s": 1.0 / sec, "batch": batch, "params": {k: count_parameters(m) for k, m in modules.items()}}
    if device.type == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        out["projected_300k_h"] = 300_000 * sec / 3600
    return out


def make_recognizer_step(height: int, width_mult: float, batch: int, bf16: bool):
    """One training step of the study's recognizer (dropout 0.3, RMSprop at 1e-3, CTC on 6-symbol
    targets) on fixed random images, its forward pass under CPU bf16 autocast when `bf16`: the
    workload `benchmark.perf.jobs` and the study's ETA calibration time."""
    from datasets.preprocess import default_width
    from htr.model import GatedCRNN, ctc_loss

    torch.manual_seed(0)
    model = GatedCRNN(87, height, width_mult, dropout=0.3)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, height, default_width(height))
    targets, lengths = torch.randint(1, 87, (batch * 6,)), torch.full((batch,), 6)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            log_probs = model(x)
        loss = ctc_loss(log_probs, targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def bench_htr(profile, device, variant: Variant, batch: int, warmup: int, iters: int, num_symbols: int = 86) -> dict:
    """HTR training (CTC + RMSprop) and inference images/s."""
    from htr.model import GatedCRNN, ctc_loss

    torch.manual_seed(0)
    model = _prepare(GatedCRNN(num_symbols + 1, profile.height, profile.htr.width_mult), variant, device)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(1)
    max_len = max(1, min(12, GatedCRNN.num_frames(profile.width) // 2))
    x, targets, lengths = _random_batch(batch, profile.height, profile.width, num_symbols, max_len, gen)
    x, targets, lengths = x.to(device), targets.to(device), lengths.to(device)
    if variant.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = variant.autocast(device)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            lp = model(x)
        ctc_loss(lp, targets, lengths).backward()
        opt.step()

    def infer():
        with torch.no_grad(), autocast():
            model(x)

    train_s = _timed(train_step, device, warmup, iters)
    infer_s = _timed(infer, device, warmup, iters)
    return {"train_img_per_s": batch / train_s, "infer_img_per_s": batch / infer_s, "batch": batch,
            "epoch_230k_s": 230_000 * train_s / batch}


def bench_generation(profile, device, variant: Variant, batch: int, warmup: int, iters: int, num_symbols: int = 86) -> dict:
    """Generation images/s (φ + G forward, eval mode, no grad)."""
    from gan.networks import NetConfig, WordEncoder, Generator

    torch.manual_seed(0)
    cfg = NetConfig(num_symbols=num_symbols, height=profile.height, width=profile.width,
                    channel_mult=profile.gan.channel_mult)
    phi, G = WordEncoder(cfg).to(device).eval(), _prepare(Generator(cfg), variant, device).eval()
    gen = torch.Generator().manual_seed(2)
    tokens = torch.randint(1, num_symbols + 1, (batch, 8), generator=gen).to(device)
    tok_len = torch.full((batch,), 8, dtype=torch.long)
    z = torch.randn(batch, cfg.z_dim, generator=gen).to(device)
    autocast = variant.autocast(device)

    def gen_step():
        with torch.no_grad(), autocast():
            G(z, phi(tokens, tok_len))

    return {"img_per_s": batch / _timed(gen_step, device, warmup, iters), "batch": batch}


def bench_features(profile, device, batch: int, n_inception: int) -> dict:
    """FID feature extraction images/s: InceptionV3 (random weights) and the recognizer's features."""
    from benchmark.metrics.inception import FIDInceptionV3, inception_features
    from htr.model import GatedCRNN

    gen = torch.Generator().manual_seed(3)
    images = (torch.rand(n_inception, profile.height, profile.width, generator=gen) * 255).to(torch.uint8).numpy()
    model = FIDInceptionV3().to(device).eval()
    inception_features(model, images[:batch], batch, device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    inception_features(model, images, batch, device)
    _sync(device)
    inc = n_inception / (time.perf_counter() - t0)
    judge = GatedCRNN(87, profile.height, profile.htr.width_mult).to(device).eval()
    x = torch.rand(batch, 1, profile.height, profile.width, generator=gen).to(device) * 2 - 1

    def feats():
        with torch.no_grad():
            judge.features(x)

    return {"inception_img_per_s": inc, "htr_img_per_s": batch / _timed(feats, device, 1, 3)}


def bench_frechet(d: int) -> dict:
    from benchmark.perf.metrics import perf_frechet

    return perf_frechet(d=d)


def bench_gs(n: int, dim: int, reps: int, workers: int, ref_reps: int) -> dict:
    """Fast Geometry Score vs the straightforward reference (timed on `ref_reps` repetitions)."""
    from benchmark.perf.metrics import perf_gs

    return perf_gs(n=n, dim=dim, reps=reps, ref_reps=max(1, ref_reps), workers=workers)


def bench_data(profile, n: int, workers: int) -> dict:
    """Stand-in build and packed-cache loader images/s at the profile's size."""
    from benchmark.perf.data import DataPerfConfig, run

    return run(DataPerfConfig(kind="rimes-like", n=n, height=profile.height, width=profile.width, workers=workers))


def run(args) -> dict:
    """Run the selected measurements; returns the JSON-ready result."""
    profile = get_profile(args.profile)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(",") if isinstance(args.only, str) else args.only) if args.only else set(MEASUREMENTS)
    result = {"profile": profile.name, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "threads": torch.get_num_threads(), "allocator": allocator_settings(),
              "measurements": {}}
    meas = result["measurements"]
    for variant in variants_for(device, args.compile, args.compile_mode):
        key = variant.name
        if "gan" in only:
            meas.setdefault("gan", {})[key] = bench_gan(profile, device, variant, args.batch, args.warmup, args.iters)
        if "htr" in only:
            meas.setdefault("htr", {})[key] = bench_htr(profile, device, variant, args.batch, args.warmup, args.iters)
        if "generation" in only:
            meas.setdefault("generation", {})[key] = bench_generation(profile, device, variant, max(args.batch, 64), args.warmup, args.iters)
    if "gan" in only:
        for variant in fast_step_variants(device, args.compile, args.compile_mode):
            meas.setdefault("gan", {})[variant.name] = bench_gan(profile, device, variant, args.batch, args.warmup, args.iters)
    if "features" in only:
        meas["features"] = bench_features(profile, device, args.batch, args.inception_n)
    if "frechet" in only:
        meas["frechet"] = bench_frechet(args.frechet_dim)
    if "gs" in only:
        meas["gs"] = bench_gs(args.gs_n, profile.height * profile.width, args.gs_reps, args.workers, args.gs_ref_reps)
    if "data" in only:
        meas["data"] = bench_data(profile, args.data_n, args.workers)
    for group in ("gan", "htr", "generation"):
        rows = meas.get(group, {})
        if NAIVE.name in rows:
            base = rows[NAIVE.name]
            k = {"gan": "it_per_s", "htr": "train_img_per_s", "generation": "img_per_s"}[group]
            for row in rows.values():
                row["speedup_vs_naive"] = row[k] / base[k]
    return result


def _flatten(prefix: str, value, out: list[tuple[str, float]]) -> None:
    """(dotted name, number) pairs of the numeric leaves of a nested result."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix} {k}" if prefix else str(k), v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append((prefix, value))


def format_table(result: dict) -> str:
    """Human-readable table of a harness result (every numeric leaf, one line each)."""
    allocator = " ".join(f"{k}={v}" for k, v in result.get("allocator", {}).items()) or "glibc default"
    lines = [f"profile {result['profile']} · device {result['device']} · torch {result['torch']} · threads {result['threads']}"
             f" · allocator {allocator}",
             f"{'measurement':<64} {'value':>14}"]
    rows: list[tuple[str, float]] = []
    _flatten("", result["measurements"], rows)
    lines += [f"{name[:64]:<64} {value:>14.4g}" for name, value in rows]
    return "\n".join(lines)


MEASUREMENTS = ("gan", "htr", "generation", "features", "frechet", "gs", "data")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.profiles import PROFILES
    from datasets.options import comma_choices, non_negative_int, number, positive_int

    p.add_argument("--profile", default="paper", choices=sorted(PROFILES), help="profile whose sizes are measured (default: paper, 128×512)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--only", default=None, type=comma_choices(MEASUREMENTS), help=f"comma list of {','.join(MEASUREMENTS)}")
    p.add_argument("--batch", type=number(int, min=2), default=64, help="batch size (paper: 64)")
    p.add_argument("--warmup", type=non_negative_int, default=2)
    p.add_argument("--iters", type=positive_int, default=5)
    p.add_argument("--compile", action="store_true", help="also measure a torch.compile variant")
    p.add_argument("--compile-mode", default="default", choices=("default", "reduce-overhead", "max-autotune-no-cudagraphs"),
                   help="torch.compile mode of that variant")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--inception-n", type=positive_int, default=64, help="images for the InceptionV3 feature rate")
    p.add_argument("--frechet-dim", type=positive_int, default=2048)
    p.add_argument("--gs-n", type=number(int, min=2), default=5000)
    p.add_argument("--gs-reps", type=positive_int, default=100)
    p.add_argument("--gs-ref-reps", type=positive_int, default=1, help="repetitions of the naive GS reference to time (≥ 1)")
    p.add_argument("--data-n", type=positive_int, default=500, help="images for the build/load rate")
    p.add_argument("--workers", type=positive_int, default=2)
    p.add_argument("--json", default=None, help="write the result here")


def command(args) -> int:
    from datasets.files import atomic_write_json, check_new_file

    check_new_file(args.json)
    result = run(args)
    print(format_table(result))
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf.harness", description=__doc__.splitlines()[0])
    add_arguments(p)
    keep_freed_memory()     # as `htraug bench` does (HTRAUG_MALLOC=default: glibc's own behaviour)
    return command(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
