"""Recognizer checkpoints: loading, and the alphabet compatibility checks (the run directory and
atomic writes are datasets.runs').

A checkpoint is a dict of plain Python values and tensors (loadable with `weights_only=True`):
    format, version, model (state dict), model_config (GatedCRNN arguments), alphabet
    ({name, symbols}), alphabet_fingerprint, direction, width, epoch, step, val_cer, config,
and for RUN/last.pt also `state` (optimizer, RNG states, early-stopping state).
"""
from __future__ import annotations

from pathlib import Path

from datasets.alphabet import Alphabet, direction_name
from datasets.errors import UserError
from datasets.preprocess import default_width
from datasets.runs import BEST, LAST, CheckpointFormat, read_checkpoint as _read, resolve_checkpoint

from .model import GatedCRNN

# Version 2: last.pt's random state is torch's global generator plus named streams (datasets.seeding).
CHECKPOINT = CheckpointFormat("htraug-htr", 2, "recognizer")
FORMAT, VERSION = CHECKPOINT.tag, CHECKPOINT.version

__all__ = ["BEST", "CHECKPOINT", "FORMAT", "LAST", "VERSION", "as_recognizer", "build_model", "canvas_of",
           "check_compatible", "check_labels_fit", "load_recognizer", "read_checkpoint", "resolve"]


def read_checkpoint(path: Path, device: str = "cpu") -> dict:
    """Load and validate a recognizer checkpoint, with one-line errors."""
    return _read(path, CHECKPOINT, device)


def resolve(path_or_run_dir) -> Path:
    """A checkpoint file, or a run directory's best.pt (falling back to last.pt)."""
    return resolve_checkpoint(path_or_run_dir, CHECKPOINT)


def build_model(ckpt: dict, device: str = "cpu") -> GatedCRNN:
    """Rebuild the recognizer of a checkpoint and load its weights."""
    model = GatedCRNN(**ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    model.width = int(ckpt.get("width") or default_width(model.height))
    return model.to(device)


def canvas_of(model: GatedCRNN, info: dict | None = None) -> tuple[int, int]:
    """(height, width) of the canvas a recognizer was trained on."""
    width = getattr(model, "width", None) or (info or {}).get("width") or default_width(model.height)
    return int(model.height), int(width)


def as_recognizer(run_or_model, device: str = "cpu") -> tuple[GatedCRNN, Alphabet, dict]:
    """(model, alphabet, info) from a run directory / checkpoint path or an already loaded
    (model, alphabet[, info]) tuple (moved to `device`)."""
    if isinstance(run_or_model, (str, Path)):
        return load_recognizer(run_or_model, device)
    if isinstance(run_or_model, tuple) and len(run_or_model) in (2, 3):
        model, alphabet = run_or_model[0], run_or_model[1]
        info = run_or_model[2] if len(run_or_model) == 3 else {"model_config": model.config()}
        return model.to(device), alphabet, info
    raise UserError("a recognizer must be a run directory, a checkpoint file or a (model, alphabet[, info]) tuple")


def load_recognizer(path_or_run_dir, device: str = "cpu") -> tuple[GatedCRNN, Alphabet, dict]:
    """Load a trained recognizer in eval mode: returns (model, alphabet, info).

    `info` holds the checkpoint's metadata (everything but weights and training state), plus
    `path`. The model has an extra attribute `width`: the canvas width it was trained on.
    """
    path = resolve(path_or_run_dir)
    ckpt = read_checkpoint(path, device)
    alphabet = Alphabet.from_json(ckpt["alphabet"])
    if alphabet.num_classes != ckpt["model_config"]["num_classes"]:
        raise UserError(f"{path}: alphabet has {alphabet.num_classes} classes but the model {ckpt['model_config']['num_classes']}")
    model = build_model(ckpt, device).eval()
    info = {k: v for k, v in ckpt.items() if k not in ("model", "state")}
    info["path"] = str(path)
    return model, alphabet, info


def check_labels_fit(alphabet: Alphabet, texts, where: str, model_name: str = "the model",
                     hint: str = "use a recognizer trained on this alphabet") -> None:
    """One-line UserError when some transcription uses characters outside `alphabet`."""
    bad: list[str] = []
    example = None
    for t in texts:
        miss = alphabet.missing(t)
        if miss and example is None:
            example = t
        bad.extend(c for c in miss if c not in bad)
    if bad:
        shown = "".join(bad[:20]) + ("…" if len(bad) > 20 else "")
        raise UserError(
            f"{where}: labels use {len(bad)} character(s) {shown!r} (e.g. in {example!r}) outside the alphabet "
            f"'{alphabet.name}' ({alphabet.fingerprint}) of {model_name}" + (f"; {hint}" if hint else ""))


def check_compatible(info: dict, alphabet: Alphabet, meta, texts, where: str) -> None:
    """Check that a dataset (meta + transcriptions) can be evaluated by a loaded recognizer."""
    model_name = f"checkpoint {info.get('path', '?')}"
    check_labels_fit(alphabet, texts, where, model_name)
    trained = direction_name(bool(info["model_config"].get("rtl")))
    if meta.direction != trained:
        raise UserError(f"{where}: dataset is {meta.direction} but {model_name} was trained on {trained} script")
