"""datasets/cpus.py: the allocator setting that keeps freed memory (measured by page faults)."""
from __future__ import annotations

import json
import os
from pathlib import Path
import platform
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Ten 4 MiB buffers allocated and freed twenty times, as a training step frees its activations;
# prints the minor page faults that cost (every fault is a fresh page from the kernel).
CHURN = """
import json, resource
from datasets.cpus import allocator_settings, keep_freed_memory
kept = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    buffers = [bytearray(4 << 20) for _ in range(10)]
    del buffers
print(json.dumps([kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, sorted(allocator_settings())]))
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def _churn(mode: str) -> tuple[bool, int, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(HTRAUG_MALLOC=mode, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHURN], env=env, capture_output=True, text=True, check=True)
    kept, faults, names = json.loads(out.stdout)
    return kept, faults, names


@glibc
def test_kept_memory_is_reused_not_faulted_in_again():
    kept, faults_kept, names = _churn("keep")
    default, faults_default, default_names = _churn("default")
    assert kept and not default
    assert names == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"] and default_names == []
    # glibc's defaults hand the 40 MiB back to the kernel every round (≈ 20 × 10 × 1,024 pages);
    # kept, only the first round faults its pages in.
    assert faults_default > 5 * faults_kept, (faults_default, faults_kept)


@glibc
def test_user_settings_are_left_alone():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "HTRAUG_MALLOC"}
    env.update(MALLOC_TRIM_THRESHOLD_="12345", PYTHONPATH=str(ROOT))
    code = ("import os; from datasets.cpus import keep_freed_memory; "
            "print(keep_freed_memory(), os.environ.get('MALLOC_MMAP_THRESHOLD_'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "None"]
