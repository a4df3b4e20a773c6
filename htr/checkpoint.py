"""Recognizer checkpoints: atomic writes, loading, and the alphabet compatibility checks.

A checkpoint is a dict of plain Python values and tensors (loadable with `weights_only=True`):
    format, version, model (state dict), model_config (GatedCRNN arguments), alphabet
    ({name, symbols}), alphabet_fingerprint, direction, width, epoch, step, val_cer, config,
and for RUN/last.pt also `state` (optimizer, RNG states, early-stopping state).
"""
from __future__ import annotations

import os
from pathlib import Path
import tempfile

import torch

from datasets.alphabet import Alphabet
from datasets.errors import UserError

from .model import GatedCRNN

FORMAT = "htraug-htr"
VERSION = 1
BEST = "best.pt"
LAST = "last.pt"


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save through a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: Path, device: str = "cpu") -> dict:
    """Load and validate a checkpoint file, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an htraug recognizer checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt.get('version')} is newer than this htraug ({VERSION})")
    return ckpt


def resolve(path_or_run_dir) -> Path:
    """A checkpoint file, or a run directory's best.pt (falling back to last.pt)."""
    p = Path(path_or_run_dir)
    if p.is_dir():
        for name in (BEST, LAST):
            if (p / name).is_file():
                return p / name
        raise UserError(f"{p}: no {BEST} or {LAST} in this run directory")
    if not p.exists():
        raise UserError(f"{p}: no such checkpoint or run directory")
    return p


def build_model(ckpt: dict, device: str = "cpu") -> GatedCRNN:
    """Rebuild the recognizer of a checkpoint and load its weights."""
    model = GatedCRNN(**ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    model.width = int(ckpt.get("width") or 4 * model.height)
    return model.to(device)


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
    rtl = bool(info["model_config"].get("rtl"))
    if (meta.direction == "rtl") != rtl:
        raise UserError(f"{where}: dataset is {meta.direction} but {model_name} was trained on {'rtl' if rtl else 'ltr'} script")
