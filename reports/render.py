"""`htraug report STUDY_DIR`: Markdown, a self-contained HTML page, CSV tables and PNG plots
rendered from a study's results.json alone (no retraining), with the paper's published numbers
beside ours, labelled as such (SPEC §9)."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
import html
import json
import math
import os
from pathlib import Path
import shutil

import pandas as pd

from datasets.files import atomic_file, atomic_write_text

from .results import load_results

PAPER_DIR = Path(__file__).parent / "paper"
PAPER_LABEL = "paper (RIMES/OpenHaRT, other data)"
ROW_LABELS = {"real": "real only", "real+synthetic": "real + synthetic", "real+classic": "real + classic aug.",
              "real+synthetic+classic": "real + synthetic + classic aug.", "synthetic": "synthetic only"}
ABLATION_TABLES = {"alpha": ("table2", "Table II: gradient balancing α"),
                   "loss": ("table3", "Table III: adversarial loss"),
                   "attention": ("table4", "Table IV: self-attention"),
                   "conditioning": ("table5", "Table V: conditioning through CBN or the first linear layer (aligned: per-column CBN, spatial: per-pixel CBN; not in the paper)")}


@dataclass
class Section:
    """One report section: a heading, paragraphs, tables (DataFrame, csv name) and figures."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)   # (caption, df, csv file)
    figures: list[tuple[str, Path]] = field(default_factory=list)               # (caption, png path)


def load_paper() -> dict[str, dict]:
    """The paper's published tables (reports/paper/table1..6.json)."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(PAPER_DIR.glob("table*.json"))}


# ------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------
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
                         "ED %": _pm(agg.get("cer_mean"), agg.get("cer_std")),
                         "WER %": _pm(agg.get("wer_mean"), agg.get("wer_std")),
                         "ED % (case-insens.)": _pm(agg.get("cer_ci_mean"), agg.get("cer_ci_std")),
                         "WER % (case-insens.)": _pm(agg.get("wer_ci_mean"), agg.get("wer_ci_std")),
                         "seeds": agg.get("n_seeds"), "eval split": "test (unseen writers)"})
    for r in paper.get("table6", {}).get("rows", []):
        rows.append({"source": PAPER_LABEL, "dataset": "RIMES", "training data": r.get("label", r["row"]),
                     "ED %": _num(r["cer"]), "WER %": _num(r["wer"], 1), "ED % (case-insens.)": "–",
                     "WER % (case-insens.)": "–", "seeds": 1, "eval split": "validation"})
    return pd.DataFrame(rows)


def table_htr_seeds(results: dict) -> pd.DataFrame:
    """Every HTR run: dataset, row, seed, ED, WER (the numbers behind mean ± std)."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for row, agg in ((e.get("htr") or {}).get("rows") or {}).items():
            for r in agg.get("per_seed", []):
                rows.append({"dataset": ds, "row": row, "seed": r.get("seed"), "cer": r.get("cer"), "wer": r.get("wer"),
                             "cer_ci": r.get("cer_ci"), "wer_ci": r.get("wer_ci"), "n": r.get("n"), "n_real": r.get("n_real")})
    return pd.DataFrame(rows)


def table_gan(results: dict) -> pd.DataFrame:
    """Final FID/KID/GS/readability of each dataset's chosen generator."""
    rows = []
    for ds, e in results.get("datasets", {}).items():
        f = (e.get("gan") or {}).get("final")
        judge = (e.get("judge") or {}).get("test") or {}
        if f:
            rows.append({"dataset": ds, f"FID ({f.get('fid_features', 'htr')} features, n={f.get('fid_n')})": _num(f.get("fid")),
                         "KID": _num(f.get("kid"), 4), f"GS (n={f.get('gs_n')}, {f.get('gs_reps')} reps)": _num(f.get("gs"), 4),
                         "readability ED %": _num(f.get("readability_cer")), "readability WER %": _num(f.get("readability_wer")),
                         "judge on real test ED %": _num(judge.get("cer")), "judge on real test WER %": _num(judge.get("wer"))})
    return pd.DataFrame(rows)


