"""Typed configuration of a GAN training run (`htraug gan train`)."""
from __future__ import annotations

from dataclasses import dataclass, asdict, fields

from datasets.errors import UserError

from .options import CONDITIONING, D_NORMS, LOSSES

# Fields that define what is being trained: a resumed run must agree on all of them.
STRUCTURAL = ("data", "height", "width", "channel_mult", "htr_width_mult", "batch_size", "lr", "betas",
              "grad_clip_d", "grad_clip_r", "alpha", "loss", "attention", "cond", "d_norm", "seed", "max_chars", "r_init",
              "readers", "r_augment")


@dataclass
class GanTrainConfig:
    """Everything one GAN training run depends on; one seed controls all randomness."""

    data: str                              # training dataset directory (SPEC §4)
    out: str                               # run directory (checkpoints, log, sample grids)
    val: str | None = None                 # reference images for FID/GS (default: the training set)
    height: int = 128                      # paper: 128 × 512
    width: int | None = None               # default 4 × height
    channel_mult: float = 1.0              # G/D filters × this (paper: 1.0)
    htr_width_mult: float = 1.0            # recognizer R's width multiplier
    r_init: str | None = None              # recognizer run/checkpoint whose weights start R (paper: None, R from scratch)
    readers: list[str] | None = None       # extra frozen recognizers (trained on real images) whose CTC joins R's in G's step
    r_augment: bool = False                # distort generated images (classic augmentation) before R and the readers
    batch_size: int = 64                   # images per batch, one kind per batch (paper: 64)
    iterations: int = 100_000              # training steps (paper: several hundred thousand)
    max_minutes: float | None = None       # stop earlier (evaluate, save, draw samples) after this much training time
    lr: float = 2e-4                       # Adam, all networks
    betas: tuple[float, float] = (0.0, 0.999)
    grad_clip_d: float = 5.0               # max gradient norm for D (0 = off); paper gives no value
    grad_clip_r: float = 5.0               # max gradient norm for R (0 = off)
    alpha: float | None = 1.0              # gradient balancing α; None = plain sum ∇_D + ∇_R
    loss: str = "hinge"                    # 'hinge' | 'gan' | 'lsgan'
    attention: bool = True                 # self-attention in G and D
    cond: str = "cbn"                      # 'cbn' (paper) | 'linear' (Table V) | 'aligned' (per-column) | 'spatial' (per-pixel)
    d_norm: str = "bn"                     # D's normalisation: 'bn' (SPEC §6) | 'none' (spectral norm only)
    max_chars: int | None = None           # longest word generated (default: longest training label)
    eval_every: int = 1000                 # evaluation + checkpoint period (iterations)
    sample_every: int | None = None        # sample-grid period (default: eval_every)
    eval_words: int = 256                  # generated words read back for readability
    judge: str | None = None               # recognizer run dir: FID 'htr' features, judge readability
    fid_n: int = 1000                      # images per side for FID (0 = off)
    gs_n: int = 500                        # points per side for the Geometry Score (0 = off)
    gs_reps: int = 20
    seed: int = 0
    device: str = "cpu"                    # 'cpu', 'cuda', 'cuda:N' or 'auto'
    amp: bool = False                      # bf16 autocast on CUDA (CTC and balancing stay fp32)
    channels_last: bool = False            # NHWC memory format for G, D and R (CUDA)
    compile: bool = False                  # torch.compile G, D and R (CUDA; fixed batch shapes)
    resume: bool = False                   # continue from RUN/last.pt when present
    threads: int | None = None             # torch CPU threads (None: torch's default; 1 is best on a busy box)
    progress: bool = True

    def __post_init__(self):
        if self.width is None:
            self.width = 4 * int(self.height)
        if isinstance(self.readers, str):
            self.readers = [r for r in self.readers.split(",") if r]
        self.readers = list(self.readers) if self.readers else None
        self.betas = tuple(float(b) for b in self.betas)
        if self.sample_every is None:
            self.sample_every = self.eval_every
        self.validate()

    def validate(self) -> None:
        """One-line errors for impossible settings (network sizes are checked by NetConfig)."""
        positive = ("batch_size", "iterations", "eval_every", "sample_every", "eval_words", "gs_reps")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise UserError(f"{key.replace('_', '-')} must be ≥ 1, got {getattr(self, key)}")
        for key in ("fid_n", "gs_n", "grad_clip_d", "grad_clip_r"):
            if getattr(self, key) < 0:
                raise UserError(f"{key.replace('_', '-')} must be ≥ 0, got {getattr(self, key)}")
        if self.batch_size < 2:
            raise UserError("batch-size must be ≥ 2 (batch norm needs more than one image)")
        if self.loss not in LOSSES:
            raise UserError(f"loss {self.loss!r} must be one of {', '.join(LOSSES)}")
        if self.cond not in CONDITIONING:
            raise UserError(f"cond {self.cond!r} must be one of {', '.join(CONDITIONING)}")
        if self.d_norm not in D_NORMS:
            raise UserError(f"d-norm {self.d_norm!r} must be one of {', '.join(D_NORMS)}")
        if self.alpha is not None and not self.alpha > 0:
            raise UserError(f"alpha must be > 0 or None (no balancing), got {self.alpha}")
        if not self.lr > 0:
            raise UserError(f"lr must be > 0, got {self.lr}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise UserError(f"max-minutes must be > 0, got {self.max_minutes}")
        if self.max_chars is not None and self.max_chars < 1:
            raise UserError(f"max-chars must be ≥ 1, got {self.max_chars}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @staticmethod
    def from_json(obj: dict) -> "GanTrainConfig":
        known = {f.name for f in fields(GanTrainConfig)}
        return GanTrainConfig(**{k: v for k, v in obj.items() if k in known})


def parse_alpha(text: str | float | None) -> float | None:
    """'none' → None (no balancing), otherwise a positive float."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("none", "off")):
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"alpha {text!r} must be a positive number or 'none'") from None
    if not value > 0:
        raise UserError(f"alpha must be > 0 or 'none', got {text}")
    return value
