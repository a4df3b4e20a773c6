"""The study's stage functions: each builds, trains, generates or scores one thing through the
backend and returns a JSON-able result (module level; bound to their parameters with
functools.partial by the plan)."""
from __future__ import annotations

import json
import math
from pathlib import Path
import shutil

from datasets.errors import UserError
from datasets.files import read_jsonl
from datasets.format import read_meta
from reports.results import row_uses

from ..backend import StudyBackend
from ..metrics.generator import score_generator
from ..profiles import Profile, gan_train_fields
from ..stage import StageContext
from .config import DatasetSpec


def _data_result(ctx: StageContext, path: Path, spec: DatasetSpec) -> dict:
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


def htr_options(ctx, profile: Profile, data_dir: Path, syn_dir: Path | None, row: str, fraction: float,
                seed: int, n_train: int, subset_seed: int, out: Path | None = None) -> dict:
    """HtrTrainConfig fields of one row: the profile's recipe and sizes, and the row's data. The
    real-data subset of a sweep fraction depends on the study seed only, so every HTR seed (and
    both rows) of a fraction sees the same real images."""
    uses_real = row_uses(row, "real")
    extra = [syn_dir] if (row_uses(row, "synthetic") and uses_real) else []
    return {**profile.htr.to_json(),
            "train": str((data_dir / "train") if uses_real else syn_dir), "extra": [str(e) for e in extra],
            "val": str(data_dir / "val"), "out": str(out or ctx.work / "run"), "seed": seed,
            "height": profile.height, "width": profile.width, "augment": row_uses(row, "classic"),
            "max_train": max(1, int(fraction * n_train)) if fraction < 1 and uses_real else None,
            "subset_seed": subset_seed}


WALL_CLOCK_KEYS = ("wall_s", "train_seconds", "eval_seconds")
DIVERSITY_COLLAPSE = 0.1   # diversity below this: a style-collapse warning in results and the report


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
              seed: int, data_stage: str, syn_stage: str | None, study_seed: int = 0, text: dict | None = None,
              syn_gan_seed: int | None = None) -> dict:
    """Train one HTR row × seed (resuming its run dir) and evaluate it on the unseen-writer test split
    and on the validation split (the paper's Table VI reports RIMES validation), scored after the
    study config's text normalisation `text`, when it has one. `syn_gan_seed`: the GAN seed that drew
    its synthetic words (recorded with the result)."""
    data = ctx.inputs[data_stage]
    data_dir = ctx.path(data["dir"])
    syn_dir = ctx.path(ctx.inputs[syn_stage]["dir"]) if syn_stage else None
    n_train = int(data.get("stats", {}).get("train", {}).get("images", 0)) or 1
    opts = htr_options(ctx, profile, data_dir, syn_dir, row, fraction, seed, n_train, study_seed)
    run = backend.train_htr(opts, resume=ctx.resume and (ctx.work / "run").exists())
    scoring = {"text": text} if text else {}
    test = backend.evaluate_htr(run, data_dir / "test", ctx.work / "test_predictions.tsv", **scoring)
    val = backend.evaluate_htr(run, data_dir / "val", ctx.work / "val_predictions.tsv", **scoring)
    log = read_jsonl(Path(run) / "log.jsonl")
    facts = Path(run) / "config.json"            # what the run resolved (a test backend may write none)
    bf16 = facts.is_file() and bool(json.loads(facts.read_text()).get("bf16_autocast"))
    return {"run": ctx.rel(run), "row": row, "fraction": fraction, "seed": seed,
            "n_real": (opts["max_train"] or n_train) if row_uses(row, "real") else 0,
            "test": _jsonable(test), "val": _jsonable(val), "curve": run_history(ctx, log),
            **({"synthetic_gan_seed": syn_gan_seed} if syn_stage else {}), **({"bf16": True} if bf16 else {})}


def stage_reuse(ctx: StageContext, *, source: str, **fields) -> dict:
    """A grid unit whose model is another stage's (the real-only seed-S row is the judge)."""
    return {**ctx.inputs[source], **fields}


