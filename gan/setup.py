"""What a GAN run is built from: its training data, its networks and optimisers, and the
recognizers it reads with (R's starting weights, frozen readers, the judge), each checked
against the data (alphabet, height, script direction) with one-line errors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasets.alphabet import Alphabet, direction_name, is_rtl
from datasets.errors import UserError
from datasets.format import DatasetMeta, load_dataset
from datasets.packed import load_packed
from datasets.seeding import seed_initialisation
from datasets.torch_dataset import WordImageDataset
from datasets.words import WordPrior
from htr.checkpoint import check_labels_fit, load_recognizer, read_checkpoint as read_recognizer, resolve
from htr.model import GatedCRNN

from .config import GanTrainConfig
from .networks import Discriminator, Generator, NetConfig, WordEncoder, build_recognizer
from .options import ALIGNED_CONDITIONING
from .words import build_prior, ctc_frames_needed, estimate_char_px


@dataclass
class TrainingData:
    """The real images of a run, their alphabet, and the words G may draw (p_w)."""

    meta: DatasetMeta
    real: WordImageDataset
    frames: int                 # R's CTC frames at this width
    max_chars: int              # longest word G draws
    layout: dict                # char_px and rtl of aligned/spatial conditioning ({} otherwise)
    real_too_long: int          # real words whose CTC path does not fit the frames
    prior: WordPrior

    @property
    def alphabet(self) -> Alphabet:
        return self.meta.alphabet

    def info(self, cfg: GanTrainConfig) -> dict:
        """The dataset as a checkpoint records it."""
        m = self.meta
        return {"name": m.name, "language": m.language, "direction": m.direction, "alphabet": m.alphabet.to_json(),
                "height": cfg.height, "width": cfg.width, "path": str(Path(cfg.data).resolve()),
                "images": len(self.real), "dropped": int(self.real.packed.dropped)}


def load_training_data(cfg: GanTrainConfig, show_progress: bool) -> TrainingData:
    """Open the training set at the canvas size and derive what G may draw."""
    ds = load_dataset(cfg.data)
    meta = ds.meta
    real = WordImageDataset(ds, meta.alphabet, cfg.height, cfg.width, show_progress=show_progress)
    if len(real) < 2:
        raise UserError(f"{cfg.data}: needs at least 2 images that fit {cfg.height}x{cfg.width}, found {len(real)}")
    texts = list(real.packed.texts)
    frames = GatedCRNN.num_frames(cfg.width)
    max_chars = int(cfg.max_chars or max(len(t) for t in texts))
    layout: dict = {}
    if cfg.cond in ALIGNED_CONDITIONING:
        # aligned/spatial codes place character i at [i·char_px, (i+1)·char_px): longer words would be cut
        char_px = round(estimate_char_px(real.packed.images, texts, meta.direction), 4)
        layout = {"char_px": char_px, "rtl": is_rtl(meta.direction)}
        max_chars = min(max_chars, max(1, int(cfg.width // char_px)))
    too_long = sum(ctc_frames_needed(t) > frames for t in texts)
    prior = build_prior(meta.language, meta.alphabet, max_chars, frames, texts)
    return TrainingData(meta, real, frames, max_chars, layout, too_long, prior)


@dataclass
class Networks:
    """φ, G, D and R with their Adam optimisers."""

    net_cfg: NetConfig
    phi: WordEncoder
    G: Generator
    D: Discriminator
    R: GatedCRNN
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    opt_r: torch.optim.Optimizer
    fast: bool                  # CUDA: fused Adam, and channels-last / compile when asked

    def named(self) -> tuple[tuple[str, torch.nn.Module], ...]:
        return (("phi", self.phi), ("G", self.G), ("D", self.D), ("R", self.R))


def build_networks(cfg: GanTrainConfig, data: TrainingData, device: torch.device) -> Networks:
    """The networks, initialised from the run seed (datasets.seeding), and their optimisers."""
    seed_initialisation(cfg.seed)
    net_cfg = NetConfig(num_symbols=len(data.alphabet.symbols), height=cfg.height, width=cfg.width,
                        channel_mult=cfg.channel_mult, attention=cfg.attention, cond=cfg.cond,
                        d_norm=cfg.d_norm, **data.layout)
    phi = WordEncoder(net_cfg).to(device)
    G = Generator(net_cfg).to(device)
    D = Discriminator(net_cfg).to(device)
    R = build_recognizer(data.alphabet.num_classes, cfg.height, cfg.htr_width_mult, rtl=is_rtl(data.meta.direction)).to(device)
    fast = device.type == "cuda"
    if cfg.channels_last and fast:
        for module in (G, D, R):
            module.to(memory_format=torch.channels_last)
    # fused: one kernel per update instead of one per tensor
    adam = lambda params, lr=cfg.lr: torch.optim.Adam(params, lr=lr, betas=cfg.betas, fused=fast)  # noqa: E731
    lr_d = cfg.lr if cfg.lr_d is None else cfg.lr_d
    return Networks(net_cfg, phi, G, D, R, adam(list(phi.parameters()) + list(G.parameters())),
                    adam(D.parameters(), lr_d), adam(R.parameters()), fast)


def check_recognizer(where: str, fingerprint, model_config: dict, cfg: GanTrainConfig, data: TrainingData,
                     same_width: bool) -> None:
    """A recognizer read with this run must share its alphabet, height and script direction
    (and, for R's starting weights, R's width multiplier)."""
    checks = [("alphabet", fingerprint, data.alphabet.fingerprint),
              ("height", model_config.get("height"), cfg.height),
              ("script direction", direction_name(bool(model_config.get("rtl"))), data.meta.direction)]
    if same_width:
        checks.append(("width multiplier", float(model_config.get("width_mult", 0)), float(cfg.htr_width_mult)))
    for what, theirs, ours in checks:
        if theirs != ours:
            raise UserError(f"{where}: {what} {theirs!r} differs from this run's {ours!r}")


def init_recognizer(R: GatedCRNN, cfg: GanTrainConfig, data: TrainingData) -> None:
    """Load R's starting weights from the `r_init` recognizer, refusing any mismatch."""
    path = resolve(cfg.r_init)
    ckpt = read_recognizer(path, "cpu")
    check_recognizer(f"--r-init {path}", ckpt.get("alphabet_fingerprint"), ckpt["model_config"], cfg, data, same_width=True)
    R.load_state_dict(ckpt["model"])


