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
    b.add_argument("--dataset", required=True, choices=["rimes-like", "arabic-like"], help="which stand-in to build")
    b.add_argument("--out", required=True, type=Path, help="output collection folder (must not exist unless --overwrite)")
    b.add_argument("--train", type=int, default=2000, metavar="N", help="training images (default 2000)")
    b.add_argument("--val", type=int, default=300, metavar="N", help="validation images (default 300)")
    b.add_argument("--test", type=int, default=300, metavar="N", help="test images (default 300)")
    b.add_argument("--height", type=int, default=128, metavar="H", help="image height in pixels (default 128, the paper's)")
    b.add_argument("--width", type=int, default=512, metavar="W", help="image width; wider words are rejected and counted (default 512)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fonts = b.add_mutually_exclusive_group()
    fonts.add_argument("--fonts", metavar="LIST", help="comma-separated font file names or paths replacing the default pool")
    fonts.add_argument("--font-dir", metavar="DIR", help="look the default pool's fonts up in DIR instead of the system font folders")
    b.add_argument("--workers", type=int, default=None, metavar="W", help="rendering processes (default: all CPU cores); does not change the output")
    b.add_argument("--writers-per-font", type=int, default=24, metavar="K", help="synthetic writers (styles) per font (default 24)")
    b.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    b.set_defaults(func=_cmd_build)

    i = group.add_parser(
        "import", formatter_class=fmt, help="import a real word dataset (RIMES, IAM, KHATT, MADCAT, folder + TSV)",
        description="Convert a real dataset into the htraug collection format (OUT/train, OUT/val, OUT/test; "
                    "grey PNG originals, labels.tsv, meta.json).\n"
                    "  rimes   ground-truth files with 'image_path label' lines (ICDAR 2011 word level)\n"
                    "  iam     ROOT/words.txt (or ROOT/ascii/words.txt) and ROOT/words/...; 'err' lines and broken images are skipped\n"
                    "  tsv     *.tsv files with 'image_path<TAB>transcription[<TAB>writer]'\n"
                    "  khatt   images with same-name .txt transcriptions (split from Training/Validation/Testing folders)\n"
                    "  madcat  OpenHaRT/MADCAT XML files next to their page images; word boxes are cropped\n"
                    "Splits come from --list or from file/folder names; otherwise a seeded split by writer.",
        epilog="example: htraug data import --format rimes --root RIMES --list train=gt_train.txt "
               "--list test=gt_test.txt --out data/rimes")
    i.add_argument("--format", required=True, choices=["rimes", "iam", "tsv", "khatt", "madcat"], help="input layout")
    i.add_argument("--root", required=True, type=Path, help="dataset folder (or a single list / XML file)")
    i.add_argument("--out", required=True, type=Path, help="output collection folder")
    i.add_argument("--list", action="append", default=[], metavar="SPLIT=FILE",
                   help="list file for a split (train, val or test): ground truth (rimes), TSV (tsv) or ids (iam); repeatable")
    i.add_argument("--language", help="language code (default: fr for rimes, en for iam, ar for khatt/madcat)")
    i.add_argument("--name", help="dataset name stored in meta.json (default FORMAT-import)")
    i.add_argument("--alphabet-from-data", action="store_true",
                   help="use the characters found in the labels as the alphabet instead of the built-in fr/ar one")
    i.add_argument("--val-fraction", type=float, default=0.1, help="share of writers for validation when no split is given (0.1)")
    i.add_argument("--test-fraction", type=float, default=0.1, help="share of writers for test when no split is given (0.1)")
    i.add_argument("--seed", type=int, default=0, help="seed of the automatic split (default 0)")
    i.add_argument("--height", type=int, metavar="H", help="with --width: count the images a HxW canvas will drop as too wide (images are stored unresized)")
    i.add_argument("--width", type=int, metavar="W", help="see --height")
    i.add_argument("--space-symbol", default="▁", help="character replacing spaces inside transcriptions (default ▁)")
    i.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    i.set_defaults(func=_cmd_import)

    s = group.add_parser("stats", help="print the paper's Table I figures of a dataset or collection",
                         description="Print images, distinct words and distinct characters (the paper's Table I) "
                                     "of a dataset directory or of each split of a collection.")
    s.add_argument("dir", type=Path, metavar="DIR", help="dataset directory or collection folder")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=_cmd_stats)


def _cmd_build(args) -> int:
    from .build import build_standin

    out = build_standin(args.dataset, args.out, args.train, args.val, args.test, args.height, args.width,
                        args.seed, fonts=args.fonts, font_dir=args.font_dir, workers=args.workers,
                        overwrite=args.overwrite, writers_per_font=args.writers_per_font)
    _print_stats(out)
    return 0


def _parse_lists(items: list[str]) -> dict[str, str]:
    lists = {}
    for item in items:
        split, sep, path = item.partition("=")
        if not sep or not path:
            raise UserError(f"--list {item!r}: expected SPLIT=FILE, e.g. train=gt_train.txt")
        if split in lists:
            raise UserError(f"--list {split}=...: given twice")
        lists[split] = path
    return lists


def _cmd_import(args) -> int:
    from .importers import import_dataset

    out = import_dataset(args.format, args.root, args.out, lists=_parse_lists(args.list), language=args.language,
                         name=args.name, alphabet_from_data=args.alphabet_from_data, val_fraction=args.val_fraction,
                         test_fraction=args.test_fraction, seed=args.seed, space_symbol=args.space_symbol,
                         overwrite=args.overwrite, height=args.height, width=args.width)
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
        print("skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))


def _cmd_stats(args) -> int:
    _print_stats(args.dir, args.json)
    return 0
