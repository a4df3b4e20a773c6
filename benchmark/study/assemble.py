"""results.json from the recorded stage results: a pure function of them, so rerunning, resuming
or merging shards gives the same document (apart from `timings`)."""
from __future__ import annotations

import math
import statistics

from reports.results import KIND, ROWS, SCHEMA_VERSION, SWEEP_ROWS

from ..profiles import gan_departures
from .plan import ablation_grid


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _numeric_keys(dicts) -> list[str]:
    return sorted({k for d in dicts for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})


def aggregate_seeds(per_seed: list[dict]) -> dict:
    """Mean ± std (sample std) over seeds of every numeric test metric (and, `val_` prefixed, of
    every validation-split metric), plus the per-seed list."""
    out: dict = {"n_seeds": len(per_seed)}
    for split, prefix in (("test", ""), ("val", "val_")):
        scored = [r[split] for r in per_seed if r.get(split)]
        for k in _numeric_keys(scored):
            out[f"{prefix}{k}_mean"], out[f"{prefix}{k}_std"] = _mean_std([d.get(k) for d in scored])
    out["per_seed"] = [{"seed": r["seed"], **r["test"], **({"val": r["val"]} if r.get("val") else {}),
                        "n_real": r.get("n_real"), "curve": r.get("curve", []), **({"bf16": True} if r.get("bf16") else {}),
                        **({"synthetic_gan_seed": r["synthetic_gan_seed"]} if r.get("synthetic_gan_seed") is not None else {})}
                       for r in sorted(per_seed, key=lambda r: r["seed"])]
    return out


