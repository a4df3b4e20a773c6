"""SIGINT and SIGTERM: stop cleanly, and let a training loop stop where its state is whole
(docs/DESIGN.md §10).

`install()` (the CLI calls it) turns SIGTERM in the main process into `Terminated`, a
KeyboardInterrupt, so that every `with` block unwinds as on Ctrl-C: staging directories are
removed, locks released. Every process forked from it (stage and pool workers) gets the default
action back at the fork itself, before any of its Python code runs.

`deferred()` is for a training loop: within it, SIGINT and SIGTERM only set a flag, which the loop
reads at a point where its state is consistent (`stop.requested`), writes its checkpoint and
raises `stop.exception()`. A second signal while one is pending stops at once.
"""
from __future__ import annotations

from contextlib import contextmanager
import os
import signal
import threading
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


_fork_hook_registered = False   # os.register_at_fork hooks cannot be removed: register once


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_sigterm(signum, frame):
    raise Terminated()


def _default_sigterm_in_child() -> None:
    """After a fork: SIGTERM kills the child at once, as without any handler (a Pool's terminate()
    relies on it), whatever handler the parent had when it forked."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def install() -> None:
    """Make SIGTERM unwind the main process like Ctrl-C, and give every process forked from it the
    default action (idempotent; main thread only)."""
    global _fork_hook_registered
    if threading.current_thread() is not threading.main_thread():
        return
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=_default_sigterm_in_child)
        _fork_hook_registered = True
    signal.signal(signal.SIGTERM, _on_sigterm)


class StopRequest:
    """What `deferred()` yields: the pending signal, if any."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def exception(self) -> KeyboardInterrupt:
        return _exception(self.signum or signal.SIGINT)

    def _handler(self, signum, frame):
        if self.signum is not None:        # asked twice: stop now
            raise _exception(signum)
        self.signum = signum


@contextmanager
def deferred(enabled: bool = True) -> Iterator[StopRequest]:
    """Within the block, SIGINT/SIGTERM set `requested` instead of raising (main thread only)."""
    stop = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in before:
        signal.signal(s, stop._handler)
    try:
        yield stop
    finally:
        for s, handler in before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
