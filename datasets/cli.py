"""`htraug data ...`: build stand-in datasets, import real ones, print Table I statistics."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import UserError


def register(group) -> None:
    """Fill the `data` command group (build, import, stats)."""
    fmt = argparse.RawDescriptionHelpFormatter

    b = group.add_parser(
        "build", formatter_class=fmt, help="render an offline stand-in word dataset from fonts and word frequencies",
        description="Render a stand-in word dataset (a collection OUT/train, OUT/val, OUT/test and "
                    "OUT/samples.png) from handwriting-like fonts and wordfreq word frequencies.\n"
                    "rimes-like: French, the 86-symbol RIMES alphabet; arabic-like: Arabic (needs raqm/FriBiDi).\n"
                    "Train, val and test use disjoint writers (font + fixed style). The output is byte-identical "
                    "for the same options and seed, whatever --workers.",
        epilog="example: htraug data build --dataset rimes-like --out data/rimes-like --train 20000 --val 2000 --test 2000")
    from .build import BuildConfig
    from .options import add_arguments, positive_int

    add_arguments(b, BuildConfig, required=("kind",), skip=("fonts",))
    b.add_argument("--out", required=True, type=Path, help="output collection folder (must not exist unless --overwrite)")
    fonts = b.add_mutually_exclusive_group()
    add_arguments(fonts, BuildConfig, skip=tuple(f for f in BuildConfig.__dataclass_fields__ if f != "fonts"))
    fonts.add_argument("--font-dir", metavar="DIR", help="look the default pool's fonts up in DIR instead of the system font folders")
    b.add_argument("--workers", type=positive_int, default=None, metavar="W", help="rendering processes (default: all CPU cores); does not change the output")
    b.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    b.set_defaults(func=_cmd_build)

    from .importers.options import ImportOptions

    i = group.add_parser(
        "import", formatter_class=fmt, help="import a real dataset as distributed (RIMES, IAM, KHATT, MADCAT, folder + TSV)",
        description="Convert a real dataset, laid out as it is distributed, into the htraug collection format\n"
                    "(OUT/train, OUT/val, OUT/test: grey PNG originals, labels.tsv, meta.json; OUT/import_report.tsv).\n"
                    "  rimes   RIMES 2011 words: groundtruth_training_icdar2011.txt, ground_truth_validation_icdar2011.txt,\n"
                    "          grount_truth_test_icdar2011.txt with trainingsnippets_icdar/training_WR/,\n"
                    "          validationsnippets_icdar/testdataset_ICDAR/, data_test/ (found under ROOT)\n"
                    "  iam     ascii/words.txt + words/ (word level; 'err' segmentations excluded) or, with --level line,\n"
                    "          ascii/lines.txt + lines/; writers from forms.txt; splits from --list or trainset.txt,\n"
                    "          validationset1.txt + validationset2.txt, testset.txt when present\n"
                    "  khatt   LineImages.../{Train,Validate,Test}/*.tif with the parallel GroundTruth.../...TextUnicodeTruthValues...\n"
                    "          tree (Windows-1256 or UTF-8). LINE LEVEL: KHATT has no word boxes, so each line is imported\n"
                    "          whole (spaces become the space symbol); nothing is segmented, and with --height the lines\n"
                    "          wider than the canvas are left out and reported (most lines, on a 4:1 word canvas)\n"
                    "  madcat  OpenHaRT/MADCAT madcat/<page>.madcat.xml with images/<page>.tif: WORD SEGMENTATION from the\n"
                    "          dataset's boxes: every <token ref_id=...> is cropped to its <token-image> outline;\n"
                    "          splits from --list or *.lineid files (madcat.train.raw.lineid, ...)\n"
                    "  tsv     *.tsv files with 'image_path<TAB>transcription[<TAB>writer]'\n"
                    "Splits: the dataset's own (files, folders, lists), else a seeded split by writer. Bad records are\n"
                    "left out and listed in OUT/import_report.tsv with a one-line summary per reason on stderr\n"
                    "(--on-bad skip), or stop the import with a one-line error naming file:line (--on-bad error);\n"
                    "either way nothing is written unless the import succeeds.",
        epilog="example: htraug data import --format rimes --root RIMES --out data/rimes --height 128")
    add_arguments(i, ImportOptions, required=("fmt", "root"))
    i.add_argument("--out", required=True, type=Path, help="output collection folder")
    i.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    i.set_defaults(func=_cmd_import)

    s = group.add_parser("stats", help="what to look at before training: counts, writers, widths, canvas drops",
                         description="Print, per split of a collection (or for one dataset directory): images, "
                                     "distinct words and characters (the paper's Table I), writers and those shared "
                                     "with train, a histogram of the widths at the canvas height and how many images "
                                     "the canvas drops as too wide; the alphabet and the symbols the labels use; what "
                                     "the import left out.")
    s.add_argument("dir", type=Path, metavar="DIR", help="dataset directory or collection folder")
    s.add_argument("--height", type=positive_int, metavar="H",
                   help="canvas height (default: the dataset's, else the import's, else 128, the paper's)")
    s.add_argument("--width", type=positive_int, metavar="W", help="canvas width (default 4 x H)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=_cmd_stats)


def _cmd_build(args) -> int:
    from .build import BuildConfig, build_standin
    from .options import from_args

    c = from_args(BuildConfig, args)
    out = build_standin(c.kind, args.out, c.n_train, c.n_val, c.n_test, c.height, c.width, c.seed, fonts=c.fonts,
                        font_dir=args.font_dir, workers=args.workers, overwrite=args.overwrite,
                        writers_per_font=c.writers_per_font)
    _print_stats(out)
    return 0


def _cmd_import(args) -> int:
    from .importers import import_collection, options_from_args

    out = import_collection(options_from_args(args), args.out, overwrite=args.overwrite)
    _print_stats(out)
    return 0


def collection_stats(path: Path) -> dict:
    """Table I figures per split (and 'all') of a collection, or of one dataset directory."""
    from .format import load_dataset, read_meta, table1_stats

    meta = read_meta(path)
    if meta.get("kind") == "collection":
        out = {}
        texts = []
        for split in meta.get("splits", []):
            ds = load_dataset(path / split)
            out[split] = {**ds.meta.stats, **table1_stats(ds.texts)}  # recomputed figures win
            texts += ds.texts
        out["all"] = table1_stats(texts)
        if meta.get("skipped"):
            out["all"]["skipped"] = meta["skipped"]
        return out
    ds = load_dataset(path)
    return {ds.meta.split: {**ds.meta.stats, **table1_stats(ds.texts)}}


def _print_stats(path: Path, as_json: bool = False) -> None:
    stats = collection_stats(Path(path))
    if as_json:
        print(json.dumps(stats, ensure_ascii=False, indent=1))
        return
    print(f"{path}")
    print(f"{'split':<8}{'images':>10}{'words':>10}{'characters':>12}{'too wide':>10}")
    for split, st in stats.items():
        wide = st.get("rejected_too_wide", st.get("too_wide", ""))
        print(f"{split:<8}{st['images']:>10}{st['words']:>10}{st['characters']:>12}{wide!s:>10}")
    skipped = stats.get("all", {}).get("skipped")
    if skipped:
        print("left out: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))


def _cmd_stats(args) -> int:
    from .stats import dataset_report, format_report

    if not args.dir.exists():
        raise UserError(f"{args.dir}: does not exist")
    rep = dataset_report(args.dir, args.height, args.width)
    print(json.dumps(rep, ensure_ascii=False, indent=1) if args.json else format_report(rep))
    return 0
