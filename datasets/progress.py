"""Progress bars with ETA (tqdm), quiet when not attached to a terminal unless forced.

A process whose environment names a file in HTRAUG_PROGRESS_FILE (a study's parallel stage
worker) draws its bars into that file instead: it holds the latest rendered bar line, which the
study's scheduler prints beside the stage's name.
"""
from __future__ import annotations

import os
from pathlib import Path
import sys

from tqdm.auto import tqdm

from .errors import UserError
from .files import atomic_write_text

PROGRESS_FILE_ENV = "HTRAUG_PROGRESS_FILE"


class LatestLineFile:
    """A write-only text stream that keeps only the newest bar line, atomically, in `path`."""

    def __init__(self, path):
        self.path = Path(path)

    def write(self, text: str) -> int:
        line = next((part.strip() for part in reversed(text.replace("\n", "\r").split("\r")) if part.strip()), "")
        if line:
            try:
                atomic_write_text(self.path, line + "\n")
            except (OSError, UserError):   # progress is advisory: never fail the work over it
                pass
        return len(text)

    def flush(self) -> None:
        pass


def progress(iterable=None, desc: str = "", total: int | None = None, disable: bool = False, **kwargs):
    """A tqdm bar on stderr; HTRAUG_PROGRESS=0 silences bars, =1 forces them on non-terminals."""
    env = os.environ.get("HTRAUG_PROGRESS")
    sink = os.environ.get(PROGRESS_FILE_ENV)
    if env == "0":
        disable = True
    elif sink:
        kwargs.update(file=LatestLineFile(sink), mininterval=5.0, ncols=110)
    elif env != "1" and not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 30.0)
    if not sink:
        kwargs["dynamic_ncols"] = True   # a terminal's width; the status file has a fixed one
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, **kwargs)
