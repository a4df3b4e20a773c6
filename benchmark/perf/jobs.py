"""Do parallel one-thread stages beat one stage with every thread? (`python -m benchmark.perf.jobs`)

Trains the study's recognizer (random images, CTC, RMSprop) for a fixed number of steps in N
forked processes with CPUs/N torch threads each, for N = 1, 2, …, and prints the aggregate
training images/s of each N in one run. This is what `htraug study run --jobs N` does with its
grid units; the ratio to N = 1 is its speed-up on this machine. `--malloc default,keep` runs each N
with glibc's own allocator behaviour and with freed memory kept (what `htraug` sets,
datasets/cpus.py), side by side, and reports the share of CPU time spent in the kernel.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
import json
import multiprocessing as mp
import os
import resource
import time

from datasets.cpus import AMP_MODES, MALLOC_ENV, available_cpus
from datasets.options import comma_choices
from datasets.preprocess import default_width


def _train(threads: int, steps: int, batch: int, height: int, width_mult: float, amp: str, start, out) -> None:
    """One worker: warm up, wait for the common start, time `steps` training steps (the forward pass
    under bf16 autocast where the `amp` mode turns it on here, as `htr train --amp` does)."""
    import torch
    from datasets.cpus import bf16_autocast
    from .harness import make_recognizer_step

    torch.set_num_threads(threads)
    bf16 = bf16_autocast(amp, "cpu")
    step = make_recognizer_step(height, width_mult, batch, bf16)
    for _ in range(3):
        step()
    start.wait()
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    seconds, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    out.put((seconds, system / max(user + system, 1e-9), bf16))


@contextmanager
def _malloc_environment(mode: str):
    """Processes started inside the block get glibc's defaults ("default") or htraug's settings ("keep")."""
    saved = {name: os.environ.get(name) for name in MALLOC_ENV}
    for name, value in MALLOC_ENV.items():
        if mode == "keep":
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure(jobs: int, steps: int, batch: int, height: int, width_mult: float, malloc: str = "keep",
            amp: str = "off") -> dict:
    """Aggregate images/s of `jobs` concurrent workers with CPUs/jobs threads each."""
    ctx = mp.get_context("spawn")
    threads = max(1, available_cpus() // jobs)
    start, out = ctx.Barrier(jobs), ctx.Queue()
    procs = [ctx.Process(target=_train, args=(threads, steps, batch, height, width_mult, amp, start, out))
             for _ in range(jobs)]
    with _malloc_environment(malloc):
        for p in procs:
            p.start()
    measured = [out.get() for _ in procs]
    for p in procs:
        p.join()
    seconds = max(s for s, _, _ in measured)
    return {"jobs": jobs, "threads_each": threads, "malloc": malloc, "amp": amp, "bf16": measured[0][2],
            "seconds_max": round(seconds, 2), "images_per_s": round(jobs * steps * batch / seconds, 1),
            "system_share": round(sum(share for _, share, _ in measured) / len(measured), 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="1,2", help="comma-separated job counts to compare (default 1,2)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--malloc", default="default,keep", type=comma_choices(("default", "keep")),
                    help="allocator settings to compare: glibc's defaults, freed memory kept (default: both)")
    ap.add_argument("--amp", default="off", type=comma_choices(AMP_MODES),
                    help="recognizer precisions to compare, as htr train --amp: off, on, auto (default off)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [measure(int(j), args.steps, args.batch, args.height, args.width_mult, malloc, amp)
            for amp in args.amp for malloc in args.malloc for j in args.jobs.split(",")]
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup"] = round(r["images_per_s"] / base, 2)
    if args.json:
        print(json.dumps({"cpus": available_cpus(), "rows": rows}, indent=1))
    else:
        print(f"recognizer training, {args.height}×{default_width(args.height)}, batch {args.batch}, width {args.width_mult}, "
              f"{available_cpus()} CPUs")
        for r in rows:
            precision = "bf16" if r["bf16"] else "fp32"
            print(f"  {precision} malloc {r['malloc']:<7} {r['jobs']} job(s) × {r['threads_each']} thread(s): "
                  f"{r['images_per_s']:8.1f} img/s  (×{r['speedup']:.2f})  system time {100 * r['system_share']:.0f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
