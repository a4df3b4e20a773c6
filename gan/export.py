"""`htraug gan export`: φ and G of a trained GAN as one ONNX or TorchScript network (datasets.export).

The exported network computes G(z, φ(word)) in eval mode (batch norm with its running statistics,
spectral norm folded into the weights):

    inputs   z        float32 (batch, z_dim): the noise, standard normal (one style per row)
             tokens   int64 (batch, chars): each word's characters as the alphabet's class indices
                      1..len(alphabet) (symbol i is class i + 1), in logical (reading) order,
                      left-aligned and padded with 0 after the word; chars ≥ the longest word
             lengths  int64 (batch,): each word's number of characters, 1 ≤ length ≤ chars
    output   images   float32 (batch, 1, height, width) in [-1, 1], white = +1

Variable-length words. φ's BiLSTM reads each word only up to its length (the trainer uses packed
sequences, which neither ONNX exporter can trace). The exported encoder runs the same LSTM weights
without packing: the forward direction over the padded rows, the backward direction over each
word reversed within its own length (padding stays behind the word), so padding never reaches a
character's state, and the final states are taken at each word's last (forward) and first
(backward) character. Outputs equal the trainer's φ for any padding width; the description's
`max_chars` is the longest word the generator was trained to draw.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.export import (EXPORT_FORMAT, EXPORT_VERSION, check_and_write, format_for, onnx_bytes,
                             torchscript_bytes)
from datasets.version import package_version

from .generate import LoadedGan, load_gan, render, sample_z
from .networks import Generator, UnpackedWordEncoder, WordEncoder, encode_words

CHECK_WORDS = 6      # words the export is checked on (several lengths)
TRACE_WORDS = 2


class ExportGenerator(nn.Module):
    """(z, tokens, lengths) → G(z, φ(word)): the network an exported generator file holds."""

    def __init__(self, phi: WordEncoder, G: Generator):
        super().__init__()
        self.phi, self.G = UnpackedWordEncoder(phi), G

    def forward(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`Generator.forward` on φ(word), with the code map's width spelled as a constant (the
        exporters lose a traced width on the way to the CBN layers' pooling)."""
        G, cfg = self.G, self.G.cfg
        word = self.phi(tokens, lengths)
        chunks = z.split(cfg.z_chunk, dim=1)
        if cfg.cond == "linear":
            h = G.fc(torch.cat([z, word], dim=1))
            conds = [None] * len(G.blocks)
        else:
            h = G.fc(chunks[0])
            spread = (lambda c: c) if word.dim() == 2 else (lambda c: c[:, :, None].expand(-1, -1, cfg.width))
            conds = [torch.cat([spread(c), word], dim=1) for c in chunks[1:]]
        h = h.view(z.shape[0], G.seed_channels, 1, 4)
        for i, (block, cond) in enumerate(zip(G.blocks, conds), start=1):
            h = block(h, cond)
            if G.attention is not None and i == cfg.g_attention_after:
                h = G.attention(h)
        return torch.tanh(G.out_conv(F.relu(G.out_bn(h))))


def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every parametrised weight (spectral norm) by its current value; eval mode first, so
    the values are those of inference (no power iteration)."""
    module.eval()
    for m in list(module.modules()):
        if parametrize.is_parametrized(m):
            for name in list(m.parametrizations.keys()):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    return module


def exportable(gan: LoadedGan) -> ExportGenerator:
    """The export network of a loaded GAN (its φ and G are modified: load a copy for this)."""
    return ExportGenerator(fold_spectral_norm(gan.phi), fold_spectral_norm(gan.G)).eval()


def generator_description(gan: LoadedGan) -> dict:
    cfg, c = gan.net_config, gan.ckpt
    alphabet: Alphabet = gan.alphabet
    direction = c["dataset"].get("direction", "rtl" if cfg.rtl else "ltr")
    source = {"checkpoint": str(c.get("path", "")).rsplit("/", 1)[-1] or None, "iteration": c.get("iteration"),
              "kind": c.get("kind")}
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "kind": "generator", "htraug": package_version(),
            "alphabet": alphabet.to_json(), "alphabet_fingerprint": alphabet.fingerprint, "direction": direction,
            "language": c["dataset"].get("language"), "height": cfg.height, "width": cfg.width, "z_dim": cfg.z_dim,
            "max_chars": c.get("max_chars"),
            "inputs": [{"name": "z", "dtype": "float32", "shape": ["batch", cfg.z_dim],
                        "meaning": "noise, standard normal"},
                       {"name": "tokens", "dtype": "int64", "shape": ["batch", "chars"],
                        "meaning": "class indices 1..len(alphabet) (symbol i is class i+1) in logical order, "
                                   "left-aligned, padded with 0 after each word"},
                       {"name": "lengths", "dtype": "int64", "shape": ["batch"],
                        "meaning": "characters of each word, 1 <= length <= chars"}],
            "outputs": [{"name": "images", "dtype": "float32", "shape": ["batch", 1, cfg.height, cfg.width],
                         "meaning": "images in [-1, 1], white = +1; uint8 = round((x + 1) * 127.5)"}],
            "net_config": cfg.to_json(), "source": source}


def _check_inputs(gan: LoadedGan, n: int, seed: int) -> tuple[list[str], torch.Tensor]:
    prior = gan.prior()
    rng = np.random.default_rng(seed)
    words = prior.sample(n, rng)
    z = sample_z(n, gan.net_config.z_dim, torch.Generator().manual_seed(seed))
    return words, z


def export_generator(run, out, fmt: str | None = None) -> dict:
    """Export φ and G of `run` (run directory or checkpoint) to `out`, checked against the
    trainer's φ and G on a batch of words of several lengths; returns the check's report."""
    fmt = format_for(out, fmt)
    reference_gan, gan = load_gan(run, "cpu"), load_gan(run, "cpu")
    net = exportable(gan)
    description = generator_description(gan)
    words, z = _check_inputs(gan, TRACE_WORDS, seed=1)
    tokens, lengths = encode_words(words, gan.alphabet)
    example = (z, tokens, lengths)
    if fmt == "onnx":
        data = onnx_bytes(net, example, ["z", "tokens", "lengths"], ["images"],
                          {"z": {0: "batch"}, "tokens": {0: "batch", 1: "chars"}, "lengths": {0: "batch"},
                           "images": {0: "batch"}}, description)
    else:
        data = torchscript_bytes(net, example, description)
    words, z = _check_inputs(gan, CHECK_WORDS, seed=2)
    if not words:
        raise UserError(f"{run}: the GAN's word prior is empty; cannot check the export")
    tokens, lengths = encode_words(words, gan.alphabet)
    reference = [render(reference_gan.phi, reference_gan.G, reference_gan.alphabet, words, z).numpy()]
    report = check_and_write(data, fmt, out, reference,
                             {"z": z.numpy(), "tokens": tokens.numpy(), "lengths": lengths.numpy()})
    cfg = gan.net_config
    return {**report, "kind": "generator", "height": cfg.height, "width": cfg.width, "direction": description["direction"],
            "z_dim": cfg.z_dim, "max_chars": description["max_chars"]}
