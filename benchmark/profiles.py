"""Study profiles: plain data describing sizes, sample counts and the two training recipes
(docs/DESIGN.md §8). A profile is composed of sizes, an `HtrRecipe` (every recognizer of the
grid) and a `GanRecipe` (the main GAN; the ablations change single fields of it), so the study
passes the recipes to the trainers as they are."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
import re
from typing import Mapping

from datasets.errors import UserError
from datasets.options import Options, option
from datasets.preprocess import default_width
from gan.config import GanRecipe
from htr.config import HtrRecipe
from reports.results import ROWS

# Grid rows that can serve as the GAN's frozen readers: trained on real images only (no cycle
# through the synthetic set). The real row's judge seed (and R's seed with gan_r_init) is skipped.
READER_ROWS = ("real", "real+classic")
STANDIN_NAMES = ("rimes-like", "arabic-like")
STAGE_NAME = re.compile(r"^[A-Za-z0-9._+=-]+$")
# A GAN variant may drop what the study wires into every GAN: R's starting recognizer and the readers.
VARIANT_DROPS = ("r_init", "readers")


@dataclass(frozen=True, kw_only=True)
class Profile(Options):
    """Everything a study run's size depends on; every stage reads its numbers from here."""

    name: str = option(help="profile name", cli=False)
    height: int = option(help="image height (paper: 128), a power of two ≥ 8", min=8, cli=False)
    width: int = option(help="image width (paper: 512), 4 × height", min=1, cli=False)
    n_train: int = option(help="real training images per stand-in dataset", min=1, cli=False)
    n_val: int = option(help="real validation images per stand-in dataset", min=1, cli=False)
    n_test: int = option(help="real test images per stand-in dataset", min=1, cli=False)
    n_synthetic: int = option(help="synthetic words generated for augmentation", min=1, cli=False)
    fid_n: int = option(help="images per side for FID / KID", min=1, cli=False)
    gs_n: int = option(help="points per side for the Geometry Score", min=1, cli=False)
    gs_reps: int = option(help="Geometry Score repetitions", min=1, cli=False)
    htr_seeds: int = option(help="repetitions per HTR row (mean ± std)", min=1, cli=False)
    row_seeds: dict[str, int] = option(default_factory=dict, help="repetitions of single HTR rows on the whole real set, "
                                       "in place of htr_seeds (more seeds where a comparison hinges on a row, e.g. "
                                       "real against real+synthetic); the sweep's fractions keep htr_seeds", cli=False)
    htr_rows: tuple[str, ...] = option(ROWS, "the HTR grid's rows (training data)", cli=False)
    htr_datasets: str = option("all", "datasets with an HTR grid: all, or only the first (the others still train "
                               "their GAN and judge)", choices=("all", "first"), cli=False)
    gan_seeds: int = option(1, "seeds of the main GAN and of every ablation setting (FID/GS mean ± std, best of "
                            "seeds, failed seeds counted); the synthetic set comes from the study seed's GAN unless "
                            "synthetic_gan_seeds", min=1, cli=False)
    synthetic_gan_seeds: bool = option(False, "the HTR rows that train on synthetic words take them from the main "
                                       "GAN's seeds in turn (HTR seed S + k from GAN seed S + k mod gan_seeds), so their "
                                       "mean ± std spans the generators' seed spread as well as the recognizers'",
                                       cli=False)
    ablation_seeds: int | None = option(None, "GAN seeds of every ablation setting (null: gan_seeds)", min=1, cli=False)
    requires_inception: bool = option(False, "refuse to start without Inception FID weights unless the study "
                                      "says --fid-features htr (the paper profile: its FIDs are the paper's)", cli=False)
    real_fractions: tuple[float, ...] = option((1.0,), "real-data-size sweep: fractions of the training images", cli=False)
    sweep_all_datasets: bool = option(True, "the real-data-size sweep on every dataset (false: the first only)", cli=False)
    gan_r_init: bool = option(False, "start the GAN's R from a real-only recognizer (paper: R from scratch)", cli=False)
    gan_readers: tuple[str, ...] = option((), "grid rows (real, real+classic) whose units join R as frozen readers "
                                          "in G's step", cli=False)
    diversity_k: int = option(32, "words of the diversity metric (the most written ones)", min=1, cli=False)
    diversity_m: int = option(8, "images per word and side of the diversity metric (z values of the generator)", min=2, cli=False)
    gan_variants: dict[str, dict] = option(default_factory=dict, help="named GAN variants (changes of the GAN recipe, "
                                           "e.g. remedies; r_init = false and readers = false drop the study's recognizers) "
                                           "trained on the first dataset, each scored like the main GAN and by a "
                                           "recognizer trained on its words only", cli=False)
    variant_seeds: int = option(1, "GAN seeds of every variant (the study seed and the next ones)", min=1, cli=False)
    ablations: bool = option(False, "run the paper's ablation grid (Tables II–V) on the first dataset", cli=False)
    ablation_iterations: int | None = option(None, "GAN iterations of each ablation run (null: the main GAN's)", min=1, cli=False)
    datasets: tuple[str, ...] = option(STANDIN_NAMES, "datasets of the study when the config names none", cli=False)
    htr: HtrRecipe = option(default_factory=HtrRecipe, help="the recognizers' recipe", cli=False)
    gan: GanRecipe = option(default_factory=GanRecipe, help="the main GAN's recipe", cli=False)

    def check(self) -> None:
        """Reject impossible sizes before any work starts."""
        if self.height & (self.height - 1):
            raise UserError(f"height {self.height} must be a power of two ≥ 8")
        if self.width != default_width(self.height):
            raise UserError(f"width {self.width} must be 4 × height ({default_width(self.height)})")
        if not self.real_fractions or not all(0 < f <= 1 for f in self.real_fractions):
            raise UserError(f"real_fractions must be a non-empty list of fractions in (0, 1]")
        for name, change in self.gan_variants.items():
            if not STAGE_NAME.match(name) or name == "main":
                raise UserError(f"gan_variants name {name!r} must be a simple name (letters, digits, . _ + = -) other than main")
            if not isinstance(change, dict):
                raise UserError(f"gan_variants {name!r} must be a table of GAN recipe fields")
            self.with_gan_change(change, where=f"gan_variants {name!r}")
        if self.synthetic_gan_seeds and self.gan_seeds < 2:
            raise UserError(f"synthetic_gan_seeds needs gan_seeds ≥ 2 (got {self.gan_seeds}): one GAN seed is the default")
        if self.htr_datasets == "first" and self.gan_readers:
            raise UserError("gan_readers need the HTR grid on every dataset (htr_datasets = all)")
        unknown = [r for r in self.htr_rows if r not in ROWS]
        if unknown or "real" not in self.htr_rows:
            raise UserError(f"htr_rows must include real and be among {', '.join(ROWS)}, got {', '.join(self.htr_rows)}")
        for row, n in self.row_seeds.items():
            if row not in self.htr_rows:
                raise UserError(f"row_seeds names row {row!r}, which is not among htr_rows ({', '.join(self.htr_rows)})")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise UserError(f"row_seeds {row!r} must be a whole number ≥ 1, got {n!r}")
        bad_rows = [r for r in self.gan_readers if r not in READER_ROWS or r not in self.htr_rows]
        if bad_rows:
            raise UserError(f"gan_readers rows must be among {', '.join(READER_ROWS)} and htr_rows, got {', '.join(bad_rows)}")

    def seeds_of(self, row: str, fraction: float, study_seed: int) -> list[int]:
        """The HTR seeds of a grid row at a real-data fraction: study_seed, study_seed + 1, …"""
        n = self.row_seeds.get(row, self.htr_seeds) if fraction == 1.0 else self.htr_seeds
        return [study_seed + k for k in range(n)]

    def synthetic_gan_seed(self, htr_seed: int, study_seed: int) -> int:
        """The main GAN seed whose words an HTR seed's synthetic rows train on."""
        return study_seed + (htr_seed - study_seed) % self.gan_seeds if self.synthetic_gan_seeds else study_seed

    def with_gan_change(self, change: Mapping, where: str = "GAN change") -> "Profile":
        """This profile with its main GAN changed by `change` (GanRecipe fields; `r_init` and
        `readers` false or null drop R's starting recognizer and the frozen readers), without variants
        of its own: the profile a variant or an ablation setting is checked, priced and trained with.
        Bad fields are one-line errors naming `where`."""
        bad = [k for k in VARIANT_DROPS if k in change and change[k] not in (None, False)]
        if bad:
            raise UserError(f"{where}: {', '.join(bad)} may only be false or null (R from scratch, no readers)")
        recipe = {k: v for k, v in change.items() if k not in VARIANT_DROPS}
        gan = GanRecipe.from_json({**self.gan.to_json(), **recipe}, where=where)
        return replace(self, gan=gan, gan_r_init=self.gan_r_init and "r_init" not in change,
                       gan_readers=() if "readers" in change else self.gan_readers, gan_variants={})

    def amp_modes(self) -> dict[str, str]:
        """The recipes' precision modes by stage kind, as the ETA calibration times them."""
        return {"htr": self.htr.amp, "gan": self.gan.amp}


