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
device may change); a RUN cut off before its first checkpoint starts afresh. `--resume` on a RUN
that does not exist is an error.

TensorBoard (`--tensorboard DIR` of both trainers, the `tensorboard` package): when the run's
options (config.json) name a `tensorboard` directory, `RunDir.log` also writes each record there
as event-file scalars (every number of the record, nested keys joined by "/", booleans as 0/1)
and as JSON text (tag `log.jsonl`), at the record's `iteration` (GAN) or `step` (recognizer);
`add_images` adds the GAN's sample grids. A resumed run rewinds TensorBoard as it rewinds
log.jsonl: its first event purges what was logged after the checkpoint it continues from.
"""
from __future__ import annotations

import atexit
from dataclasses import dataclass
import json
import math
from pathlib import Path

from .errors import UserError
from .files import append_jsonl, atomic_file, atomic_write_json, parse_json_file, rewind_jsonl

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
    """torch.save through a temporary file in the same folder and a rename."""
    import torch

    with atomic_file(path, "wb") as f:
        torch.save(obj, f)


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


def check_same_run(stored: dict, new: dict, identity: tuple[str, ...], paths: tuple[str, ...], where) -> None:
    """Refuse to resume a run with options that change what it trains (paths compared resolved)."""
    diff = [k for k in identity if k in stored and _comparable(stored[k], k in paths) != _comparable(new.get(k), k in paths)]
    if diff:
        changes = ", ".join(f"{k}: {stored[k]!r} → {new.get(k)!r}" for k in diff)
        raise UserError(f"{where}: cannot resume with a different configuration ({changes})")


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
        return None

    def stored_config(self) -> dict:
        """The options RUN/config.json records (for `--resume` from the command line)."""
        if not self.path.exists():
            raise UserError(NO_RUN.format(path=self.path))
        if not self.config_path.is_file():
            return {}
        obj = parse_json_file(self.config_path)
        config = obj.get("config") if isinstance(obj, dict) else None
        if not isinstance(config, dict):
            raise UserError(f"{self.config_path}: expected an object with a 'config' table")
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
