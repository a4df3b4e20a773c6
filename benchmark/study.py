"""The study (SPEC §8): one config → a graph of content-hashed stages → results.json.

Per dataset: data (built or imported) → judge recognizer (real train; FID-htr features and
readability; it is also the real-only row's seed-S model) → GAN (periodic FID/GS/readability,
best checkpoint kept) → final generator metrics → N synthetic words from p_w → HTR grid units
(rows × seeds, real-data-size sweep) and, on the first dataset when the profile asks, the paper's
ablation grid (Tables II–V). Grid units are independent, so `--shard i/N` runs a deterministic
slice of them and `merge` reassembles results.json from the shards' recorded stage results.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
import json
import math
import os
from pathlib import Path
import platform
import re
import shutil
import statistics
import sys
import time
from typing import Callable

from datasets.cpus import available_cpus
from datasets.errors import UserError
from datasets.format import atomic_write_json, parse_json_file, read_jsonl

from .backend import RealBackend, StudyBackend
from .profiles import PROFILES, Profile, get_profile
from .stages import Stage, StageContext, StageRunner, fingerprint_tree, format_seconds, shard_units

SCHEMA_VERSION = 1
STANDIN_KINDS = {"rimes-like": ("fr", "ltr"), "arabic-like": ("ar", "rtl")}
IMPORT_FORMATS = ("rimes", "iam", "tsv", "khatt", "madcat")   # datasets.importers.FORMATS
ROWS = ("real", "real+synthetic", "real+classic", "real+synthetic+classic", "synthetic")
SWEEP_ROWS = ("real", "real+synthetic")


def main_gan(profile: Profile) -> dict:
    """The main GAN's switches: the paper's, with the profile's conditioning (`gan_cond`), α
    (`gan_alpha`) and, when they differ from SPEC's, D's normalisation (`gan_d_norm`) and the
    distortion of fakes before R (`gan_r_augment`)."""
    extra = {"d_norm": profile.gan_d_norm} if profile.gan_d_norm != "bn" else {}
    if profile.gan_r_augment:
        extra["r_augment"] = True
    return {"alpha": profile.gan_alpha, "loss": "hinge", "attention": True, "cond": profile.gan_cond, **extra}


def _alpha_key(alpha: float | None) -> str:
    return "none" if alpha is None else f"{alpha:g}"


def ablation_grid(cond: str = "cbn", alpha: float | None = 1.0) -> dict[str, dict[str, dict | None]]:
    """The paper's ablation grid (Tables II–V): setting → overrides of the main GAN, None for the
    main GAN's own setting. A main GAN with conditioning (or α) outside the paper's adds its row."""
    conditioning: dict[str, dict | None] = {c: {"cond": c} for c in ("linear", "cbn")}
    conditioning[cond] = None
    alphas: dict[str, dict | None] = {_alpha_key(a): {"alpha": a} for a in (None, 0.1, 1.0, 10.0)}
    alphas[_alpha_key(alpha)] = None
    return {
        "alpha": alphas,
        "loss": {"gan": {"loss": "gan"}, "lsgan": {"loss": "lsgan"}, "hinge": None},
        "attention": {"without": {"attention": False}, "with": None},
        "conditioning": conditioning,
    }

CODE_VERSION = "study-2"   # bump to invalidate every recorded stage after a semantic change
_DS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the study: an offline stand-in (`kind`) or an imported real dataset."""

    name: str
    kind: str = "import"                 # "rimes-like" | "arabic-like" | "import"
    format: str | None = None            # importer format when kind == "import"
    path: str | None = None
    options: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"name": self.name, "kind": self.kind}
        if self.kind == "import":
            d.update(format=self.format, path=self.path, options=dict(self.options))
        return d


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study run depends on (the out dir and shard only say where and which part)."""

    profile: Profile
    datasets: tuple[DatasetSpec, ...]
    seed: int = 0
    gpus: int = 0

    def to_json(self) -> dict:
        return {"profile": self.profile.to_json(), "datasets": [d.to_json() for d in self.datasets],
                "seed": self.seed, "gpus": self.gpus}


_TOP_KEYS = {"profile", "seed", "overrides", "datasets", "gpus"}
_DS_KEYS = {"name", "kind", "format", "path", "options"}


def read_config_file(path) -> dict:
    """Parse a JSON or TOML study config into a dict, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib
            obj = tomllib.loads(text)
        else:
            obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except Exception as exc:  # tomllib.TOMLDecodeError
        raise UserError(f"{path}: invalid TOML ({exc})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a table/object at the top level")
    return obj


# Builder / importer arguments the study sets itself (a config may not override them).
_STUDY_SET = {"kind", "fmt", "root", "out", "n_train", "n_val", "n_test", "height", "width", "seed",
              "show_progress", "overwrite"}


def _check_options(options, module: str, func: str, reserved: set[str], where: str, name: str) -> None:
    """A dataset's `options` must be a table of arguments the builder/importer accepts."""
    import importlib
    import inspect
    if not isinstance(options, dict):
        raise UserError(f"{where}: dataset {name!r}: 'options' must be a table")
    try:
        params = set(inspect.signature(getattr(importlib.import_module(module), func)).parameters)
    except (ImportError, AttributeError):
        return  # checked again when the stage runs
    bad = sorted(k for k in options if k not in params or k in reserved)
    if bad:
        allowed = ", ".join(sorted(params - reserved)) or "none"
        raise UserError(f"{where}: dataset {name!r}: unknown or reserved option(s) {', '.join(bad)}; allowed: {allowed}")