def gan_train_fields(p: Profile) -> dict:
    """The GanTrainConfig fields a profile sets: its GAN recipe, sizes and metric sample sizes
    (R's width is the recognizers' width)."""
    return {**p.gan.to_json(), "height": p.height, "width": p.width, "htr_width_mult": p.htr.width_mult,
            "fid_n": p.fid_n, "gs_n": p.gs_n, "gs_reps": p.gs_reps}


PROFILES = {
    "smoke": Profile(
        name="smoke", height=16, width=64, n_train=160, n_val=48, n_test=48,
        n_synthetic=96, fid_n=64, gs_n=64, gs_reps=4, htr_seeds=2, real_fractions=(0.5, 1.0),
        ablations=True, ablation_iterations=15, gan_seeds=2, ablation_seeds=1,  # every report section, at plumbing scale
        diversity_k=8, diversity_m=4, gan_variants={"diffaug+ms": {"diff_augment": "translation,cutout,ink", "ms_weight": 1.0,
                                                                   "iterations": 15}},
        htr=HtrRecipe(width_mult=0.5, batch_size=32, lr=1e-3, max_epochs=2, patience=2),
        gan=GanRecipe(channel_mult=0.25, iterations=30, batch_size=16, eval_every=15),
    ),
    # quick: both datasets, every row and two seeds (three for real and real + synthetic, the paper's
    # comparison; over six paired seeds French gains 7–9 points at every seed, Arabic none at 3,000 real
    # words and 5 at 750: RESULTS, "Real against real + synthetic over six paired seeds and two GAN
    # seeds"; `benchmark/studies/quick_*.toml` rerun it so), aimed at an hour on 2 CPU cores (51 min
    # measured on a 2-vCPU Xeon with AMX and bf16 recognizers, 40 stages; 1 h 31 min with these 44 stages
    # on a 2-vCPU Zen 4 EPYC, whose AVX-512 BF16 without AMX gains less, 1 h 20 min there with bf16
    # GANs; RESULTS), run as two one-thread stages at once (`--jobs`, default on a CPU). Every recognizer gets the same 3,000
    # steps (real + synthetic rows no longer get more than real-only ones); the wider encoder learns
    # faster per step; constant lr (the plateau decay, factor 0.5, cost 10 points of test ED here).
    # A recognizer still at validation ED ≥ 95 % after 1,500 steps restarts from a new initialisation
    # (about one French seed in eight stays on CTC's blank plateau otherwise; RESULTS, "The recognizer
    # stall guard"). Where the CPU computes bf16 natively (AMX or AVX-512 BF16) the recognizers train
    # under bf16 autocast (`amp = "auto"`): ×1.5 per step, test ED within the seed-to-seed spread of
    # float32 over 8 paired seeds (RESULTS, "bf16 recognizers"); float32 everywhere else. The GAN
    # stays float32 (`gan_amp = "auto"` trains it ×1.33–1.45 faster, but its words taught the
    # synthetic + classic recognizers less and less steadily: 78.9 ± 3.5 / 75.0 ± 4.4 % test ED
    # against 75.6 ± 0.1 / 71.6 ± 0.2 in float32; RESULTS, "bf16 GANs in the quick study").
    # The GAN departs from the paper where it had to be readable on a CPU (RESULTS "GAN"): spatial
    # conditioning, D without BN, R from the real-only unit of seed 1, the real+classic units as
    # frozen readers on distorted fakes, no gradient balancing; and mode seeking at λ = 0.25 over
    # the word's columns, so z changes the hand (RESULTS "The quick study with word-region mode
    # seeking at λ = 0.25": diversity 0.68/0.73 against the recipe's 0.19/0.16, readability within
    # 10 points of the judge's). `gan_ms_weight = 0` gives back the single-style recipe.
    # D is made stronger: two D updates per G update, D's Adam at 4 × G's rate and DiffAugment
    # (translation, cutout, ink) before D. Against the same recipe with one plain D update, in the
    # whole quick study: D's share of G's gradient 0.138 / 0.111 (French / Arabic) against 0.074 /
    # 0.094, judge ED on generated words 55.9 / 45.2 against 61.2 / 48.5, synthetic only 82.1 / 82.6
    # against 83.9 / 86.3, synthetic + classic 73.7 / 69.2 against 75.6 / 71.6 (both seeds better on
    # both datasets), real + synthetic unchanged (48.6 / 41.5 against 48.4 / 42.0), for +27 % per GAN
    # iteration (RESULTS, "D's update ratio and learning rate"). `gan_d_steps = 1`, `gan_lr_d = 2e-4` (G's
    # rate) and `gan_diff_augment = ""` give back the single-update D bitwise. A third D update takes
    # D's share to 0.227 / 0.143 but the Arabic words teach a recognizer with classic distortions
    # ≈ 3 points less, for 22 % more per GAN; D at 8 × G's rate changes nothing (RESULTS, "A third D
    # update, or D's rate doubled again"), so two updates at 4 × stay.
    "quick": Profile(
        name="quick", height=32, width=128, n_train=3000, n_val=300, n_test=400,
        n_synthetic=2000, fid_n=300, gs_n=200, gs_reps=10, htr_seeds=2, row_seeds={"real": 3, "real+synthetic": 3},
        real_fractions=(0.25, 1.0),
        sweep_all_datasets=False, gan_r_init=True, gan_readers=("real+classic",),
        htr=HtrRecipe(width_mult=1.0, batch_size=32, lr=1e-3, max_epochs=200, patience=4, max_steps=3000,
                      eval_every=500, dropout=0.3, stall_steps=1500, amp="auto"),
        gan=GanRecipe(channel_mult=0.5, iterations=900, batch_size=16, eval_every=300, cond="spatial",
                      d_norm="none", alpha=None, r_augment=True, ctc_reduction="char", ms_weight=0.25,
                      ms_region="word", d_steps=2, lr_d=8e-4, diff_augment="translation,cutout,ink"),
    ),
    # paper: the paper's experiments and nothing else — the French and Arabic GANs, the ablations of
    # Tables II–V on French, Table VI on French (RIMES only vs RIMES + 100k synthetic words), one
    # recognizer per row (the paper reports one run); its FIDs are Inception FIDs (weights required).
    "paper": Profile(
        name="paper", height=128, width=512, n_train=129414, n_val=6060, n_test=6060,
        n_synthetic=100000, fid_n=25000, gs_n=5000, gs_reps=100, htr_seeds=1, real_fractions=(1.0,),
        htr_rows=("real", "real+synthetic"), htr_datasets="first", gan_seeds=3, requires_inception=True,
        ablations=True,
        htr=HtrRecipe(width_mult=1.0, batch_size=64, lr=1e-4, max_epochs=200, patience=20),
        gan=GanRecipe(channel_mult=1.0, iterations=300000, batch_size=64, eval_every=10000),
    ),
    # paper-full: the paper's sizes with everything the suite adds (every row, a real-data sweep, the
    # Arabic HTR grid, three HTR seeds).
    "paper-full": Profile(
        name="paper-full", height=128, width=512, n_train=129414, n_val=6060, n_test=6060,
        n_synthetic=100000, fid_n=25000, gs_n=5000, gs_reps=100, htr_seeds=3, real_fractions=(0.05, 0.25, 1.0),
        gan_seeds=3, requires_inception=True, ablations=True,
        htr=HtrRecipe(width_mult=1.0, batch_size=64, lr=1e-4, max_epochs=200, patience=20),
        gan=GanRecipe(channel_mult=1.0, iterations=300000, batch_size=64, eval_every=10000),
    ),
}

