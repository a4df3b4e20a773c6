"""Recognition and evaluation: greedy transcriptions of images, ED/WER of a model on a dataset."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from .scoring import text_metrics
from datasets.alphabet import Alphabet, direction_name
from datasets.errors import UserError
from datasets.files import atomic_write_text
from datasets.format import load_dataset
from datasets.packed import load_packed
from datasets.torch_dataset import unit_batch

from .checkpoint import as_recognizer, canvas_of, check_compatible
from .decode import greedy_decode, snap_to_lexicon
from .model import GatedCRNN


@torch.no_grad()
def recognize(model: GatedCRNN, alphabet: Alphabet, images: torch.Tensor | np.ndarray, batch_size: int = 64,
              device: str | torch.device | None = None) -> list[str]:
    """Greedy transcriptions of `images`: float (N, 1, H, W) in [-1, 1] (or uint8 (N, H, W)).

    The model is used in eval mode and restored to its previous mode afterwards.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[str] = []
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            if isinstance(chunk, np.ndarray) or chunk.dtype == torch.uint8:
                u8 = np.asarray(chunk)
                chunk = unit_batch(u8[:, 0] if u8.ndim == 4 else u8, device)   # uint8 travels, see unit_batch
            log_probs = model(chunk.to(device, non_blocking=True).float())
            out.extend(greedy_decode(log_probs, alphabet, direction_name(model.rtl)))
    finally:
        model.train(was_training)
    return out


def evaluate(run_or_model=None, data_dir=None, out_tsv=None, batch_size: int = 64, device: str = "cpu",
             show_progress: bool = False, run=None, lexicon: list[str] | None = None, normalization=None) -> dict:
    """ED/WER of a recognizer on a dataset directory (preprocessed to the model's canvas).

    `run_or_model`: a run directory, a checkpoint file or a (model, alphabet[, info]) tuple
    (`run=` is accepted as a keyword alias). Returns text_metrics' dict (cer, wer, cer_ci, wer_ci,
    n, ...) plus `dropped` (images wider than the canvas, not evaluated). `out_tsv` receives
    per-image `path<TAB>reference<TAB>hypothesis` rows under a header. With `lexicon`, each greedy
    hypothesis is replaced by the closest lexicon word (`htr.decode.snap_to_lexicon`).
    `normalization` (htr.scoring.TextNormalization) is applied to references and hypotheses
    before scoring (the TSV keeps them as they are).
    """
    run_or_model = run if run_or_model is None else run_or_model
    if run_or_model is None or data_dir is None:
        raise TypeError("evaluate() needs a recognizer (run_or_model) and a data_dir")
    model, alphabet, info = as_recognizer(run_or_model, device)
    ds = load_dataset(data_dir)
    check_compatible(info, alphabet, ds.meta, ds.texts, str(data_dir))
    height, width = canvas_of(model, info)
    packed = load_packed(ds, height, width, show_progress=show_progress)
    if len(packed) == 0:
        raise UserError(f"{data_dir}: no image fits {height}x{width} after preprocessing ({packed.dropped} dropped)")
    hyps = recognize(model, alphabet, packed.images, batch_size, device)
    if lexicon:
        hyps = snap_to_lexicon(hyps, lexicon)
    metrics = text_metrics(list(packed.texts), hyps, normalization)
    metrics["dropped"] = packed.dropped
    if out_tsv is not None:
        write_predictions(Path(out_tsv), packed.paths, packed.texts, hyps)
    return metrics


def write_predictions(path: Path, paths, refs, hyps) -> None:
    """Per-image predictions TSV with a header: path, reference, hypothesis."""
    import io
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["path", "reference", "hypothesis"])
    for row in zip(paths, refs, hyps):
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())
