"""kill -9 the real smoke study mid-run (its whole process group, workers included), twice, start
it again, and get the same results.json as an uninterrupted study: nothing lost, nothing redone
wrong. About two and a half minutes on 2 CPU cores, so it is a slow test."""
from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

VOLATILE = ("timings", "versions", "merged_from", "shard")


def _study(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmark.cli", "study", "run", "--profile", "smoke", "--out", str(out),
           "--jobs", "2", "--no-report"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _stable(path: Path) -> dict:
    doc = json.loads((path / "results.json").read_text())
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def _gan_running(stages: Path) -> bool:
    return (stages / "rimes-like/gan/work/run/log.jsonl").is_file()


def _unit_running(stages: Path) -> bool:
    """A grid unit that has logged a validation but is not finished."""
    return any(not (log.parents[2] / "stage.json").is_file()
               for log in stages.glob("*/htr/*/*/*/work/run/log.jsonl"))


def _kill_when(out: Path, ready, what: str) -> set[Path]:
    """Start the study, kill -9 its process group once `ready(stages)` holds; the finished stages."""
    proc = _study(out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not ready(out / "stages"):
        time.sleep(0.05)
    assert proc.poll() is None, f"the study ended before it could be killed {what}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    return {p.parent for p in (out / "stages").rglob("stage.json")}


@pytest.mark.slow
def test_killed_and_restarted_smoke_study_gives_identical_results(tmp_path):
    ref = _study(tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read()[-2000:]

    out = tmp_path / "k"
    first = _kill_when(out, _gan_running, "while the GAN trains")
    second = _kill_when(out, _unit_running, "while a recognizer trains")
    assert first < second, "the restarted study made no progress"

    again = _study(out)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert all((d / "stage.json").is_file() for d in second)
    skipped = [line for line in err.splitlines() if "up to date, skipped" in line]
    assert len(skipped) >= len(second)        # finished stages were not redone
    assert _stable(out) == _stable(tmp_path / "ref")
