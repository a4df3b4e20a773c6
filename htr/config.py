"""Typed options of recognizer training (`htraug htr train`): one description per option.

`HtrRecipe` is how a recognizer learns (optimiser, schedule, budgets, network width); a study
profile carries one. `HtrTrainConfig` adds what one run trains on, where it writes and how it
runs. The paper's settings are the defaults (RMSprop, lr 1e-4, early stopping on validation CER).
"""
from __future__ import annotations

from dataclasses import dataclass

from datasets.cpus import AMP_MODES
from datasets.errors import UserError
from datasets.options import Options, option
from datasets.distributed import DEVICES_HELP

OPTIMIZERS = ("rmsprop", "adam")
LR_SCHEDULES = ("constant", "cosine")
MIN_HEIGHT = 16   # two 4-high down-sampling convolutions (htr.model)
CTC_REDUCTIONS = ("char", "sample")   # per-character (length-normalised) or per-sample CTC (htr.model.ctc_loss)
STALL_CER = 95.0      # validation CER (%) a recognizer on CTC's blank plateau never goes below (htr.train)
MAX_RESTARTS = 2      # restarts from a new initialisation that --stall-steps allows one run


@dataclass(frozen=True, kw_only=True)
class HtrRecipe(Options):
    """How a recognizer learns; a study profile carries one for every grid row."""

    optimizer: str = option("rmsprop", "optimizer", choices=OPTIMIZERS, defines_run=True)
    lr: float = option(1e-4, "learning rate", gt=0, defines_run=True)
    lr_factor: float = option(1.0, "reduce-on-plateau: multiply the lr by this after --lr-patience validations "
                              "without improvement (1: off)", gt=0, max=1, defines_run=True)
    lr_patience: int = option(2, "validations without improvement before each lr reduction", min=1, defines_run=True)
    lr_schedule: str = option("constant", "cosine: lower the lr along a half cosine to 0 at the end of --max-epochs",
                              choices=LR_SCHEDULES, defines_run=True)
    batch_size: int = option(64, "images per batch", min=1, defines_run=True)
    max_epochs: int = option(50, "epochs at most", min=1)
    patience: int = option(5, "validations without improvement before stopping", min=1)
    max_steps: int | None = option(None, "stop after N optimizer steps in total (resumable)", metavar="N", min=1)
    eval_every: int = option(0, "validate every N steps (0: at the end of every epoch)", metavar="STEPS", min=0, defines_run=True)
    width_mult: float = option(1.0, "multiplier of the encoder's feature counts", gt=0, defines_run=True)
    dropout: float = option(0.0, "decoder dropout during training", min=0, lt=1, defines_run=True)
    stall_steps: int = option(0, f"restart from a new initialisation when the validation CER has not gone below "
                                     f"{STALL_CER:g} percent after N steps (CTC's blank plateau; at most {MAX_RESTARTS} restarts, "
                                     "each with the whole step budget; 0: never)", metavar="N", min=0,
                                     defines_run=True)
    amp: str = option("off", "bf16 autocast of the network's forward pass, CTC in float32: on, off, or auto (on "
                      "where bf16 is native: CUDA, or a CPU with AMX or AVX-512 BF16; float32 elsewhere)",
                      choices=AMP_MODES, bare="on", defines_run=True)
    grad_clip: float = option(5.0, "max gradient L2 norm (0: off)", min=0, cli=False, defines_run=True)

    def check(self) -> None:
        if self.lr_schedule == "cosine" and self.lr_factor < 1:
            raise UserError("--lr-schedule cosine and --lr-factor < 1 exclude each other (choose one way to lower the lr)")


@dataclass(frozen=True, kw_only=True)
class HtrTrainConfig(HtrRecipe):
    """Everything one recognizer training run depends on; one seed controls all randomness."""

    train: str = option(help="real training dataset directory (defines the alphabet)", metavar="DIR", path=True, defines_run=True)
    val: str = option(help="validation dataset directory (early stopping)", metavar="DIR", path=True, defines_run=True)
    out: str = option(help="run directory", metavar="RUN", path=True)
    extra: list[str] = option(help="additional (e.g. synthetic) training set; repeatable", metavar="DIR",
                              repeat=True, path=True, default_factory=list, defines_run=True)
    extra_ratio: float | None = option(None, "share of every batch drawn from --extra sets (default: plain "
                                       "concatenation)", metavar="R", gt=0, lt=1, defines_run=True)
    seed: int = option(0, "seed of initialisation, batch order and augmentation", min=0, defines_run=True)
    height: int | None = option(None, "canvas height (default: the training set's)", min=MIN_HEIGHT, defines_run=True)
    width: int | None = option(None, "canvas width (default: the training set's, else 4×height)", min=1, defines_run=True)
    augment: bool = option(False, "classic distortions (affine, elastic, stroke width, noise)", defines_run=True)
    max_train: int | None = option(None, "use a fixed random subset of N real training images", metavar="N", min=1, defines_run=True)
    subset_seed: int = option(0, "seed of the --max-train subset (nested subsets for a sweep)", cli=False, min=0, defines_run=True)
    max_minutes: float | None = option(None, "stop after this much training time (final validation included)", gt=0)
    save_every: int = option(200, "also write last.pt every N optimizer steps (wherever an epoch ends)", metavar="N", min=1)
    resume: bool = option(False, "continue RUN from its last.pt (exactly)")
    device: str = option("cpu", DEVICES_HELP)
    compile: bool = option(False, "torch.compile the training forward (CUDA only)")
    threads: int | None = option(None, "torch CPU threads (default: torch's; 1 is best on a busy machine)", min=1)
    show_progress: bool = option(True, "no progress bar", flag="--quiet")
    tensorboard: str | None = option(None, "also write every validation record (scalars, and the record as text) as "
                                     "TensorBoard event files into DIR (needs the tensorboard package: pip install "
                                     "'htraug[tensorboard]')", metavar="DIR", path=True)

    def check(self) -> None:
        super().check()
        if self.extra_ratio is not None:
            if not self.extra:
                raise UserError("--extra-ratio needs at least one --extra dataset")
            if round(self.batch_size * self.extra_ratio) in (0, self.batch_size):
                raise UserError(f"--extra-ratio {self.extra_ratio} leaves no real or no synthetic image in a batch of {self.batch_size}")


