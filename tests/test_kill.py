"""Kill tests (slow): `kill -9` at random points of `data build`, `gan generate`, `htr train` and
`gan train`, then the same command again (`--resume` for a trainer whose run directory exists):
the outputs equal an uninterrupted run's and nothing is left behind (no staging directory, no
temporary file, no lock file).

The kill points are drawn per command from a seeded generator (HTRAUG_KILL_SEED, default 0) at
early, middle and late fractions (a third of the way in and more: before that the command is still importing) of the uninterrupted run's wall time.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HTRAUG_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
DEBRIS = re.compile(r"^\..*(\.tmp|\.tmp-.*|\.old-\d+|\.lock)$")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, make_tiny):
    """A tiny dataset pair and a GAN run to generate from (names that shadow no package)."""
    root = tmp_path_factory.mktemp("kill-inputs")
    make_tiny(root / "tr", n=48)
    make_tiny(root / "va", n=8, seed=1)
    _run(["gan", "train", *_GAN, "--data", str(root / "tr"), "--out", str(root / "g-run"), "--iterations", "4",
          "--eval-every", "2"], root)
    return root


_GAN = ["--batch-size", "4", "--channel-mult", "0.125", "--height", "16", "--fid-n", "0", "--gs-n", "0",
        "--eval-words", "4", "--htr-width-mult", "0.25", "--quiet", "--threads", "1"]


def _command(name: str, inputs: Path, out: Path) -> list[str]:
    return {
        "data build": ["data", "build", "--dataset", "rimes-like", "--out", str(out), "--train", "1500", "--val", "100",
                       "--test", "100", "--height", "16", "--width", "64", "--workers", "1", "--writers-per-font", "3"],
        "gan generate": ["gan", "generate", "--model", str(inputs / "g-run"), "--n", "2000", "--out", str(out),
                         "--batch-size", "16"],
        "htr train": ["htr", "train", "--train", str(inputs / "tr"), "--val", str(inputs / "va"), "--out", str(out),
                      "--max-epochs", "10", "--batch-size", "4", "--width-mult", "0.25", "--save-every", "5", "--quiet",
                      "--threads", "1"],
        "gan train": ["gan", "train", "--data", str(inputs / "tr"), "--out", str(out), "--iterations", "50",
                      "--eval-every", "5", *_GAN],
    }[name]


def _run(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", *argv], cwd=cwd, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, f"htraug {' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}"


def _killed(argv: list[str], cwd: Path, after: float) -> bool:
    """Start the command and kill -9 it `after` seconds later; False when it finished first."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *argv], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _tree(out: Path) -> dict[str, str]:
    """sha256 of every file under `out` (relative paths)."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _htr_outputs(run: Path) -> dict:
    last, best = (torch.load(run / n, weights_only=True) for n in ("last.pt", "best.pt"))
    log = [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in (run / "log.jsonl").read_text().splitlines()]
    return {"last": {k: v.numpy().tobytes() for k, v in last["model"].items()},
            "best": {k: v.numpy().tobytes() for k, v in best["model"].items()},
            "progress": {k: v for k, v in last["state"]["progress"].items() if k != "wall_s"}, "log": log}


def _gan_outputs(run: Path) -> dict:
    last = torch.load(run / "last.pt", weights_only=True)
    log = [{k: v for k, v in json.loads(line).items() if k not in ("train_seconds", "eval_seconds")}
           for line in (run / "log.jsonl").read_text().splitlines()]
    return {"models": {f"{n}.{k}": v.numpy().tobytes() for n, m in last["models"].items() for k, v in m.items()},
            "evals": [r for r in log if r.get("event") == "eval"], "iteration": last["iteration"],
            "samples": _tree(run / "samples")}


OUTPUTS = {"data build": _tree, "gan generate": _tree, "htr train": _htr_outputs, "gan train": _gan_outputs}


def _debris(parent: Path) -> list[str]:
    return sorted(str(p.relative_to(parent)) for p in parent.rglob("*") if DEBRIS.match(p.name))


@pytest.mark.parametrize("name", ["data build", "gan generate", "htr train", "gan train"])
def test_kill_9_then_rerun_gives_the_uninterrupted_outputs_and_no_debris(inputs, tmp_path, name):
    ref = tmp_path / "ref"
    ref.mkdir()
    t0 = time.monotonic()
    _run(_command(name, inputs, ref / "out"), ref)
    wall = time.monotonic() - t0
    expected = OUTPUTS[name](ref / "out")
    rng = np.random.default_rng([int(os.environ.get("HTRAUG_KILL_SEED", "0")), len(name)])
    points = [wall * rng.uniform(lo, hi) for lo, hi in ((0.35, 0.55), (0.55, 0.75), (0.75, 0.95))]
    killed = 0
    for k, after in enumerate(points):
        for attempt in range(3):          # a run that finished before its kill point tries an earlier one
            here = tmp_path / f"kill{k}-{attempt}"
            here.mkdir()
            out = here / "out"
            hit = _killed(_command(name, inputs, out), here, after)
            left = sorted(str(p.relative_to(here)) for p in here.rglob("*") if p.parent == here or p.parent == out)
            print(f"{name}: {'killed' if hit else 'finished before'} {after:.2f} s (reference {wall:.2f} s), left {left}")
            argv = _command(name, inputs, out)
            if name.endswith("train"):
                _run(argv + (["--resume"] if out.exists() else []), here)
            elif not out.exists():                     # published atomically: present means complete
                _run(argv, here)
            assert OUTPUTS[name](out) == expected, f"{name} killed after {after:.2f} s of {wall:.2f} s: outputs differ"
            assert _debris(here) == [], f"{name} killed after {after:.2f} s: debris {_debris(here)}"
            if hit:
                killed += 1
                break
            after *= 0.7
    assert killed >= 2, f"{name}: the command finished before most kill points ({killed} of 3 killed)"
