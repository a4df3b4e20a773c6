"""Synthetic word images from a trained GAN: a dataset directory the HTR trainer reads directly.

`generate(run, n, out)` draws n words from p_w (or cycles through a words list), renders them
with G in eval mode under torch.no_grad, and writes a dataset directory (docs/DESIGN.md §4) (via
DatasetWriter inside StagingDir: nothing appears at `out` unless everything succeeded) with the
training data's language, direction and alphabet, and provenance (run, checkpoint, iteration,
seed, word source, rejected words).

Words that cannot be rendered (see gan/words.py: more characters than the longest training
word, or a CTC path longer than R's frames) are rejected and counted; an empty list, a word
outside the alphabet, or a `like` dataset with another alphabet is a one-line UserError.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import sys

import numpy as np
import torch

from datasets.alphabet import Alphabet, normalize_text
from datasets.errors import UserError
from datasets.files import StagingDir, check_new_output, read_text_file
from datasets.format import DatasetMeta, DatasetWriter, read_meta
from datasets.preprocess import from_unit_range
from datasets.progress import progress

from .checkpoint import checkpoint_alphabet, read_checkpoint, resolve
from .networks import Generator, NetConfig, WordEncoder, encode_words
from .samples import save_png, stack_vertically, word_and_style_grids
from .words import build_prior, distinct_words, word_fits


@dataclass
class LoadedGan:
    """φ and G of a checkpoint in eval mode, with what generation needs to know."""

    phi: WordEncoder
    G: Generator
    alphabet: Alphabet
    ckpt: dict

    @property
    def net_config(self) -> NetConfig:
        return self.G.cfg

    def prior(self):
        c = self.ckpt
        return build_prior(c["dataset"]["language"], self.alphabet, c["max_chars"], c["frames"], stored=c.get("prior"))

    def fits(self, word: str) -> bool:
        return word_fits(word, self.alphabet, self.ckpt["max_chars"], self.ckpt["frames"])


def load_gan(run, device: str | torch.device = "cpu") -> LoadedGan:
    """Load φ and G from a run directory (best.pt, else last.pt) or a checkpoint file."""
    ckpt = read_checkpoint(resolve(run), "cpu")
    cfg = NetConfig(**ckpt["net_config"])
    phi, G = WordEncoder(cfg), Generator(cfg)
    phi.load_state_dict(ckpt["models"]["phi"])
    G.load_state_dict(ckpt["models"]["G"])
    return LoadedGan(phi.to(device).eval(), G.to(device).eval(), checkpoint_alphabet(ckpt), ckpt)


def sample_z(n: int, z_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise drawn on the CPU (identical on every device for a seed)."""
    return torch.randn(n, z_dim, generator=generator)


@torch.no_grad()
def render(phi: WordEncoder, G: Generator, alphabet: Alphabet, words: list[str], z: torch.Tensor,
           batch_size: int = 256, device: str | torch.device = "cpu", amp: bool = False,
           show_progress: bool = False) -> torch.Tensor:
    """Images (N, 1, H, W) float32 on the CPU in [-1, 1] for `words` and noise `z` (N, z_dim).

    φ and G are used in eval mode and restored to their previous modes afterwards."""
    modes = phi.training, G.training
    phi.eval(), G.eval()
    device = torch.device(device)
    out = []
    try:
        for start in progress(range(0, len(words), batch_size), desc="generating", disable=not show_progress):
            tokens, lengths = encode_words(words[start:start + batch_size], alphabet)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                x = G(z[start:start + batch_size].to(device), phi(tokens.to(device), lengths))
            out.append(x.float().cpu())
    finally:
        phi.train(modes[0]), G.train(modes[1])
    return torch.cat(out) if out else torch.zeros(0, 1, G.cfg.height, G.cfg.width)


