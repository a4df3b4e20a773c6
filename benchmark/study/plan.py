"""The study's plan: the graph of content-hashed stages a config expands into (docs/DESIGN.md §8).

Per dataset: data (built or imported) → judge recognizer (real train; FID-htr features and
readability; it is also the real-only row's seed-S model) → GAN (periodic FID/GS/readability,
best checkpoint kept) → final generator metrics → N synthetic words from p_w → HTR grid units
(rows × seeds, real-data-size sweep) and, on the first dataset when the profile asks, the paper's
ablation grid (Tables II–V) and the profile's GAN variants (each trained, scored and used alone to
train a recognizer). Grid units are independent, so `--shard i/N` runs a deterministic
slice of them. A stage's config is the recipe it trains with (`asdict` of the profile's recipes)
plus the code fingerprint of the packages it runs, so editing a trainer re-runs exactly the
stages it can affect.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from reports.results import ROWS, SWEEP_ROWS, row_uses

from ..backend import StudyBackend
from ..profiles import Profile, gan_train_fields
from ..stage import Stage, fingerprint_tree, shard_units
from .config import StudyConfig
from .cost import cost_model, htr_images
from ..metrics.features import file_digest
from .stages import stage_data, stage_gan, stage_gan_final, stage_htr, stage_reuse, stage_synthetic, stage_variant

CODE_VERSION = "study-3"   # bump to invalidate every recorded stage after a semantic change


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


# Source packages whose code each kind of stage runs: their fingerprint is part of the stage's
# config, so editing a builder, trainer or metric re-runs exactly the stages it can affect.
CODE_DEPS = {
    "data": ("datasets",),
    "htr": ("datasets", "htr"),
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


def weights_fingerprint(path) -> str:
    """The content hash of a weights file (so a stage re-runs when the file changes, not its name)."""
    return file_digest(Path(path))[:16]


def _frac(f: float) -> str:
    return f"f{f:g}"


def unit_name(ds: str, row: str, fraction: float, seed: int) -> str:
    return f"{ds}/htr/{row}/{_frac(fraction)}/s{seed}"


def gan_reader_units(p: Profile, ds: str, study_seed: int) -> tuple[str, ...]:
    """The grid units that serve as the GAN's frozen readers (`gan_readers` rows, every seed),
    never the judge's model (real, seed S) nor R's starting point (real, seed S+1 with gan_r_init)."""
    taken = {study_seed} | ({study_seed + 1} if p.gan_r_init else set())
    return tuple(unit_name(ds, row, 1.0, seed) for row in p.gan_readers for seed in p.seeds_of(row, 1.0, study_seed)
                 if not (row == "real" and seed in taken))


def plan_study(cfg: StudyConfig, backend: StudyBackend | None, device: str = "cpu",
               fingerprints: bool = True, speed: dict[str, float] | None = None) -> list[Stage]:
    """The full stage graph of a study (prerequisites and grid units), deterministic for cfg.

    `fingerprints=False` skips reading imported datasets (enough to list the units); `speed`
    scales the stages' projected seconds to this machine (cost.calibrate)."""
    p, S = cfg.profile, cfg.seed
    cost = cost_model(p, device, speed)
    div = max(1, cfg.gpus_per_stage)   # DDP across a stage's GPUs (stages on separate GPUs run side by side)
    code = {kind: code_fingerprint(pkgs) for kind, pkgs in CODE_DEPS.items()}
    base = {"code": CODE_VERSION, "seed": S}
    htr_cfg = {"source": code["htr"], "height": p.height, "width": p.width, "recipe": p.htr.to_json()}
    text = cfg.text.to_json() if cfg.text is not None else None   # test scoring's normalisation
    if text:
        htr_cfg["text"] = text
    gan_cfg = {"source": code["gan"], **gan_train_fields(p), "r_init": p.gan_r_init, "readers": list(p.gan_readers)}
    inception = cfg.inception_weights
    score_cfg = {"fid_n": p.fid_n, "gs_n": p.gs_n, "gs_reps": p.gs_reps, "diversity": [p.diversity_k, p.diversity_m]}
    if inception:
        score_cfg["inception"] = weights_fingerprint(inception) if fingerprints else inception
    extra_gan_seeds = range(S + 1, S + p.gan_seeds)
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
        htr_fn = partial(stage_htr, backend=backend, profile=p, data_stage=d_data, study_seed=S, text=text)
        stages.append(Stage(d_judge, partial(htr_fn, row="real", fraction=1.0, seed=S, syn_stage=None),
                            {**base, **htr_cfg, "row": "real", "fraction": 1.0}, (d_data,), cost=(cost["htr"] + cost["eval"]) / div))
        gan_common = dict(backend=backend, profile=p, seed=S, data_stage=d_data, judge_stage=d_judge, inception=inception)
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
        readers = gan_reader_units(p, ds, S)
        if readers:
            gan_inputs = (*gan_inputs, *readers)
            gan_train_common["reader_stages"] = readers
        stages.append(Stage(d_gan, partial(stage_gan, variant={}, evaluate=False, **gan_train_common),
                            {**base, **gan_cfg}, gan_inputs, cost=cost["gan"] / div))
        for gan_seed in extra_gan_seeds:      # the main GAN's other seeds: scored at their best.pt
            stages.append(Stage(f"{d_gan}.s{gan_seed}", partial(stage_gan, variant={}, evaluate=True, gan_seed=gan_seed,
                                                               **gan_train_common),
                                {**base, **gan_cfg, **score_cfg, "gan_seed": gan_seed}, gan_inputs, unit=True,
                                cost=cost["gan"] / div + cost["final"]))
            if p.synthetic_gan_seeds:         # its own synthetic set (the same words, drawn by that GAN)
                stages.append(Stage(f"{d_syn}.s{gan_seed}", partial(stage_synthetic, backend=backend, profile=p, seed=S,
                                                                    data_stage=d_data, gan_stage=f"{d_gan}.s{gan_seed}"),
                                    {**base, "source": code["gan"], "n_synthetic": p.n_synthetic, "gan_seed": gan_seed},
                                    (d_data, f"{d_gan}.s{gan_seed}"), cost=cost["generate"]))
        stages.append(Stage(d_final, partial(stage_gan_final, gan_stage=d_gan, **gan_common),
                            {**base, "source": code["gan"], **score_cfg}, (d_data, d_judge, d_gan), cost=cost["final"]))
        stages.append(Stage(d_syn, partial(stage_synthetic, backend=backend, profile=p, seed=S, data_stage=d_data, gan_stage=d_gan),
                            {**base, "source": code["gan"], "n_synthetic": p.n_synthetic}, (d_data, d_gan),
                            cost=cost["generate"]))
        grid = di == 0 or p.htr_datasets == "all"
        sweep = set(SWEEP_ROWS) <= set(p.htr_rows) and (di == 0 or p.sweep_all_datasets)
        fractions = (sorted(set(p.real_fractions) | {1.0}) if sweep else [1.0]) if grid else []
        for fraction in fractions:
            rows = [r for r in ROWS if r in p.htr_rows] if fraction == 1.0 else SWEEP_ROWS
            scale = fraction if fraction < 1 else 1.0
            for row in rows:
                for seed in p.seeds_of(row, fraction, S):
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
                    syn, syn_seed = None, None
                    if row_uses(row, "synthetic"):
                        syn_seed = p.synthetic_gan_seed(seed, S)
                        syn = d_syn if syn_seed == S else f"{d_syn}.s{syn_seed}"
                        if syn_seed != S:
                            ucfg["synthetic_gan_seed"] = syn_seed
                    inputs = (d_data, syn) if syn else (d_data,)
                    n_scale = scale + (p.n_synthetic / max(1, p.n_train) if syn else 0.0)
                    if not row_uses(row, "real"):
                        n_scale = p.n_synthetic / max(1, p.n_train)
                    stages.append(Stage(name, partial(htr_fn, row=row, fraction=fraction, seed=seed, syn_stage=syn,
                                                      syn_gan_seed=syn_seed),
                                        ucfg, inputs, unit=True,
                                        cost=(cost["htr"] * htr_images(p, n_scale) / htr_images(p, 1.0) + cost["eval"]) / div))
        if di == 0:
            for name, change in p.gan_variants.items():
                var_gan = cost_model(p.with_gan_change(change, where=f"gan_variants {name!r}"), device, speed)["gan"]
                for gan_seed in range(S, S + p.variant_seeds):
                    var_cfg = {**base, **gan_cfg, **change, "gan_seed": gan_seed, "synthetic_only": htr_cfg,
                               "n_synthetic": p.n_synthetic, "diversity": [p.diversity_k, p.diversity_m]}
                    stages.append(Stage(f"{ds}/variant/{name}/s{gan_seed}",
                                        partial(stage_variant, gan_seed=gan_seed, change=change, text=text, **gan_train_common),
                                        var_cfg, gan_inputs, unit=True,
                                        cost=(var_gan + cost["final"] + cost["generate"]
                                              + cost["htr"] * htr_images(p, p.n_synthetic / max(1, p.n_train))
                                              / htr_images(p, 1.0) + cost["eval"]) / div))
        if p.ablations and di == 0:
            for group, settings in ablation_grid(p.gan.cond, p.gan.alpha).items():
                for setting, variant in settings.items():
                    if variant is None:
                        continue
                    its = p.ablation_iterations or p.gan.iterations
                    sizes = {"iterations": its, "eval_every": min(p.gan.eval_every, its)}
                    abl_cfg = {**base, **gan_cfg, **variant, **score_cfg, **sizes}
                    abl_gan = cost_model(p.with_gan_change({**variant, **sizes}, where=f"ablation {group}={setting}"),
                                         device, speed)["gan"]
                    for gan_seed in range(S, S + (p.ablation_seeds or p.gan_seeds)):
                        name = f"{ds}/ablation/{group}={setting}" + (f".s{gan_seed}" if gan_seed != S else "")
                        stages.append(Stage(name, partial(stage_gan, variant=variant, evaluate=True, iterations=its,
                                                          gan_seed=gan_seed, **gan_train_common),
                                            {**abl_cfg, **({"gan_seed": gan_seed} if gan_seed != S else {})}, gan_inputs,
                                            unit=True, cost=abl_gan / div + cost["final"]))
    return stages


def select_targets(stages: list[Stage], shard: tuple[int, int] | None) -> list[str]:
    """What a run (or shard i/N) executes: its slice of the grid units; shard 0 (or an unsharded
    run) also the shared prerequisites, which other shards only build when their units need them."""
    units = shard_units([s.name for s in stages if s.unit], shard)
    if shard is None or shard[0] == 0:
        return [s.name for s in stages if not s.unit] + units
    return units
