"""`htraug report STUDY_DIR`: Markdown, a self-contained HTML page, CSV tables and PNG plots
rendered from a study's results.json alone (no retraining), with the paper's published numbers
beside ours, labelled as such (docs/DESIGN.md §9.1)."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
import html
import json
import os
from pathlib import Path
import shutil

import pandas as pd

from datasets.files import StagingDir, atomic_write_text

from .plots import _is_loss, _is_quality, plot_gan_log, plot_htr_bars, plot_htr_curves, plot_sweep
from .published import ABLATION_TABLES, PAPER_DIR, PAPER_LABEL, ROW_LABELS, load_paper
from .results import load_results
from .tables import (_num, table_ablation, table_datasets, table_gan, table_htr, table_htr_seeds,
                     table_sweep, table_variants)

__all__ = ["ABLATION_TABLES", "CSS", "PAPER_DIR", "PAPER_LABEL", "ROW_LABELS", "Section", "build_sections",
           "df_to_html", "df_to_markdown", "load_paper", "plot_gan_log", "plot_htr_bars", "plot_htr_curves",
           "plot_sweep", "render_html", "render_markdown", "render_report", "table_ablation", "table_datasets",
           "table_gan", "table_htr", "table_htr_seeds", "table_sweep", "table_variants"]


@dataclass
class Section:
    """One report section: a heading, paragraphs, tables (DataFrame, csv name) and figures."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)   # (caption, df, csv file)
    figures: list[tuple[str, Path]] = field(default_factory=list)               # (caption, png path)



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
        "ED = corpus character edit distance %, WER = word error rate %, on the validation split (as the paper "
        "reports it) and on the held-out test split (unseen writers), mean ± sample std over HTR seeds. The "
        "paper's row is one run on the RIMES validation set."])
    add_table(s, "Table VI — ED / WER by training data", table_htr(results, paper), "table6_htr.csv")
    add_table(s, "Per-seed HTR results", table_htr_seeds(results), "htr_per_seed.csv")
    s.text.extend(stalled_recognizers(results))
    s.text.extend(recognizer_restarts(results))
    s.text.extend(recognizer_precision(results))
    p = plot_htr_bars(results, figs / "htr_bars.png")
    if p:
        s.figures.append(("ED and WER with error bars (std over seeds); dotted/dashed lines: " + PAPER_LABEL, p))
    for ds, e in results.get("datasets", {}).items():
        p = plot_htr_curves(ds, e, figs / f"htr_curves_{ds}.png")
        if p:
            s.figures.append((f"{ds}: HTR validation ED over epochs", p))
    sections.append(s)

    s = Section("Augmentation gain vs amount of real data")
    add_table(s, "Real-data-size sweep (gain = ED/WER of real only minus real + synthetic; paired by seed: the "
                 "same difference seed by seed, mean ± std over the seeds both rows ran, whose two runs share their "
                 "initialisation; seeds ahead: those where real + synthetic had the lower test ED)",
              table_sweep(results), "sweep.csv")
    p = plot_sweep(results, figs / "sweep_gain.png")
    if p:
        s.figures.append(("Test ED vs number of real training images, and the gain from synthetic data", p))
    if s.tables or s.figures:
        sections.append(s)

    s = Section("Generator quality", ["FID uses pooled encoder features of the judge recognizer (trained on real "
                                      "training images); FID is biased by N, so compare only at equal N. Readability "
                                      "is the judge's ED/WER on generated words; its ED/WER on the real test words "
                                      "beside it is what readable as real handwriting looks like to that judge. "
                                      "Diversity is the same-word variation of generated images over z divided by real "
                                      "writers' (1: as varied as real writers, 0: style collapse); the synthetic-only "
                                      "test ED (a recognizer trained on generated words alone, tested on real test "
                                      "writers) is the generator's usefulness, beside the same with classic "
                                      "augmentation of those words where the grid has that row; D's share is "
                                      "‖∇D‖ / (‖∇D‖ + ‖balanced ∇R‖) of G's image gradient at the last evaluation."])
    add_table(s, "Final metrics of the chosen generator", table_gan(results), "gan_final.csv")
    s.text.append(fid_comparability(results))
    departures = gan_departures_text(results)
    if departures:
        s.text.append(departures)
    s.text.extend(gan_precision(results))
    for ds, e in results.get("datasets", {}).items():
        for warning in (e.get("gan") or {}).get("warnings", []):
            s.text.append(f"WARNING ({ds}): {warning}")
        seeds = (e.get("gan") or {}).get("seeds")
        if seeds:
            s.text.append(f"{ds}: the main GAN over {seeds['n_seeds']} seeds: FID {_pm_text(seeds, 'fid')}, GS "
                          f"{_pm_text(seeds, 'gs', 4)}; best FID {_num(seeds.get('best_fid'))} and best GS "
                          f"{_num(seeds.get('best_gs'), 4)}, each over its own evaluations (the paper's selection); "
                          f"{seeds['failed']} of {seeds['n_seeds']} seeds failed (diverged, or D won outright).")
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
        p = plot_gan_log(ds, e, figs / f"gan_losses_{ds}.png", _is_loss, "GAN losses, gradient norms, D's share")
        if p:
            s.figures.append((f"{ds}: GAN training losses, gradient norms and D's share of G's gradient", p))
    sections.append(s)

    s = Section("GAN variants (remedies)", ["The main GAN and each variant of its recipe (the change named), trained on "
                                            "the first dataset and scored like the main GAN; mean ± std over GAN seeds. "
                                            "None of the variants is in the paper."])
    add_table(s, "Generator quality and usefulness per GAN variant", table_variants(results), "gan_variants.csv")
    for ds, e in results.get("datasets", {}).items():
        for name, v in (e.get("variants") or {}).items():
            for row in v.get("per_seed", []):
                for warning in row.get("warnings", []):
                    s.text.append(f"WARNING ({ds}, {name}, seed {row.get('seed')}): {warning}")
    if s.tables:
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


