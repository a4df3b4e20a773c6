"""Progress bars with ETA (tqdm), quiet when not attached to a terminal unless forced."""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress(iterable=None, desc: str = "", total: int | None = None, disable: bool = False, **kwargs):
    """A tqdm bar on stderr; HTRAUG_PROGRESS=0 silences bars, =1 forces them on non-terminals."""
    env = os.environ.get("HTRAUG_PROGRESS")
    if env == "0":
        disable = True
    elif env != "1" and not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, leave=False, **kwargs)
