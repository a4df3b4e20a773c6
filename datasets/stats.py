"""What a user looks at before training on a dataset (`htraug data stats DIR`): per split the
images, distinct words and characters (the paper's Table I), writers and the writers a split
shares with train, the widths the images take at the canvas height (a histogram) and how many the
canvas (height × width) drops; the alphabet and the characters the labels use; what the import
left out."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from .errors import UserError
from .format import load_dataset, read_meta, table1_stats

PAPER_CANVAS = (128, 512)
HISTOGRAM_BINS = 8   # bins of width/8 up to the canvas width, then one bin for the dropped images


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:   # PIL raises many types for corrupt data
        return None


def split_report(root: Path, height: int, width: int) -> dict:
    """Figures of one dataset directory at the canvas height × width."""
    ds = load_dataset(root)
    bins = [0] * (HISTOGRAM_BINS + 1)
    dropped = unreadable = 0
    step = width / HISTOGRAM_BINS
    for rel, _ in ds.entries:
        size = _image_size(root / rel)
        if size is None or size[0] == 0 or size[1] == 0:
            unreadable += 1
            continue
        w = max(1, int(round(size[0] * height / size[1])))   # the rounding of preprocess.fit_to_canvas
        if w > width:
            dropped += 1
            bins[-1] += 1
        else:
            bins[min(HISTOGRAM_BINS - 1, int((w - 1) // step))] += 1
    writers = set(ds.meta.writers.get(rel) for rel, _ in ds.entries) - {None}
    return {**table1_stats(ds.texts), "writers": len(writers), "dropped": dropped, "unreadable": unreadable,
            "width_histogram": bins, "_writer_ids": writers, "_chars": {c for t in ds.texts for c in t},
            "alphabet": ds.meta.alphabet.to_json()}


def dataset_report(path, height: int | None = None, width: int | None = None) -> dict:
    """The report of a collection (every split and 'all') or of one dataset directory."""
    path = Path(path)
    meta = read_meta(path)
    if height is None:
        imp = meta.get("importer") or {}
        height = meta.get("height") or imp.get("height") or PAPER_CANVAS[0]
        width = width or meta.get("width") or imp.get("width") or 4 * height
    width = width or 4 * height
    if height < 1 or width < 1:
        raise UserError(f"--height {height} --width {width}: the canvas must be at least 1x1")
    splits = meta.get("splits", []) if meta.get("kind") == "collection" else None
    dirs = {s: path / s for s in splits} if splits is not None else {meta.get("split", "all"): path}
    per = {s: split_report(d, height, width) for s, d in dirs.items()}
    first = next(iter(per.values()))
    alphabet = meta.get("alphabet", first["alphabet"])
    symbols = alphabet["symbols"] if isinstance(alphabet, dict) else str(alphabet)
    used = set().union(*(r["_chars"] for r in per.values()))
    train_writers = per.get("train", {}).get("_writer_ids", set())
    all_writers = set().union(*(r["_writer_ids"] for r in per.values()))
    out = {"path": str(path), "name": meta.get("name"), "language": meta.get("language"),
           "direction": meta.get("direction"), "canvas": [height, width], "splits": {}}
    for s, r in per.items():
        entry = {k: v for k, v in r.items() if not k.startswith("_") and k != "alphabet"}
        if s != "train" and train_writers:
            entry["writers_shared_with_train"] = len(r["_writer_ids"] & train_writers)
        out["splits"][s] = entry
    if len(per) > 1:
        texts_all = [t for d in dirs.values() for t in load_dataset(d).texts]
        out["splits"]["all"] = {**table1_stats(texts_all), "writers": len(all_writers),
                                "dropped": sum(r["dropped"] for r in per.values()),
                                "unreadable": sum(r["unreadable"] for r in per.values()),
                                "width_histogram": [sum(col) for col in zip(*(r["width_histogram"] for r in per.values()))]}
    out["alphabet"] = {"name": alphabet.get("name") if isinstance(alphabet, dict) else None, "size": len(symbols),
                       "used": "".join(c for c in symbols if c in used), "unused": "".join(c for c in symbols if c not in used)}
    if meta.get("text_normalization"):
        out["text_normalization"] = meta["text_normalization"]
    if meta.get("skipped") is not None:
        out["skipped_at_import"] = meta["skipped"]
        if meta.get("report") and (path / meta["report"]).is_file():
            out["import_report"] = str(path / meta["report"])
    return out


def format_report(rep: dict) -> str:
    """The report as text: a table per split, the width histogram, the alphabet, what was left out."""
    h, w = rep["canvas"]
    lines = [f"{rep['path']}  ({rep.get('name')}, {rep.get('language')}, {rep.get('direction')})",
             f"{'split':<8}{'images':>9}{'words':>9}{'chars':>7}{'writers':>9}{'shared':>8}  dropped at {h}x{w}"]
    for s, r in rep["splits"].items():
        shared = r.get("writers_shared_with_train", "")
        pct = 100.0 * r["dropped"] / max(1, r["images"])
        lines.append(f"{s:<8}{r['images']:>9}{r['words']:>9}{r['characters']:>7}{r['writers']:>9}{shared!s:>8}"
                     f"  {r['dropped']} ({pct:.1f} %)" + (f", {r['unreadable']} unreadable" if r["unreadable"] else ""))
    hist = rep["splits"].get("all", next(iter(rep["splits"].values())))["width_histogram"]
    total = max(1, sum(hist))
    step = w / HISTOGRAM_BINS
    lines.append(f"width at height {h} (images per bin; > {w} is dropped):")
    for i, n in enumerate(hist):
        label = f"> {w}" if i == HISTOGRAM_BINS else f"{int(i * step) + 1}-{int((i + 1) * step)}"
        lines.append(f"  {label:>10} {n:>8}  {'#' * int(round(40 * n / total))}")
    a = rep["alphabet"]
    lines.append(f"alphabet {a['name']}: {a['size']} symbols, {len(a['used'])} used"
                 + (f"; unused: {a['unused']}" if a["unused"] else ""))
    if rep.get("text_normalization"):
        lines.append(f"text normalisation: {rep['text_normalization']}")
    if "skipped_at_import" in rep:
        left = rep["skipped_at_import"]
        lines.append("left out at import: " + (", ".join(f"{k} {v}" for k, v in left.items()) or "nothing")
                     + (f" (see {rep['import_report']})" if left and rep.get("import_report") else ""))
    return "\n".join(lines)
