"""Typed options of GAN training (`htraug gan train`): one description per option.

`GanRecipe` is what is trained and how (network switches, losses, optimiser, budget, evaluation
cadence); a study profile carries one. `GanTrainConfig` adds the data, the run directory, the
recognizers it reads from, the evaluation sample sizes and how it runs. The paper's settings are
the defaults: 128×512 images, channel multiplier 1.0, batch 64, Adam lr 2e-4 betas (0, 0.999),
hinge loss, α = 1, self-attention, CBN conditioning, D with batch norm.
"""
from __future__ import annotations

from dataclasses import dataclass

from datasets.cpus import AMP_MODES
from datasets.distributed import DEVICES_HELP
from datasets.errors import UserError
from datasets.options import Options, option, parse_comma_list, parse_none_or_float
from datasets.preprocess import default_width

from htr.config import CTC_REDUCTIONS

from .options import ALIGNED_CONDITIONING, CONDITIONING, D_NORMS, LOSSES, MS_REGIONS, TRANSFORMS, parse_policy


@dataclass(frozen=True, kw_only=True)
class GanRecipe(Options):
    """What is trained and how; a study profile carries one (ablations change single fields)."""

    channel_mult: float = option(1.0, "G/D filter multiplier (1.0 = paper)", metavar="M", gt=0, defines_run=True)
    iterations: int = option(100_000, "training iterations", metavar="N", min=1)
    batch_size: int = option(64, "images per batch, one kind per batch (batch norm needs ≥ 2)", metavar="B", min=2,
                             defines_run=True)
    lr: float = option(2e-4, "Adam learning rate of every network (of D too unless --lr-d)", gt=0, defines_run=True)
    betas: tuple[float, float] = option((0.0, 0.999), "Adam betas", cli=False, defines_run=True)
    lr_d: float | None = option(None, "D's Adam learning rate: none (--lr, the paper), or its own, e.g. above G's (the "
                                "two time-scale update rule, Heusel et al. 2017)", metavar="LR", parse=parse_none_or_float,
                                gt=0, defines_run=True)
    d_steps: int = option(1, "D updates per G update, each on a new real and a new generated batch (the paper: 1)",
                          metavar="N", min=1, defines_run=True)
    grad_clip_d: float = option(5.0, "max gradient norm for D (0 = off); the paper gives no value", min=0, cli=False,
                                defines_run=True)
    grad_clip_r: float = option(5.0, "max gradient norm for R (0 = off)", min=0, cli=False, defines_run=True)
    alpha: float | None = option(1.0, "gradient balancing: none (plain sum ∇D + ∇R), or a positive number", metavar="A",
                                 parse=parse_none_or_float, gt=0, defines_run=True)
    alpha_from: int = option(0, "R-term schedule: the first K iterations use R's raw gradient (as α none), α balances "
                             "from iteration K + 1 on; 0: α from the start, the paper", metavar="K", min=0,
                             defines_run=True)
    loss: str = option("hinge", "adversarial loss", choices=LOSSES, defines_run=True)
    attention: bool = option(True, "drop self-attention in G and D", flag="--no-attention", defines_run=True)
    cond: str = option("cbn", "inputs through CBN layers (paper), the first linear layer (Table V), or CBN aligned with "
                       "the characters' positions, per column ('aligned') or per pixel ('spatial'); both not in the paper",
                       choices=CONDITIONING, defines_run=True)
    d_norm: str = option("bn", "D's normalisation: batch norm (paper) or none (spectral norm only)", choices=D_NORMS,
                         defines_run=True)
    r_augment: bool = option(False, "distort generated images with the classic augmentations before R and the readers "
                             "in G's update (not in the paper)", defines_run=True)
    max_chars: int | None = option(None, "longest word to generate (default: longest training label)", metavar="N", min=1,
                                   defines_run=True)
    diff_augment: str = option("", "DiffAugment before every call of D, on real and generated images: comma-separated "
                               f"{', '.join(TRANSFORMS)} (empty: off, the paper)", metavar="LIST", defines_run=True)
    augment_p: float = option(1.0, "probability that a DiffAugment transform is applied to an image (fixed, or ADA's "
                              "start value)", metavar="P", min=0, max=1, defines_run=True)
    ada_target: float | None = option(None, "ADA: adapt the DiffAugment probability so that E[sign(D(real))] stays at "
                                      "this value (the ADA paper: 0.6); none: a fixed probability", metavar="T",
                                      parse=parse_none_or_float, min=0, max=1, defines_run=True)
    ada_speed: float = option(10_000, "ADA: real images over which the probability may travel from 0 to 1", metavar="N",
                              gt=0, defines_run=True)
    ms_weight: float = option(0.0, "mode-seeking term on z (Mao et al. 2019): λ·1/(mean|G(z1)−G(z2)|/mean|z1−z2|) over "
                              "pairs of one word; 0: off, the paper", metavar="λ", min=0, defines_run=True)
    ms_region: str = option("image", "where the mode-seeking term measures |G(z1)−G(z2)|: the whole canvas, or only "
                            "the columns the word's characters occupy (aligned/spatial layout), so that z cannot buy "
                            "its distance with marks past the word", choices=MS_REGIONS, defines_run=True)
    ctc_reduction: str = option("sample", "CTC of R and of G's term: 'sample' — each sample's loss summed over its frames, "
                                "averaged over the batch (the paper's expectation); 'char' — each divided by its word's "
                                "length first", choices=CTC_REDUCTIONS, defines_run=True)
    eval_every: int = option(1000, "evaluate and checkpoint every K iterations", metavar="K", min=1)
    amp: str = option("off", "bf16 autocast of the training step (G, D, R, φ), CTC and gradient balancing in float32: "
                      "on, off, or auto (on where bf16 is native: CUDA, or a CPU with AMX or AVX-512 BF16; float32 "
                      "elsewhere)", choices=AMP_MODES, bare="on", defines_run=True)

    def check(self) -> None:
        if self.alpha_from and self.alpha is None:
            raise UserError(f"alpha_from (--alpha-from) {self.alpha_from} needs a numeric alpha (--alpha)")
        unknown = [t for t in parse_policy(self.diff_augment) if t not in TRANSFORMS]
        if unknown:
            raise UserError(f"diff_augment (--diff-augment): unknown transform(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(TRANSFORMS)}")
        if self.ada_target is not None and not parse_policy(self.diff_augment):
            raise UserError("ada_target (--ada-target) needs a --diff-augment policy")
        if self.ms_region == "word" and self.cond not in ALIGNED_CONDITIONING:
            raise UserError(f"ms_region (--ms-region) word needs the aligned or spatial layout (--cond), got {self.cond}")
        if self.ms_weight > 0 and self.batch_size % 2:
            raise UserError(f"ms_weight (--ms-weight) needs an even batch size (pairs of one word), got {self.batch_size}")


