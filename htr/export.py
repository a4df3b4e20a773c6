"""`htraug htr export`: a trained recognizer as an ONNX or TorchScript file that carries its
alphabet, script direction, canvas and preprocessing (datasets.export).

The exported network is `GatedCRNN.forward` unchanged:

    input   images     float32 (batch, 1, height, width): the canvas, x / 127.5 − 1 (white = +1)
    output  log_probs  float32 (frames, batch, classes): log-softmax per frame; class 0 is the CTC
                       blank, class i the alphabet's symbol i − 1; frames = width / 4

The batch size is free; the canvas is fixed (the one the recognizer was trained on). RTL images
are given as they look (padded on the left): the network flips them itself. `htraug htr recognize
--model FILE` runs an exported file with the same preprocessing and decoding as the checkpoint.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datasets.alphabet import Alphabet, direction_name
from datasets.export import (EXPORT_FORMAT, EXPORT_VERSION, check_and_write, format_for, onnx_bytes,
                             torchscript_bytes)
from datasets.version import package_version

from .checkpoint import canvas_of, load_recognizer
from .model import GatedCRNN

CHECK_BATCH = 5     # images the export is checked on (a batch size other than the traced one)
TRACE_BATCH = 2


def preprocessing(height: int, width: int, direction: str) -> dict:
    """How an image becomes the network's input: the steps of training (docs/DESIGN.md §4.3)."""
    side = "left" if direction == "rtl" else "right"
    return {"grey": "8-bit greyscale (Pillow convert('L'); colour is converted)",
            "resize": f"isometric, bilinear, to height {height}",
            "too_wide": f"an image wider than {width} px after resizing is not recognized",
            "pad": f"white (255) to width {width}, on the {side}",
            "scale": "float32 x / 127.5 - 1 (white = +1, ink near -1)",
            "orientation": "give RTL images as they look: the network flips them"}


def recognizer_description(model: GatedCRNN, alphabet: Alphabet, info: dict) -> dict:
    """The description an exported recognizer carries."""
    height, width = canvas_of(model, info)
    direction = direction_name(model.rtl)
    frames = model.num_frames(width)
    source = {"checkpoint": Path(info["path"]).name if info.get("path") else None}
    source.update({k: info.get(k) for k in ("epoch", "step", "val_cer") if info.get(k) is not None})
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "kind": "recognizer", "htraug": package_version(),
            "alphabet": alphabet.to_json(), "alphabet_fingerprint": alphabet.fingerprint, "num_classes": alphabet.num_classes,
            "direction": direction, "language": info.get("language"), "height": height, "width": width,
            "frames": frames, "preprocessing": preprocessing(height, width, direction),
            "inputs": [{"name": "images", "dtype": "float32", "shape": ["batch", 1, height, width]}],
            "outputs": [{"name": "log_probs", "dtype": "float32", "shape": [frames, "batch", alphabet.num_classes]}],
            "decoding": "greedy CTC: arg-max class per frame, collapse repeats, drop class 0 (blank); class i is "
                        "alphabet symbol i-1; the text comes out in logical order (RTL digit runs: "
                        "datasets.alphabet.ctc_order)",
            "model_config": model.config(), "source": source}


def check_images(height: int, width: int, n: int = CHECK_BATCH, seed: int = 0) -> np.ndarray:
    """A fixed batch of canvas-like inputs (white paper, dark random strokes) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    x = np.ones((n, 1, height, width), np.float32)
    for img in x[:, 0]:
        for _ in range(12):
            r, c = int(rng.integers(0, height - 2)), int(rng.integers(0, width - 3))
            img[r:r + 2, c:c + 3] = rng.uniform(-1, 0)
    return x + rng.normal(0, 0.05, x.shape).astype(np.float32)


def export_recognizer(run, out, fmt: str | None = None) -> dict:
    """Export the recognizer of `run` (run directory or checkpoint) to `out`, checked against the
    checkpoint's network on a batch (datasets.export.check_and_write); returns the check's report."""
    fmt = format_for(out, fmt)
    model, alphabet, info = load_recognizer(run, "cpu")
    model = model.eval()
    height, width = canvas_of(model, info)
    description = recognizer_description(model, alphabet, info)
    example = (torch.from_numpy(check_images(height, width, TRACE_BATCH, seed=1)),)
    if fmt == "onnx":
        data = onnx_bytes(model, example, ["images"], ["log_probs"],
                          {"images": {0: "batch"}, "log_probs": {1: "batch"}}, description)
    else:
        data = torchscript_bytes(model, example, description)
    x = check_images(height, width)
    with torch.no_grad():
        reference = [model(torch.from_numpy(x)).numpy()]
    report = check_and_write(data, fmt, out, reference, {"images": x})
    return {**report, "kind": "recognizer", "height": height, "width": width, "direction": description["direction"],
            "classes": alphabet.num_classes}