def parse_dataset_entry(entry, where: str) -> DatasetSpec:
    """Validate one `datasets` entry: a stand-in name or {name, format, path, options}."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a dataset name or a table, got {type(entry).__name__}")
    bad = sorted(set(entry) - _DS_KEYS)
    if bad:
        raise UserError(f"{where}: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(_DS_KEYS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not _DS_NAME.match(name):
        raise UserError(f"{where}: 'name' must be a simple name (letters, digits, . _ -), got {name!r}")
    kind = entry.get("kind") or (name if name in STANDIN_KINDS and "format" not in entry else "import")
    if kind in STANDIN_KINDS:
        extra = sorted(k for k in ("format", "path") if k in entry)
        if extra:
            raise UserError(f"{where}: stand-in dataset {name!r} takes no {', '.join(extra)}")
        options = entry.get("options") or {}
        _check_options(options, "datasets.build", "build_standin", _STUDY_SET, where, name)
        return DatasetSpec(name=name, kind=kind, options=dict(options))
    if kind != "import":
        raise UserError(f"{where}: unknown kind {kind!r}; expected {', '.join(STANDIN_KINDS)} or import")
    fmt = entry.get("format")
    try:
        from datasets.importers import FORMATS as formats
    except ImportError:
        formats = IMPORT_FORMATS
    if fmt not in formats:
        raise UserError(f"{where}: dataset {name!r} needs 'format', one of {', '.join(formats)} (got {fmt!r})")
    path = entry.get("path")
    if not path:
        raise UserError(f"{where}: dataset {name!r} needs 'path'")
    if not Path(path).exists():
        raise UserError(f"{where}: dataset {name!r}: path {path} does not exist")
    options = entry.get("options") or {}
    _check_options(options, "datasets.importers", "import_dataset", _STUDY_SET, where, name)
    return DatasetSpec(name=name, kind="import", format=fmt, path=str(Path(path).resolve()), options=dict(options))


def load_study_config(profile: str | None = None, config_file=None, seed: int | None = None,
                      gpus: int | None = None) -> StudyConfig:
    """Build and validate the study config (file values, overridden by command-line values)."""
    obj = read_config_file(config_file) if config_file else {}
    where = str(config_file) if config_file else "config"
    bad = sorted(set(obj) - _TOP_KEYS)
    if bad:
        raise UserError(f"{where}: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(_TOP_KEYS))}")
    name = profile or obj.get("profile") or "quick"
    overrides = obj.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise UserError(f"{where}: 'overrides' must be a table of profile fields")
    try:
        prof = get_profile(name, overrides)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    entries = obj.get("datasets", list(prof.datasets))
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where}: 'datasets' must be a non-empty list")
    specs = tuple(parse_dataset_entry(e, f"{where}: datasets[{i}]") for i, e in enumerate(entries))
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{where}: dataset name(s) {', '.join(dup)} appear twice")
    seed = obj.get("seed", 0) if seed is None else seed
    gpus = obj.get("gpus", 0) if gpus is None else gpus
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"{where}: seed must be a non-negative integer, got {seed!r}")
    if not isinstance(gpus, int) or gpus < 0:
        raise UserError(f"{where}: gpus must be a non-negative integer, got {gpus!r}")
    cfg = StudyConfig(profile=prof, datasets=specs, seed=seed, gpus=gpus)
    validate_study(cfg)
    return cfg


def validate_study(cfg: StudyConfig) -> None:
    """Reject sizes no study can satisfy, before any work starts."""
    p = cfg.profile
    for key in ("htr_max_epochs", "htr_patience", "gan_eval_every", "n_synthetic"):
        if getattr(p, key) < 1:
            raise UserError(f"profile {p.name}: {key} must be ≥ 1")
    if p.gan_channel_mult <= 0 or p.htr_width_mult <= 0:
        raise UserError(f"profile {p.name}: width multipliers must be > 0")
    if not p.real_fractions:
        raise UserError(f"profile {p.name}: real_fractions must not be empty")
    if any(d.kind != "import" for d in cfg.datasets):
        if p.fid_n > p.n_train:
            raise UserError(f"profile {p.name}: fid_n {p.fid_n} exceeds n_train {p.n_train} (FID needs that many real images)")
        if p.gs_n > p.n_train:
            raise UserError(f"profile {p.name}: gs_n {p.gs_n} exceeds n_train {p.n_train}")
        smallest = min(p.real_fractions)
        if int(smallest * p.n_train) < 1:
            raise UserError(f"profile {p.name}: real fraction {smallest} of {p.n_train} training images is empty")


# ---------------------------------------------------------------------------------------------
# Cost model (ETAs and the paper profile's projected duration)
# ---------------------------------------------------------------------------------------------
# Seconds per image-pass at 32×128 with width multiplier 1 (scaled by pixels and width²), plus a
# per-iteration GAN overhead (φ's BiLSTM, R, gradient balancing). CPU figures: measured on the
# shared 2-core machine under load and rounded; GPU figures: rough H100-class guesses. The runner
# rescales every ETA by the speed it observes, so these only set the first estimate.
_COST = {"cpu": {"render": 2.2e-3, "htr": 2.5e-3, "gan": 2e-2, "gan_iter": 0.5, "gen": 2e-3, "metric": 4e-3},
         "gpu": {"render": 2.2e-3, "htr": 4e-5, "gan": 3.5e-4, "gan_iter": 0.03, "gen": 5e-5, "metric": 2e-4}}


def htr_images(p: Profile, scale: float) -> float:
    """Training images one recognizer sees on `scale` × n_train images (step cap included)."""
    images = p.htr_max_epochs * (scale * p.n_train + p.n_val)
    return min(images, p.htr_max_steps * p.htr_batch) if p.htr_max_steps else images


def cost_model(p: Profile, device: str) -> dict[str, float]:
    """Projected seconds for each kind of stage of profile `p` on `device` ('cpu' or 'gpu')."""
    c = _COST[device]
    px = p.height * p.width / (32 * 128)
    n_all = p.n_train + p.n_val + p.n_test
    evals = max(1, p.gan_iterations // max(1, p.gan_eval_every))
    metric = c["metric"] * px * (p.fid_n * 2 + p.gs_n * 2) + 1e-4 * p.gs_n * p.gs_reps
    return {
        "data": 2.0 + c["render"] * (px / 16) ** 0.5 * n_all,
        "htr": 3.0 + c["htr"] * px * p.htr_width_mult ** 2 * htr_images(p, 1.0),
        "gan": 5.0 + p.gan_iterations * (c["gan_iter"] + c["gan"] * px * p.gan_channel_mult ** 2 * p.gan_batch)
               + evals * metric,
        "generate": 1.0 + c["gen"] * px * p.n_synthetic,
        "final": 2.0 + metric + c["gen"] * px * p.fid_n,
        "eval": 1.0 + c["htr"] * px * p.htr_width_mult ** 2 * p.n_test / 3,
    }


def detect_device() -> str:
    try:
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


# ---------------------------------------------------------------------------------------------
# Stage functions (module level; bound to their parameters with functools.partial)
# ---------------------------------------------------------------------------------------------
def _data_result(ctx: StageContext, path: Path, spec: DatasetSpec) -> dict:
    from datasets.format import read_meta
    meta = read_meta(path)
    samples = path / "samples.png"
    return {"dir": ctx.rel(path), "name": spec.name, "source": "stand-in" if spec.kind != "import" else f"import:{spec.format}",
            "language": meta.get("language"), "direction": meta.get("direction"),
            "splits": list(meta.get("splits", ["train", "val", "test"])), "stats": meta.get("stats", {}),
            "samples_png": ctx.rel(samples) if samples.is_file() else None}


def stage_data(ctx: StageContext, *, backend: StudyBackend, spec: DatasetSpec, profile: Profile, seed: int) -> dict:
    """Build the stand-in collection (or import a real dataset) into the work directory."""
    out = ctx.work / "data"
    if not (out / "meta.json").is_file():  # builders publish atomically: present means complete
        if out.exists():
            shutil.rmtree(out)
        if spec.kind == "import":
            options = {"name": spec.name, "seed": seed, "show_progress": False, **spec.options}
            out = backend.import_dataset(spec.format, Path(spec.path), out, profile.height, profile.width, options)
        else:
            out = backend.build_standin(spec.kind, out, profile.n_train, profile.n_val, profile.n_test,
                                        profile.height, profile.width, seed, **spec.options)
    return _data_result(ctx, Path(out), spec)


def _htr_opts(ctx, profile: Profile, data_dir: Path, syn_dir: Path | None, row: str, fraction: float,
              seed: int, n_train: int, subset_seed: int) -> dict:
    """HtrTrainConfig fields of one row; the real-data subset of a sweep fraction depends on the
    study seed only, so every HTR seed (and both rows) of a fraction sees the same real images."""
    uses_real = row != "synthetic"
    extra = [syn_dir] if ("synthetic" in row and uses_real) else []
    return dict(
        train=str((data_dir / "train") if uses_real else syn_dir), extra=[str(e) for e in extra],
        val=str(data_dir / "val"), out=str(ctx.work / "run"), seed=seed, max_epochs=profile.htr_max_epochs, patience=profile.htr_patience,
        max_steps=profile.htr_max_steps, eval_every=profile.htr_eval_every,
        batch_size=profile.htr_batch, lr=profile.htr_lr, height=profile.height, width=profile.width,
        width_mult=profile.htr_width_mult, augment="classic" in row, dropout=profile.htr_dropout,
        lr_factor=profile.htr_lr_factor, lr_schedule=profile.htr_lr_schedule,
        max_train=(max(1, int(fraction * n_train)) if fraction < 1 and uses_real else None),
        subset_seed=subset_seed,
    )


WALL_CLOCK_KEYS = ("wall_s", "train_seconds", "eval_seconds")


def run_history(ctx: StageContext, records: list[dict], limit: int = 400) -> list[dict]:
    """A run log as results record it: the same for an uninterrupted and a resumed run, and for
    any study directory. Resume markers and wall-clock fields are left out (stage seconds live
    in `timings`; the run's own log.jsonl keeps them), paths are study-relative, and at most
    `limit` evenly spaced records are kept."""
    out = []
    for rec in records:
        if rec.get("event") == "resume":
            continue
        rec = {k: v for k, v in rec.items() if k not in WALL_CLOCK_KEYS}
        if isinstance(rec.get("dataset"), dict) and rec["dataset"].get("path"):
            rec["dataset"] = {**rec["dataset"], "path": ctx.rel(rec["dataset"]["path"])}
        out.append(rec)
    return _thin(out, limit)


def _thin(records: list[dict], limit: int = 400) -> list[dict]:
    """At most `limit` evenly spaced records (always keeping the last)."""
    if len(records) <= limit:
        return records
    step = len(records) / limit
    keep = [records[int(i * step)] for i in range(limit - 1)] + [records[-1]]
    return keep


def stage_htr(ctx: StageContext, *, backend: StudyBackend, profile: Profile, row: str, fraction: float,
              seed: int, data_stage: str, syn_stage: str | None, study_seed: int = 0) -> dict:
    """Train one HTR row × seed (resuming its run dir) and evaluate it on the unseen-writer test split."""
    data = ctx.inputs[data_stage]
    data_dir = ctx.path(data["dir"])
    syn_dir = ctx.path(ctx.inputs[syn_stage]["dir"]) if syn_stage else None
    n_train = int(data.get("stats", {}).get("train", {}).get("images", 0)) or 1
    opts = _htr_opts(ctx, profile, data_dir, syn_dir, row, fraction, seed, n_train, study_seed)
    run = backend.train_htr(opts, resume=ctx.resume and (ctx.work / "run").exists())
    test = backend.evaluate_htr(run, data_dir / "test", ctx.work / "test_predictions.tsv")
    log = read_jsonl(Path(run) / "log.jsonl")
    return {"run": ctx.rel(run), "row": row, "fraction": fraction, "seed": seed,
            "n_real": (opts["max_train"] or n_train) if row != "synthetic" else 0,
            "test": _jsonable(test), "curve": run_history(ctx, log)}


def stage_reuse(ctx: StageContext, *, source: str, **fields) -> dict:
    """A grid unit whose model is another stage's (the real-only seed-S row is the judge)."""
    return {**ctx.inputs[source], **fields}


def _gan_opts(ctx, profile: Profile, data_dir: Path, judge_run: Path, seed: int, variant: dict,
              r_init: Path | None = None) -> dict:
    return dict(
        r_init=str(r_init) if r_init else None,
        data=str(data_dir / "train"), out=str(ctx.work / "run"), seed=seed,
        iterations=profile.gan_iterations, batch_size=profile.gan_batch, height=profile.height,
        width=profile.width, channel_mult=profile.gan_channel_mult, htr_width_mult=profile.htr_width_mult,
        eval_every=profile.gan_eval_every, judge=str(judge_run), fid_n=profile.fid_n, gs_n=profile.gs_n,
        gs_reps=profile.gs_reps, **{**main_gan(profile), **variant},
    )


def _gan_result(ctx, run: Path, variant: dict) -> dict:
    log = read_jsonl(run / "log.jsonl")
    samples = sorted((run / "samples").glob("*.png")) if (run / "samples").is_dir() else []
    return {"run": ctx.rel(run), "variant": variant, "log": run_history(ctx, log),
            "samples": [ctx.rel(s) for s in samples[-4:]]}


def _generate_once(backend, run: Path, out: Path, n: int, words, seed: int) -> Path:
    """Generate into `out` unless a complete dataset is already there (resume)."""
    if (out / "meta.json").is_file() and (out / "labels.tsv").is_file():
        return out
    if out.exists():
        shutil.rmtree(out)
    return Path(backend.generate(run, n, out, words, seed))


def gan_eval(ctx: StageContext, backend: StudyBackend, profile: Profile, run: Path, data_dir: Path,
             judge_run: Path, seed: int, full: bool) -> dict:
    """FID (htr features) and GS of a generator against real training images; KID and
    readability too when `full`. Every generator is scored on the same sample sizes and on the
    same words (the generator samples p_w with the study seed)."""
    fake = _generate_once(backend, run, ctx.work / "eval_fake", profile.fid_n, None, seed)
    real = data_dir / "train"
    out = {"fid_extractor": "htr", "fid_n": profile.fid_n, "gs_n": profile.gs_n, "gs_reps": profile.gs_reps}
    fid = backend.metric("fid", real, fake, features="htr", judge=str(judge_run), n=profile.fid_n, seed=seed)
    out["fid"] = fid.get("fid", fid.get("value"))
    gs = backend.metric("gs", real, fake, n=profile.gs_n, reps=profile.gs_reps, seed=seed, sample_seed=seed)
    out["gs"] = gs.get("gs", gs.get("value"))
    if full:
        kid = backend.metric("kid", real, fake, features="htr", judge=str(judge_run), n=profile.fid_n, seed=seed,
                             subset_size=min(1000, profile.fid_n))
        out["kid"] = kid.get("kid", kid.get("value"))
        rd = backend.metric("readability", None, fake, judge=str(judge_run), seed=seed)
        out["readability_cer"] = rd.get("cer", rd.get("readability_cer"))
        out["readability_wer"] = rd.get("wer", rd.get("readability_wer"))
    return _jsonable(out)


def stage_gan(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int, variant: dict,
              data_stage: str, judge_stage: str, evaluate: bool, iterations: int | None = None,
              r_init_stage: str | None = None, reader_stages: tuple[str, ...] = ()) -> dict:
    """Train a GAN (the model or an ablation variant); ablation units also score it (FID, GS).
    With `r_init_stage`, R starts from that stage's real-only recognizer (not the judge's);
    `reader_stages` are grid units whose recognizers join R, frozen, in G's step."""
    data_dir = ctx.path(ctx.inputs[data_stage]["dir"])
    judge_run = ctx.path(ctx.inputs[judge_stage]["run"])
    r_init = ctx.path(ctx.inputs[r_init_stage]["run"]) if r_init_stage else None
    opts = _gan_opts(ctx, profile, data_dir, judge_run, seed, variant, r_init)
    if reader_stages:
        opts["readers"] = [str(ctx.path(ctx.inputs[r]["run"])) for r in reader_stages]
    if iterations:
        opts.update(iterations=iterations, eval_every=min(opts["eval_every"], iterations))
    run = Path(backend.train_gan(opts, resume=ctx.resume and (ctx.work / "run").exists()))
    result = _gan_result(ctx, run, variant)
    if evaluate:
        result["final"] = gan_eval(ctx, backend, profile, run, data_dir, judge_run, seed, full=False)
    return result


def stage_gan_final(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int,
                    data_stage: str, judge_stage: str, gan_stage: str) -> dict:
    """Final FID/KID/GS/readability of the chosen generator, plus its sample grids."""
    data_dir = ctx.path(ctx.inputs[data_stage]["dir"])
    judge_run = ctx.path(ctx.inputs[judge_stage]["run"])
    run = ctx.path(ctx.inputs[gan_stage]["run"])
    final = gan_eval(ctx, backend, profile, run, data_dir, judge_run, seed, full=True)
    grid = backend.sample_grids(run, ctx.work / "sample_grids.png", seed)
    return {"final": final, "grids": [ctx.rel(grid)]}


def stage_synthetic(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int,
                    data_stage: str, gan_stage: str) -> dict:
    """Generate the augmentation set: n_synthetic words sampled from the word prior p_w."""
    run = ctx.path(ctx.inputs[gan_stage]["run"])
    out = _generate_once(backend, run, ctx.work / "synthetic", profile.n_synthetic, None, seed)
    from datasets.format import read_meta
    stats = read_meta(out).get("stats", {})
    return {"dir": ctx.rel(out), "n": profile.n_synthetic, "stats": stats}


def _jsonable(obj):
    """Recursively turn numpy scalars / tuples / paths into plain JSON values (NaN → None)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):
        try:
            obj = obj.item()
        except (ValueError, TypeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------
# Source packages whose code each kind of stage runs: their fingerprint is part of the stage's
# config, so editing a builder, trainer or metric re-runs exactly the stages it can affect.
CODE_DEPS = {
    "data": ("datasets",),
    "htr": ("datasets", "htr", "benchmark.metrics"),
    "gan": ("datasets", "htr", "gan", "benchmark.metrics"),
}


def code_fingerprint(packages: tuple[str, ...]) -> str:
    """sha256 over the Python sources of `packages` (path and content of every .py file)."""
    import hashlib
    import importlib.util
    h = hashlib.sha256()
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in roots:
            for path in sorted(Path(root).rglob("*.py")):
                h.update(f"{pkg}:{path.relative_to(root)}\0".encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _frac(f: float) -> str:
    return f"f{f:g}"


def unit_name(ds: str, row: str, fraction: float, seed: int) -> str:
    return f"{ds}/htr/{row}/{_frac(fraction)}/s{seed}"


def gan_reader_units(p: Profile, ds: str, seeds: list[int], study_seed: int) -> tuple[str, ...]:
    """The grid units that serve as the GAN's frozen readers (`gan_readers` rows, every seed),
    never the judge's model (real, seed S) nor R's starting point (real, seed S+1 with gan_r_init)."""
    taken = {study_seed} | ({study_seed + 1} if p.gan_r_init else set())
    return tuple(unit_name(ds, row, 1.0, seed) for row in p.gan_readers for seed in seeds
                 if not (row == "real" and seed in taken))


def plan_study(cfg: StudyConfig, backend: StudyBackend | None, device: str = "cpu",
               fingerprints: bool = True) -> list[Stage]:
    """The full stage graph of a study (prerequisites and grid units), deterministic for cfg.

    `fingerprints=False` skips reading imported datasets (enough to list the units)."""
    p, S = cfg.profile, cfg.seed
    cost = cost_model(p, device)
    div = max(1, cfg.gpus)
    seeds = [S + k for k in range(p.htr_seeds)]
    code = {kind: code_fingerprint(pkgs) for kind, pkgs in CODE_DEPS.items()}
    base = {"code": CODE_VERSION, "seed": S}
    htr_cfg = {"source": code["htr"], "height": p.height, "width": p.width, "max_epochs": p.htr_max_epochs, "patience": p.htr_patience,
               "batch": p.htr_batch, "lr": p.htr_lr, "width_mult": p.htr_width_mult,
               **({"dropout": p.htr_dropout} if p.htr_dropout else {}),
               **({"lr_factor": p.htr_lr_factor} if p.htr_lr_factor != 1 else {}),
               **({"lr_schedule": p.htr_lr_schedule} if p.htr_lr_schedule != "constant" else {}),
               **({"max_steps": p.htr_max_steps} if p.htr_max_steps else {}),
               **({"eval_every": p.htr_eval_every} if p.htr_eval_every else {})}
    gan_cfg = {"source": code["gan"], "height": p.height, "width": p.width, "iterations": p.gan_iterations, "batch": p.gan_batch,
               "eval_every": p.gan_eval_every, "channel_mult": p.gan_channel_mult, "fid_n": p.fid_n,
               "gs_n": p.gs_n, "gs_reps": p.gs_reps, **({"r_init": True} if p.gan_r_init else {})}
    stages: list[Stage] = []
    for di, spec in enumerate(cfg.datasets):
        ds = spec.name
        d_data, d_judge, d_gan, d_syn, d_final = (f"{ds}/data", f"{ds}/judge", f"{ds}/gan", f"{ds}/synthetic", f"{ds}/gan-final")
        data_cfg = {**base, "source": code["data"], "dataset": spec.to_json(), "height": p.height, "width": p.width}
        if spec.kind == "import" and fingerprints:
            data_cfg["source_fingerprint"] = fingerprint_tree(Path(spec.path))
        else:
            data_cfg.update(n_train=p.n_train, n_val=p.n_val, n_test=p.n_test)
        stages.append(Stage(d_data, partial(stage_data, backend=backend, spec=spec, profile=p, seed=S),
                            data_cfg, (), cost=cost["data"]))
        htr_fn = partial(stage_htr, backend=backend, profile=p, data_stage=d_data, study_seed=S)
        stages.append(Stage(d_judge, partial(htr_fn, row="real", fraction=1.0, seed=S, syn_stage=None),
                            {**base, **htr_cfg, "row": "real", "fraction": 1.0}, (d_data,), cost=(cost["htr"] + cost["eval"]) / div))
        gan_common = dict(backend=backend, profile=p, seed=S, data_stage=d_data, judge_stage=d_judge)
        gan_inputs = (d_data, d_judge)
        gan_train_common = dict(gan_common)
        if p.gan_r_init:
            # R starts from the real-only recognizer of the next seed (the judge stays independent);
            # that grid unit reuses this stage.
            d_rinit = f"{ds}/r-init"
            stages.append(Stage(d_rinit, partial(htr_fn, row="real", fraction=1.0, seed=S + 1, syn_stage=None),
                                {**base, **htr_cfg, "row": "real", "fraction": 1.0, "seed": S + 1}, (d_data,),
                                cost=(cost["htr"] + cost["eval"]) / div))
            gan_inputs = (d_data, d_judge, d_rinit)
            gan_train_common["r_init_stage"] = d_rinit
        readers = gan_reader_units(p, ds, seeds, S)
        if readers:
            gan_inputs = (*gan_inputs, *readers)
            gan_train_common["reader_stages"] = readers
        stages.append(Stage(d_gan, partial(stage_gan, variant={}, evaluate=False, **gan_train_common),
                            {**base, **gan_cfg, "variant": main_gan(p)}, gan_inputs, cost=cost["gan"] / div))
        stages.append(Stage(d_final, partial(stage_gan_final, gan_stage=d_gan, **gan_common),
                            {**base, "source": code["gan"], "fid_n": p.fid_n, "gs_n": p.gs_n, "gs_reps": p.gs_reps},
                            (d_data, d_judge, d_gan), cost=cost["final"]))
        stages.append(Stage(d_syn, partial(stage_synthetic, backend=backend, profile=p, seed=S, data_stage=d_data, gan_stage=d_gan),
                            {**base, "source": code["gan"], "n_synthetic": p.n_synthetic}, (d_data, d_gan),
                            cost=cost["generate"]))
        fractions = sorted(set(p.real_fractions) | {1.0}) if (di == 0 or p.sweep_all_datasets) else [1.0]
        for fraction in fractions:
            rows = ROWS if fraction == 1.0 else SWEEP_ROWS
            scale = fraction if fraction < 1 else 1.0
            for row in rows:
                for seed in seeds:
                    name = unit_name(ds, row, fraction, seed)
                    ucfg = {**base, **htr_cfg, "row": row, "fraction": fraction, "seed": seed}
                    if row == "real" and fraction == 1.0 and seed == S:
                        stages.append(Stage(name, partial(stage_reuse, source=d_judge), {**ucfg, "reuse": "judge"},
                                            (d_judge,), unit=True, cost=0.1))
                        continue
                    if row == "real" and fraction == 1.0 and seed == S + 1 and p.gan_r_init:
                        stages.append(Stage(name, partial(stage_reuse, source=d_rinit), {**ucfg, "reuse": "r-init"},
                                            (d_rinit,), unit=True, cost=0.1))
                        continue
                    syn = d_syn if "synthetic" in row else None
                    inputs = (d_data, d_syn) if syn else (d_data,)
                    n_scale = scale + (p.n_synthetic / max(1, p.n_train) if syn else 0.0)
                    if row == "synthetic":
                        n_scale = p.n_synthetic / max(1, p.n_train)
                    stages.append(Stage(name, partial(htr_fn, row=row, fraction=fraction, seed=seed, syn_stage=syn),
                                        ucfg, inputs, unit=True,
                                        cost=(cost["htr"] * htr_images(p, n_scale) / htr_images(p, 1.0) + cost["eval"]) / div))
        if p.ablations and di == 0:
            for group, settings in ablation_grid(p.gan_cond, p.gan_alpha).items():
                for setting, variant in settings.items():
                    if variant is None:
                        continue
                    its = p.ablation_iterations or p.gan_iterations
                    abl_cfg = {**base, **gan_cfg, "iterations": its, "eval_every": min(p.gan_eval_every, its),
                               "variant": {**main_gan(p), **variant}}
                    stages.append(Stage(f"{ds}/ablation/{group}={setting}",
                                        partial(stage_gan, variant=variant, evaluate=True, iterations=its, **gan_train_common),
                                        abl_cfg, gan_inputs, unit=True,
                                        cost=(cost["gan"] * its / p.gan_iterations / div + cost["final"])))
    return stages


def select_targets(stages: list[Stage], shard: tuple[int, int] | None) -> list[str]:
    """What a run (or shard i/N) executes: its slice of the grid units; shard 0 (or an unsharded
    run) also the shared prerequisites, which other shards only build when their units need them."""
    units = shard_units([s.name for s in stages if s.unit], shard)
    if shard is None or shard[0] == 0:
        return [s.name for s in stages if not s.unit] + units
    return units


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate_seeds(per_seed: list[dict]) -> dict:
    """Mean ± std (sample std) over seeds of every numeric test metric, plus the per-seed list."""
    keys = sorted({k for r in per_seed for k, v in r["test"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    out: dict = {"n_seeds": len(per_seed)}
    for k in keys:
        m, s = _mean_std([r["test"].get(k) for r in per_seed])
        out[f"{k}_mean"], out[f"{k}_std"] = m, s
    out["per_seed"] = [{"seed": r["seed"], **r["test"], "n_real": r.get("n_real"),
                        "curve": r.get("curve", [])} for r in sorted(per_seed, key=lambda r: r["seed"])]
    return out


def assemble_results(cfg_json: dict, records: dict[str, dict], expected_units: list[str],
                     shard: tuple[int, int] | None = None, extra: dict | None = None) -> dict:
    """results.json from the recorded stage results (name → {result, seconds, hash}).

    Pure function of its inputs: rerunning, resuming or merging shards gives the same document
    (apart from `timings`)."""
    prof = cfg_json["profile"]
    datasets: dict = {}
    for spec in cfg_json["datasets"]:
        ds = spec["name"]
        r = lambda suffix: records.get(f"{ds}/{suffix}", {}).get("result")  # noqa: E731
        entry: dict = {"source": spec.get("kind")}
        data = r("data")
        if data:
            entry.update(language=data.get("language"), direction=data.get("direction"),
                         source=data.get("source"), stats=data.get("stats", {}))
        judge = r("judge")
        if judge:
            entry["judge"] = {"run": judge["run"], "test": judge["test"]}
        gan = r("gan")
        if gan:
            entry["gan"] = {"run": gan["run"], "log": gan.get("log", []), "samples": gan.get("samples", [])}
        final = r("gan-final")
        if final:
            entry.setdefault("gan", {})["final"] = final["final"]
            entry["gan"]["grids"] = final.get("grids", [])
        syn = r("synthetic")
        if syn:
            entry["synthetic"] = {"n": syn["n"], "stats": syn.get("stats", {})}
        # HTR grid
        by_key: dict[tuple[str, float], list[dict]] = {}
        for name, rec in records.items():
            if name.startswith(f"{ds}/htr/") and rec.get("result"):
                res = rec["result"]
                by_key.setdefault((res["row"], float(res["fraction"])), []).append(res)
        rows = {row: aggregate_seeds(by_key[(row, 1.0)]) for row in ROWS if (row, 1.0) in by_key}
        if rows:
            entry["htr"] = {"rows": rows, "test_split": "test (unseen writers)"}
        sweep = []
        for f in sorted({f for (_, f) in by_key}):
            point: dict = {"fraction": f}
            for row in SWEEP_ROWS:
                if (row, f) in by_key:
                    agg = aggregate_seeds(by_key[(row, f)])
                    agg.pop("per_seed")
                    agg["n_real"] = by_key[(row, f)][0].get("n_real")
                    point[row] = agg
            if all(row in point for row in SWEEP_ROWS):
                for m in ("cer", "wer"):
                    a, b = point["real"].get(f"{m}_mean"), point["real+synthetic"].get(f"{m}_mean")
                    point[f"gain_{m}"] = (a - b) if a is not None and b is not None else None
            if len(point) > 1:
                sweep.append(point)
        if sweep:
            entry["sweep"] = sweep
        abl = _ablations(ds, records, prof.get("gan_cond", "cbn"), prof.get("gan_alpha", 1.0))
        if abl:
            entry["ablations"] = abl
        datasets[ds] = entry
    done = sorted(n for n in expected_units if records.get(n, {}).get("result") is not None)
    timings = {n: rec.get("seconds") for n, rec in sorted(records.items()) if rec.get("seconds") is not None}
    doc = {
        "schema": SCHEMA_VERSION,
        "kind": "htraug-study",
        "profile": prof,
        "config": cfg_json,
        "shard": {"index": shard[0], "count": shard[1]} if shard else None,
        "complete": len(done) == len(expected_units),
        "units": {"expected": len(expected_units), "done": len(done),
                  "missing": sorted(set(expected_units) - set(done))},
        "datasets": datasets,
        "timings": {"stages_s": timings, "total_s": round(sum(v for v in timings.values() if v), 3)},
        "stages": {n: {"hash": rec.get("hash"), "result": rec.get("result")}
                   for n, rec in sorted(records.items())},
    }
    if extra:
        doc.update(extra)
    return doc


def _ablations(ds: str, records: dict[str, dict], cond: str, alpha: float | None = 1.0) -> dict:
    """Tables II–V: per switch, each setting's final FID/GS (the model's own setting is the main GAN)."""
    main = records.get(f"{ds}/gan-final", {}).get("result")
    out: dict = {}
    for group, settings in ablation_grid(cond, alpha).items():
        rows = []
        for setting, variant in settings.items():
            if variant is None:
                res = main["final"] if main else None
                label = f"{setting} (ours)"
            else:
                rec = records.get(f"{ds}/ablation/{group}={setting}", {}).get("result")
                res = rec.get("final") if rec else None
                label = setting
            if res is not None:
                rows.append({"setting": label, "fid": res.get("fid"), "gs": res.get("gs")})
        if len(rows) > 1 or any(records.get(f"{ds}/ablation/{group}={s}") for s in settings):
            out[group] = rows
    return out


def versions() -> dict:
    """Versions of the interpreter and the main libraries (recorded once per run)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        from importlib.metadata import version
        out["htraug"] = version("htraug")
    except Exception:
        out["htraug"] = "unknown"
    for mod in ("torch", "numpy", "gudhi", "pandas", "matplotlib"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except Exception:
                continue
        out[mod] = getattr(m, "__version__", "unknown")
    try:
        import torch
        out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        out["torch_threads"] = torch.get_num_threads()
    except Exception:
        pass
    return out


def copy_figures(study_dir: Path, results: dict) -> None:
    """Copy every image the report needs into STUDY/samples/ and repoint results at the copies,
    so a study directory (or a merge of shards) renders without the stage work directories."""
    for ds, entry in results["datasets"].items():
        dest = study_dir / "samples" / ds
        gan = entry.get("gan", {})

        def copy(rel: str, sub: str) -> str:
            src = study_dir / rel
            if rel.startswith("samples/"):
                return rel
            target = dest / sub / Path(rel).name
            if src.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists() or target.stat().st_size != src.stat().st_size:
                    shutil.copyfile(src, target)
            # a merged study has no stage work dirs, only the shards' copies under samples/
            return os.path.relpath(target, study_dir) if target.is_file() else rel

        if gan.get("samples"):
            gan["samples"] = [copy(s, "gan_run") for s in gan["samples"]]
        if gan.get("grids"):
            gan["grids"] = [copy(p, "grids") for p in gan["grids"]]
        data_stage = results.get("stages", {}).get(f"{ds}/data", {}).get("result") or {}
        if data_stage.get("samples_png"):
            entry["data_samples"] = copy(data_stage["samples_png"], "data")


def write_results(study_dir: Path, results: dict) -> Path:
    """Copy figures, then write results.json atomically."""
    copy_figures(study_dir, results)
    path = study_dir / "results.json"
    atomic_write_json(path, results)
    return path


# ---------------------------------------------------------------------------------------------
# Running and merging
# ---------------------------------------------------------------------------------------------
def run_study(cfg: StudyConfig, out: Path, backend: StudyBackend | None = None,
              shard: tuple[int, int] | None = None, log: Callable[[str], None] | None = None,
              device: str | None = None, now: Callable[[], float] = time.time, jobs: int = 1) -> dict:
    """Run (or resume) a study into `out`; returns the results.json document.

    `jobs` > 1 runs that many independent stages at once in forked workers, each with an equal
    share of this machine's CPUs as torch threads; their progress bars are printed as one status
    line per running stage every 30 s."""
    out = Path(out)
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    device = device or detect_device()
    backend = backend or RealBackend(gpus=cfg.gpus, log=log, device="cuda" if device == "gpu" else "cpu")
    stages = plan_study(cfg, backend, device)
    targets = select_targets(stages, shard)
    runner = StageRunner(out, stages, log=log)
    order = runner.closure(targets)
    projected = runner.projected(order, jobs)
    units = [s.name for s in stages if s.unit]
    log(f"study {cfg.profile.name}: {len(cfg.datasets)} dataset(s), {len(order)} stage(s)"
        f"{f' (shard {shard[0]}/{shard[1]})' if shard else ''}, projected ~{format_seconds(projected)} on {device}"
        f"{f' with {jobs} jobs' if jobs > 1 else ''}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "study.json", {"config": cfg.to_json(), "shard": list(shard) if shard else None})
    t0 = now()
    if jobs > 1:
        preload = getattr(backend, "preload", None)
        if preload:
            preload()   # import once here, not in every forked worker
        runner.run_parallel(targets, jobs=jobs, threads=max(1, available_cpus() // jobs))
    else:
        runner.run(targets)
    records = {n: {"result": runner.results[n], "seconds": round(runner.timings[n], 3), "hash": runner.hashes[n]}
               for n in order}
    results = assemble_results(cfg.to_json(), records, shard_units(units, shard), shard,
                               extra={"versions": versions(), "device": device})
    results["timings"]["wall_s"] = round(now() - t0, 3)
    results["timings"]["projected_s"] = round(projected, 1)
    write_results(out, results)
    return results


def load_results(path) -> dict:
    """Read a results.json (or a study directory containing one) with one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise UserError(f"{path}: no results.json (run `htraug study run` first)")
    obj = parse_json_file(path)
    if not isinstance(obj, dict) or obj.get("kind") != "htraug-study":
        raise UserError(f"{path}: not an htraug study results file")
    return obj


def merge_studies(dirs: list[Path], out: Path, log: Callable[[str], None] | None = None) -> dict:
    """One results.json from shard results: union of recorded stages, same config required."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if not dirs:
        raise UserError("study merge: name at least one study directory")
    docs = [(Path(d), load_results(d)) for d in dirs]
    cfg_json = docs[0][1]["config"]
    same = lambda c: {k: v for k, v in c.items() if k != "gpus"}  # noqa: E731 - GPU count may differ per shard
    for d, doc in docs[1:]:
        if same(doc["config"]) != same(cfg_json):
            raise UserError(f"{d}: was run with a different config than {docs[0][0]}; cannot merge")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    for d, doc in docs:
        seconds = doc.get("timings", {}).get("stages_s", {})
        for name, rec in doc.get("stages", {}).items():
            prev = records.get(name)
            if prev and prev.get("hash") != rec.get("hash"):
                raise UserError(f"{d}: stage {name} differs from another shard's (hash mismatch)")
            records[name] = {**rec, "seconds": seconds.get(name)}
        src = d / "samples"
        if src.is_dir() and src.resolve() != (out / "samples").resolve():
            shutil.copytree(src, out / "samples", dirs_exist_ok=True)
    # expected units: re-plan with a null backend (planning runs nothing)
    cfg = config_from_json(cfg_json)
    units = [s.name for s in plan_study(cfg, backend=None, fingerprints=False) if s.unit]
    first = docs[0][1]
    results = assemble_results(cfg_json, records, units, None,
                               extra={"versions": first.get("versions"), "device": first.get("device"),
                                      "merged_from": [str(d) for d, _ in docs]})
    results["timings"]["wall_s"] = round(sum((doc.get("timings", {}).get("wall_s") or 0) for _, doc in docs), 3)
    if results["units"]["missing"]:
        log(f"merge: {len(results['units']['missing'])} unit(s) missing, e.g. {results['units']['missing'][0]}")
    write_results(out, results)
    return results


def config_from_json(obj: dict) -> StudyConfig:
    """Rebuild a StudyConfig from its recorded JSON (results.json / study.json)."""
    prof_fields = dict(obj["profile"])
    name = prof_fields.pop("name")
    base = PROFILES.get(name)
    prof = Profile(name=name, **{k: tuple(v) if isinstance(v, list) else v for k, v in prof_fields.items()}) if base is None \
        else replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in prof_fields.items()})
    specs = tuple(DatasetSpec(name=d["name"], kind=d.get("kind", "import"), format=d.get("format"),
                              path=d.get("path"), options=d.get("options") or {}) for d in obj["datasets"])
    return StudyConfig(profile=prof, datasets=specs, seed=obj.get("seed", 0), gpus=obj.get("gpus", 0))
