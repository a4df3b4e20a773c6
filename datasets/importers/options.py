"""The import options: one typed field per option, which generates the `data import` flag, checks
the value (from the command line, Python or a study config's `options` table) and is recorded in
the collection's meta.json. Per-format defaults (language, --on-bad, text normalisation, level)
are filled in on construction."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import UserError
from ..options import Options, given, option
from ..preprocess import default_width
from .common import ALL, ARABIC_SCRIPT_LANGUAGES, DEFAULT_LANGUAGE, FORMATS, SPLITS
from .policy import MODES

NORMALIZATIONS = ("nfc", "nfkc")
LEVELS = ("word", "line")


@dataclass(frozen=True, kw_only=True)
class ImportOptions(Options):
    """Options of `htraug data import` (and of a study's imported dataset)."""

    fmt: str = option(help="input layout", flag="--format", choices=FORMATS)
    root: str = option(help="dataset folder as distributed (or one ground-truth / XML file)", path=True)
    gt: dict = option(help="ground truth: [SPLIT=]FILE per split (rimes, tsv); FILE for iam (words.txt, lines.txt); "
                           "DIR for khatt (the TextUnicodeTruthValues tree); repeatable; default: auto-detected",
                      flag="--gt", metavar="[SPLIT=]PATH", parse=str, repeat=True, default_factory=dict)
    lists: dict = option(help="repeatable: ids of a split, one per line (iam: form, line or word ids; "
                              "khatt: image names; madcat: page or .madcat.xml names, e.g. madcat.train.raw.lineid); "
                              "for rimes and tsv the split's ground-truth file (as --gt)",
                         flag="--list", metavar="SPLIT=FILE", parse=str, repeat=True, default_factory=dict)
    images_dir: dict = option(help="repeatable: where image paths resolve (rimes: per ground-truth file; "
                                   "iam: the words/ or lines/ folder; khatt: the line images; madcat: the page images); "
                                   "default: auto-detected", metavar="[SPLIT=]DIR", parse=str, repeat=True,
                              default_factory=dict)
    split_map: dict = option(help="NAME=SPLIT[,NAME=SPLIT...], repeatable: file or folder names that mean a split "
                                  "(e.g. Validate=val,dev=val), tried before the built-in names", metavar="NAME=SPLIT",
                             parse=str, repeat=True, default_factory=dict)
    level: str | None = option(None, "word or line: iam reads words.txt + words/ (word) or lines.txt + lines/ (line); "
                                     "khatt is line level only; the others are word level (default)", choices=LEVELS)
    on_bad: str | None = option(None, "skip: leave out bad records (missing/unreadable images, malformed lines, empty or "
                                      "out-of-alphabet transcriptions, too-wide images) and list them in OUT/import_report.tsv; "
                                      "error: stop at the first with a one-line error (default: error for tsv, skip otherwise)",
                                choices=MODES)
    language: str | None = option(None, "language code (default: fr for rimes, en for iam, ar for khatt/madcat)")
    name: str | None = option(None, "dataset name stored in meta.json (default FORMAT-import)")
    alphabet_from_data: bool = option(False, "use the characters found in the labels as the alphabet instead of the "
                                             "built-in fr/ar one")
    normalization: str | None = option(None, "Unicode normalisation of transcriptions: nfc, or nfkc, which also maps "
                                             "Arabic presentation forms to letters (default: nfkc for Arabic-script "
                                             "languages, nfc otherwise)", choices=NORMALIZATIONS)
    strip_diacritics: bool = option(False, "remove Arabic diacritics (tashkeel, superscript alef) and tatweel from "
                                           "transcriptions, as Arabic evaluations often do (recorded in meta.json)")
    height: int | None = option(None, "canvas height: with --on-bad skip, images wider than the canvas once resized "
                                      "to H are left out and reported; with error they are kept and counted "
                                      "(images are stored unresized)", metavar="H", gt=0)
    width: int | None = option(None, "canvas width (default 4 x H)", metavar="W", gt=0)
    val_fraction: float = option(0.1, "share of writers for validation when no split is given", min=0, lt=1)
    test_fraction: float = option(0.1, "share of writers for test when no split is given", min=0, lt=1)
    seed: int = option(0, "seed of the automatic split", min=0)
    space_symbol: str = option("▁", "character replacing spaces inside transcriptions")

    def normalise(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (the dataclass is frozen)
        for name in DICT_FIELDS:
            value = getattr(self, name)
            set_(name, {str(k): str(v) if isinstance(v, Path) else v for k, v in value.items()})
        if self.language is None and self.fmt in DEFAULT_LANGUAGE:
            set_("language", DEFAULT_LANGUAGE[self.fmt])
        if self.name is None:
            set_("name", f"{self.fmt}-import")
        if self.on_bad is None:
            set_("on_bad", "error" if self.fmt == "tsv" else "skip")
        if self.normalization is None:
            set_("normalization", "nfkc" if self.language in ARABIC_SCRIPT_LANGUAGES else "nfc")
        if self.level is None:
            set_("level", "line" if self.fmt == "khatt" else "word")
        if self.height is not None and self.width is None:
            set_("width", default_width(self.height))

    def check(self) -> None:
        if not Path(self.root).exists():
            raise UserError(f"--root {self.root}: does not exist")
        if not self.language:
            raise UserError(f"format {self.fmt}: pass --language (e.g. fr, en, ar)")
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError("--val-fraction and --test-fraction must be in [0, 1) with a sum below 1")
        s = self.space_symbol
        if len(s) != 1 or s.isspace():
            raise UserError(f"--space-symbol must be one non-space character, got {s!r}")
        if self.width is not None and self.height is None:
            raise UserError("--width needs --height (the canvas is H x W)")
        if self.level == "line" and self.fmt not in ("iam", "khatt", "tsv"):
            raise UserError(f"--level line: format {self.fmt} is word level "
                            f"({'words are cropped from the token boxes' if self.fmt == 'madcat' else 'word ground truth'})")
        if self.level == "word" and self.fmt == "khatt":
            raise UserError("--level word: KHATT has no word boxes; it is imported line by line (--level line)")
        for name, keys, what in (("lists", SPLITS, "SPLIT=FILE"), ("gt", SPLITS + (ALL,), "[SPLIT=]PATH"),
                                 ("images_dir", SPLITS + (ALL,), "[SPLIT=]DIR")):
            for k, v in getattr(self, name).items():
                if k not in keys:
                    raise UserError(f"{flag(name)} {k}=...: split must be one of {', '.join(SPLITS)} (expected {what})")
                if not isinstance(v, str) or not v:
                    raise UserError(f"{flag(name)} {k}=: expected a path, got {v!r}")
        per_split = {"gt": ("rimes", "tsv"), "images_dir": ("rimes", "tsv")}
        for name, formats in per_split.items():
            split_keys = sorted(k for k in getattr(self, name) if k != ALL)
            if split_keys and self.fmt not in formats:
                raise UserError(f"{flag(name)} {split_keys[0]}=...: format {self.fmt} takes one {flag(name)} PATH "
                                f"for all splits (per-split values are for {' and '.join(formats)})")
        for k, v in self.split_map.items():
            if v not in SPLITS:
                raise UserError(f"--split-map {k}={v}: split must be one of {', '.join(SPLITS)}")

    def given_path(self, name: str, split: str | None = None) -> str | None:
        """A --gt / --images-dir / --list value for `split` (or the one given without SPLIT=)."""
        table = getattr(self, name)
        return table.get(split) if split in table else table.get(ALL)


DICT_FIELDS = tuple(f.name for f in fields(ImportOptions) if f.type in ("dict", dict))


def flag(name: str) -> str:
    """The command-line flag of an ImportOptions field."""
    f = next(f for f in fields(ImportOptions) if f.name == name)
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


def _fold(name: str, items: list[str]) -> dict[str, str]:
    """The repeated values of a dict option (`SPLIT=PATH`, `PATH`, `NAME=SPLIT,...`) as one table."""
    out: dict[str, str] = {}
    for item in items:
        if name == "split_map":
            pairs = [p for p in item.split(",") if p]
        else:
            pairs = [item]
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if name in ("gt", "images_dir") and (not sep or key not in SPLITS + (ALL,)):
                key, value = ALL, pair   # a bare path (which may itself contain '=')
            elif not sep or not key or not value:
                want = {"lists": "SPLIT=FILE, e.g. train=gt_train.txt", "split_map": "NAME=SPLIT, e.g. Validate=val"}[name]
                raise UserError(f"{flag(name)} {item!r}: expected {want}")
            if key in out:
                raise UserError(f"{flag(name)} {key}=...: given twice")
            out[key] = value
    return out


def options_from_args(args) -> ImportOptions:
    """ImportOptions from the parsed `data import` flags."""
    kw = given(args, ImportOptions)
    for name in DICT_FIELDS:
        if name in kw:
            kw[name] = _fold(name, kw[name])
    return ImportOptions.from_json(kw)