def table_ablation(results: dict, paper: dict, group: str) -> pd.DataFrame | None:
    """Tables II–V: our FID/GS per setting beside the paper's."""
    key, _ = ABLATION_TABLES[group]
    pt = {r["setting"]: r for r in paper.get(key, {}).get("rows", [])}
    rows = []
    for ds, e in results.get("datasets", {}).items():
        for r in (e.get("ablations") or {}).get(group, []):
            setting = str(r["setting"]).replace(" (ours)", "")
            p = pt.get(setting, {})
            rows.append({"dataset": ds, "setting": r["setting"], "FID": _num(r.get("fid")), "GS": _num(r.get("gs"), 4),
                         f"FID, {PAPER_LABEL}": _num(p.get("fid")), f"GS, {PAPER_LABEL}": _num(p.get("gs"), 4)})
    return pd.DataFrame(rows) if rows else None


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
                         "WER % real": _pm(r.get("wer_mean"), r.get("wer_std")),
                         "WER % real+synthetic": _pm(s.get("wer_mean"), s.get("wer_std")),
                         "WER gain": _num(pt.get("gain_wer"))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg)
# ------------------------------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return path


def _xkey(records: list[dict]) -> str | None:
    for k in ("iteration", "step", "epoch"):
        if any(k in r for r in records):
            return k
    return None