def gan_options(ctx, profile: Profile, data_dir: Path, judge_run: Path, seed: int, variant: dict,
                r_init: Path | None = None) -> dict:
    """GanTrainConfig fields of a GAN: the profile's recipe (changed by an ablation `variant`),
    sizes and metric sample sizes, and the run's data and recognizers."""
    return {**gan_train_fields(profile), **variant, "r_init": str(r_init) if r_init else None,
            "data": str(data_dir / "train"), "out": str(ctx.work / "run"), "seed": seed, "judge": str(judge_run)}


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
             judge_run: Path, seed: int, full: bool, inception: str | None = None) -> dict:
    """FID (htr features) and GS of a generator against real training images; KID, readability
    and diversity too when `full`. Every generator is scored on the same sample sizes and on the
    same words (the generator samples p_w with the study seed; diversity draws the k most written
    training words, m times each). With `inception` weights, FID on Inception features too."""
    real = data_dir / "train"
    fake = _generate_once(backend, run, ctx.work / "eval_fake", profile.fid_n, None, seed)
    varied = None
    if full:
        words = backend.diversity_words(real, profile.diversity_k, profile.diversity_m, seed)
        varied = _generate_once(backend, run, ctx.work / "diversity_fake", len(words) * profile.diversity_m,
                                [w for w in words for _ in range(profile.diversity_m)], seed)
    out = score_generator(real, fake, judge=judge_run, fid_n=profile.fid_n, gs_n=profile.gs_n, gs_reps=profile.gs_reps,
                          seed=seed, full=full, compute=backend.metric, diversity_fake=varied,
                          diversity_k=profile.diversity_k, diversity_m=profile.diversity_m, inception_weights=inception)
    return _jsonable(out)


def collapse_warnings(final: dict | None, log: list[dict]) -> list[str]:
    """The GAN log's collapse warnings and a diversity below DIVERSITY_COLLAPSE."""
    found = sorted({rec["warning"] for rec in log if rec.get("warning")})
    div = (final or {}).get("diversity")
    if isinstance(div, (int, float)) and div < DIVERSITY_COLLAPSE:
        found.append(f"diversity {div:.3f} below {DIVERSITY_COLLAPSE}: style collapse (z changes little)")
    return found


def stage_gan(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int, variant: dict,
              data_stage: str, judge_stage: str, evaluate: bool, iterations: int | None = None,
              r_init_stage: str | None = None, reader_stages: tuple[str, ...] = (), gan_seed: int | None = None,
              inception: str | None = None) -> dict:
    """Train a GAN (the model, one of its other seeds, or an ablation variant); units also score it
    (FID, GS). With `r_init_stage`, R starts from that stage's real-only recognizer (not the
    judge's); `reader_stages` are grid units whose recognizers join R, frozen, in G's step.
    `gan_seed` trains with another seed than the study's (which still draws the scored words); a
    GAN of another seed that diverges is recorded as failed instead of stopping the study."""
    data_dir = ctx.path(ctx.inputs[data_stage]["dir"])
    judge_run = ctx.path(ctx.inputs[judge_stage]["run"])
    r_init = ctx.path(ctx.inputs[r_init_stage]["run"]) if r_init_stage else None
    opts = gan_options(ctx, profile, data_dir, judge_run, seed if gan_seed is None else gan_seed, variant, r_init)
    if reader_stages:
        opts["readers"] = [str(ctx.path(ctx.inputs[r]["run"])) for r in reader_stages]
    if iterations:
        opts.update(iterations=iterations, eval_every=min(opts["eval_every"], iterations))
    try:
        run = Path(backend.train_gan(opts, resume=ctx.resume and (ctx.work / "run").exists()))
    except UserError as exc:
        if gan_seed is None or gan_seed == seed or "diverged" not in str(exc):
            raise
        log = run_history(ctx, read_jsonl(ctx.work / "run" / "log.jsonl"))
        return {"run": ctx.rel(ctx.work / "run"), "variant": variant, "gan_seed": gan_seed, "log": log,
                "samples": [], "failed": str(exc)}
    result = {**_gan_result(ctx, run, variant), "gan_seed": seed if gan_seed is None else gan_seed}
    if evaluate:
        result["final"] = gan_eval(ctx, backend, profile, run, data_dir, judge_run, seed, full=False, inception=inception)
    return result


