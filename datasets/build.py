"""Offline stand-in datasets (docs/DESIGN.md §5): `rimes-like` (French) and `arabic-like` word images.

`build_standin` writes a collection OUT/{train,val,test} plus OUT/samples.png. Writers (font ×
fixed style) are split disjointly between train, val and test, so test writers are unseen. Work
is cut into fixed-size chunks, each with its own seed, so the bytes written do not depend on the
number of worker processes. The whole OUT is staged and renamed into place on success.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import multiprocessing as mp
from pathlib import Path
import sys

import numpy as np
from PIL import Image

from .alphabet import LANGUAGE_DIRECTION, Alphabet, for_language, is_rtl
from .cpus import available_cpus
from .errors import UserError
from .fonts import FontInfo, load_pool, require_raqm, uncovered
from .files import StagingDir, check_new_output
from .format import DatasetMeta, DatasetWriter, write_collection_meta
from .options import Options, option, parse_comma_list
from .progress import progress
from .render import Renderer, WriterStyle, encode_png, random_writer
from .words import WordPrior, make_prior

KINDS = {"rimes-like": "fr", "arabic-like": "ar"}
SPLITS = ("train", "val", "test")
CHUNK = 64  # images per task; fixed so that output is independent of the worker count


@dataclass(frozen=True, kw_only=True)
class BuildConfig(Options):
    """Everything that determines a stand-in dataset's bytes (workers and progress do not); the
    options of `htraug data build`, checked on construction."""

    kind: str = option(help="which stand-in to build", flag="--dataset", choices=tuple(KINDS))
    n_train: int = option(2000, "training images", flag="--train", metavar="N", min=1)
    n_val: int = option(300, "validation images", flag="--val", metavar="N", min=0)
    n_test: int = option(300, "test images", flag="--test", metavar="N", min=0)
    height: int = option(128, "image height in pixels (the paper's: 128)", metavar="H", min=8)
    width: int = option(512, "image width; wider words are rejected and counted", metavar="W", min=8)
    seed: int = option(0, "random seed", min=0)
    fonts: tuple[str, ...] | None = option(None, "comma-separated font file names or paths replacing the default pool",
                                           metavar="LIST", parse=parse_comma_list)
    writers_per_font: int = option(24, "synthetic writers (styles) per font (train, val and test need their own)",
                                   metavar="K", min=3)

    def check(self) -> None:
        if self.width < self.height:
            raise UserError(f"image size {self.height}x{self.width}: the width must be ≥ the height")

    @property
    def counts(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}


@dataclass(frozen=True)
class _Task:
    split: str
    split_index: int
    chunk: int
    n: int


@dataclass
class _Context:
    """What every worker needs to render chunks (sent once per worker process)."""

    config: BuildConfig
    pool: list[FontInfo]
    prior: WordPrior
    direction: str
    writers: dict[str, list[WriterStyle]]


def make_writers(pool: list[FontInfo], per_font: int, direction: str, seed: int) -> list[WriterStyle]:
    """`per_font` writers for every font of the pool, styles drawn from the seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    writers = []
    for fi, font in enumerate(pool):
        stem = Path(font.name).stem
        for k in range(per_font):
            writers.append(random_writer(f"{stem}-{k:02d}", fi, direction, rng))
    return writers


