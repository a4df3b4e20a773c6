"""A training run's directory, the same for the recognizer and the GAN (docs/DESIGN.md §10).

    RUN/config.json   {"config": the run's options, ...facts the run resolved (sizes, alphabet)}
    RUN/log.jsonl     one JSON record per evaluation
    RUN/last.pt       the full training state (weights, optimizers, random streams, position)
    RUN/best.pt       the weights of the best evaluation

Checkpoints are dicts of plain values and tensors (loadable with `weights_only=True`) stamped
with a format name and version; both files are written atomically.

The resume rule (`RESUME_RULE`, shown in both trainers' --help): a new run needs an absent or
empty RUN. `--resume` continues RUN from last.pt with the options it was started with; options
given again must agree on every field that defines the run (budgets, evaluation cadence and the
device may change); a RUN cut off before its first checkpoint starts afresh (with a warning).
`--resume` on a RUN that does not exist is an error. Paths are compared resolved, against the
resolved paths the run recorded when it started (so a run resumes from any working directory),
and every dataset the run trains on must still have the labels.tsv and meta.json it started with
(`run_inputs`, recorded in config.json and last.pt).

While a trainer runs, `run_lock` holds its RUN exclusive (a second trainer on the same RUN stops
at once, naming the first one's pid), and `RunDir.open` removes the temporary files that a killed
writer left in RUN.

TensorBoard (`--tensorboard DIR` of both trainers, the `tensorboard` package): when the run's
options (config.json) name a `tensorboard` directory, `RunDir.log` also writes each record there
as event-file scalars (every number of the record, nested keys joined by "/", booleans as 0/1)
and as JSON text (tag `log.jsonl`), at the record's `iteration` (GAN) or `step` (recognizer);
`add_images` adds the GAN's sample grids. A resumed run rewinds TensorBoard as it rewinds
log.jsonl: its first event purges what was logged after the checkpoint it continues from.
"""
from __future__ import annotations

import atexit
from contextlib import contextmanager
from dataclasses import dataclass
import hashlib
import io
import json
import math
from pathlib import Path
import sys
from typing import Iterator

from .errors import UserError
from .files import append_jsonl, atomic_file, atomic_write_json, exclusive, parse_json_file, remove_stale, rewind_jsonl
from .options import path_fields, run_defining

LAST, BEST, CONFIG, LOG = "last.pt", "best.pt", "config.json", "log.jsonl"
NO_RUN = "{path}: no run to resume (the directory does not exist; drop --resume to start one)"

RESUME_RULE = ("--resume continues RUN from its last.pt with the options it was started with; options given "
               "again must agree with them on every field that defines the run (budgets such as the number of "
               "steps or minutes, the evaluation cadence and the device may change). Without --resume, RUN "
               "must not exist or be empty.")


@dataclass(frozen=True)
class CheckpointFormat:
    """How a kind of checkpoint is recognised: its format tag, current version and name."""

    tag: str            # e.g. "htraug-htr"
    version: int        # checkpoints of a newer version are refused; resuming needs this one
    what: str           # "recognizer", "GAN": used in messages


def save_checkpoint(obj: dict, path) -> None:
    """torch.save through a temporary file in the same folder and a rename. The checkpoint is
    serialised in memory first, so that a full disk is an OSError of the write (a one-line error
    naming `path`), not an error inside torch's writer."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_file(path, "wb") as f:
        f.write(buf.getbuffer())


def read_checkpoint(path, fmt: CheckpointFormat, device="cpu") -> dict:
    """Load a checkpoint and check its format tag and version, with one-line errors."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt.tag:
        raise UserError(f"{path}: not an htraug {fmt.what} checkpoint")
    if ckpt.get("version", 0) > fmt.version:
        raise UserError(f"{path}: checkpoint version {ckpt.get('version')} is newer than this htraug ({fmt.version})")
    return ckpt


def resolve_checkpoint(path_or_run, fmt: CheckpointFormat) -> Path:
    """A checkpoint file, or a run directory's best.pt (falling back to last.pt)."""
    p = Path(path_or_run)
    if p.is_dir():
        for name in (BEST, LAST):
            if (p / name).is_file():
                return p / name
        raise UserError(f"{p}: no {BEST} or {LAST} in this {fmt.what} run directory")
    if not p.exists():
        raise UserError(f"{p}: no such {fmt.what} run directory or checkpoint")
    return p


def _comparable(value, is_path: bool):
    if not is_path or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [str(Path(v).resolve()) for v in value]
    return str(Path(value).resolve())


