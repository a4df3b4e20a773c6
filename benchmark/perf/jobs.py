"""Do parallel one-thread stages beat one stage with every thread? (`python -m benchmark.perf.jobs`)

Trains the study's recognizer (random images, CTC, RMSprop) for a fixed number of steps in N
forked processes with CPUs/N torch threads each, for N = 1, 2, …, and prints the aggregate
training images/s of each N in one run. This is what `htraug study run --jobs N` does with its
grid units; the ratio to N = 1 is its speed-up on this machine.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

from datasets.cpus import available_cpus
from datasets.preprocess import default_width


def _train(threads: int, steps: int, batch: int, height: int, width_mult: float, start, out) -> None:
    """One worker: warm up, wait for the common start, time `steps` training steps."""
    import torch
    from htr.model import GatedCRNN, ctc_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GatedCRNN(87, height, width_mult, dropout=0.3)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, height, default_width(height))
    targets = torch.randint(1, 87, (batch * 6,))
    lengths = torch.full((batch,), 6)

    def step():
        loss = ctc_loss(model(x), targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    start.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    out.put(time.perf_counter() - t0)


def measure(jobs: int, steps: int, batch: int, height: int, width_mult: float) -> dict:
    """Aggregate images/s of `jobs` concurrent workers with CPUs/jobs threads each."""
    ctx = mp.get_context("spawn")
    threads = max(1, available_cpus() // jobs)
    start, out = ctx.Barrier(jobs), ctx.Queue()
    procs = [ctx.Process(target=_train, args=(threads, steps, batch, height, width_mult, start, out))
             for _ in range(jobs)]
    for p in procs:
        p.start()
    seconds = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return {"jobs": jobs, "threads_each": threads, "seconds_max": round(max(seconds), 2),
            "images_per_s": round(jobs * steps * batch / max(seconds), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="1,2", help="comma-separated job counts to compare (default 1,2)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [measure(int(j), args.steps, args.batch, args.height, args.width_mult) for j in args.jobs.split(",")]
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup"] = round(r["images_per_s"] / base, 2)
    if args.json:
        print(json.dumps({"cpus": available_cpus(), "rows": rows}, indent=1))
    else:
        print(f"recognizer training, {args.height}×{default_width(args.height)}, batch {args.batch}, width {args.width_mult}, "
              f"{available_cpus()} CPUs")
        for r in rows:
            print(f"  {r['jobs']} job(s) × {r['threads_each']} thread(s): {r['images_per_s']:8.1f} img/s  "
                  f"(×{r['speedup']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
