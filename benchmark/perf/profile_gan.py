"""Where a GAN training iteration spends its time: torch.profiler over a few paper-size steps.

    python -m benchmark.perf.profile_gan [--profile paper] [--device cuda] [--amp] [--steps 5]

Prints wall time per iteration, the device's busy time per iteration (sum of kernel times) and
the operators with the most self device time and self CPU time.
"""
from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from benchmark.perf.harness import NAIVE, Variant, _sync, make_gan_step
from benchmark.profiles import get_profile
from datasets.distributed import DEVICES_HELP, resolve_device


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.add_argument("--amp", action="store_true", help="bf16 + channels-last + fused Adam")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rows", type=int, default=25)
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    variant = Variant("optimised", amp=True, channels_last=True, fused_adam=True) if a.amp else NAIVE
    step, _ = make_gan_step(get_profile(a.profile), device, variant, a.batch)
    for _ in range(3):
        step()
    _sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        _sync(device)
        wall = (time.perf_counter() - t0) / a.steps
    events = prof.key_averages()
    dev_key = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
    busy = sum(getattr(e, dev_key) for e in events) / a.steps / 1e6
    print(f"{variant.name}: wall {wall * 1e3:.1f} ms/iteration, device busy {busy * 1e3:.1f} ms/iteration (profiler on)")
    if device.type == "cuda":
        print(events.table(sort_by=dev_key, row_limit=a.rows, max_name_column_width=60))
    print(events.table(sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
