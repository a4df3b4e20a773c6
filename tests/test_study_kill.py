"""kill -9 the real smoke study mid-run (its whole process group, workers included), start it
again, and get the same results.json as an uninterrupted study: nothing lost, nothing redone
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


def _study(out: Path, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmark.cli", "study", "run", "--profile", "smoke", "--out", str(out),
           "--jobs", "2", "--no-report"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _stable(path: Path) -> dict:
    doc = json.loads((path / "results.json").read_text())
    return {k: v for k, v in doc.items() if k not in VOLATILE}


@pytest.mark.slow
def test_killed_and_restarted_smoke_study_gives_identical_results(tmp_path):
    ref = _study(tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read()[-2000:]

    killed = _study(tmp_path / "k")
    deadline = time.monotonic() + 300
    stage_dir = tmp_path / "k/stages"
    # kill once the GAN has started (its data and judge are done), mid-way through the study
    while time.monotonic() < deadline and not (stage_dir / "rimes-like/gan/work/run").exists():
        time.sleep(0.2)
    time.sleep(2.0)
    assert killed.poll() is None, "the study ended before it could be killed"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "k/results.json").exists()
    done_before = {p.parent for p in stage_dir.rglob("stage.json")}

    again = _study(tmp_path / "k")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert done_before and all((d / "stage.json").is_file() for d in done_before)
    skipped = [line for line in err.splitlines() if "up to date, skipped" in line]
    assert len(skipped) >= len(done_before)        # finished stages were not redone
    assert _stable(tmp_path / "k") == _stable(tmp_path / "ref")
