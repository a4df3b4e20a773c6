"""`htraug htr recognize`: read raw word images (any format Pillow opens) with a trained recognizer.

Images are preprocessed exactly as for training and evaluation (docs/DESIGN.md §4.3): read as
8-bit greyscale (`datasets.format.read_grey_png`, the dataset reader), resized isometrically to
the model's canvas height, padded with white on the writing side's far end
(`datasets.preprocess.fit_to_canvas`, direction from the model) and scaled to [-1, 1]
(`to_unit_range`); they are read in batches, decoded greedily (`htr.decode`) and optionally
snapped to a lexicon. An image that cannot be read, or that is wider than the canvas after
resizing (training drops those too), is reported and skipped; the others are still recognized.

Confidence of a transcription: the mean, over the model's frames, of the largest per-frame
posterior probability (the probability of the greedy path's class at each frame), in [0, 1]. It
is the greedy path's, also when a lexicon replaces the text.

The model is a run directory or checkpoint (PyTorch), or a file written by `htraug htr export`:
ONNX (run by onnxruntime on the CPU) or TorchScript; all three give the same text.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
import io
import json
from pathlib import Path

import numpy as np
import torch

from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.export import is_exported, load_exported
from datasets.files import atomic_write_text, read_text_file
from datasets.format import read_grey_png
from datasets.preprocess import fit_to_canvas, to_unit_range
from datasets.progress import progress

from .checkpoint import canvas_of, load_recognizer
from .decode import greedy_decode, snap_to_lexicon

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".pnm")
CONFIDENCE_HELP = ("confidence: the mean over the model's frames of the largest per-frame posterior probability "
                   "(the greedy path's), in [0, 1]; with --lexicon it stays the greedy path's")


@dataclass
class Recognizer:
    """A recognizer to read images with: its canvas, script direction, alphabet and network."""

    alphabet: Alphabet
    direction: str
    height: int
    width: int
    source: str                 # "checkpoint", "onnx" or "torchscript"
    _run: object                # float32 (B, 1, H, W) array → (T, B, C) log-probabilities

    def log_probs(self, images: np.ndarray) -> torch.Tensor:
        return self._run(images)


def open_recognizer(model, device: str = "cpu") -> Recognizer:
    """A run directory or checkpoint, or an exported ONNX/TorchScript file (`htraug htr export`)."""
    path = Path(model)
    if path.is_file() and is_exported(path):
        exported = load_exported(path, device)
        d = exported.description
        if d.get("kind") != "recognizer":
            raise UserError(f"{path}: an exported {d.get('kind', 'unknown')} model, not a recognizer")
        name = exported.input_names[0]

        def run_exported(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(exported.run({name: x})[0]))

        return Recognizer(Alphabet.from_json(d["alphabet"]), d["direction"], int(d["height"]), int(d["width"]),
                          exported.fmt, run_exported)
    net, alphabet, info = load_recognizer(model, device)
    height, width = canvas_of(net, info)

    @torch.no_grad()
    def run_checkpoint(x: np.ndarray) -> torch.Tensor:
        return net(torch.from_numpy(x).to(device)).float().cpu()

    return Recognizer(alphabet, "rtl" if net.rtl else "ltr", height, width, "checkpoint", run_checkpoint)


def collect_images(inputs: list[str], list_file: str | None = None) -> list[str]:
    """The image paths to read, in order: files as given, folders expanded to their image files
    (by extension, sorted, not recursive), and the lines of `list_file` (one path per line, or
    the first tab-separated field, so a labels.tsv works; relative to the list's folder; empty
    lines and lines starting with '#' are skipped). Missing files stay in: they are reported."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{p}: no image files in this folder ({', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(item)
    if list_file:
        base = Path(list_file).parent
        for line in read_text_file(list_file, "image list").splitlines():
            entry = line.split("\t")[0].strip()
            if entry and not entry.startswith("#"):
                out.append(entry if Path(entry).is_absolute() else str(base / entry))
    if not out:
        raise UserError("no images given (pass image files or folders, or --list FILE)")
    return out


@dataclass
class Recognized:
    path: str
    text: str
    confidence: float
    greedy: str


def _load(path: str, rec: Recognizer) -> tuple[np.ndarray | None, dict | None]:
    """(canvas, None), or (None, {path, problem: "unreadable" | "too wide", reason})."""
    try:
        image = read_grey_png(Path(path))
    except UserError as exc:
        return None, {"path": path, "problem": "unreadable", "reason": str(exc)}
    canvas = fit_to_canvas(image, rec.height, rec.width, rec.direction)
    if canvas is None:
        return None, {"path": path, "problem": "too wide",
                      "reason": f"{path}: {image.shape[1]}×{image.shape[0]} px is wider than the {rec.width}×{rec.height} "
                                f"canvas once resized to height {rec.height}; not recognized"}
    return canvas, None


def recognize_files(rec: Recognizer, paths: list[str], batch_size: int = 64, lexicon: list[str] | None = None,
                    on_skip=None, show_progress: bool = False) -> tuple[list[Recognized], list[dict]]:
    """Read `paths` in batches: (recognized images in input order, skipped [{path, problem, reason}])."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {batch_size}")
    done: list[Recognized] = []
    skipped: list[dict] = []
    bar = progress(total=len(paths), desc="recognize", disable=not show_progress)
    try:
        for start in range(0, len(paths), batch_size):
            chunk, canvases = [], []
            for path in paths[start:start + batch_size]:
                canvas, problem = _load(path, rec)
                if canvas is None:
                    skipped.append(problem)
                    if on_skip:
                        on_skip(problem["reason"])
                else:
                    chunk.append(path)
                    canvases.append(canvas)
            if chunk:
                x = to_unit_range(np.stack(canvases))[:, None]
                log_probs = rec.log_probs(x)
                greedy = greedy_decode(log_probs, rec.alphabet, rec.direction)
                confidence = log_probs.max(dim=-1).values.exp().mean(dim=0).tolist()
                texts = snap_to_lexicon(greedy, lexicon) if lexicon else greedy
                done.extend(Recognized(p, t, float(c), g) for p, t, c, g in zip(chunk, texts, confidence, greedy))
            bar.update(len(paths[start:start + batch_size]))
    finally:
        bar.close()
    return done, skipped


def results_tsv(results: list[Recognized], lexicon: bool = False) -> str:
    """path, text, confidence (and the greedy text, with a lexicon) under a header."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["path", "text", "confidence"] + (["greedy"] if lexicon else []))
    for r in results:
        w.writerow([r.path, r.text, f"{r.confidence:.4f}"] + ([r.greedy] if lexicon else []))
    return buf.getvalue()


def results_json(results: list[Recognized], skipped: list[dict], rec: Recognizer, model: str, lexicon: bool) -> str:
    obj = {"model": str(model), "model_format": rec.source, "canvas": [rec.height, rec.width], "direction": rec.direction,
           "images": len(results) + len(skipped), "recognized": len(results), "skipped": skipped,
           "confidence": CONFIDENCE_HELP,
           "results": [{"path": r.path, "text": r.text, "confidence": round(r.confidence, 6),
                        **({"greedy": r.greedy} if lexicon else {})} for r in results]}
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def write_results(text: str, out) -> None:
    atomic_write_text(out, text)