def _pm_text(agg: dict, key: str, digits: int = 2) -> str:
    mean, std = agg.get(f"{key}_mean"), agg.get(f"{key}_std")
    return "–" if mean is None else f"{_num(mean, digits)} ± {_num(std, digits)}"


def fid_comparability(results: dict) -> str:
    """Which FID the report's numbers are, and whether they compare with the paper's."""
    finals = [(e.get("gan") or {}).get("final") or {} for e in results.get("datasets", {}).values()]
    if any(f.get("fid_inception") is not None for f in finals):
        return ("FID (Inception) uses the pytorch-fid InceptionV3 weights like the paper's FID (which was computed on "
                "25k RIMES images at 128×512); compare only at equal N and on comparable data.")
    return ("FID here uses the judge recognizer's features only: it is not comparable with the paper's (Inception) FID "
            "values shown for reference.")


# A seed "did not learn" when its validation ED never fell below STALLED_CER while another seed of
# the same row reached LEARNED_CER: a recognizer left on CTC's blank plateau, not a property of the
# row's data (at plumbing scale, where no seed learns, nothing is flagged). STALLED_CER is the
# recognizers' stall-guard threshold (htr.config.STALL_CER), spelled again: reports read results only.
STALLED_CER, LEARNED_CER = 95.0, 80.0


def _best_val_cer(seed_record: dict) -> float | None:
    """The lowest validation ED on a recognizer's training curve (None without a curve)."""
    values = [c["val_cer"] for c in seed_record.get("curve") or [] if c.get("val_cer") is not None]
    return min(values) if values else None


def _htr_rows(results: dict):
    """(dataset, row, per-seed records) of every HTR row in `results`."""
    for ds, e in results.get("datasets", {}).items():
        for row, r in ((e.get("htr") or {}).get("rows") or {}).items():
            yield ds, row, r.get("per_seed") or []


def stalled_recognizers(results: dict) -> list[str]:
    """One warning per HTR seed that stayed on CTC's blank plateau while another seed of its row learned."""
    out = []
    for ds, row, seeds in _htr_rows(results):
        best = [(x, _best_val_cer(x)) for x in seeds]
        learned = next(((x, v) for x, v in best if v is not None and v <= LEARNED_CER), None)
        if learned is None:
            continue
        for x, v in best:
            if v is not None and v >= STALLED_CER:
                out.append(f"WARNING ({ds}, {ROW_LABELS.get(row, row)}, seed {x.get('seed')}): this recognizer did "
                           f"not learn (validation ED ≥ {v:.1f} % at every evaluation, test ED {_num(x.get('cer'))} "
                           f"%) while seed {learned[0].get('seed')} of the row reached a validation ED of "
                           f"{learned[1]:.1f} %: it stayed on CTC's blank plateau, and the row's mean and std "
                           "include it.")
    return out


def recognizer_restarts(results: dict) -> list[str]:
    """One line per stall-guard restart (`--stall-steps`) recorded on a recognizer's curve."""
    out = []
    for ds, row, seeds in _htr_rows(results):
        for x in seeds:
            for c in x.get("curve") or []:
                if c.get("event") == "restart":
                    out.append(f"NOTE ({ds}, {ROW_LABELS.get(row, row)}, seed {x.get('seed')}): restarted from a new "
                               f"initialisation at step {c.get('step')} ({c.get('reason')}); its result is the "
                               "restarted run's.")
    return out


def recognizer_precision(results: dict) -> list[str]:
    """A note when recognizers trained under bf16 autocast (the recipe's `amp`, e.g. auto on a CPU
    with native bf16); none when every one trained in float32."""
    seeds = [x for _, _, per_seed in _htr_rows(results) for x in per_seed]
    bf16 = sum(1 for x in seeds if x.get("bf16"))
    if not bf16:
        return []
    return [f"NOTE: {bf16} of the {len(seeds)} recognizers of this section trained with their forward pass under "
            "bf16 autocast (the recipe's amp: on, or auto on a machine with native bf16); weights, CTC, validation "
            "and test scoring ran in float32."]


def gan_precision(results: dict) -> list[str]:
    """A note when main GANs trained under bf16 autocast (the recipe's `amp`, as their run logs
    record it); none when every one trained in float32."""
    bf16 = [ds for ds, e in results.get("datasets", {}).items()
            if any(r.get("event") == "start" and r.get("amp") for r in (e.get("gan") or {}).get("log", []))]
    if not bf16:
        return []
    return [f"NOTE: the main GAN of {', '.join(bf16)} trained under bf16 autocast (the recipe's amp: on, or auto on "
            "a machine with native bf16); weights, CTC and gradient balancing stayed in float32."]


def gan_departures_text(results: dict) -> str | None:
    """The main GAN's departures from the paper's configuration, in words (None for older results)."""
    departures = results.get("gan_departures")
    if departures is None:
        return None
    if not departures:
        return "The main GAN is the paper's configuration (at this profile's size)."
    return ("The main GAN departs from the paper's configuration in: " + "; ".join(departures) + ". Setting these "
            "fields back (under [overrides] in a study config) gives the paper's GAN at this size.")


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
    with StagingDir(out, overwrite=True) as stage:     # the previous report stays until this one is whole
        _render(results, study, stage)
    return out / "report.html"


def _render(results: dict, study: Path, out: Path) -> Path:
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