# GAN recipe fields that set the size of a run, not its method: they differ from the paper's at
# every size below the paper profile, so they are not departures.
GAN_SIZE_FIELDS = ("channel_mult", "iterations", "batch_size", "eval_every", "max_chars")
# GAN recipe fields that set the arithmetic, not the method: the report notes them where they applied.
GAN_PRECISION_FIELDS = ("amp",)


def gan_departures(profile_json: Mapping) -> list[str]:
    """The main GAN's settings that differ from the paper's (the paper profile's recipe, sizes aside),
    each as 'field = value (paper: value)', from a profile's JSON form."""
    paper = PROFILES["paper"].to_json()
    out = [f"{k} = {_show(v)} (paper: {_show(paper['gan'][k])})" for k, v in profile_json["gan"].items()
           if k not in GAN_SIZE_FIELDS + GAN_PRECISION_FIELDS and k in paper["gan"] and v != paper["gan"][k]]
    for k in ("gan_r_init", "gan_readers"):
        if k in profile_json and profile_json[k] != paper[k]:
            out.append(f"{k} = {_show(profile_json[k])} (paper: {_show(paper[k])})")
    return out


def _show(value) -> str:
    """One setting as a study config would spell it."""
    if value is None:
        return "none"
    if value == "":
        return '""'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


