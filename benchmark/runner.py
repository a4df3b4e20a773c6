"""The stage runner: runs a graph of content-hashed stages (benchmark/stage.py) in dependency
order, skipping up-to-date ones, resuming interrupted ones, and writing every result atomically.

On disk (under the study directory) a stage owns `stages/<name>/`:
  work/          the stage's working directory; trainers write (and resume) their run dirs here
  work/.hash     the hash the work directory belongs to (a different hash wipes it)
  stage.json     the completion marker — result, hash, timing — written atomically, last

A stage counts as done only when stage.json exists with the current hash. An interrupted stage
leaves its work directory behind; the next run finds the same hash there and calls the stage
with `ctx.resume = True` so trainers continue from their last checkpoint. Stage functions publish
finished artifacts through the atomic writers of `datasets.files`, so no half-written artifact is
ever visible.

One scheduler runs the graph: up to `jobs` independent stages at once, in forked workers when
jobs > 1, in this process through the same code path when jobs = 1.
"""
from __future__ import annotations

from contextlib import contextmanager
import json
import multiprocessing
import multiprocessing.connection
import os
from pathlib import Path
import shutil
import sys
import time
from typing import Callable, Iterable

from datasets.errors import UserError
from datasets.files import atomic_write_json, atomic_write_text
from datasets.progress import PROGRESS_FILE_ENV

from .stage import Stage, StageContext, stage_hash

MARKER = "stage.json"
HASH_FILE = ".hash"


