"""`htraug metrics fid|kid|gs|readability|text`."""
from __future__ import annotations

import argparse
import json

from datasets.options import non_negative_int, number, positive_float, positive_int


def register(group) -> None:
    """Fill the `metrics` command group."""
    _add_fid_kid(group, "fid", "Fréchet distance of feature Gaussians (FID)")
    _add_fid_kid(group, "kid", "Kernel Inception Distance (unbiased MMD², cubic kernel)")
    _add_gs(group)
    _add_readability(group)
    _add_text(group)
    _add_diversity(group)


SOURCE_HELP = "dataset directory, folder of same-size images, or .npy (N,H,W uint8 images or N,D features)"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, metavar="PATH", help=SOURCE_HELP)
    p.add_argument("--fake", required=True, metavar="PATH", help=SOURCE_HELP)
    p.add_argument("--n", type=positive_int, default=None, metavar="N", help="seeded subsample of N per side (default: all)")
    p.add_argument("--height", type=positive_int, default=None, help="preprocessing height of dataset directories (default: meta.json / judge)")
    p.add_argument("--width", type=positive_int, default=None, help="preprocessing width of dataset directories")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_fid_kid(metrics, name: str, help: str) -> None:
    p = metrics.add_parser(name, help=help, description=f"{help}, from inception or judge-recognizer features. "
                           "Values depend on the sample size: compare at equal N and with the same extractor.")
    _add_common(p)
    p.add_argument("--features", choices=("inception", "htr"), default="inception")
    p.add_argument("--inception-weights", metavar="FILE", default=None,
                   help="pytorch-fid pt_inception-2015-12-05-6726825d.pth (or $HTRAUG_INCEPTION_WEIGHTS)")
    p.add_argument("--judge", metavar="RUN", default=None, help="judge recognizer run directory or checkpoint (--features htr)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default="cpu")
    if name == "kid":
        p.add_argument("--subsets", type=positive_int, default=100, help="number of random subsets")
        p.add_argument("--subset-size", type=number(int, min=2), default=1000)
    else:
        p.add_argument("--no-cache", action="store_true", help="no cache at all: neither feature statistics nor the "
                       "packed images of dataset directories are read or written")
    p.set_defaults(func=fid_command if name == "fid" else kid_command)


def _add_gs(metrics) -> None:
    p = metrics.add_parser("gs", help="Geometry Score (Khrulkov & Oseledets 2018) of flattened images or points",
                           description="Geometry Score: squared L2 distance of mean relative living times of H1 "
                                       "of witness complexes (gudhi), over random landmark sets.")
    _add_common(p)
    p.add_argument("--reps", type=positive_int, default=100, help="landmark repetitions per set")
    p.add_argument("--landmarks", type=positive_int, default=64)
    p.add_argument("--gamma", type=positive_float, default=None, help="relaxation factor (default 1/128 · N/5000)")
    p.add_argument("--i-max", type=positive_int, default=100)
    p.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: available CPUs)")
    p.set_defaults(func=gs_command)


def _add_diversity(metrics) -> None:
    p = metrics.add_parser("diversity", help="same-word variation of generated images against real writers' (1 = as varied, 0 = collapse)",
                           description="Diversity: per word, the mean pairwise distance between generated images (one word, "
                                       "several z) divided by the same between real images of the word by different "
                                       "writers, averaged over the k most written words (docs/DESIGN.md §7.5).")
    p.add_argument("--real", required=True, metavar="DIR", help="real dataset directory (writers from its meta.json)")
    p.add_argument("--fake", required=True, metavar="DIR", help="generated dataset directory (each word several times)")
    p.add_argument("--judge", metavar="RUN", default=None, help="judge recognizer: distances between its pooled features too")
    p.add_argument("--k", type=positive_int, default=32, help="words at most (default 32)")
    p.add_argument("--m", type=number(int, min=2), default=8, help="images per word and side at most (default 8)")
    p.add_argument("--height", type=positive_int, default=None, help="preprocessing height (default: meta.json / judge)")
    p.add_argument("--width", type=positive_int, default=None, help="preprocessing width")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=diversity_command)


def _add_readability(metrics) -> None:
    p = metrics.add_parser("readability", help="ED/WER of a judge recognizer on generated words",
                           description="Readability of generated word images: the judge recognizer's ED/WER against "
                                       "the words in the generated dataset's labels.tsv.")
    p.add_argument("--fake", required=True, metavar="DIR", help="generated dataset directory")
    p.add_argument("--judge", required=True, metavar="RUN", help="judge recognizer run directory or checkpoint")
    p.add_argument("--n", type=positive_int, default=None)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=readability_command)


