"""Recognition and evaluation: greedy transcriptions of images, ED/WER of a model on a dataset."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from benchmark.metrics.text import text_metrics
from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.format import atomic_write_text, load_dataset
from datasets.packed import load_packed

from .checkpoint import check_compatible, load_recognizer
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
                chunk = torch.from_numpy(np.array(chunk, dtype=np.float32)).div_(127.5).sub_(1.0)
                chunk = chunk.unsqueeze(1) if chunk.dim() == 3 else chunk
            log_probs = model(chunk.to(device, non_blocking=True).float())
            out.extend(greedy_decode(log_probs, alphabet, "rtl" if model.rtl else "ltr"))
    finally:
        model.train(was_training)
    return out


def _as_model(run_or_model, device: str):
    """(model, alphabet, info) from a run directory / checkpoint path or an already loaded triple."""
    if isinstance(run_or_model, (str, Path)):
        return load_recognizer(run_or_model, device)
    if isinstance(run_or_model, tuple) and len(run_or_model) in (2, 3):
        model, alphabet = run_or_model[0], run_or_model[1]
        info = run_or_model[2] if len(run_or_model) == 3 else {"model_config": model.config()}
        return model.to(device), alphabet, info
    raise TypeError("run_or_model must be a run directory, a checkpoint path or a (model, alphabet[, info]) tuple")


def evaluate(run_or_model=None, data_dir=None, out_tsv=None, batch_size: int = 64, device: str = "cpu",
             show_progress: bool = False, run=None, lexicon: list[str] | None = None) -> dict:
    """ED/WER of a recognizer on a dataset directory (preprocessed to the model's canvas).

    `run_or_model`: a run directory, a checkpoint file or a (model, alphabet[, info]) tuple
    (`run=` is accepted as a keyword alias). Returns text_metrics' dict (cer, wer, cer_ci, wer_ci,
    n, ...) plus `dropped` (images wider than the canvas, not evaluated). `out_tsv` receives
    per-image `path<TAB>reference<TAB>hypothesis` rows under a header. With `lexicon`, each greedy
    hypothesis is replaced by the closest lexicon word (`htr.decode.snap_to_lexicon`).
    """
    run_or_model = run if run_or_model is None else run_or_model
    if run_or_model is None or data_dir is None:
        raise TypeError("evaluate() needs a recognizer (run_or_model) and a data_dir")
    model, alphabet, info = _as_model(run_or_model, device)
    ds = load_dataset(data_dir)
    check_compatible(info, alphabet, ds.meta, ds.texts, str(data_dir))
    width = int(getattr(model, "width", None) or info.get("width") or 4 * model.height)
    packed = load_packed(ds, model.height, width, show_progress=show_progress)
    if len(packed) == 0:
        raise UserError(f"{data_dir}: no image fits {model.height}x{width} after preprocessing ({packed.dropped} dropped)")
    hyps = recognize(model, alphabet, packed.images, batch_size, device)
    if lexicon:
        hyps = snap_to_lexicon(hyps, lexicon)
    metrics = text_metrics(list(packed.texts), hyps)
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