def format_seconds(s: float) -> str:
    """Human-readable duration: 42s, 3m05s, 2h10m, 3d04h."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


def measured_speed(spent: float, spent_cost: float, prior: float = 120.0) -> float:
    """Seconds per second of projected cost so far, for ETAs: the measured ratio, pulled toward
    1 by `prior` seconds of projection so that a few short stages do not swing the estimate."""
    return (spent + prior) / (spent_cost + prior)


class StageRunner:
    """Runs stages in dependency order inside a study directory, skipping up-to-date ones."""

    def __init__(self, study_dir: Path, stages: Iterable[Stage], log: Callable[[str], None] | None = None):
        self.study_dir = Path(study_dir)
        self.stages: dict[str, Stage] = {}
        for st in stages:
            if st.name in self.stages:
                raise ValueError(f"duplicate stage {st.name}")
            self.stages[st.name] = st
        for st in self.stages.values():
            for dep in st.inputs:
                if dep not in self.stages:
                    raise ValueError(f"stage {st.name} reads unknown stage {dep}")
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.results: dict[str, dict] = {}
        self.hashes: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.status: dict[str, str] = {}

    # ---- paths -------------------------------------------------------------------------
    def stage_dir(self, name: str) -> Path:
        return self.study_dir / "stages" / name

    def marker_path(self, name: str) -> Path:
        return self.stage_dir(name) / MARKER

    # ---- graph -------------------------------------------------------------------------
    def closure(self, targets: Iterable[str]) -> list[str]:
        """`targets` and everything they depend on, in a deterministic topological order."""
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str):
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                raise ValueError(f"stage graph has a cycle through {n}")
            state[n] = 1
            for dep in self.stages[n].inputs:
                visit(dep)
            state[n] = 2
            order.append(n)

        for t in targets:
            visit(t)
        return order

    def compute_hash(self, name: str) -> str:
        st = self.stages[name]
        return stage_hash(st.config, {d: self.hashes[d] for d in st.inputs})

    def read_marker(self, name: str) -> dict | None:
        p = self.marker_path(name)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    # ---- execution ---------------------------------------------------------------------
    def run(self, targets: Iterable[str] | None = None, jobs: int = 1, threads: int | None = None,
            heartbeat: float = 30.0, gpu_slots: list[str] | None = None) -> dict[str, dict]:
        """Run `targets` (default: all stages) and their dependencies; returns name → result.

        Ready stages (all inputs done) start in order of their longest remaining chain of
        projected cost (the GAN chain before grid units), ties in plan order. With `jobs` > 1 up
        to that many run at once, each in a forked worker with `threads` torch CPU threads that
        runs the stage exactly as this process would (same lock, work dir, resume and marker) and
        exits; the parent reads its result back from the marker. A failing worker stops new
        launches; running ones finish, then its error is raised. Every `heartbeat` seconds without
        a finished stage, each running stage gets one line with its newest progress bar (workers
        draw their bars into `stages/<name>/.progress`). With jobs = 1 each stage runs here and
        its own errors propagate as they are. `gpu_slots` (one CUDA_VISIBLE_DEVICES value per job)
        pins each forked worker to its own GPUs, so stages that fit one GPU run side by side.
        """
        order = self.closure(list(targets) if targets is not None else list(self.stages))
        index = {n: i for i, n in enumerate(order)}
        for name in order:
            self.hashes[name] = self.compute_hash(name)
        chain = self.critical_path(order)
        label = lambda n: f"[{index[n] + 1:>{len(str(len(order)))}}/{len(order)}] {n}"  # noqa: E731
        pending: list[str] = []
        for name in order:
            if not self._take_marker(name, "skipped"):
                pending.append(name)
            else:
                self.log(f"{label(name)}: up to date, skipped")
        left = sum(self.stages[n].cost for n in pending)
        spent = spent_cost = 0.0
        t_start = time.monotonic()
        launcher = _ForkLauncher(self, threads, gpu_slots) if jobs > 1 else _InlineLauncher(self)
        failure: str | None = None
        while pending or launcher.running:
            ready = sorted((n for n in pending if all(d in self.results for d in self.stages[n].inputs)),
                           key=lambda n: (-chain[n], index[n]))
            while failure is None and ready and len(launcher.running) < jobs:
                name = ready.pop(0)
                pending.remove(name)
                speed = measured_speed(spent, spent_cost)
                eta = left * speed / min(jobs, max(1, len(pending) + len(launcher.running) + 1))
                self.log(f"{label(name)}: running "
                         f"(stage ~{format_seconds(self.stages[name].cost * speed)}, study ETA ~{format_seconds(eta)})")
                launcher.start(name)
            if failure is not None:
                pending.clear()
            if not launcher.running:
                if pending:  # nothing can start: an input failed without raising (cannot happen)
                    raise RuntimeError(f"stages {pending[:3]} cannot start")
                break
            finished = launcher.wait(heartbeat)
            if not finished:
                now = time.monotonic()
                for n, t0 in launcher.running.items():
                    self.log(f"  {n} ({format_seconds(now - t0)}): {self._progress_line(n) or 'running'}")
            for name, t0, error in finished:
                if error is not None:
                    failure = failure or error
                    self.log(f"{label(name)}: failed")
                    continue
                left -= self.stages[name].cost
                spent += time.monotonic() - t0
                spent_cost += self.stages[name].cost
                self.log(f"{label(name)}: done in {format_seconds(time.monotonic() - t0)} "
                         f"(elapsed {format_seconds(time.monotonic() - t_start)})")
        if failure is not None:
            raise UserError(failure)
        return {n: self.results[n] for n in order}

    def _take_marker(self, name: str, status: str) -> bool:
        """Record stage `name` as done from its marker when the marker has its current hash."""
        marker = self.read_marker(name)
        if not (marker and marker.get("hash") == self.hashes[name]):
            return False
        self.results[name] = marker.get("result", {})
        self.timings[name] = float(marker.get("seconds", 0.0))
        self.status[name] = status
        return True

    def run_stage(self, name: str) -> None:
        """Run one stage under its lock (unless another shard finished it meanwhile) and record it."""
        with self._lock(name):
            if self._take_marker(name, "skipped"):
                return
            result, seconds = self._execute(self.stages[name], self.hashes[name])
        self.results[name], self.timings[name], self.status[name] = result, seconds, "ran"

    def projected(self, order: list[str], jobs: int = 1) -> float:
        """Projected seconds for `order` on `jobs` parallel workers: no less than its costliest
        chain, nor than an even split of the total."""
        total = sum(self.stages[n].cost for n in order)
        if jobs <= 1:
            return total
        return max(total / jobs, max(self.critical_path(order).values(), default=0.0))

    def critical_path(self, order: list[str]) -> dict[str, float]:
        """Each stage's cost plus the costliest chain of stages (within `order`) that read it."""
        readers: dict[str, list[str]] = {n: [] for n in order}
        for n in order:
            for d in self.stages[n].inputs:
                if d in readers:
                    readers[d].append(n)
        chain: dict[str, float] = {}
        for n in reversed(order):
            chain[n] = self.stages[n].cost + max((chain[r] for r in readers[n]), default=0.0)
        return chain

    def _error_path(self, name: str) -> Path:
        return self.stage_dir(name) / ".error"

    def _progress_path(self, name: str) -> Path:
        return self.stage_dir(name) / ".progress"

    def _progress_line(self, name: str) -> str | None:
        """The newest progress-bar line a worker drew for stage `name` (None before its first)."""
        try:
            return self._progress_path(name).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _worker_error(self, name: str) -> str | None:
        p = self._error_path(name)
        try:
            return p.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _worker(self, name: str, threads: int | None, gpus: str | None = None) -> None:
        """Body of a forked worker: run one stage, leave a one-line error behind on failure."""
        err = self._error_path(name)
        os.environ[PROGRESS_FILE_ENV] = str(self._progress_path(name))   # bars go to the status line
        if gpus is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpus      # before the stage's first CUDA call
        try:
            if threads:
                import torch
                torch.set_num_threads(threads)
            err.unlink(missing_ok=True)
            self.run_stage(name)
        except BaseException as exc:  # reported through the error file and the exit code
            msg = str(exc) if isinstance(exc, UserError) else f"stage {name} failed: {type(exc).__name__}: {exc}"
            try:
                atomic_write_text(err, msg + "\n")
            except (OSError, UserError):
                pass
            if not isinstance(exc, (UserError, KeyboardInterrupt)):
                import traceback
                traceback.print_exc()
            os._exit(1)
        os._exit(0)

    def _execute(self, st: Stage, h: str) -> tuple[dict, float]:
        """Run one stage in its work dir and record the completion marker last."""
        sdir = self.stage_dir(st.name)
        work = sdir / "work"
        hash_file = work / HASH_FILE
        resume = False
        if work.exists():
            old = hash_file.read_text().strip() if hash_file.is_file() else None
            if old == h:
                resume = True
            else:
                shutil.rmtree(work)
        marker = self.marker_path(st.name)
        if marker.exists():
            marker.unlink()
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_text(hash_file, h + "\n")
        ctx = StageContext(
            name=st.name, study_dir=self.study_dir, work=work,
            inputs={d: self.results[d] for d in st.inputs}, resume=resume, log=self.log,
        )
        t0 = time.monotonic()
        result = st.fn(ctx)
        seconds = time.monotonic() - t0
        if result is None:
            result = {}
        json.dumps(result)  # a result must be JSON-able before it is recorded
        atomic_write_json(marker, {"name": st.name, "hash": h, "config": st.config,
                                   "inputs": {d: self.hashes[d] for d in st.inputs},
                                   "result": result, "seconds": round(seconds, 3),
                                   "resumed": resume})
        return result, seconds

    @contextmanager
    def _lock(self, name: str):
        """An advisory per-stage lock so shards sharing one study dir never run a stage twice."""
        sdir = self.stage_dir(name)
        sdir.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX
            yield
            return
        with open(sdir / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class _InlineLauncher:
    """Runs each stage in this process when it starts; it counts as running until `wait`
    reports it finished."""

    def __init__(self, runner: StageRunner):
        self.runner = runner
        self.running: dict[str, float] = {}      # name → start time

    def start(self, name: str) -> None:
        self.running[name] = time.monotonic()
        self.runner.run_stage(name)              # errors propagate as they are

    def wait(self, timeout: float) -> list[tuple[str, float, str | None]]:
        done = [(name, t0, None) for name, t0 in self.running.items()]
        self.running.clear()
        return done


class _ForkLauncher:
    """Runs each stage in a forked worker (on a free GPU slot when there are slots); `wait`
    reports the workers that exited."""

    def __init__(self, runner: StageRunner, threads: int | None, gpu_slots: list[str] | None = None):
        self.runner, self.threads = runner, threads
        self.context = multiprocessing.get_context("fork")
        self.running: dict[str, float] = {}      # name → start time
        self._procs: dict[object, tuple[str, object]] = {}   # sentinel → (name, process)
        self.free_slots = list(gpu_slots) if gpu_slots else None
        self._slot_of: dict[str, str] = {}

    def start(self, name: str) -> None:
        slot = self.free_slots.pop(0) if self.free_slots else None
        if slot is not None:
            self._slot_of[name] = slot
        proc = self.context.Process(target=self.runner._worker, args=(name, self.threads, slot), name=f"stage {name}")
        proc.start()
        self._procs[proc.sentinel] = (name, proc)
        self.running[name] = time.monotonic()

    def wait(self, timeout: float) -> list[tuple[str, float, str | None]]:
        """(name, start time, error or None) of every worker that exits within `timeout` seconds."""
        out = []
        for sentinel in multiprocessing.connection.wait(list(self._procs), timeout=timeout):
            name, proc = self._procs.pop(sentinel)
            t0 = self.running.pop(name)
            if name in self._slot_of:
                self.free_slots.append(self._slot_of.pop(name))
            proc.join()
            runner = self.runner
            runner._progress_path(name).unlink(missing_ok=True)
            if proc.exitcode != 0 or not runner._take_marker(name, "ran"):
                out.append((name, t0, runner._worker_error(name) or f"stage {name} failed (worker exit {proc.exitcode})"))
            else:
                out.append((name, t0, None))
        return out
