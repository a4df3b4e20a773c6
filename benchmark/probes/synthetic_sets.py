"""Probe: two changes to a generated word set that test what keeps synthetic-only recognizers off
real writers (benchmark/RESULTS.md, "What synthetic-only ED does not follow").

    python -m benchmark.probes.synthetic_sets mix SET SET [SET ...] --out DIR
    python -m benchmark.probes.synthetic_sets pitch SET --like REAL --out DIR [--seed 0]

* `mix` — several generators' sets of the *same words* (`gan generate` with the same seed on
  the same data draws the same word list) → one set of the same size whose image i comes from set
  i mod k: the words stay, the styles of k generators share the set.
* `pitch` — each image's inked extent stretched horizontally so that pixels per character
  follow the real set's spread: log(px/char) of real words is close to normal with a median and a
  spread far wider than a generator's, which lays every character on the same pitch. The stretch
  of image i is exp(μ_real − μ_set + √(σ_real² − σ_set²) · ε_i), ε_i ~ N(0, 1), so the stretched
  set's log pitch has the real mean and spread; the stretched word starts at a margin drawn from
  the real words' 10th–90th percentile, from the writing side, and is narrowed to fit the canvas
  when it would not. The statistics use words of at least `MIN_CHARS` characters (shorter words'
  extents are mostly margin and punctuation) and print beside the output.

Both write a dataset directory (`htr train --train DIR` reads it) atomically.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import sys

import numpy as np
from PIL import Image

from datasets.errors import UserError
from datasets.files import StagingDir, check_new_output
from datasets.format import Dataset, DatasetMeta, DatasetWriter, load_dataset
from gan.words import evenly_spaced, ink_columns

MIN_CHARS = 3


@dataclass(frozen=True)
class Pitch:
    """Log pixels per character of a set's inked words (mean and standard deviation) and the
    10th/90th percentiles of the blank margin on the writing side."""

    log_mean: float
    log_std: float
    margin: tuple[int, int]
    words: int

    def describe(self) -> str:
        return (f"px/char median {np.exp(self.log_mean):.2f}, log-std {self.log_std:.3f}, "
                f"margin {self.margin[0]}–{self.margin[1]} px, {self.words} words")


def measure_pitch(data: Dataset, limit: int = 4000) -> Pitch:
    """The `Pitch` of up to `limit` evenly spaced images of words with ≥ `MIN_CHARS` characters."""
    rtl = data.meta.direction == "rtl"
    long_words = [i for i, t in enumerate(data.texts) if len(t) >= MIN_CHARS]
    logs, margins = [], []
    for i in (long_words[j] for j in evenly_spaced(len(long_words), limit)):
        image = data.load_image(i)
        ink = ink_columns(image)
        if len(ink) == 0:
            continue
        logs.append(np.log((ink[-1] - ink[0] + 1) / len(data.texts[i])))
        margins.append(image.shape[1] - 1 - ink[-1] if rtl else ink[0])
    if len(logs) < 2:
        raise UserError(f"{data.root}: needs at least 2 inked images of words with ≥ {MIN_CHARS} characters, found {len(logs)}")
    lo, hi = np.percentile(margins, [10, 90])
    return Pitch(float(np.mean(logs)), float(np.std(logs)), (int(lo), int(hi)), len(logs))


def stretch(image: np.ndarray, scale: float, margin: int, rtl: bool) -> np.ndarray:
    """The image's inked columns resized to `scale` times their width (narrowed to fit), placed
    `margin` pixels from the writing side of a white canvas of the same size."""
    ink = ink_columns(image)
    if len(ink) == 0:
        return image.copy()
    height, width = image.shape
    margin = min(margin, width - 1)
    new_width = int(min(width - margin, max(1, round((ink[-1] - ink[0] + 1) * scale))))
    word = Image.fromarray(image[:, ink[0]:ink[-1] + 1]).resize((new_width, height), Image.BILINEAR)
    out = np.full_like(image, 255)
    left = width - margin - new_width if rtl else margin
    out[:, left:left + new_width] = np.asarray(word)
    return out


def _meta_like(data: Dataset, provenance: dict) -> DatasetMeta:
    """The meta of a set derived from `data` (statistics recomputed, provenance replaced)."""
    return DatasetMeta.from_json({**data.meta.to_json(), "stats": {}, "provenance": provenance}, data.root / "meta.json")


def write_mix(sets: list[Dataset], out: Path) -> None:
    """Image i of `out` from set i mod k; every set must hold the same words in the same order."""
    first = sets[0]
    for other in sets[1:]:
        if other.meta.alphabet.fingerprint != first.meta.alphabet.fingerprint or other.meta.direction != first.meta.direction:
            raise UserError(f"{other.root}: alphabet or direction differs from {first.root}'s")
        if len(other) != len(first):
            raise UserError(f"{other.root}: {len(other)} images, {first.root} has {len(first)}: the sets must hold the same words")
        for line, (a, b) in enumerate(zip(first.texts, other.texts), start=1):
            if a != b:
                raise UserError(f"{other.root}/labels.tsv:{line}: word {b!r}, {first.root} has {a!r} there: "
                                f"the sets must hold the same words (generate them with the same seed)")
    meta = _meta_like(first, {"mix": [str(s.root) for s in sets]})
    with StagingDir(out) as staging:
        writer = DatasetWriter(staging, meta)
        for i, text in enumerate(first.texts):
            source = sets[i % len(sets)]
            writer.add_png(source.image_path(i).read_bytes(), text)
        writer.close()


def write_pitch(data: Dataset, real: Pitch, own: Pitch, out: Path, seed: int) -> None:
    """Every image of `data` stretched so that its log pitch follows `real`'s (module docstring)."""
    rng = np.random.default_rng([seed, 11])
    spread = float(np.sqrt(max(0.0, real.log_std ** 2 - own.log_std ** 2)))
    rtl = data.meta.direction == "rtl"
    meta = _meta_like(data, {"pitch": {"from": str(data.root), "seed": seed, "spread": round(spread, 4),
                                       "shift": round(real.log_mean - own.log_mean, 4)}})
    with StagingDir(out) as staging:
        writer = DatasetWriter(staging, meta)
        for i, text in enumerate(data.texts):
            scale = float(np.exp(real.log_mean - own.log_mean + spread * rng.standard_normal()))
            margin = int(rng.integers(real.margin[0], real.margin[1] + 1))
            writer.add(stretch(data.load_image(i), scale, margin, rtl), text)
        writer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    mix = sub.add_parser("mix", help="one set whose image i comes from set i mod k (same words)")
    mix.add_argument("sets", nargs="+", metavar="SET", help="generated dataset directories (at least 2)")
    pitch = sub.add_parser("pitch", help="stretch each word so pixels per character spread like the real set's")
    pitch.add_argument("set", metavar="SET", help="generated dataset directory")
    pitch.add_argument("--like", required=True, help="real dataset directory whose pitch to follow")
    pitch.add_argument("--seed", type=int, default=0)
    for p in (mix, pitch):
        p.add_argument("--out", required=True, help="dataset directory to create")
    args = ap.parse_args(argv)
    try:
        out = Path(args.out)
        check_new_output(out)
        if args.command == "mix":
            if len(args.sets) < 2:
                raise UserError(f"mix needs at least 2 sets, got {len(args.sets)}")
            write_mix([load_dataset(s) for s in args.sets], out)
            print(f"mixed {len(args.sets)} sets -> {out}")
        else:
            data, like = load_dataset(args.set), load_dataset(args.like)
            if like.meta.direction != data.meta.direction:
                raise UserError(f"{args.like}: direction {like.meta.direction}, {args.set} is {data.meta.direction}")
            real, own = measure_pitch(like), measure_pitch(data)
            write_pitch(data, real, own, out, args.seed)
            print(f"real: {real.describe()}\nset:  {own.describe()}\nwrote {len(data)} stretched images -> {out}")
    except UserError as exc:
        print(f"synthetic_sets: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
