"""The report's tables as pandas DataFrames, built from results.json and the paper's tables,
and the number formatting they use."""
from __future__ import annotations

import math

import pandas as pd

from .published import ABLATION_TABLES, PAPER_LABEL, ROW_LABELS


def _num(v, digits: int = 2) -> str:
    """A compact number for tables: scientific below 0.01, fixed otherwise; '–' when missing."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e12:
            return str(int(v))
        if v != 0 and abs(v) < 0.01:
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


def _pm(mean, std) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def table_datasets(results: dict, paper: dict) -> pd.DataFrame:
    """Table I: images, distinct words, distinct characters per dataset and split."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for split, st in (e.get("stats") or {}).items():
            if isinstance(st, dict) and "images" in st:
                rows.append({"source": "this study", "dataset": ds, "language": e.get("language"), "split": split,
                             "images": st.get("images"), "words": st.get("words"), "characters": st.get("characters")})
        syn = e.get("synthetic")
        if syn and syn.get("stats"):
            st = syn["stats"]
            rows.append({"source": "this study", "dataset": ds, "language": e.get("language"), "split": "synthetic (GAN)",
                         "images": st.get("images"), "words": st.get("words"), "characters": st.get("characters")})
    for r in paper.get("table1", {}).get("rows", []):
        rows.append({"source": PAPER_LABEL, "dataset": r["dataset"], "language": r["language"], "split": "subset",
                     "images": r["images"], "words": r["words"], "characters": r["characters"]})
    return pd.DataFrame(rows, columns=["source", "dataset", "language", "split", "images", "words", "characters"])


def table_htr(results: dict, paper: dict) -> pd.DataFrame:
    """Table VI: ED and WER (%) mean ± std over seeds per dataset and training-data row."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for row, agg in ((e.get("htr") or {}).get("rows") or {}).items():
            rows.append({"source": "this study", "dataset": ds, "training data": ROW_LABELS.get(row, row),
                         "validation ED %": _pm(agg.get("val_cer_mean"), agg.get("val_cer_std")),
                         "validation WER %": _pm(agg.get("val_wer_mean"), agg.get("val_wer_std")),
                         "test ED %": _pm(agg.get("cer_mean"), agg.get("cer_std")),
                         "test WER %": _pm(agg.get("wer_mean"), agg.get("wer_std")),
                         "test ED % (case-insens.)": _pm(agg.get("cer_ci_mean"), agg.get("cer_ci_std")),
                         "test WER % (case-insens.)": _pm(agg.get("wer_ci_mean"), agg.get("wer_ci_std")),
                         "seeds": agg.get("n_seeds")})
    for r in paper.get("table6", {}).get("rows", []):
        rows.append({"source": PAPER_LABEL, "dataset": "RIMES", "training data": r.get("label", r["row"]),
                     "validation ED %": _num(r["cer"]), "validation WER %": _num(r["wer"], 1), "test ED %": "–",
                     "test WER %": "–", "test ED % (case-insens.)": "–", "test WER % (case-insens.)": "–", "seeds": 1})
    return pd.DataFrame(rows)


def table_htr_seeds(results: dict) -> pd.DataFrame:
    """Every HTR run: dataset, row, seed, ED, WER (the numbers behind mean ± std)."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for row, agg in ((e.get("htr") or {}).get("rows") or {}).items():
            for r in agg.get("per_seed", []):
                rows.append({"dataset": ds, "row": row, "seed": r.get("seed"), "cer": r.get("cer"), "wer": r.get("wer"),
                             "cer_ci": r.get("cer_ci"), "wer_ci": r.get("wer_ci"), "n": r.get("n"), "n_real": r.get("n_real"),
                             "synthetic from GAN seed": r.get("synthetic_gan_seed")})
    return pd.DataFrame(rows)


