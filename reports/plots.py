"""The report's PNG plots (matplotlib, Agg), built from results.json, and the figure saving helper."""
from __future__ import annotations

import math
from pathlib import Path

from datasets.files import atomic_file

from .published import PAPER_LABEL, ROW_LABELS, load_paper


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
    return k.startswith("loss") or k.endswith("_loss") or k.startswith("grad_") or k in ("d_share", "d_real_sign", "augment_p")


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
        g = [(p["real"].get("n_real") or p["fraction"], p.get("gain_cer"), p.get("paired_gain_cer_std") or 0)
             for p in sweep if p.get("gain_cer") is not None and p.get("real")]
        if g:
            axes[1].errorbar([x for x, _, _ in g], [y for _, y, _ in g], yerr=[e for _, _, e in g], marker="o",
                             color=f"C{i}", capsize=3, label=ds)
    axes[0].set_xlabel("real training images")
    axes[0].set_ylabel("test ED %")
    axes[0].set_title("error vs amount of real data")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("real training images")
    axes[1].set_ylabel("ED gain (real − real+synthetic), points")
    axes[1].set_title("gain from synthetic data (bars: std over paired seeds)")
    xs = [p[r].get("n_real") or p["fraction"] for _, sw in sets for p in sw for r in ("real", "real+synthetic") if p.get(r)]
    for ax in axes:
        if xs and max(xs) >= 10 * min(xs):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
