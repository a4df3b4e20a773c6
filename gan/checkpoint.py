"""GAN checkpoints: RUN/last.pt (full training state) and RUN/best.pt (weights of the best
evaluation). Both are dicts of plain Python values and tensors, loadable with weights_only=True:

    format, version, kind ('last' | 'best'), iteration, net_config (NetConfig), recognizer_config
    (GatedCRNN arguments), train_config (GanTrainConfig), dataset {name, language, direction,
    alphabet, height, width, path}, alphabet_fingerprint, max_chars, frames, prior (label-estimated
    priors only), best {metric, score, iteration}, models {phi, G, D, R},
and in last.pt also `state`: optimizers, per-rank RNG and data-order states, elapsed time.
"""
from __future__ import annotations

from pathlib import Path

import torch

from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.runs import BEST, LAST, CheckpointFormat, read_checkpoint as _read, resolve_checkpoint

CHECKPOINT = CheckpointFormat("htraug-gan", 1, "GAN")
FORMAT, VERSION = CHECKPOINT.tag, CHECKPOINT.version

__all__ = ["BEST", "CHECKPOINT", "FORMAT", "LAST", "VERSION", "checkpoint_alphabet", "read_checkpoint", "resolve"]


def resolve(run_or_file) -> Path:
    """A checkpoint file, or a run directory's best.pt (falling back to last.pt)."""
    return resolve_checkpoint(run_or_file, CHECKPOINT)


def read_checkpoint(path, device: str | torch.device = "cpu") -> dict:
    """Load and validate a GAN checkpoint with one-line errors (alphabet consistency included)."""
    ckpt = _read(path, CHECKPOINT, device)
    check_alphabet(ckpt, path)
    ckpt["path"] = str(path)
    return ckpt


def check_alphabet(ckpt: dict, path) -> None:
    """The stored alphabet must match its fingerprint and φ's symbol count."""
    alphabet = checkpoint_alphabet(ckpt)
    if alphabet.fingerprint != ckpt.get("alphabet_fingerprint"):
        raise UserError(f"{path}: the stored alphabet does not match its fingerprint (corrupt checkpoint)")
    if ckpt["net_config"]["num_symbols"] != len(alphabet.symbols):
        raise UserError(f"{path}: φ was built for {ckpt['net_config']['num_symbols']} symbols but the "
                        f"checkpoint's alphabet has {len(alphabet.symbols)}")


def checkpoint_alphabet(ckpt: dict) -> Alphabet:
    return Alphabet.from_json(ckpt["dataset"]["alphabet"])