def paired_gain(real: list[dict], augmented: list[dict]) -> dict:
    """The gain of `augmented` over `real` seed by seed (the two rows' runs of one seed share their
    initialisation): for ED and WER, the mean and sample std of real − augmented over the seeds both
    rows ran (`paired_gain_cer_mean`, …), how many seeds that is and at how many the augmented row's
    test ED is lower. Empty where no seed ran in both rows."""
    by_seed = {r["seed"]: (r.get("test") or {}) for r in real}
    pairs = [(by_seed[r["seed"]], r.get("test") or {}) for r in augmented if r["seed"] in by_seed]
    if not pairs:
        return {}
    out: dict = {"paired_seeds": len(pairs)}
    for m in ("cer", "wer"):
        diffs = [a[m] - b[m] for a, b in pairs if a.get(m) is not None and b.get(m) is not None]
        out[f"paired_gain_{m}_mean"], out[f"paired_gain_{m}_std"] = _mean_std(diffs)
    out["paired_ahead"] = sum(1 for a, b in pairs if a.get("cer") is not None and b.get("cer") is not None
                              and b["cer"] < a["cer"])
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
            entry["gan"]["warnings"] = final.get("warnings", [])
        seeds = gan_seed_summary(records, f"{ds}/gan", (final or {}).get("final"), gan)
        if seeds:
            entry["gan"]["seeds"] = seeds
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
                point.update(paired_gain(by_key[("real", f)], by_key[("real+synthetic", f)]))
            if len(point) > 1:
                sweep.append(point)
        if sweep:
            entry["sweep"] = sweep
        variants = _variants(ds, records, prof.get("gan_variants", {}), entry)
        if variants:
            entry["variants"] = variants
        abl = _ablations(ds, records, prof["gan"]["cond"], prof["gan"]["alpha"])
        if abl:
            entry["ablations"] = abl
        datasets[ds] = entry
    done = sorted(n for n in expected_units if records.get(n, {}).get("result") is not None)
    timings = {n: rec.get("seconds") for n, rec in sorted(records.items()) if rec.get("seconds") is not None}
    doc = {
        "schema": SCHEMA_VERSION,
        "kind": KIND,
        "profile": prof,
        "gan_departures": gan_departures(prof),
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


SUMMARY_KEYS = ("readability_cer", "diversity", "diversity_pixels", "fid", "kid", "gs", "synthetic_only_cer",
                "d_share", "loss_d")


def generator_summary(final: dict | None, log: list[dict], synthetic_only_cer) -> dict:
    """What a generator is worth, in one row: readability, diversity, FID/KID/GS, the test ED of a
    recognizer trained on its words only (usefulness), and D's share of G's gradient and D's loss
    at the last evaluation."""
    last = next((rec for rec in reversed(log) if rec.get("event") == "eval"), {})
    out = {k: (final or {}).get(k) for k in ("readability_cer", "diversity", "diversity_pixels", "fid", "kid", "gs")}
    out.update(synthetic_only_cer=synthetic_only_cer, d_share=last.get("d_share"), loss_d=last.get("loss_d"))
    return out


def _variants(ds: str, records: dict[str, dict], changes: dict, entry: dict) -> dict:
    """The main GAN and every GAN variant (per seed, and mean ± std over seeds) on SUMMARY_KEYS."""
    if not changes:
        return {}
    gan = entry.get("gan") or {}
    syn_row = ((entry.get("htr") or {}).get("rows") or {}).get("synthetic") or {}
    out = {"main": {"change": {}, "per_seed": [{"seed": None, **generator_summary(gan.get("final"), gan.get("log", []),
                                                                                  syn_row.get("cer_mean"))}]}}
    for name, change in changes.items():
        seeds = []
        for rec_name, rec in sorted(records.items()):
            res = rec.get("result")
            if rec_name.startswith(f"{ds}/variant/{name}/s") and res:
                seeds.append({"seed": res.get("gan_seed"), "warnings": res.get("warnings", []),
                              **generator_summary(res.get("final"), res.get("log", []),
                                                  (res.get("synthetic_only") or {}).get("cer"))})
        if seeds:
            out[name] = {"change": change, "per_seed": seeds}
    if len(out) == 1:          # no variant ran on this dataset (they run on the first one)
        return {}
    for v in out.values():
        for k in SUMMARY_KEYS:
            v[f"{k}_mean"], v[f"{k}_std"] = _mean_std([row.get(k) for row in v["per_seed"]])
    return out


def _best(log: list[dict], key: str):
    values = [r[key] for r in log if r.get("event", "eval") == "eval" and isinstance(r.get(key), (int, float))]
    return min(values) if values else None


def gan_seed_summary(records: dict[str, dict], name: str, first_final: dict | None, first: dict | None) -> dict:
    """One GAN setting over its seeds (stage `name` for the study seed, `name.sK` for the others):
    per seed FID/GS at the best-FID checkpoint and the paper's selection — the best FID and the
    best GS each over that seed's own evaluations —, failed seeds (diverged, or D won outright);
    then mean ± std over seeds, the best over seeds and the failure count. {} for one seed."""
    others = sorted((n for n in records if n.startswith(f"{name}.s") and records[n].get("result")),
                    key=lambda n: int(n.rsplit(".s", 1)[1]))
    if not others or not first:
        return {}
    rows = []
    for final, res in [(first_final, first), *[(records[n]["result"].get("final"), records[n]["result"]) for n in others]]:
        log = res.get("log", [])
        failed = res.get("failed") or next((r["warning"] for r in log if r.get("warning")), None)
        rows.append({"seed": res.get("gan_seed"), "fid": (final or {}).get("fid"), "gs": (final or {}).get("gs"),
                     "fid_inception": (final or {}).get("fid_inception"), "best_fid": _best(log, "fid"),
                     "best_gs": _best(log, "gs"), "failed": failed})
    out: dict = {"n_seeds": len(rows), "failed": sum(bool(r["failed"]) for r in rows), "per_seed": rows}
    for k in ("fid", "gs", "fid_inception"):
        out[f"{k}_mean"], out[f"{k}_std"] = _mean_std([r[k] for r in rows])
    for k in ("best_fid", "best_gs"):
        out[k] = min((r[k] for r in rows if r[k] is not None), default=None)
    return out


def _ablations(ds: str, records: dict[str, dict], cond: str, alpha: float | None = 1.0) -> dict:
    """Tables II–V: per switch, each setting's final FID/GS (the model's own setting is the main
    GAN), and with several GAN seeds their summary (gan_seed_summary)."""
    main = records.get(f"{ds}/gan-final", {}).get("result")
    main_gan = records.get(f"{ds}/gan", {}).get("result")
    out: dict = {}
    for group, settings in ablation_grid(cond, alpha).items():
        rows = []
        for setting, variant in settings.items():
            if variant is None:
                res = main["final"] if main else None
                label, seeds = f"{setting} (ours)", gan_seed_summary(records, f"{ds}/gan", res, main_gan)
            else:
                name = f"{ds}/ablation/{group}={setting}"
                rec = records.get(name, {}).get("result")
                res = rec.get("final") if rec else None
                label, seeds = setting, gan_seed_summary(records, name, res, rec)
            if res is not None:
                row = {"setting": label, "fid": res.get("fid"), "gs": res.get("gs")}
                if res.get("fid_inception") is not None:
                    row["fid_inception"] = res["fid_inception"]
                if seeds:
                    row["seeds"] = seeds
                rows.append(row)
        if len(rows) > 1 or any(records.get(f"{ds}/ablation/{group}={s}") for s in settings):
            out[group] = rows
    return out
