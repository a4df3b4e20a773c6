"""Probe: keep the generated words a judge reads best (synthetic data filtered by readability).

    python -m benchmark.probes.readable_subset --data GENERATED_DIR --judge RUN --keep N --out DIR
        [--by-length] [--threads 1]

The judge (a recognizer trained on real training images only, e.g. a study's `judge` stage)
reads every image of a generated dataset (`gan generate`); each image's character error rate
against the word it was asked to draw ranks it, and the `--keep` best images (ties in dataset
order; `--by-length`: the best of each word length, in proportion to that length's images) are
written as a new dataset directory that `htr train --extra` reads. No test image is
involved: the ranking uses the judge and the generated words only. Prints the mean judge ED of
all images and of the kept ones.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
import sys
import tempfile

import editdistance

from datasets.errors import UserError
from datasets.files import StagingDir, check_new_output
from datasets.format import DatasetMeta, DatasetWriter, load_dataset


def image_errors(predictions_tsv: Path) -> dict[str, float]:
    """Per-image character error rate from an `htr eval --out-tsv` file (path, reference, hypothesis)."""
    out = {}
    with open(predictions_tsv, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f, delimiter="\t")):
            if i == 0:
                continue       # the header
            if len(row) != 3:
                raise UserError(f"{predictions_tsv}:{i + 1}: expected path, reference and hypothesis, got {len(row)} fields")
            path, ref, hyp = row
            out[path] = editdistance.eval(ref, hyp) / max(1, len(ref))
    return out


def keep_readable(entries: list[tuple[str, str]], errors: dict[str, float], keep: int,
                  by_length: bool = False) -> list[int]:
    """Indices of the `keep` entries with the lowest error, in dataset order among equals. With
    `by_length`, every word length keeps its share of `keep` (largest remainders, shorter lengths
    first among equals) from its own best, so the kept words are as long as the generated ones."""
    if keep > len(entries):
        raise UserError(f"--keep {keep}: the dataset has only {len(entries)} images")
    missing = [rel for rel, _ in entries if rel not in errors]
    if missing:
        raise UserError(f"the judge's predictions lack {len(missing)} image(s), e.g. {missing[0]}")
    rank = lambda i: (errors[entries[i][0]], i)  # noqa: E731
    if not by_length:
        return sorted(sorted(range(len(entries)), key=rank)[:keep])
    groups: dict[int, list[int]] = {}
    for i, (_, text) in enumerate(entries):
        groups.setdefault(len(text), []).append(i)
    exact = {n: keep * len(idx) / len(entries) for n, idx in groups.items()}
    quota = {n: int(q) for n, q in exact.items()}
    for n in sorted(groups, key=lambda n: (-(exact[n] - quota[n]), n))[:keep - sum(quota.values())]:
        quota[n] += 1
    return sorted(i for n, idx in groups.items() for i in sorted(idx, key=rank)[:quota[n]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="generated dataset directory")
    ap.add_argument("--judge", required=True, help="recognizer run directory (trained on real images only)")
    ap.add_argument("--keep", type=int, required=True, help="images to keep (the most readable)")
    ap.add_argument("--out", required=True, help="dataset directory to create")
    ap.add_argument("--by-length", action="store_true",
                    help="keep each word length's share of --keep (the kept words as long as the generated ones)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        import torch
        from htr.evaluate import evaluate

        torch.set_num_threads(args.threads)
        if args.keep < 1:
            raise UserError(f"--keep {args.keep}: must be ≥ 1")
        out = Path(args.out)
        check_new_output(out)          # before the judge reads anything
        data = load_dataset(args.data)
        with tempfile.TemporaryDirectory() as tmp:
            tsv = Path(tmp) / "predictions.tsv"
            evaluate(args.judge, data.root, tsv)
            errors = image_errors(tsv)
        chosen = keep_readable(data.entries, errors, args.keep, args.by_length)
        meta = DatasetMeta.from_json({**data.meta.to_json(), "stats": {}}, data.root / "meta.json")
        with StagingDir(out) as staging:
            writer = DatasetWriter(staging, meta)
            for i in chosen:
                rel, text = data.entries[i]
                writer.add_png((data.root / rel).read_bytes(), text)
            writer.close()
        mean = lambda idx: 100 * sum(errors[data.entries[i][0]] for i in idx) / len(idx)  # noqa: E731
        print(f"kept {len(chosen)} of {len(data.entries)} images: judge ED {mean(chosen):.2f} % "
              f"(all: {mean(range(len(data.entries))):.2f} %) -> {out}")
    except UserError as exc:
        print(f"readable_subset: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