def stage_gan_final(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int,
                    data_stage: str, judge_stage: str, gan_stage: str, inception: str | None = None) -> dict:
    """Final FID/KID/GS/readability/diversity of the chosen generator, plus its sample grids."""
    data_dir = ctx.path(ctx.inputs[data_stage]["dir"])
    judge_run = ctx.path(ctx.inputs[judge_stage]["run"])
    run = ctx.path(ctx.inputs[gan_stage]["run"])
    final = gan_eval(ctx, backend, profile, run, data_dir, judge_run, seed, full=True, inception=inception)
    grid = backend.sample_grids(run, ctx.work / "sample_grids.png", seed)
    return {"final": final, "grids": [ctx.rel(grid)], "warnings": collapse_warnings(final, ctx.inputs[gan_stage]["log"])}


def stage_variant(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int, gan_seed: int, change: dict,
                  data_stage: str, judge_stage: str, r_init_stage: str | None = None,
                  reader_stages: tuple[str, ...] = (), text: dict | None = None, inception: str | None = None) -> dict:
    """One GAN variant (a change of the main GAN's recipe) and seed, scored like the main GAN
    (full metrics), plus its usefulness: a recognizer trained on its words only, tested on real
    test writers. Each part resumes on its own (work/gan, work/synthetic, work/htr)."""
    data = ctx.inputs[data_stage]
    data_dir = ctx.path(data["dir"])
    judge_run = ctx.path(ctx.inputs[judge_stage]["run"])
    variant = profile.with_gan_change(change)
    r_init = ctx.path(ctx.inputs[r_init_stage]["run"]) if r_init_stage and variant.gan_r_init else None
    opts = {**gan_options(ctx, variant, data_dir, judge_run, gan_seed, {}, r_init), "out": str(ctx.work / "gan")}
    if reader_stages and variant.gan_readers:
        opts["readers"] = [str(ctx.path(ctx.inputs[r]["run"])) for r in reader_stages]
    run = Path(backend.train_gan(opts, resume=ctx.resume and (ctx.work / "gan").exists()))
    result = {**_gan_result(ctx, run, change), "gan_seed": gan_seed}
    result["final"] = gan_eval(ctx, backend, profile, run, data_dir, judge_run, seed, full=True, inception=inception)
    result["warnings"] = collapse_warnings(result["final"], result["log"])
    syn = _generate_once(backend, run, ctx.work / "synthetic", profile.n_synthetic, None, seed)
    n_train = int(data.get("stats", {}).get("train", {}).get("images", 0)) or 1
    hopts = htr_options(ctx, profile, data_dir, syn, "synthetic", 1.0, seed, n_train, seed, out=ctx.work / "htr")
    hrun = backend.train_htr(hopts, resume=ctx.resume and (ctx.work / "htr").exists())
    test = backend.evaluate_htr(hrun, data_dir / "test", ctx.work / "synthetic_only_test.tsv", **({"text": text} if text else {}))
    result["synthetic_only"] = _jsonable(test)
    return result


def stage_synthetic(ctx: StageContext, *, backend: StudyBackend, profile: Profile, seed: int,
                    data_stage: str, gan_stage: str) -> dict:
    """Generate the augmentation set: n_synthetic words sampled from the word prior p_w."""
    trained = ctx.inputs[gan_stage]
    if trained.get("failed"):
        raise UserError(f"{gan_stage} failed ({trained['failed']}): it draws no synthetic words")
    run = ctx.path(trained["run"])
    out = _generate_once(backend, run, ctx.work / "synthetic", profile.n_synthetic, None, seed)
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