def _series(records: list[dict], key: str, x: str) -> tuple[list, list]:
    pts = [(r[x], r[key]) for r in records if isinstance(r.get(key), (int, float)) and isinstance(r.get(x), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_htr_curves(ds: str, entry: dict, path: Path) -> Path | None:
    """Validation CER over epochs for every HTR row and seed."""
    rows = (entry.get("htr") or {}).get("rows") or {}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for i, (row, agg) in enumerate(rows.items()):
        for j, r in enumerate(agg.get("per_seed", [])):
            curve = r.get("curve") or []
            x = "epoch" if any("epoch" in c for c in curve) else _xkey(curve)
            if not x:
                continue
            xs, ys = _series(curve, "val_cer", x)
            if xs:
                ax.plot(xs, ys, color=f"C{i}", alpha=0.85, marker="o", ms=3, label=ROW_LABELS.get(row, row) if j == 0 else None)
                drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation ED %")
    ax.set_title(f"{ds}: HTR training curves (one line per seed)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_gan_log(ds: str, entry: dict, path: Path, keys_pred, title: str, log_y: bool = False) -> Path | None:
    """GAN log series (keys selected by `keys_pred`) over iterations, one panel each."""
    log = (entry.get("gan") or {}).get("log") or []
    x = _xkey(log)
    if not x:
        return None
    keys = sorted({k for r in log for k, v in r.items() if keys_pred(k) and isinstance(v, (int, float)) and not isinstance(v, bool)})
    keys = [k for k in keys if len(_series(log, k, x)[0]) > 0]
    if not keys:
        return None
    plt = _plt()
    n = len(keys)
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3 * nrows), squeeze=False)
    for ax, k in zip(axes.flat, keys):
        xs, ys = _series(log, k, x)
        ax.plot(xs, ys, marker="o", ms=3)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        if log_y and all(v > 0 for v in ys):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{ds}: {title}")
    fig.tight_layout()
    return _save(fig, path)


def _is_loss(k: str) -> bool:
    return k.startswith("loss") or k.endswith("_loss") or k.startswith("grad_")


def _is_quality(k: str) -> bool:
    return k in ("fid", "gs", "kid") or k.startswith("cer_") or k.startswith("wer_") or k.startswith("readability")


def plot_htr_bars(results: dict, path: Path) -> Path | None:
    """ED and WER bars (mean ± std over seeds) per dataset and row, with the paper's beside."""
    data = [(ds, row, agg) for ds, e in results.get("datasets", {}).items()
            for row, agg in ((e.get("htr") or {}).get("rows") or {}).items() if agg.get("cer_mean") is not None]
    if not data:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{ds}\n{ROW_LABELS.get(row, row)}" for ds, row, _ in data]
    for ax, m in zip(axes, ("cer", "wer")):
        means = [agg.get(f"{m}_mean") or 0 for _, _, agg in data]
        stds = [agg.get(f"{m}_std") or 0 for _, _, agg in data]
        colors = [f"C{list(ROW_LABELS).index(row) if row in ROW_LABELS else 0}" for _, row, _ in data]
        ax.bar(range(len(data)), means, yerr=stds, capsize=3, color=colors)
        ax.set_xticks(range(len(data)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(f"{'ED' if m == 'cer' else 'WER'} % (test, mean ± std)")
        ax.grid(axis="y", alpha=0.3)
        paper = load_paper().get("table6", {}).get("rows", [])
        for k, r in enumerate(paper):
            ax.axhline(r[m], color="k", ls=":" if k == 0 else "--", lw=1,
                       label=f"{PAPER_LABEL}: {r.get('label', r['row'])}")
        ax.legend(fontsize=7)
    fig.suptitle("HTR error with and without synthetic data")
    fig.tight_layout()
    return _save(fig, path)


def plot_sweep(results: dict, path: Path) -> Path | None:
    """ED vs number of real training images (real vs real+synthetic) and the gain."""
    sets = [(ds, e["sweep"]) for ds, e in results.get("datasets", {}).items() if e.get("sweep")]
    if not sets:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (ds, sweep) in enumerate(sets):
        for row, ls in (("real", "-"), ("real+synthetic", "--")):
            pts = [(p[row].get("n_real") or p["fraction"], p[row].get("cer_mean"), p[row].get("cer_std") or 0)
                   for p in sweep if p.get(row) and p[row].get("cer_mean") is not None]
            if pts:
                axes[0].errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], color=f"C{i}",
                                 ls=ls, marker="o", capsize=3, label=f"{ds}: {ROW_LABELS[row]}")
        g = [(p["real"].get("n_real") or p["fraction"], p.get("gain_cer")) for p in sweep
             if p.get("gain_cer") is not None and p.get("real")]
        if g:
            axes[1].plot([x for x, _ in g], [y for _, y in g], marker="o", color=f"C{i}", label=ds)
    axes[0].set_xlabel("real training images")
    axes[0].set_ylabel("test ED %")
    axes[0].set_title("error vs amount of real data")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("real training images")
    axes[1].set_ylabel("ED gain (real − real+synthetic), points")
    axes[1].set_title("gain from synthetic data")
    xs = [p[r].get("n_real") or p["fraction"] for _, sw in sets for p in sw for r in ("real", "real+synthetic") if p.get(r)]
    for ax in axes:
        if xs and max(xs) >= 10 * min(xs):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------------------------------
# Markdown / HTML
# ------------------------------------------------------------------------------------------
def _md_escape(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def df_to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(_md_escape(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_md_escape(_num(r[c]) if not isinstance(r[c], str) else r[c]) for c in cols) + " |")
    return "\n".join(lines)


def df_to_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        paper = any(PAPER_LABEL == str(v) for v in r.values)
        cells = "".join(f"<td>{html.escape(_num(v) if not isinstance(v, str) else v)}</td>" for v in r.values)
        body.append(f"<tr class=\"{'paper' if paper else ''}\">{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _zoom_style(path: Path) -> str:
    """Tiny images (smoke-sized word grids) are shown enlarged with crisp pixels."""
    from PIL import Image
    with Image.open(path) as im:
        w = im.size[0]
    if w >= 400:
        return ""
    return f' style="width:{min(1100, w * max(2, 600 // max(w, 1)))}px;image-rendering:pixelated"'


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


CSS = """body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}th,td{border:1px solid #bbb;padding:3px 7px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}tr.paper td{background:#fff6e0;font-style:italic}
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}figure{margin:1em 0}figcaption{font-size:13px;color:#555}
.note{font-size:13px;color:#555}"""


def render_markdown(title: str, intro: list[str], sections: list[Section], out: Path) -> str:
    parts = [f"# {title}", "", *intro, ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        parts += [*s.text, ""] if s.text else []
        for caption, df, csv in s.tables:
            parts += [f"**{caption}** ([CSV](tables/{csv}))", "", df_to_markdown(df), ""]
        for caption, png in s.figures:
            parts += [f"![{caption}]({os.path.relpath(png, out)})", "", f"*{caption}*", ""]
    return "\n".join(parts) + "\n"


def render_html(title: str, intro: list[str], sections: list[Section]) -> str:
    """One self-contained page: CSS inline, every image a base64 data URI."""
    body = [f"<h1>{html.escape(title)}</h1>", *(f"<p class=\"note\">{html.escape(t)}</p>" for t in intro)]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{html.escape(t)}</p>" for t in s.text]
        for caption, df, _ in s.tables:
            body.append(f"<p><b>{html.escape(caption)}</b></p>{df_to_html(df)}")
        for caption, png in s.figures:
            body.append(f"<figure><img alt=\"{html.escape(caption)}\"{_zoom_style(png)} src=\"{_data_uri(png)}\">"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------
def _copy_image(study: Path, rel: str | None, dest: Path) -> Path | None:
    if not rel:
        return None
    src = study / rel
    if not src.is_file():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def build_sections(results: dict, study: Path, out: Path) -> list[Section]:
    """Every section of the report, writing its CSV tables and PNG figures under `out`."""
    paper = load_paper()
    figs, tabs = out / "figures", out / "tables"
    sections: list[Section] = []

    def add_table(sec: Section, caption: str, df: pd.DataFrame | None, name: str):
        if df is None or df.empty:
            return
        tabs.mkdir(parents=True, exist_ok=True)
        df.to_csv(tabs / name, index=False)
        sec.tables.append((caption, df, name))

    s = Section("Datasets (Table I)", ["Images, distinct words and distinct characters per split; test writers are unseen in training."])
    add_table(s, "Table I — dataset statistics (paper's RIMES/OpenHaRT subsets shown for reference)", table_datasets(results, paper), "table1_datasets.csv")
    for ds, e in results.get("datasets", {}).items():
        p = _copy_image(study, e.get("data_samples"), figs / f"data_samples_{ds}.png")
        if p:
            s.figures.append((f"{ds}: real images of the train, validation and test splits (builder sample sheet)", p))
    sections.append(s)

    s = Section("Handwritten text recognition (Table VI)", [
        "ED = corpus character edit distance %, WER = word error rate %, on the test split (unseen writers), "
        "mean ± sample std over HTR seeds. The paper's row is one run on the RIMES validation set."])
    add_table(s, "Table VI — ED / WER by training data", table_htr(results, paper), "table6_htr.csv")
    add_table(s, "Per-seed HTR results", table_htr_seeds(results), "htr_per_seed.csv")
    p = plot_htr_bars(results, figs / "htr_bars.png")
    if p:
        s.figures.append(("ED and WER with error bars (std over seeds); dotted/dashed lines: " + PAPER_LABEL, p))
    for ds, e in results.get("datasets", {}).items():
        p = plot_htr_curves(ds, e, figs / f"htr_curves_{ds}.png")
        if p:
            s.figures.append((f"{ds}: HTR validation ED over epochs", p))
    sections.append(s)

    s = Section("Augmentation gain vs amount of real data")
    add_table(s, "Real-data-size sweep (gain = ED/WER of real only minus real + synthetic)", table_sweep(results), "sweep.csv")
    p = plot_sweep(results, figs / "sweep_gain.png")
    if p:
        s.figures.append(("Test ED vs number of real training images, and the gain from synthetic data", p))
    if s.tables or s.figures:
        sections.append(s)

    s = Section("Generator quality", ["FID uses pooled encoder features of the judge recognizer (trained on real "
                                      "training images); FID is biased by N, so compare only at equal N. Readability "
                                      "is the judge's ED/WER on generated words; its ED/WER on the real test words "
                                      "beside it is what readable as real handwriting looks like to that judge."])
    add_table(s, "Final metrics of the chosen generator", table_gan(results), "gan_final.csv")
    for ds, e in results.get("datasets", {}).items():
        gan = e.get("gan") or {}
        for k, rel in enumerate(gan.get("grids", [])):
            p = _copy_image(study, rel, figs / f"samples_{ds}_{k}.png")
            if p:
                s.figures.append((f"{ds} ({e.get('language')}): generated words — fixed word × varying z (top), "
                                  "fixed z × varying word (bottom), like the paper's Figs. 5–6", p))
        for k, rel in enumerate(gan.get("samples", [])[-1:]):
            p = _copy_image(study, rel, figs / f"gan_run_samples_{ds}.png")
            if p:
                s.figures.append((f"{ds}: sample grid written by the GAN run ({Path(rel).name})", p))
        p = plot_gan_log(ds, e, figs / f"gan_quality_{ds}.png", _is_quality, "FID / GS / readability over iterations")
        if p:
            s.figures.append((f"{ds}: FID, GS and readability during GAN training", p))
        p = plot_gan_log(ds, e, figs / f"gan_losses_{ds}.png", _is_loss, "GAN losses and gradient norms")
        if p:
            s.figures.append((f"{ds}: GAN training losses", p))
    sections.append(s)

    s = Section("Ablations (Tables II–V)", [f"Each switch changed alone from the model's setting (ours); "
                                            f"the paper's values ({PAPER_LABEL}) used Inception FID on 25k images."])
    for group, (key, caption) in ABLATION_TABLES.items():
        add_table(s, caption, table_ablation(results, paper, group), f"{key}_{group}.csv")
    if s.tables:
        sections.append(s)

    s = Section("Run information")
    units = results.get("units", {})
    s.text.append(f"profile {results.get('profile', {}).get('name')}, seed {results.get('config', {}).get('seed')}, "
                  f"device {results.get('device')}, units {units.get('done')}/{units.get('expected')}"
                  f"{'' if results.get('complete') else ' (INCOMPLETE)'}, stage time "
                  f"{results.get('timings', {}).get('total_s')} s, wall {results.get('timings', {}).get('wall_s')} s.")
    vers = results.get("versions") or {}
    if vers:
        add_table(s, "Versions", pd.DataFrame([{"component": k, "version": str(v)} for k, v in vers.items()]), "versions.csv")
    prof = results.get("profile") or {}
    if prof:
        add_table(s, "Profile", pd.DataFrame([{"field": k, "value": json.dumps(v) if isinstance(v, list) else str(v)}
                                              for k, v in _flat_items(prof)]), "profile.csv")
    sections.append(s)
    return sections


def _flat_items(obj: dict, prefix: str = ""):
    """(dotted key, value) pairs of a nested dict (a profile with its recipe tables)."""
    for k, v in obj.items():
        if isinstance(v, dict):
            yield from _flat_items(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def render_report(study_dir, out_dir=None) -> Path:
    """Render STUDY_DIR/results.json into OUT (default STUDY_DIR/report); returns report.html."""
    study = Path(study_dir)
    results = load_results(study)
    out = Path(out_dir) if out_dir else study / "report"
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(results, study, out)
    prof = (results.get("profile") or {}).get("name", "?")
    title = f"htraug study report — profile {prof}"
    intro = [f"Study directory: {study.resolve()}.",
             f"Numbers labelled “{PAPER_LABEL}” are the published values of Alonso et al. (ICDAR 2019) on "
             "RIMES/OpenHaRT at 128×512 and are shown for reference only; ours come from the datasets above."]
    if not results.get("complete", True):
        intro.append(f"Incomplete study: {len(results.get('units', {}).get('missing', []))} grid unit(s) missing.")
    atomic_write_text(out / "report.md", render_markdown(title, intro, sections, out))
    atomic_write_text(out / "report.html", render_html(title, intro, sections))
    return out / "report.html"
