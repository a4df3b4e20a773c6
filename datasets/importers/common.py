"""What the importers share: the samples a reader finds, the constants, and the helpers the format
readers use to find files, read text files and list files, resolve paths and tell splits from names."""
from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re
from typing import Iterable, Mapping

from ..errors import UserError, located

FORMATS = ("rimes", "iam", "tsv", "khatt", "madcat")
DEFAULT_LANGUAGE = {"rimes": "fr", "iam": "en", "khatt": "ar", "madcat": "ar"}
RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "he", "ps", "ug", "ku", "sd", "yi"})
ARABIC_SCRIPT_LANGUAGES = frozenset({"ar", "fa", "ur", "ps", "ug", "ku", "sd"})
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".gif")
SPLITS = ("train", "val", "test")
ALL = "all"  # the key of a --gt / --images-dir value given without SPLIT=
# Words in file and folder names that name a split (compared with a name's alphabetic tokens).
SPLIT_WORDS = {"train": ("train", "training", "trainset"),
               "val": ("val", "valid", "validate", "validation", "validationset", "dev", "devel"),
               "test": ("test", "testing", "testset", "eval")}


@dataclass
class Sample:
    """One image to import: where it was listed (file, line: for errors and the report), its image
    (or page image with a crop box), its transcription, writer and split."""

    where: tuple[Path, int | None]
    image: Path
    text: str
    writer: str | None = None
    split: str | None = None
    box: tuple[int, int, int, int] | None = None  # crop (x0, y0, x1, y1) for page-level formats


def read_text(path: Path, encodings: tuple[str, ...] = ("utf-8-sig",)) -> tuple[str, str]:
    """A text file's contents and the encoding that decoded it (the first of `encodings` that does)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"{path}: does not exist") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    last = None
    for enc in encodings:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as exc:
            last = exc
    raise located(path, None, f"cannot decode text as {' or '.join(encodings)} ({last.reason})")


def split_from_name(path: Path, split_map: Mapping[str, str] | None = None) -> str | None:
    """'train' / 'val' / 'test' when a file or folder name of `path` says so (nearest part first).

    `split_map` (name → split, from --split-map) is tried first; a name matches a whole part
    (case-insensitively) or one of its alphabetic tokens, as the built-in split words do."""
    table = [(k.lower(), v) for k, v in (split_map or {}).items()]
    for part in reversed([p.lower() for p in Path(path).parts]):
        tokens = [t for t in re.split(r"[^a-z]+", part) if t]
        for key, split in table:
            if key == part or key in tokens or key == Path(part).stem:
                return split
        for split, words in SPLIT_WORDS.items():
            if any(t in words for t in tokens):
                return split
    return None


def list_path(root: Path, p: str) -> Path:
    """A --list / --gt / --images-dir path: relative to ROOT when it exists there, else as given."""
    base = root if root.is_dir() else root.parent
    return base / p if not Path(p).is_absolute() and (base / p).exists() else Path(p)


def strip_suffixes(name: str) -> str:
    """An id from a list-file entry: its last path part without image, XML or text suffixes."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".madcat.xml", ".xml", ".txt", *IMAGE_EXTENSIONS):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_id_lists(root: Path, files: Iterable[tuple[Path, str]], encodings=("utf-8-sig",)) -> dict[str, str]:
    """id → split from list files with one id (or file name, path) per line, first field of each;
    `#` comment lines and blank lines are ignored. An id listed for two splits is an error."""
    out: dict[str, str] = {}
    where: dict[str, tuple[Path, int]] = {}
    for path, split in files:
        text, _ = read_text(path, encodings)
        for lineno, line in enumerate(text.splitlines(), start=1):
            line = line.strip().lstrip("\ufeff")
            if not line or line.startswith("#"):
                continue
            key = strip_suffixes(line.split()[0])
            if key in out and out[key] != split:
                first = where[key]
                raise located(path, lineno, f"{key} is listed for {split} and for {out[key]} ({first[0].name}:{first[1]})")
            out[key] = split
            where[key] = (path, lineno)
    return out


def resolve(rel: str, *bases: Path) -> Path:
    """`rel` (forward or back slashes) under the first base where it exists, else under the first."""
    p = Path(rel.replace("\\", "/"))
    if p.is_absolute():
        return p
    for b in bases:
        if (b / p).exists():
            return b / p
    return bases[0] / p


def walk_files(root: Path, suffixes: tuple[str, ...], skip: Iterable[Path] = ()) -> list[Path]:
    """Files under `root` whose suffix is in `suffixes` (case-insensitive), in a stable order,
    leaving out the folders in `skip`."""
    skip = {Path(s).resolve() for s in skip}
    out = []
    for dirpath, dirs, files in os.walk(root):
        here = Path(dirpath)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skip)
        out.extend(here / f for f in sorted(files) if Path(f).suffix.lower() in suffixes)
    return out


def find_dirs(root: Path, match, max_depth: int = 3) -> list[Path]:
    """Folders under `root` (itself included) whose name satisfies `match`, shallowest first; the
    walk does not descend into a match."""
    out: list[Path] = []
    level = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in level:
            if match(d.name):
                out.append(d)
                continue
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir()))
            except OSError:
                continue
        level = nxt
    return out


def find_file(root: Path, names: Iterable[str], max_depth: int = 2) -> Path | None:
    """The shallowest file under `root` whose name is one of `names` (case-insensitive)."""
    wanted = {n.lower() for n in names}
    level = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in level:
            try:
                entries = sorted(d.iterdir())
            except OSError:
                continue
            for p in entries:
                if p.is_file() and p.name.lower() in wanted:
                    return p
            nxt.extend(p for p in entries if p.is_dir())
        level = nxt
    return None


def relative_to_root(path: Path, root: Path) -> str:
    """`path` relative to ROOT when it lies inside it (how the import report names files)."""
    base = root if root.is_dir() else root.parent
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return str(path)