@dataclass(frozen=True, kw_only=True)
class GanTrainConfig(GanRecipe):
    """Everything one GAN training run depends on; one seed controls all randomness."""

    data: str = option(help="training dataset directory (required unless resuming)", metavar="DIR", path=True,
                       defines_run=True)
    out: str = option(help="run directory to create (or resume)", metavar="RUN", path=True)
    val: str | None = option(None, "reference images for FID/GS (default: the training set)", metavar="DIR", path=True)
    height: int = option(128, "image height, power of two 16..128", metavar="H", min=16, max=128, defines_run=True)
    width: int | None = option(None, "image width, must be 4 x height (default)", metavar="W", min=16, defines_run=True)
    htr_width_mult: float = option(1.0, "recognizer R width multiplier", metavar="M", gt=0, defines_run=True)
    r_init: str | None = option(None, "start R from this recognizer's weights (an `htr train` run trained on real images "
                                "of the same alphabet, height and --htr-width-mult); default: R from scratch, as the paper",
                                metavar="RUN", path=True, defines_run=True)
    readers: list[str] | None = option(None, "extra recognizers trained on real images of this alphabet and height: "
                                       "frozen, their CTC on generated images is averaged with R's in G's update "
                                       "(not in the paper)", metavar="RUN[,RUN...]", parse=parse_comma_list, path=True,
                                       defines_run=True)
    max_minutes: float | None = option(None, "stop earlier after M minutes of training (evaluates, saves, draws samples)",
                                       metavar="M", gt=0)
    sample_every: int | None = option(None, "write sample grids every K iterations (default: --eval-every)", metavar="K",
                                      min=1)
    eval_words: int = option(256, "generated words read back for readability", metavar="N", min=1)
    judge: str | None = option(None, "trained recognizer run: FID 'htr' features and judge readability", metavar="RUN",
                               path=True)
    fid_n: int = option(1000, "images per side for FID, 0 = off", metavar="N", min=0)
    gs_n: int = option(500, "points per side for the Geometry Score, 0 = off", metavar="N", min=0)
    gs_reps: int = option(20, "Geometry Score repetitions", metavar="N", min=1)
    seed: int = option(0, "seed for initialisation, data order, words and noise", min=0, defines_run=True)
    device: str = option("cpu", DEVICES_HELP)
    channels_last: bool = option(False, "NHWC memory format for G, D and R on CUDA")
    compile: bool = option(False, "torch.compile G, D and R on CUDA (first steps compile); with --fast the whole "
                           "iteration as one graph, on any device")
    fast_step: bool = option(False, "the iteration as one function of tensors (gan/fast.py): unpacked φ, tensor-op CTC, "
                             "Adam on the device, random numbers drawn before the step; no host synchronisation "
                             "inside it. The same training as the default step up to float rounding; one device only",
                             flag="--fast")
    resume: bool = option(False, "continue RUN from its last.pt")
    threads: int | None = option(None, "torch CPU threads (default: torch's; 1 is best on a busy machine)", metavar="N",
                                 min=1)
    progress: bool = option(True, "no progress bar", flag="--quiet")
    tensorboard: str | None = option(None, "also write every log record (scalars, and the record as text) and the "
                                     "sample grids as TensorBoard event files into DIR (needs the tensorboard package: "
                                     "pip install 'htraug[tensorboard]')", metavar="DIR", path=True)

    def normalise(self) -> None:
        if self.width is None:
            object.__setattr__(self, "width", default_width(self.height))
        if self.sample_every is None:
            object.__setattr__(self, "sample_every", self.eval_every)
        if not self.readers:
            object.__setattr__(self, "readers", None)

    def check(self) -> None:
        super().check()
        if self.fast_step and self.d_steps > 1:
            raise UserError(f"d_steps (--d-steps) {self.d_steps} needs the default step: --fast draws one D batch per "
                            "iteration")
