"""Study profiles: plain data describing sizes, sample counts and training budgets (SPEC §8)."""
from __future__ import annotations

from dataclasses import dataclass, field, asdict, fields, replace

from datasets.errors import UserError
from gan.options import CONDITIONING as GAN_CONDITIONING, D_NORMS as GAN_D_NORMS


# Grid rows that can serve as the GAN's frozen readers: trained on real images only (no cycle
# through the synthetic set). The real row's judge seed (and R's seed with gan_r_init) is skipped.
READER_ROWS = ("real", "real+classic")


@dataclass(frozen=True)
class Profile:
    """Everything a study run's size depends on; every stage reads its numbers from here."""

    name: str
    height: int                 # image height (paper: 128)
    width: int                  # image width (paper: 512); width == 4 * height
    n_train: int                # real training images per dataset (stand-in builders)
    n_val: int
    n_test: int
    gan_channel_mult: float     # G/D channel multiplier (paper: 1.0)
    gan_iterations: int
    gan_batch: int
    gan_eval_every: int
    htr_width_mult: float       # recognizer width multiplier (the paper's "big" variant: 1.0 here)
    htr_batch: int
    htr_lr: float               # recognizer learning rate (paper: RMSprop 1e-4)
    htr_max_epochs: int
    htr_patience: int
    htr_seeds: int              # repetitions per HTR row (mean ± std)
    n_synthetic: int            # synthetic words generated for augmentation
    fid_n: int                  # images per side for FID / KID
    gs_n: int                   # points per side for the Geometry Score
    gs_reps: int
    real_fractions: tuple[float, ...] = (1.0,)  # real-data-size sweep
    htr_dropout: float = 0.0    # recognizer decoder dropout (0: the plain network)
    htr_lr_factor: float = 1.0  # reduce-on-plateau factor after 2 validations without improvement (1: off)
    htr_lr_schedule: str = "constant"  # constant | cosine (to 0 over htr_max_epochs; excludes htr_lr_factor < 1)
    htr_max_steps: int | None = None  # optimizer steps per recognizer (None: htr_max_epochs decides); equal for every row
    htr_eval_every: int = 0     # validate every N steps (0: every epoch); patience counts validations
    gan_r_init: bool = False    # start the GAN's R from a real-only recognizer (paper: False, R from scratch)
    gan_alpha: float | None = 1.0  # gradient balancing α of the main GAN (paper: 1; None: plain sum, "no balancing")
    gan_readers: tuple[str, ...] = ()  # grid rows (real, real+classic) whose units join R as frozen readers in G's step
    gan_r_augment: bool = False  # distort generated images before R and the readers (classic augmentation)
    sweep_all_datasets: bool = True  # the real-data-size sweep on every dataset (False: the first only)
    gan_cond: str = "cbn"       # G's conditioning: cbn (paper) | linear (Table V) | aligned | spatial (not in the paper)
    gan_d_norm: str = "bn"      # D's normalisation: bn (SPEC §6) | none (spectral norm only)
    ablations: bool = False     # run the paper's ablation grid (Tables II–V)
    ablation_iterations: int | None = None  # GAN iterations of each ablation run (None: gan_iterations)
    datasets: tuple[str, ...] = ("rimes-like", "arabic-like")

    def to_json(self) -> dict:
        """Plain JSON values (tuples as lists), so a recorded profile equals a re-read one."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PROFILES = {
    "smoke": Profile(
        name="smoke", height=16, width=64, n_train=160, n_val=48, n_test=48,
        gan_channel_mult=0.25, gan_iterations=30, gan_batch=16, gan_eval_every=15,
        htr_width_mult=0.5, htr_batch=32, htr_lr=1e-3, htr_max_epochs=2, htr_patience=2, htr_seeds=2,
        n_synthetic=96, fid_n=64, gs_n=64, gs_reps=4, real_fractions=(0.5, 1.0),
        ablations=True, ablation_iterations=15,  # every report section, at plumbing scale
    ),
    # quick: both datasets, every row and two seeds in under an hour on 2 CPU cores, run as two
    # one-thread stages at once (`--jobs`, default on a CPU). Every recognizer gets the same 3,000
    # steps (real + synthetic rows no longer get more than real-only ones); the wider encoder learns
    # faster per step. The GAN departs from the paper where it had to be readable on a CPU (RESULTS
    # "GAN"): spatial conditioning, D without BN, R from the real-only unit of seed 1, the
    # real+classic units as frozen readers on distorted fakes, no gradient balancing.
    "quick": Profile(
        name="quick", height=32, width=128, n_train=3000, n_val=300, n_test=400,
        gan_channel_mult=0.5, gan_iterations=900, gan_batch=16, gan_eval_every=300,
        htr_width_mult=1.0, htr_batch=32, htr_lr=1e-3, htr_max_epochs=200, htr_patience=4, htr_seeds=2,
        htr_max_steps=3000, htr_eval_every=500,
        n_synthetic=2000, fid_n=300, gs_n=200, gs_reps=10, real_fractions=(0.25, 1.0), sweep_all_datasets=False,
        htr_dropout=0.3,   # constant lr: the plateau decay (factor 0.5) cost 10 points of test ED here
        gan_cond="spatial", gan_d_norm="none", gan_r_init=True, gan_alpha=None,
        gan_readers=("real+classic",), gan_r_augment=True,
    ),
    "paper": Profile(
        name="paper", height=128, width=512, n_train=129414, n_val=6060, n_test=6060,
        gan_channel_mult=1.0, gan_iterations=300000, gan_batch=64, gan_eval_every=10000,
        htr_width_mult=1.0, htr_batch=64, htr_lr=1e-4, htr_max_epochs=200, htr_patience=20, htr_seeds=3,
        n_synthetic=100000, fid_n=25000, gs_n=5000, gs_reps=100, real_fractions=(0.05, 0.25, 1.0),
        ablations=True,
    ),
}


def get_profile(name: str, overrides: dict | None = None) -> Profile:
    """A named profile with optional field overrides (validated: unknown keys are errors)."""
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    prof = PROFILES[name]
    if overrides:
        known = {f.name: f.type for f in fields(Profile)}
        bad = sorted(set(overrides) - set(known))
        if bad:
            raise UserError(f"unknown profile key(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        prof = replace(prof, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    validate_profile(prof)
    return prof


def validate_profile(p: Profile) -> None:
    """Reject impossible sizes before any work starts."""
    if p.height < 8 or p.height & (p.height - 1):
        raise UserError(f"profile {p.name}: height {p.height} must be a power of two ≥ 8")
    if p.width != 4 * p.height:
        raise UserError(f"profile {p.name}: width {p.width} must be 4 × height ({4 * p.height})")
    for key in ("n_train", "n_val", "n_test", "gan_iterations", "gan_batch", "htr_batch", "fid_n", "gs_n", "gs_reps", "htr_seeds"):
        if getattr(p, key) < 1:
            raise UserError(f"profile {p.name}: {key} must be ≥ 1")
    if p.htr_lr_schedule not in ("constant", "cosine"):
        raise UserError(f"profile {p.name}: htr_lr_schedule must be constant or cosine, got {p.htr_lr_schedule!r}")
    if p.htr_lr_schedule == "cosine" and p.htr_lr_factor != 1:
        raise UserError(f"profile {p.name}: htr_lr_schedule cosine needs htr_lr_factor 1")
    if p.htr_max_steps is not None and p.htr_max_steps < 1:
        raise UserError(f"profile {p.name}: htr_max_steps must be ≥ 1 (or unset)")
    if p.htr_eval_every < 0:
        raise UserError(f"profile {p.name}: htr_eval_every must be ≥ 0")
    if p.gan_alpha is not None and not p.gan_alpha > 0:
        raise UserError(f"profile {p.name}: gan_alpha must be > 0 (or null: no balancing)")
    bad_rows = [r for r in p.gan_readers if r not in READER_ROWS]
    if bad_rows:
        raise UserError(f"profile {p.name}: gan_readers rows must be among {', '.join(READER_ROWS)}, got {', '.join(bad_rows)}")
    if p.gan_cond not in GAN_CONDITIONING:
        raise UserError(f"profile {p.name}: gan_cond must be one of {', '.join(GAN_CONDITIONING)}, got {p.gan_cond!r}")
    if p.gan_d_norm not in GAN_D_NORMS:
        raise UserError(f"profile {p.name}: gan_d_norm must be one of {', '.join(GAN_D_NORMS)}, got {p.gan_d_norm!r}")
    if not all(0 < f <= 1 for f in p.real_fractions):
        raise UserError(f"profile {p.name}: real_fractions must lie in (0, 1]")
