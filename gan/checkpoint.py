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
from htr.checkpoint import save_atomic  # noqa: F401  (one atomic torch.save for both packages)

FORMAT = "htraug-gan"
VERSION = 1
BEST = "best.pt"
LAST = "last.pt"


def resolve(run_or_file) -> Path:
    """A checkpoint file, or a run directory's best.pt (falling back to last.pt)."""
    p = Path(run_or_file)
    if p.is_dir():
        for name in (BEST, LAST):
            if (p / name).is_file():
                return p / name
        raise UserError(f"{p}: no {BEST} or {LAST} in this GAN run directory")
    if not p.exists():
        raise UserError(f"{p}: no such GAN run directory or checkpoint")
    return p


def read_checkpoint(path, device: str | torch.device = "cpu") -> dict:
    """Load and validate a GAN checkpoint with one-line errors (alphabet consistency included)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an htraug GAN checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt.get('version')} is newer than this htraug ({VERSION})")
    alphabet = checkpoint_alphabet(ckpt)
    if alphabet.fingerprint != ckpt.get("alphabet_fingerprint"):
        raise UserError(f"{path}: the stored alphabet does not match its fingerprint (corrupt checkpoint)")
    if ckpt["net_config"]["num_symbols"] != len(alphabet.symbols):
        raise UserError(f"{path}: φ was built for {ckpt['net_config']['num_symbols']} symbols but the "
                        f"checkpoint's alphabet has {len(alphabet.symbols)}")
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_alphabet(ckpt: dict) -> Alphabet:
    return Alphabet.from_json(ckpt["dataset"]["alphabet"])
