"""Write like this writer: find the noise z that makes G reproduce a writer's reference images of
known transcription, then draw new words with it (docs/DESIGN.md §6.9).

Only z is optimised: φ(s) stays the text's, G, φ and R are frozen (eval mode). The loss over the
reference images is the mean absolute pixel difference in [-1, 1] plus `feature_weight` × the mean
squared difference of R's pooled encoder features (R is the GAN's own recognizer, so the term
compares what a reader sees, not only ink positions). One z is shared by all reference images:
a writer has one style. Adam on z for `steps` steps from a seeded N(0, I) draw; the best z seen
is kept, with the loss curve and the loss of the starting draw (random z) beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasets.errors import UserError
from datasets.format import load_dataset, read_grey_png
from datasets.preprocess import fit_to_canvas, to_unit_range
from datasets.seeding import derive_seed
from htr.model import GatedCRNN

from .generate import LoadedGan, check_words, load_gan, render, sample_z
from .networks import encode_words


@dataclass
class StyleFit:
    """The fitted z and how well it reconstructs the references (lower is better)."""

    z: torch.Tensor            # (1, z_dim)
    loss: float                # the best loss reached
    random_loss: float         # the loss of the seeded starting draw
    curve: list[float]         # loss per step


def recognizer_of(gan: LoadedGan, device) -> GatedCRNN:
    """The GAN's own R, frozen, from its checkpoint."""
    model = GatedCRNN(**gan.ckpt["recognizer_config"])
    model.load_state_dict(gan.ckpt["models"]["R"])
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


def style_references(source, writer: str | None, limit: int, gan: LoadedGan) -> tuple[np.ndarray, list[str]]:
    """uint8 reference images at the GAN's canvas and their words: a dataset directory (one
    writer's images with `writer`), or a TSV file of `image_path<TAB>word` lines."""
    cfg = gan.net_config
    direction = gan.ckpt["dataset"]["direction"]
    source = Path(source)
    if source.is_dir():
        ds = load_dataset(source)
        pick = [i for i, (rel, _) in enumerate(ds.entries) if writer is None or ds.meta.writers.get(rel) == writer]
        if not pick:
            raise UserError(f"{source}: no image of writer {writer!r} (writers are listed in its meta.json)")
        items = [(ds.image_path(i), ds.entries[i][1], ds.root / "labels.tsv", i + 1) for i in pick]
    else:
        from datasets.format import read_lines

        items = []
        for k, line in enumerate(read_lines(source), start=1):
            if not line.strip():
                continue
            path, sep, word = line.partition("\t")
            if not sep or not word.strip():
                raise UserError(f"{source}:{k}: expected 'image_path<TAB>word'")
            items.append((source.parent / path, word.strip(), source, k))
    images, words = [], []
    for path, word, where, line in items:
        canvas = fit_to_canvas(read_grey_png(path, where, line), cfg.height, cfg.width, direction)
        if canvas is not None and gan.fits(word) and gan.alphabet.covers(word):
            images.append(canvas)
            words.append(word)
        if len(images) == limit:
            break
    if not images:
        raise UserError(f"{source}: no reference image fits the GAN's {cfg.height}x{cfg.width} canvas with a word it can draw")
    return np.stack(images), words


def fit_style(gan: LoadedGan, images_u8: np.ndarray, words: list[str], steps: int = 300, lr: float = 0.05,
              feature_weight: float = 1.0, seed: int = 0, device="cpu") -> StyleFit:
    """Optimise one z (and only z) so that G(z, φ(word_i)) reproduces the reference images."""
    if steps < 1 or lr <= 0 or feature_weight < 0:
        raise UserError(f"imitation needs steps ≥ 1, lr > 0 and feature weight ≥ 0 (got {steps}, {lr}, {feature_weight})")
    device = torch.device(device)
    reader = recognizer_of(gan, device)
    for p in (*gan.phi.parameters(), *gan.G.parameters()):
        p.requires_grad_(False)
    target = torch.from_numpy(to_unit_range(images_u8)).unsqueeze(1).to(device)
    tokens, lengths = encode_words(words, gan.alphabet)
    with torch.no_grad():
        code = gan.phi(tokens.to(device), lengths)
        target_feats = reader.features(target)
    start = sample_z(1, gan.net_config.z_dim, torch.Generator().manual_seed(derive_seed(seed, 7)))
    z = start.clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)

    def loss_of(zz: torch.Tensor) -> torch.Tensor:
        x = gan.G(zz.expand(len(words), -1), code)
        pixels = (x - target).abs().mean()
        return pixels + feature_weight * ((reader.features(x) - target_feats) ** 2).mean()

    with torch.no_grad():
        random_loss = float(loss_of(z))
    best, best_z, curve = random_loss, z.detach().clone(), []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(z)
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
        if curve[-1] < best:
            best, best_z = curve[-1], z.detach().clone()
    return StyleFit(best_z.cpu(), best, random_loss, curve)


def imitate(run, style, words: list[str], writer: str | None = None, max_style: int = 8, steps: int = 300,
            lr: float = 0.05, feature_weight: float = 1.0, seed: int = 0, device="cpu") -> tuple[np.ndarray, StyleFit]:
    """uint8 images (N, H, W) of `words` in the style of the references, and the fit."""
    gan = load_gan(run, device)
    words, _ = check_words(words, gan, "words")
    images, style_words = style_references(style, writer, max_style, gan)
    fit = fit_style(gan, images, style_words, steps, lr, feature_weight, seed, device)
    out = render(gan.phi, gan.G, gan.alphabet, words, fit.z.expand(len(words), -1), 256, device)
    from .generate import to_u8

    return to_u8(out), fit