# Older flat spellings of recipe fields in study configs: `htr_<field>` and `gan_<field>` name the
# recipes' fields; these two name the batch sizes.
_FLAT_ALIASES = {"htr_batch": "htr_batch_size", "gan_batch": "gan_batch_size"}


def _nest(overrides: Mapping) -> dict:
    """Overrides with flat `htr_<field>` / `gan_<field>` keys moved into the `htr` / `gan` tables."""
    own = {f.name for f in fields(Profile)}
    out: dict = {}
    for key, value in overrides.items():
        key = _FLAT_ALIASES.get(key, key)
        prefix, _, rest = key.partition("_")
        if key not in own and prefix in ("htr", "gan") and rest:
            table = out.setdefault(prefix, {})
            if not isinstance(table, dict):
                raise UserError(f"overrides: {prefix} must be a table of recipe fields")
            table[rest] = value
        elif key in ("htr", "gan") and isinstance(value, Mapping):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def get_profile(name: str, overrides: Mapping | None = None) -> Profile:
    """A named profile with optional field overrides (validated: unknown keys are errors).

    Recipe fields are overridden in nested tables (`htr = {lr = 1e-3}`) or with their flat
    spelling (`htr_lr = 1e-3`)."""
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    prof = PROFILES[name]
    if not overrides:
        return prof
    nested = _nest(overrides)
    recipes = {}
    for key, cls in (("htr", HtrRecipe), ("gan", GanRecipe)):
        if key in nested:
            recipes[key] = cls.from_json({**getattr(prof, key).to_json(), **nested.pop(key)}, where=f"profile {name}: {key}")
    merged = {**prof.to_json(), **nested}
    merged.update({k: r.to_json() for k, r in recipes.items()})
    return profile_from_json(merged, where=f"profile {name}")


def profile_from_json(obj: Mapping, where: str = "profile") -> Profile:
    """A Profile from its recorded JSON (results.json, study.json, an override merge)."""
    obj = dict(obj)
    recipes = {key: cls.from_json(obj.pop(key, {}), where=f"{where}: {key}") for key, cls in (("htr", HtrRecipe), ("gan", GanRecipe))}
    return Profile.from_json({**obj, **recipes}, where=where)