def split_writers(writers: list[WriterStyle], counts: dict[str, int], seed: int) -> dict[str, list[WriterStyle]]:
    """Assign writers to splits disjointly, per font, in proportion to the split sizes."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    active = [s for s in SPLITS if counts[s] > 0]
    total = sum(counts[s] for s in active)
    out: dict[str, list[WriterStyle]] = {s: [] for s in SPLITS}
    by_font: dict[int, list[WriterStyle]] = {}
    for w in writers:
        by_font.setdefault(w.font, []).append(w)
    for font in sorted(by_font):
        group = [by_font[font][i] for i in rng.permutation(len(by_font[font]))]
        n = len(group)
        # at least one writer per active split, the rest in proportion (largest remainder)
        quota = {s: 1 for s in active}
        rest = n - len(active)
        ideal = {s: rest * counts[s] / total for s in active}
        for s in active:
            quota[s] += int(ideal[s])
        left = n - sum(quota.values())
        for s in sorted(active, key=lambda s: (-(ideal[s] - int(ideal[s])), SPLITS.index(s)))[:left]:
            quota[s] += 1
        i = 0
        for s in active:
            out[s].extend(group[i:i + quota[s]])
            i += quota[s]
    return out


def _render_chunk(ctx: _Context, renderer: Renderer, task: _Task) -> tuple[list[tuple[bytes, str, str]], int, int]:
    """Render one chunk: (png, text, writer id) items, and counts of too-wide and uncovered words."""
    rng = np.random.default_rng(np.random.SeedSequence([ctx.config.seed, 3, task.split_index, task.chunk]))
    writers = ctx.writers[task.split]
    items: list[tuple[bytes, str, str]] = []
    too_wide = no_font = attempts = 0
    while len(items) < task.n:
        attempts += 1
        if attempts > 200 * task.n + 1000:
            raise UserError(f"cannot render {task.n} words that fit {ctx.config.height}x{ctx.config.width} "
                            f"({too_wide} too wide, {no_font} without a covering font): widen the canvas")
        word = ctx.prior.sample(1, rng)[0]
        writer = writers[int(rng.integers(len(writers)))]
        if not ctx.pool[writer.font].covers(word):
            ok = [w for w in writers if ctx.pool[w.font].covers(word)]
            if not ok:
                no_font += 1
                continue
            writer = ok[int(rng.integers(len(ok)))]
        image = renderer.render(word, writer, rng)
        if image is None:
            too_wide += 1
            continue
        items.append((encode_png(image), word, writer.writer_id))
    return items, too_wide, no_font


_WORKER: tuple[_Context, Renderer] | None = None  # per worker process, set by the pool initializer


def _init_worker(ctx: _Context) -> None:
    global _WORKER
    _WORKER = (ctx, Renderer(ctx.pool, ctx.direction, ctx.config.height, ctx.config.width))


def _worker_chunk(task: _Task):
    ctx, renderer = _WORKER
    return _render_chunk(ctx, renderer, task)


def _tasks(config: BuildConfig) -> list[_Task]:
    tasks = []
    for si, split in enumerate(SPLITS):
        n = config.counts[split]
        for c, start in enumerate(range(0, n, CHUNK)):
            tasks.append(_Task(split, si, c, min(CHUNK, n - start)))
    return tasks


def _run_tasks(ctx: _Context, tasks: list[_Task], workers: int, show_progress: bool):
    """Yield (task, result) in task order, rendering in `workers` processes."""
    total = sum(t.n for t in tasks)
    bar = progress(total=total, desc=f"rendering {ctx.config.kind}", disable=not show_progress)
    try:
        if workers <= 1:
            renderer = Renderer(ctx.pool, ctx.direction, ctx.config.height, ctx.config.width)
            for t in tasks:
                res = _render_chunk(ctx, renderer, t)
                bar.update(t.n)
                yield t, res
            return
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        with mp.get_context(method).Pool(workers, initializer=_init_worker, initargs=(ctx,)) as pool:
            for t, res in zip(tasks, pool.imap(_worker_chunk, tasks)):
                bar.update(t.n)
                yield t, res
    finally:
        bar.close()


def sample_grid(images: dict[str, list[np.ndarray]], path: Path, rows: int = 6) -> None:
    """Save a grid: one column per split, `rows` images each at half size."""
    cols = [s for s in SPLITS if images.get(s)]
    if not cols:
        return
    h, w = images[cols[0]][0].shape
    th, tw = max(1, h // 2), max(1, w // 2)
    gap = 4
    grid = np.full((rows * (th + gap) + gap, len(cols) * (tw + gap) + gap), 200, dtype=np.uint8)
    for ci, s in enumerate(cols):
        for ri, img in enumerate(images[s][:rows]):
            small = np.asarray(Image.fromarray(img).resize((tw, th), Image.BILINEAR))
            y, x = gap + ri * (th + gap), gap + ci * (tw + gap)
            grid[y:y + th, x:x + tw] = small
    Image.fromarray(grid).save(path, format="PNG", compress_level=6)


def build_standin(kind: str, out, n_train: int = 2000, n_val: int = 300, n_test: int = 300,
                  height: int = 128, width: int = 512, seed: int = 0, fonts=None, font_dir=None,
                  workers: int | None = None, show_progress: bool = True, overwrite: bool = False,
                  writers_per_font: int = 24) -> Path:
    """Build a stand-in collection at `out` (train/val/test dataset directories + samples.png)."""
    if isinstance(fonts, str):
        fonts = [f.strip() for f in fonts.split(",") if f.strip()]
    config = BuildConfig(kind=kind, n_train=n_train, n_val=n_val, n_test=n_test, height=height, width=width, seed=seed,
                         fonts=tuple(fonts) if fonts else None, writers_per_font=writers_per_font)
    check_new_output(out, overwrite)       # before the font pool is loaded
    language = KINDS[kind]
    direction = LANGUAGE_DIRECTION[language]
    alphabet = for_language(language)
    if is_rtl(direction):
        require_raqm()
    pool = load_pool(language, alphabet, list(config.fonts) if config.fonts else None, font_dir)
    prior = make_prior(language, alphabet)
    writers = make_writers(pool, config.writers_per_font, direction, seed)
    ctx = _Context(config, pool, prior, direction, split_writers(writers, config.counts, seed))
    workers = max(1, int(workers or available_cpus()))
    out = Path(out)
    with StagingDir(out, overwrite=overwrite) as stage:
        datasets = _write_splits(ctx, alphabet, stage, workers, show_progress)
        rejected = {s: {k: datasets[s].meta.stats[k] for k in ("rejected_too_wide", "rejected_no_font")}
                    for s in datasets}
        extra = {
            "builder": {"command": "htraug data build", **_config_json(config)},
            "fonts": [{"file": f.name, "package": f.package} for f in pool],
            "fonts_missing_characters": uncovered(pool, alphabet),
            "prior": {"source": prior.source, "size": len(prior)},
            "rejected": rejected,
            "writers": {s: [w.writer_id for w in ctx.writers[s]] for s in datasets},
            "writer_styles": {w.writer_id: {k: v for k, v in asdict(w).items() if k != "writer_id"} | {"font": pool[w.font].name}
                              for w in writers},
        }
        write_collection_meta(stage, kind, language, direction, alphabet, datasets, extra)
        grid = {s: [np.asarray(Image.open(datasets[s].root / rel)) for rel, _ in datasets[s].entries[:6]]
                for s in datasets}
        sample_grid(grid, stage / "samples.png")
    return out


def _config_json(config: BuildConfig) -> dict:
    d = asdict(config)
    d["fonts"] = list(config.fonts) if config.fonts else None
    return d


def _write_splits(ctx: _Context, alphabet: Alphabet, stage: Path, workers: int, show_progress: bool) -> dict:
    """Render every split into stage/<split>; returns the closed datasets."""
    cfg = ctx.config
    language = KINDS[cfg.kind]
    provenance = {"builder": "htraug data build", "kind": cfg.kind, "seed": cfg.seed,
                  "fonts": [f.name for f in ctx.pool], "prior": ctx.prior.source}
    writers: dict[str, DatasetWriter] = {}
    rejected = {s: [0, 0] for s in SPLITS}
    for s in SPLITS:
        if cfg.counts[s] > 0:
            meta = DatasetMeta(name=cfg.kind, language=language, direction=ctx.direction, alphabet=alphabet,
                               height=cfg.height, width=cfg.width, split=s, provenance=dict(provenance))
            writers[s] = DatasetWriter(stage / s, meta)
    for task, (items, too_wide, no_font) in _run_tasks(ctx, _tasks(cfg), workers, show_progress):
        w = writers[task.split]
        for png, text, writer_id in items:
            w.add_png(png, text, writer=writer_id)
        rejected[task.split][0] += too_wide
        rejected[task.split][1] += no_font
    out = {}
    for s, w in writers.items():
        w.meta.stats = {"rejected_too_wide": rejected[s][0], "rejected_no_font": rejected[s][1],
                        "writers": len(ctx.writers[s])}
        out[s] = w.close()
    return out