def to_u8(images: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) float in [-1, 1] → (N, H, W) uint8 (white = 255)."""
    return from_unit_range(images[:, 0].numpy())


def read_words_file(path) -> list[str]:
    """One word per line (UTF-8, NFC-normalised, surrounding whitespace stripped, blanks skipped)."""
    text = read_text_file(path, "words file")
    return [normalize_text(line.strip()) for line in text.splitlines() if line.strip()]


def check_words(words: list[str], gan: LoadedGan, where: str) -> tuple[list[str], int]:
    """Validate a user word list: returns (renderable words, number rejected as too long)."""
    if not words:
        raise UserError(f"{where}: the word list is empty")
    for w in words:
        if any(c.isspace() for c in w):
            raise UserError(f"{where}: {w!r} contains whitespace (one word per line)")
        missing = gan.alphabet.missing(w)
        if missing:
            raise UserError(f"{where}: word {w!r} has characters {''.join(missing)!r} outside the alphabet "
                            f"'{gan.alphabet.name}' of GAN checkpoint {gan.ckpt['path']}")
    kept = [w for w in words if gan.fits(w)]
    if not kept:
        raise UserError(f"{where}: all {len(words)} words are too long for the canvas "
                        f"(at most {gan.ckpt['max_chars']} characters and {gan.ckpt['frames']} CTC frames)")
    return kept, len(words) - len(kept)


def check_like(gan: LoadedGan, like) -> None:
    """The synthetic data will be mixed with dataset `like`: alphabets and direction must agree."""
    obj = read_meta(Path(like))
    other = Alphabet.from_json(obj.get("alphabet", ""))
    if other.fingerprint != gan.alphabet.fingerprint:
        raise UserError(f"{like}: alphabet '{other.name}' ({other.fingerprint}) differs from GAN checkpoint "
                        f"{gan.ckpt['path']}'s alphabet '{gan.alphabet.name}' ({gan.alphabet.fingerprint})")
    if obj.get("direction") != gan.ckpt["dataset"]["direction"]:
        raise UserError(f"{like}: direction {obj.get('direction')} differs from the GAN's {gan.ckpt['dataset']['direction']}")


def generate(run, n: int, out, words=None, seed: int = 0, batch_size: int = 256, device: str = "cpu",
             like=None, overwrite: bool = False, amp: bool = False, show_progress: bool = True) -> Path:
    """Write `n` generated word images as a dataset directory at `out`; returns its path.

    `words`: None (sample p_w), a list of words, or a path to a words file (one per line); a list
    is cycled through in order until n images are made. `like`: optional dataset directory whose
    alphabet/direction must match the checkpoint's."""
    if n < 1:
        raise UserError(f"--n must be ≥ 1, got {n}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {batch_size}")
    check_new_output(out, overwrite)      # before the model is loaded
    gan = load_gan(run, device)
    if like is not None:
        check_like(gan, like)
    rejected = 0
    if words is None:
        prior = gan.prior()
        source = "prior:" + prior.source
        chosen = prior.sample(n, np.random.default_rng([seed, 0]))
    else:
        where = str(words) if isinstance(words, (str, Path)) else "word list"
        word_list = read_words_file(words) if isinstance(words, (str, Path)) else [normalize_text(w.strip()) for w in words]
        word_list, rejected = check_words(word_list, gan, where)
        if rejected:
            print(f"htraug: {rejected} of {rejected + len(word_list)} words rejected: too long for the "
                  f"{gan.net_config.height}x{gan.net_config.width} canvas (> {gan.ckpt['max_chars']} characters "
                  f"or > {gan.ckpt['frames']} CTC frames)", file=sys.stderr)
        source = f"file:{words}" if isinstance(words, (str, Path)) else "list"
        chosen = [word_list[i % len(word_list)] for i in range(n)]
    z = sample_z(n, gan.net_config.z_dim, torch.Generator().manual_seed(int(seed)))
    ds = gan.ckpt["dataset"]
    meta = DatasetMeta(
        name=f"{ds['name']}-gan", language=ds["language"], direction=ds["direction"], alphabet=gan.alphabet,
        height=gan.net_config.height, width=gan.net_config.width, split="synthetic",
        provenance={"generator": "htraug-gan", "run": str(run), "checkpoint": gan.ckpt["path"],
                    "iteration": int(gan.ckpt["iteration"]), "seed": int(seed), "words": source,
                    "rejected_too_long": int(rejected), "train_data": ds.get("path")},
    )
    with StagingDir(out, overwrite=overwrite) as tmp:
        writer = DatasetWriter(tmp, meta)
        for start in range(0, n, batch_size):
            batch = chosen[start:start + batch_size]
            images = to_u8(render(gan.phi, gan.G, gan.alphabet, batch, z[start:start + batch_size], batch_size, device, amp))
            for img, w in zip(images, batch):
                writer.add(img, w)
        writer.close()
    return Path(out)


def write_sample_grids(run, out, words=None, n_words: int = 8, n_styles: int = 4, seed: int = 0,
                       device: str = "cpu") -> Path:
    """One PNG: fixed word × varying z (top; rows labelled for LTR scripts) above fixed z ×
    varying word (bottom)."""
    gan = load_gan(run, device)
    if words is None:
        words = distinct_words(gan.prior(), n_words, np.random.default_rng([seed, 2]))
    else:
        word_list = read_words_file(words) if isinstance(words, (str, Path)) else list(words)
        words, _ = check_words(word_list, gan, str(words) if isinstance(words, (str, Path)) else "word list")
    top, bottom = grids_for(gan.phi, gan.G, gan.alphabet, words, n_styles, seed, device,
                            label=gan.ckpt["dataset"]["direction"] == "ltr")
    return save_png(stack_vertically(top, bottom), out)


def grids_for(phi, G, alphabet, words: list[str], n_styles: int, seed: int, device, label: bool,
              amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Render every (word, z) pair and return the (words grid, styles grid) as uint8 arrays."""
    z = sample_z(n_styles, G.cfg.z_dim, torch.Generator().manual_seed(int(seed) + 7919))
    all_words = [w for w in words for _ in range(n_styles)]
    all_z = z.repeat(len(words), 1)
    images = to_u8(render(phi, G, alphabet, all_words, all_z, 256, device, amp))
    return word_and_style_grids(images, list(words), n_styles, label)
