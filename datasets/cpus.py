"""How many CPUs this process may use (its affinity set on Linux, else the machine's count)."""
from __future__ import annotations

from contextlib import contextmanager
import os
from typing import Iterator


def available_cpus() -> int:
    """CPUs available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch CPU threads (None: leave the count alone), then restore it."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