def _add_text(metrics) -> None:
    from datasets.options import add_arguments

    from .text import TextNormalization

    p = metrics.add_parser(
        "text", help="ED/WER between a reference and a hypothesis file (one transcription per line)",
        description="Corpus-level character edit distance (ED %) and word error rates between two UTF-8 "
                    "files compared line by line, case-sensitive and case-insensitive. WER (`wer`) is the share "
                    "of lines that differ from their reference, the WER of word images (`word_accuracy` = "
                    "100 - WER); line WER (`line_wer`) is the word-level edit distance over the reference words "
                    "(words split at whitespace or ▁), the WER of text lines. The normalisation options apply to "
                    "both files alike and are recorded in the JSON (`normalization`).")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference transcriptions, one per line")
    p.add_argument("--hyp", required=True, metavar="FILE", help="hypotheses, one per line (same order)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_arguments(p, TextNormalization)
    p.set_defaults(func=text_command)


def _emit(result: dict, as_json: bool, lines: list[str]) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print("\n".join(lines))
    return 0


def fid_command(args) -> int:
    from .registry import compute

    import sys

    r = compute("fid", args.real, args.fake, features=args.features, n=args.n, inception_weights=args.inception_weights,
                judge=args.judge, batch_size=args.batch_size, device=args.device, seed=args.seed,
                height=args.height, width=args.width, cache=not args.no_cache)
    if r.get("singular"):
        print(f"htraug: warning: FID from {min(r['n_real'], r['n_fake'])} samples in {r['dim']} feature dimensions: "
              "the covariance is singular and the value says little; use more images than dimensions "
              "(the JSON says \"singular\": true)", file=sys.stderr)
    return _emit(r, args.json, [f"FID ({r['features']} features, N real {r['n_real']}, N fake {r['n_fake']}): {r['fid']:.4f}"])


def kid_command(args) -> int:
    from .registry import compute

    r = compute("kid", args.real, args.fake, features=args.features, n=args.n, subsets=args.subsets,
                subset_size=args.subset_size, inception_weights=args.inception_weights, judge=args.judge,
                batch_size=args.batch_size, device=args.device, seed=args.seed, height=args.height, width=args.width)
    return _emit(r, args.json, [f"KID ({r['features']} features, N real {r['n_real']}, N fake {r['n_fake']}, "
                                f"{r['subsets']} subsets of {r['subset_size']}): {r['kid']:.6f} ± {r['kid_std']:.6f}"])


def gs_command(args) -> int:
    from .registry import compute

    r = compute("gs", args.real, args.fake, n=args.n, height=args.height, width=args.width, sample_seed=args.seed,
                landmarks=args.landmarks, reps=args.reps, gamma=args.gamma, i_max=args.i_max, seed=args.seed,
                workers=args.workers)
    modes = f"β₁ mode real {max(range(len(r['mrlt_real'])), key=r['mrlt_real'].__getitem__)}, " \
            f"fake {max(range(len(r['mrlt_fake'])), key=r['mrlt_fake'].__getitem__)}"
    return _emit(r, args.json, [f"GS (N real {r['n_real']}, N fake {r['n_fake']}, {r['reps']} reps, "
                                f"{r['landmarks']} landmarks): {r['gs']:.6g} ({modes})"])


def readability_command(args) -> int:
    from .registry import compute

    r = compute("readability", None, args.fake, judge=args.judge, n=args.n, seed=args.seed,
                batch_size=args.batch_size, device=args.device)
    if args.json:
        r = {k: v for k, v in r.items() if k != "hypotheses"}
    return _emit(r, args.json, [f"readability of {args.fake} ({r['n']} words): ED {r['cer']:.2f}% WER {r['wer']:.2f}% "
                                f"(case-insensitive ED {r['cer_ci']:.2f}% WER {r['wer_ci']:.2f}%)"])


def text_command(args) -> int:
    """`htraug metrics text --ref FILE --hyp FILE [--json] [--normalize nfc|nfkc] [--strip-diacritics] [--strip-punct]`."""
    from datasets.errors import UserError
    from datasets.format import read_lines
    from datasets.options import from_args

    from .text import TextNormalization, format_text_metrics, text_metrics

    refs, hyps = read_lines(args.ref), read_lines(args.hyp)
    if len(refs) != len(hyps):
        raise UserError(f"{args.ref} has {len(refs)} lines but {args.hyp} has {len(hyps)}; lines are compared in order")
    if not refs:
        raise UserError(f"{args.ref}: no lines to compare")
    m = text_metrics(refs, hyps, from_args(TextNormalization, args))
    return _emit(m, args.json, [format_text_metrics(m, unit="lines")])


def diversity_command(args) -> int:
    """`htraug metrics diversity --real DIR --fake DIR [--judge RUN]`."""
    from .registry import compute

    r = compute("diversity", args.real, args.fake, judge=args.judge, k=args.k, m=args.m, seed=args.seed,
                device=args.device, height=args.height, width=args.width)
    space = "judge features" if "diversity_features" in r else "pixels"
    return _emit(r, args.json, [f"diversity ({space}, {r['diversity_words']} words, ≤ {r['diversity_m']} images each): "
                                f"{r['diversity']:.3f} (pixels {r['diversity_pixels']:.3f})"])
