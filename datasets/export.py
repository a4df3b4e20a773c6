"""Exported models: ONNX and TorchScript files that carry their own description, and running them.

An exported file holds one network and a JSON description of it: under the key `htraug` of the
ONNX model's metadata_props, or as the TorchScript archive's extra file `htraug.json`. The
description says what the network is (`kind`: "recognizer" or "generator"), its alphabet, script
direction, canvas and preprocessing, the names, types and shapes of its inputs and outputs, and
the checkpoint it came from (file name, epoch/iteration), so the file alone is enough to use it.

ONNX files come from PyTorch's TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`):
it needs only the `onnx` package, works offline on a CPU and handles the recognizer's and the
generator's LSTMs; the torch.export-based exporter additionally needs `onnxscript` and cannot
trace the packed sequences of the word encoder (the GAN export replaces them, gan/export.py).
Files are checked against the eager network before they are written (`max_abs_diff`) and written
atomically: a failed export leaves nothing behind. PyTorch 2.13 marks TorchScript (and the
TorchScript-based ONNX exporter) deprecated; both still work there, and ONNX files do not depend
on PyTorch at all.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
import warnings
import zipfile

import numpy as np

from .errors import UserError
from .files import atomic_file

EXPORT_KEY = "htraug"                 # ONNX metadata_props key
TORCHSCRIPT_EXTRA = "htraug.json"     # TorchScript extra file
EXPORT_FORMAT, EXPORT_VERSION = "htraug-export", 1
FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
TOLERANCE = 1e-4                      # largest |exported − eager| output difference accepted
_SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript",
             ".jit": "torchscript"}
ONNX_HINT = "install the ONNX extra: pip install 'htraug[onnx]'"


def format_for(path, fmt: str | None = None) -> str:
    """The export format: `fmt` when given, else from the file name (.onnx; .pt, .ts, .torchscript)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UserError(f"{path}: cannot tell the export format from the file name; name it *.onnx or *.pt "
                        f"(TorchScript), or pass --format {'|'.join(FORMATS)}")
    return _SUFFIXES[suffix]


def onnx_bytes(module, example: tuple, input_names: list[str], output_names: list[str],
               dynamic_axes: dict, description: dict) -> bytes:
    """`module` (eval mode) as an ONNX model with `description` in its metadata."""
    try:
        import onnx
    except ImportError:
        raise UserError(f"ONNX export needs the onnx package ({ONNX_HINT})") from None
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")      # the tracer's notes: the export is checked numerically instead
        torch.onnx.export(module, example, buf, dynamo=False, opset_version=ONNX_OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    model.producer_name = "htraug"
    entry = model.metadata_props.add()
    entry.key, entry.value = EXPORT_KEY, json.dumps(description, ensure_ascii=False)
    return model.SerializeToString()


def torchscript_bytes(module, example: tuple, description: dict) -> bytes:
    """`module` (eval mode) traced to TorchScript, with `description` as an extra file."""
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_EXTRA: json.dumps(description, ensure_ascii=False)})
    return buf.getvalue()


