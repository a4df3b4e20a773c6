"""What a GAN recipe change costs per training iteration: the trainer's own step (`GanTraining.step`)
on a finished run's configuration, each setting timed in turn and the turns alternated.

    python -m benchmark.perf.gan_step_cost RUN [--set "d_steps=2"] [--set "cond=cbn ms_region=image"]
        [--iterations 10] [--warmup 3] [--rounds 2] [--threads 1]

RUN is a GAN run directory (in a study: STUDY/stages/DATASET/gan/work/run), whose data, judge and
recognizers are used as they are. The first setting is the run's own recipe; each --set is one more,
`field=value` pairs of GanRecipe fields (values read as JSON, else as text). Prints the seconds per
iteration of each setting in each round and each setting's best over the first's: the figures
behind the study's cost model (benchmark/study/cost.py). Measure on an idle machine.
"""
from __future__ import annotations

import argparse
from dataclasses import fields
import json
from pathlib import Path
import sys
import tempfile
import time

from datasets.errors import UserError

MAX_EVAL = 10 ** 9      # no evaluation or sample grid inside the timed iterations


def parse_setting(text: str) -> dict:
    """`field=value …` (GanRecipe fields; JSON values, else text) as a dict; a one-line error otherwise."""
    from gan.config import GanRecipe
    known = {f.name for f in fields(GanRecipe)}
    change = {}
    for pair in text.split():
        name, eq, value = pair.partition("=")
        if not eq or name not in known:
            raise UserError(f"--set {text!r}: expected field=value pairs of GAN recipe fields, got {pair!r} "
                            f"(fields: {', '.join(sorted(known))})")
        try:
            change[name] = json.loads(value)
        except json.JSONDecodeError:
            change[name] = value
    return change


def label(change: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in change.items()) or "the run's recipe"


def time_setting(stored: dict, change: dict, iterations: int, warmup: int, threads: int) -> float:
    """Seconds per iteration of the trainer's step under `stored` changed by `change`."""
    from datasets.cpus import torch_threads
    from gan.config import GanTrainConfig
    from gan.train import GanTraining

    with tempfile.TemporaryDirectory() as tmp, torch_threads(threads):
        opts = {**stored, **change, "out": str(Path(tmp) / "run"), "iterations": warmup + iterations,
                "eval_every": MAX_EVAL, "sample_every": MAX_EVAL, "progress": False, "tensorboard": None,
                "threads": threads}
        training = GanTraining(GanTrainConfig.from_json(opts, where="gan_step_cost", known_only=True))
        for _ in range(warmup):
            training.step()
        t0 = time.perf_counter()
        for _ in range(iterations):
            training.step()
        return (time.perf_counter() - t0) / iterations


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf.gan_step_cost", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a GAN run directory (its config.json)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="'FIELD=VALUE …'",
                   help="one more setting: GAN recipe fields changed from the run's (repeatable)")
    p.add_argument("--iterations", type=int, default=10, help="timed iterations per setting and round (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="times every setting is timed, alternated (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    a = p.parse_args(argv)
    try:
        return measure(a)
    except UserError as exc:
        print(f"gan_step_cost: error: {exc}", file=sys.stderr)
        return 2


def measure(a: argparse.Namespace) -> int:
    """Check every setting, then time them round by round and print the ratios."""
    if min(a.iterations, a.rounds, a.threads) < 1 or a.warmup < 0:
        raise UserError("--iterations, --rounds and --threads must be ≥ 1 and --warmup ≥ 0")
    from datasets.runs import RunDir
    from gan.checkpoint import CHECKPOINT
    from gan.config import GanTrainConfig

    stored = RunDir(a.run, CHECKPOINT).stored_config(GanTrainConfig)
    if not stored:
        raise UserError(f"{a.run}: no config.json: expected a GAN run directory")
    changes = [{}] + [parse_setting(s) for s in a.settings]
    for change in changes:           # every setting is a valid recipe before any timing starts
        GanTrainConfig.from_json({**stored, **change}, where=f"--set {label(change)!r}", known_only=True)
    times: list[list[float]] = [[] for _ in changes]
    for r in range(a.rounds):
        for k, change in enumerate(changes):
            times[k].append(time_setting(stored, change, a.iterations, a.warmup, a.threads))
            print(f"round {r + 1}: {label(change)}: {times[k][-1]:.3f} s/iteration", flush=True)
    base = min(times[0])
    for change, ts in zip(changes, times):
        print(f"{label(change)}: best {min(ts):.3f} s/iteration, ×{min(ts) / base:.3f} the run's recipe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