def table_gan(results: dict) -> pd.DataFrame:
    """Final FID/KID/GS/readability of each dataset's chosen generator."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        f = (e.get("gan") or {}).get("final")
        judge = (e.get("judge") or {}).get("test") or {}
        if f:
            grid = (e.get("htr") or {}).get("rows") or {}
            syn = (grid.get("synthetic") or {}).get("cer_mean")
            syn_classic = {"synthetic + classic aug. test ED %": _num(grid["synthetic+classic"].get("cer_mean"))} \
                if grid.get("synthetic+classic") else {}
            last = next((r for r in reversed((e.get("gan") or {}).get("log") or []) if r.get("event") == "eval"), {})
            inception = {f"FID (Inception, n={f.get('fid_inception_n')})": _num(f.get("fid_inception"))} \
                if f.get("fid_inception") is not None else {}
            rows.append({"dataset": ds, f"FID ({f.get('fid_features', 'htr')} features, n={f.get('fid_n')})": _num(f.get("fid")),
                         **inception,
                         "KID": _num(f.get("kid"), 4), f"GS (n={f.get('gs_n')}, {f.get('gs_reps')} reps)": _num(f.get("gs"), 4),
                         "readability ED %": _num(f.get("readability_cer")), "readability WER %": _num(f.get("readability_wer")),
                         "judge on real test ED %": _num(judge.get("cer")), "judge on real test WER %": _num(judge.get("wer")),
                         f"diversity ({f.get('diversity_words', '?')} words)": _num(f.get("diversity"), 3),
                         "synthetic-only test ED %": _num(syn), **syn_classic,
                         "D's share of G's gradient": _num(last.get("d_share"), 3)})
    return pd.DataFrame(rows)


VARIANT_COLUMNS = (("readability_cer", "readability ED %", 2), ("diversity", "diversity", 3), ("fid", "FID", 2),
                   ("kid", "KID", 4), ("gs", "GS", 4), ("synthetic_only_cer", "synthetic-only test ED %", 2),
                   ("d_share", "D's share", 3), ("loss_d", "L_D", 3))


def table_variants(results: dict) -> pd.DataFrame | None:
    """The main GAN and its variants (remedies), mean ± std over GAN seeds."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for name, v in (e.get("variants") or {}).items():
            row = {"dataset": ds, "variant": name, "change": ", ".join(f"{k}={val}" for k, val in v.get("change", {}).items()) or "–",
                   "seeds": len(v.get("per_seed", []))}
            for key, label, digits in VARIANT_COLUMNS:
                mean, std = v.get(f"{key}_mean"), v.get(f"{key}_std")
                row[label] = _num(mean, digits) if mean is None or not std else f"{_num(mean, digits)} ± {_num(std, digits)}"
            rows.append(row)
    return pd.DataFrame(rows) if rows else None


def table_ablation(results: dict, paper: dict, group: str) -> pd.DataFrame | None:
    """Tables II–V: our FID/GS per setting beside the paper's."""
    key, _ = ABLATION_TABLES[group]
    pt = {r["setting"]: r for r in paper.get(key, {}).get("rows", [])}
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for r in (e.get("ablations") or {}).get(group, []):
            setting = str(r["setting"]).replace(" (ours)", "")
            p = pt.get(setting, {})
            seeds = r.get("seeds") or {}
            row = {"dataset": ds, "setting": r["setting"], "FID (judge features)": _num(r.get("fid")),
                   "GS": _num(r.get("gs"), 4)}
            if r.get("fid_inception") is not None:
                row["FID (Inception)"] = _num(r["fid_inception"])
            if seeds:
                row.update({"seeds": seeds["n_seeds"], "failed": seeds["failed"],
                            "FID over seeds": _pm(seeds.get("fid_mean"), seeds.get("fid_std")),
                            "GS over seeds": _pm(seeds.get("gs_mean"), seeds.get("gs_std")),
                            "best FID": _num(seeds.get("best_fid")), "best GS": _num(seeds.get("best_gs"), 4)})
            row.update({f"FID, {PAPER_LABEL}": _num(p.get("fid")), f"GS, {PAPER_LABEL}": _num(p.get("gs"), 4)})
            rows.append(row)
    return pd.DataFrame(rows) if rows else None


def _ahead(point: dict) -> str:
    """'k of n': the seeds at which real + synthetic had the lower test ED."""
    n = point.get("paired_seeds")
    return f"{point.get('paired_ahead')} of {n}" if n else "–"


def table_sweep(results: dict) -> pd.DataFrame:
    """Augmentation gain vs amount of real data."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for pt in e.get("sweep") or []:
            r, s = pt.get("real") or {}, pt.get("real+synthetic") or {}
            rows.append({"dataset": ds, "real fraction": pt["fraction"], "real images": r.get("n_real") or s.get("n_real"),
                         "ED % real": _pm(r.get("cer_mean"), r.get("cer_std")),
                         "ED % real+synthetic": _pm(s.get("cer_mean"), s.get("cer_std")),
                         "ED gain": _num(pt.get("gain_cer")),
                         "ED gain, paired by seed": _pm(pt.get("paired_gain_cer_mean"), pt.get("paired_gain_cer_std")),
                         "seeds ahead": _ahead(pt),
                         "WER % real": _pm(r.get("wer_mean"), r.get("wer_std")),
                         "WER % real+synthetic": _pm(s.get("wer_mean"), s.get("wer_std")),
                         "WER gain": _num(pt.get("gain_wer"))})
    return pd.DataFrame(rows)