def load_reader(source: str, cfg: GanTrainConfig, data: TrainingData, device) -> GatedCRNN:
    """A frozen extra reader for G's R term: trained on this alphabet, height and direction."""
    model, alphabet, info = load_recognizer(source, device)
    check_recognizer(f"--readers {info['path']}", alphabet.fingerprint, info["model_config"], cfg, data, same_width=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def load_judge(cfg: GanTrainConfig, data: TrainingData, device, words: list[str]) -> tuple[GatedCRNN, Alphabet]:
    """The independent judge recognizer (readability of `words`), checked against the data."""
    model, alphabet, _info = load_recognizer(cfg.judge, device)
    if model.height != cfg.height:
        raise UserError(f"judge {cfg.judge}: trained at height {model.height}, the GAN generates height {cfg.height}")
    if direction_name(bool(model.rtl)) != data.meta.direction:
        raise UserError(f"judge {cfg.judge}: script direction differs from {cfg.data}")
    check_labels_fit(alphabet, words, f"judge {cfg.judge}", "the judge")
    return model, alphabet


def reference_images(cfg: GanTrainConfig, data: TrainingData) -> np.ndarray | None:
    """A fixed random sample of real images (the validation set's when given) for FID and GS."""
    n_ref = max(cfg.fid_n, cfg.gs_n)
    if n_ref <= 0:
        return None
    packed = data.real.packed if not cfg.val else load_packed(cfg.val, cfg.height, cfg.width, cfg.progress)
    n = min(n_ref, len(packed))
    idx = np.sort(np.random.default_rng([cfg.seed, 103]).choice(len(packed), n, replace=False))
    return np.asarray(packed.images[idx])