def is_torchscript(path) -> bool:
    """Whether `path` is a TorchScript archive written by htraug (a zip with extra/htraug.json)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/extra/" + TORCHSCRIPT_EXTRA) for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def is_exported(path) -> bool:
    """Whether `path` is an exported model file (ONNX by name, or an htraug TorchScript archive)."""
    p = Path(path)
    return p.is_file() and (p.suffix.lower() == ".onnx" or is_torchscript(p))


class ExportedModel:
    """An exported network, run from its file (or bytes): ONNX through onnxruntime on the CPU,
    TorchScript through torch.jit. `run(inputs)` maps input names to arrays and returns the
    outputs as float32/int arrays in the declared order."""

    def __init__(self, source, fmt: str, where: str = "model", threads: int | None = None, device: str = "cpu"):
        self.fmt, self.where, self.device = fmt, where, device
        data = source if isinstance(source, (bytes, bytearray)) else None
        path = None if data is not None else Path(source)
        if fmt == "onnx":
            self.description = self._open_onnx(data, path, threads)
        elif fmt == "torchscript":
            self.description = self._open_torchscript(data, path)
        else:
            raise UserError(f"{where}: unknown export format {fmt!r}")
        desc = self.description
        if not isinstance(desc, dict) or desc.get("format") != EXPORT_FORMAT:
            raise UserError(f"{where}: not a model exported by htraug (no '{EXPORT_KEY}' description)")
        if desc.get("version", 0) > EXPORT_VERSION:
            raise UserError(f"{where}: exported by a newer htraug (format version {desc.get('version')})")
        self.input_names = [i["name"] for i in desc["inputs"]]

    def _open_onnx(self, data, path, threads) -> dict:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(f"{self.where}: running an ONNX model needs onnxruntime ({ONNX_HINT})") from None
        import torch

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(data if data is not None else str(path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise UserError(f"{self.where}: cannot load the ONNX model ({type(exc).__name__}: {first})") from None
        text = self.session.get_modelmeta().custom_metadata_map.get(EXPORT_KEY)
        return json.loads(text) if text else {}

    def _open_torchscript(self, data, path) -> dict:
        import torch

        extra = {TORCHSCRIPT_EXTRA: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)   # torch 2.13 deprecates TorchScript; it works
                self.module = torch.jit.load(io.BytesIO(data) if data is not None else str(path),
                                             map_location=self.device, _extra_files=extra)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise UserError(f"{self.where}: cannot load the TorchScript model ({type(exc).__name__}: {first})") from None
        self.module.eval()
        raw = extra[TORCHSCRIPT_EXTRA]
        return json.loads(raw) if raw else {}

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.fmt == "onnx":
            return self.session.run(None, {k: np.ascontiguousarray(inputs[k]) for k in self.input_names})
        import torch

        with torch.no_grad():
            out = self.module(*(torch.from_numpy(np.ascontiguousarray(inputs[k])).to(self.device) for k in self.input_names))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().cpu().numpy() for o in out]


def load_exported(path, device: str = "cpu") -> ExportedModel:
    """Open an exported model file (format from its name and contents)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: exported model not found")
    return ExportedModel(p, "onnx" if p.suffix.lower() == ".onnx" else "torchscript", str(p), device=device)


def max_abs_diff(reference: list, got: list) -> float:
    """The largest absolute difference between two lists of output arrays of equal shapes."""
    worst = 0.0
    for r, g in zip(reference, got):
        r, g = np.asarray(r, dtype=np.float64), np.asarray(g, dtype=np.float64)
        if r.shape != g.shape:
            raise UserError(f"exported model returned shape {g.shape}, the network {r.shape}")
        worst = max(worst, float(np.abs(r - g).max()) if r.size else 0.0)
    return worst


def check_and_write(data: bytes, fmt: str, out, reference: list, inputs: dict[str, np.ndarray]) -> dict:
    """Run the exported bytes on `inputs`, compare with the eager `reference` outputs, and write
    `out` atomically when they agree within TOLERANCE. Returns {path, format, bytes, max_abs_diff,
    checked_with}; ONNX is checked with onnxruntime when it is installed (else `checked_with` None)."""
    checked_with = "onnxruntime" if fmt == "onnx" else "torch.jit"
    diff = None
    try:
        model = ExportedModel(bytes(data), fmt, str(out))
    except UserError:
        if fmt != "onnx":
            raise
        import importlib.util
        if importlib.util.find_spec("onnxruntime") is not None:
            raise
        model, checked_with = None, None      # onnx without onnxruntime: written unchecked
    if model is not None:
        diff = max_abs_diff(reference, model.run(inputs))
        if not diff <= TOLERANCE:
            raise UserError(f"{out}: the exported model differs from the network by {diff:.3g} (> {TOLERANCE:g}); "
                            "nothing was written")
    with atomic_file(out, "wb") as f:
        f.write(data)
    return {"path": str(out), "format": fmt, "bytes": len(data), "max_abs_diff": diff, "checked_with": checked_with}


def export_summary(report: dict) -> str:
    """One line about a written export and its check."""
    r = report
    check = (f"max |exported - eager| = {r['max_abs_diff']:.2g} on a batch ({r['checked_with']})"
             if r["max_abs_diff"] is not None else "not checked: onnxruntime is not installed")
    return f"wrote {r['path']} ({r['format']}, {r['bytes'] / 1e6:.2f} MB, {r['kind']} {r['height']}x{r['width']}); {check}"
