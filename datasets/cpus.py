"""How many CPUs this process may use (its affinity set on Linux, else the machine's count)."""
from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