def check_same_run(stored: dict, new: dict, identity: tuple[str, ...], paths: tuple[str, ...], where,
                   resolved: dict | None = None) -> None:
    """Refuse to resume a run with options that change what it trains (paths compared resolved;
    `resolved`: the stored paths as the run resolved them when it started)."""
    resolved = resolved if isinstance(resolved, dict) else {}

    def before(k):
        return resolved[k] if k in paths and k in resolved else _comparable(stored[k], k in paths)

    diff = [k for k in identity if k in stored and before(k) != _comparable(new.get(k), k in paths)]
    if diff:
        changes = ", ".join(f"{k}: {stored[k]!r} → {new.get(k)!r}" for k in diff)
        raise UserError(f"{where}: cannot resume with a different configuration ({changes})")


def dataset_fingerprint(path) -> str | None:
    """sha256 of a dataset directory's labels.tsv and meta.json (None when it is not one)."""
    p = Path(path)
    h = hashlib.sha256()
    try:
        for name in ("labels.tsv", "meta.json"):
            h.update((p / name).read_bytes())
            h.update(b"\0")
    except OSError:
        return None
    return h.hexdigest()


def run_inputs(config: dict, cls) -> dict:
    """What a run reads, recorded when it starts: every path option resolved, and a fingerprint of
    every dataset directory among the options that define the run."""
    paths, prints = {}, {}
    defining = set(run_defining(cls))
    for name in path_fields(cls):
        value = config.get(name)
        if value is None or value == []:
            continue
        paths[name] = _comparable(value, True)
        if name in defining:
            fps = [dataset_fingerprint(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            if any(fp is not None for fp in fps):
                prints[name] = fps if isinstance(value, (list, tuple)) else fps[0]
    return {"paths": paths, "fingerprints": prints}


@contextmanager
def run_lock(path, enabled: bool = True) -> Iterator[None]:
    """Hold RUN exclusive while a trainer writes it (`enabled=False`: other ranks of one run). A
    RUN this trainer created and left empty (it failed before writing anything) is removed."""
    if not enabled:
        yield
        return
    path = Path(path)
    existed = path.exists()
    with exclusive(path):
        try:
            yield
        finally:
            if not existed:
                try:
                    path.rmdir()          # only when empty
                except OSError:
                    pass


class RunDir:
    """One run directory: where its files are, the resume rule, its log and checkpoints."""

    def __init__(self, path, fmt: CheckpointFormat):
        self.path = Path(path)
        self.fmt = fmt
        self.last, self.best = self.path / LAST, self.path / BEST
        self.config_path, self.log_path = self.path / CONFIG, self.path / LOG
        self.tensorboard: str | None = None     # the options' TensorBoard directory (set by write_config)
        self._purge: int | None = None          # TensorBoard purge step of a rewound log

    def open(self, resume: bool, device="cpu") -> dict | None:
        """Apply the resume rule: the last.pt checkpoint to continue from, or None to start afresh."""
        if self.path.is_dir():
            remove_stale(self.path, recursive=True)     # what a killed writer left behind
        elif self.path.exists():
            raise UserError(f"{self.path}: is a file, not a run directory (choose another --out)")
        if self.last.is_file():
            if not resume:
                raise UserError(f"{self.path}: already holds a {self.fmt.what} training run "
                                "(pass --resume to continue it, or choose another --out)")
            ckpt = read_checkpoint(self.last, self.fmt, device)
            if ckpt.get("version") != self.fmt.version or "state" not in ckpt:
                raise UserError(f"{self.last}: written by another htraug version ({ckpt.get('version')}); "
                                f"it cannot be resumed by this one ({self.fmt.version}): start a new run")
            return ckpt
        if resume and not self.path.exists():
            raise UserError(NO_RUN.format(path=self.path))
        if not resume and self.path.exists() and any(self.path.iterdir()):
            raise UserError(f"{self.path}: already exists and is not empty (choose another --out)")
        if resume and any(self.path.iterdir()):
            print(f"htraug: warning: {self.path} has no {LAST} yet (cut off before its first checkpoint): "
                  "starting it afresh", file=sys.stderr)
        return None

    def check_resume(self, stored: dict, config: dict, cls, last: dict) -> dict:
        """The resume rule's comparison of a resumed run's options (`config`) with the ones it was
        started with (`stored`, from `last`): fields that define the run agree (paths resolved) and
        its datasets are unchanged. Returns this run's `run_inputs`."""
        inputs = run_inputs(config, cls)
        recorded = last.get("inputs") if isinstance(last.get("inputs"), dict) else {}
        check_same_run(stored, config, run_defining(cls), path_fields(cls), self.path, resolved=recorded.get("paths"))
        for name, fp in (recorded.get("fingerprints") or {}).items():
            now = inputs["fingerprints"].get(name)
            if now is not None and now != fp:
                raise UserError(f"{self.path}: cannot resume: the dataset(s) of {name} ({config.get(name)}) changed since "
                                "the run started (labels.tsv or meta.json differ); start a new run")
        return inputs

    def stored_config(self, cls=None) -> dict:
        """The options RUN/config.json records (for `--resume` from the command line), with its
        paths as the run resolved them; with `cls`, checked as its options (errors name the file)."""
        if not self.path.exists():
            raise UserError(NO_RUN.format(path=self.path))
        if not self.config_path.is_file():
            return {}
        obj = parse_json_file(self.config_path)
        config = obj.get("config") if isinstance(obj, dict) else None
        if not isinstance(config, dict):
            raise UserError(f"{self.config_path}: expected an object with a 'config' table")
        inputs = obj.get("inputs") if isinstance(obj.get("inputs"), dict) else {}
        resolved = inputs.get("paths") if isinstance(inputs.get("paths"), dict) else {}
        config = {**config, **{k: v for k, v in resolved.items() if k in config and k != "out"}}
        if cls is not None:
            cls.from_json(config, where=str(self.config_path), known_only=True)
        return config

    def write_config(self, config: dict, **facts) -> None:
        self.tensorboard = config.get("tensorboard") if isinstance(config, dict) else None
        if self.tensorboard:
            require_tensorboard()       # before anything is written
        atomic_write_json(self.config_path, {"config": config, **facts})

    def log(self, record: dict) -> None:
        append_jsonl(self.log_path, record)
        if self.tensorboard:
            step = record.get("iteration", record.get("step"))
            _tensorboard_writer(self.tensorboard, self._purge).record(record, step)
            self._purge = None

    def rewind_log(self, key: str, position: int) -> None:
        """Drop log records after `position` (all of them for a fresh start at 0); TensorBoard
        events after it are purged by the next record."""
        rewind_jsonl(self.log_path, key, position)
        self._purge = position + 1 if position else 0

    def save(self, ckpt: dict, path: Path) -> None:
        """Write a checkpoint of this run, stamped with the format tag and version."""
        save_checkpoint({"format": self.fmt.tag, "version": self.fmt.version, **ckpt}, path)


# ----------------------------------------------------------------------------------------------
# TensorBoard: the run log's records (and sample grids) as event files
# ----------------------------------------------------------------------------------------------

TENSORBOARD_HINT = "install the TensorBoard extra: pip install 'htraug[tensorboard]'"
_WRITERS: dict[str, "_TensorBoard"] = {}


def require_tensorboard() -> None:
    """A one-line error, before any training, when the tensorboard package is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise UserError(f"--tensorboard needs the tensorboard package ({TENSORBOARD_HINT})") from None


def scalars_of(record: dict, prefix: str = "") -> dict[str, float]:
    """Every finite number of a record (booleans as 0/1), nested keys joined by '/'."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars_of(value, name + "/"))
        elif isinstance(value, (bool, int, float)) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


class _TensorBoard:
    """One event-file writer per TensorBoard directory (a second writer in the same directory would
    hide the first one's later events from TensorBoard); flushed after every write."""

    def __init__(self, logdir: str, purge_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = logdir
        try:
            self.writer = SummaryWriter(log_dir=logdir, purge_step=purge_step)
        except OSError as exc:
            from .files import os_error_message
            raise UserError(os_error_message(exc, logdir)) from None

    def record(self, record: dict, step) -> None:
        step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None
        for tag, value in scalars_of(record).items():
            self.writer.add_scalar(tag, value, step)
        self.writer.add_text("log.jsonl", json.dumps(record, ensure_ascii=False), step)
        self.writer.flush()

    def images(self, images: dict, step: int) -> None:
        for tag, image in images.items():
            self.writer.add_image(tag, image, step, dataformats="HW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _tensorboard_writer(logdir, purge_step: int | None = None) -> _TensorBoard:
    """The writer of `logdir`; a purge step reopens it (TensorBoard then hides the events at and
    after that step written earlier)."""
    key = str(Path(logdir).resolve())
    writer = _WRITERS.get(key)
    if writer is not None and purge_step is not None:
        writer.close()
        writer = None
    if writer is None:
        require_tensorboard()
        writer = _WRITERS[key] = _TensorBoard(key, purge_step)
    return writer


def add_images(logdir, step: int, images: dict) -> None:
    """Add uint8 (H, W) images (e.g. sample grids) to a run's TensorBoard directory (None: nothing)."""
    if logdir:
        _tensorboard_writer(logdir).images(images, step)


def close_tensorboard(logdir=None) -> None:
    """Close the writer of `logdir` (or all of them)."""
    keys = list(_WRITERS) if logdir is None else [str(Path(logdir).resolve())]
    for key in keys:
        writer = _WRITERS.pop(key, None)
        if writer is not None:
            writer.close()


atexit.register(close_tensorboard)
