"""Font pools for the stand-in datasets (docs/DESIGN.md §5): lookup by file name, glyph coverage, raqm check.

Fonts come from Debian packages and are found by file name in the system font folders or in a
`--font-dir`; `--fonts` replaces the default pool. Coverage is read from the font's cmap and
confirmed by rendering (a mapped code point whose glyph draws no ink does not count), so a word is
only ever drawn with a font that has every one of its glyphs: no missing-glyph boxes.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import logging
import os
from pathlib import Path

from .alphabet import Alphabet
from .errors import UserError


@dataclass(frozen=True)
class FontSpec:
    """A font file name and the Debian package that installs it."""

    file: str
    package: str


FRENCH_FONTS: tuple[FontSpec, ...] = tuple(FontSpec(f, p) for f, p in (
    ("Ecolier-court.ttf", "fonts-ecolier-court"),
    ("DancingScript-Regular.otf", "fonts-dancingscript"),
    ("KaushanScript-Regular.otf", "fonts-kaushanscript"),
    ("dkg.ttf", "fonts-dkg-handwriting"),
    ("dkgIt.ttf", "fonts-dkg-handwriting"),
    ("breipfont.ttf", "fonts-breip"),
    ("SteveHand.ttf", "fonts-sjfonts"),
    ("Domestic_Manners.ttf", "fonts-dustin"),
    ("aescrawl.ttf", "fonts-aenigma"),
    ("Purisa.otf", "fonts-tlwg-purisa-otf"),
    ("Purisa-Oblique.otf", "fonts-tlwg-purisa-otf"),
    ("ComicNeue-Regular.otf", "fonts-comic-neue"),
    ("ComicNeue-Italic.otf", "fonts-comic-neue"),
    ("KleeOne-Regular.ttf", "fonts-klee"),
    ("YuseiMagic-Regular.ttf", "fonts-yusei-magic"),
    ("setofont.ttf", "fonts-seto"),
))
ARABIC_FONTS: tuple[FontSpec, ...] = tuple(FontSpec(f, p) for f, p in (
    ("Amiri-Regular.ttf", "fonts-hosny-amiri"),
    ("NotoNastaliqUrdu-Regular.ttf", "fonts-noto-core"),
    ("NotoKufiArabic-Regular.ttf", "fonts-noto-core"),
    ("UKIJDiT.ttf", "fonts-ukij-uyghur"),
    ("UKIJQol_Yantu.ttf", "fonts-ukij-uyghur"),
    ("UKIJSlsTom.ttf", "fonts-ukij-uyghur"),
    ("KacstPen.ttf", "fonts-kacst"),
    ("ae_AlHor.ttf", "fonts-arabeyes"),
    ("ae_Tholoth.ttf", "fonts-arabeyes"),
    ("Alkalami-Regular.ttf", "fonts-sil-alkalami"),
    ("Lateef-Regular.ttf", "fonts-sil-lateef"),
    ("Lemonada-Regular.otf", "fonts-lemonada"),
))
DEFAULT_POOLS = {"fr": FRENCH_FONTS, "ar": ARABIC_FONTS}
FONT_EXTENSIONS = (".ttf", ".otf", ".ttc")


def system_font_dirs() -> list[Path]:
    """The folders searched for fonts, in order."""
    home = Path(os.path.expanduser("~"))
    return [Path("/usr/share/fonts"), home / ".fonts", home / ".local/share/fonts", Path("/usr/local/share/fonts")]


@dataclass(frozen=True)
class FontInfo:
    """A resolved font: its file, package (when known) and the alphabet characters it can draw."""

    name: str
    path: Path
    package: str
    coverage: frozenset[str]

    def covers(self, text: str) -> bool:
        """True when every character of `text` has a real glyph in this font."""
        return all(c in self.coverage for c in text)


def index_fonts(dirs: list[Path]) -> dict[str, Path]:
    """Map font file names to paths under `dirs` (searched recursively; first hit wins)."""
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for root, subdirs, files in os.walk(d):
            subdirs.sort()
            for f in sorted(files):
                if f.lower().endswith(FONT_EXTENSIONS):
                    found.setdefault(f, Path(root) / f)
    return found


def find_font(name: str, font_dir: str | os.PathLike | None = None,
              package: str | None = None, index: dict[str, Path] | None = None) -> Path:
    """Locate one font by path or file name; a missing font is a UserError naming its package."""
    p = Path(name).expanduser()
    if p.suffix.lower() in FONT_EXTENSIONS and p.is_file() and (os.sep in name or p.parent != Path(".")):
        return p
    dirs = [Path(font_dir).expanduser()] if font_dir else system_font_dirs()
    if font_dir and not dirs[0].is_dir():
        raise UserError(f"--font-dir {font_dir}: not a directory")
    index = index if index is not None else index_fonts(dirs)
    if p.name in index:
        return index[p.name]
    where = ", ".join(str(d) for d in dirs)
    hint = f"install the Debian package {package} (apt-get install {package})" if package else \
        "install the package that provides it or pass --font-dir"
    raise UserError(f"font {p.name} not found in {where}: {hint}")


@contextmanager
def _quiet_fonttools():
    """Silence fontTools' warnings about harmless table quirks (e.g. 'extra bytes in post')."""
    logger = logging.getLogger("fontTools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def glyph_coverage(path: Path, chars: str) -> frozenset[str]:
    """Characters of `chars` that the font maps in its cmap *and* draws with visible ink."""
    from fontTools.ttLib import TTFont, TTLibError
    from PIL import ImageFont

    try:
        with _quiet_fonttools(), TTFont(str(path), lazy=True, fontNumber=0) as tt:
            cmap = tt.getBestCmap() or {}
    except (TTLibError, OSError, AssertionError) as exc:
        raise UserError(f"{path}: cannot read font ({exc})") from None
    pil = ImageFont.truetype(str(path), 48, layout_engine=ImageFont.Layout.BASIC)
    covered = set()
    for c in chars:
        if ord(c) not in cmap:
            continue
        box = pil.getbbox(c)
        if c.isspace() or (box[2] > box[0] and box[3] > box[1] and pil.getmask(c).getbbox() is not None):
            covered.add(c)
    return frozenset(covered)


def load_pool(language: str, alphabet: Alphabet, fonts: list[str] | str | None = None,
              font_dir: str | os.PathLike | None = None) -> list[FontInfo]:
    """Resolve the font pool for a language (or the `fonts` override) with glyph coverage."""
    if isinstance(fonts, str):
        fonts = [f.strip() for f in fonts.split(",") if f.strip()]
    packages = {s.file: s.package for pool in DEFAULT_POOLS.values() for s in pool}
    if fonts:
        specs = [FontSpec(f, packages.get(Path(f).name, "")) for f in fonts]
    elif language in DEFAULT_POOLS:
        specs = list(DEFAULT_POOLS[language])
    else:
        raise UserError(f"no default font pool for language {language!r}; pass --fonts")
    dirs = [Path(font_dir).expanduser()] if font_dir else system_font_dirs()
    if font_dir and not dirs[0].is_dir():
        raise UserError(f"--font-dir {font_dir}: not a directory")
    index = index_fonts(dirs)
    paths, missing = [], []
    for spec in specs:
        try:
            paths.append(find_font(spec.file, font_dir, spec.package or None, index))
        except UserError as exc:
            if len(specs) == 1:
                raise
            missing.append((spec, exc))
    if len(missing) == 1:
        raise missing[0][1]
    if missing:
        names = ", ".join(Path(s.file).name for s, _ in missing)
        packages = sorted({s.package for s, _ in missing if s.package})
        where = ", ".join(str(d) for d in dirs)
        hint = f"install them with apt-get install {' '.join(packages)}" if packages else \
            "install the packages that provide them or pass --font-dir"
        raise UserError(f"{len(missing)} fonts not found in {where} ({names}): {hint}")
    pool = [FontInfo(Path(spec.file).name, path, spec.package, glyph_coverage(path, alphabet.symbols))
            for spec, path in zip(specs, paths)]
    useless = [f.name for f in pool if not f.coverage]
    if useless:
        raise UserError(f"font(s) {', '.join(useless)} draw none of the alphabet '{alphabet.name}'")
    return pool


def uncovered(pool: list[FontInfo], alphabet: Alphabet) -> str:
    """Alphabet characters that no font of the pool can draw."""
    return "".join(c for c in alphabet.symbols if not any(c in f.coverage for f in pool))


def require_raqm() -> None:
    """Refuse right-to-left rendering without raqm (Pillow would draw unjoined, reversed letters)."""
    from PIL import features

    if not features.check("raqm"):
        raise UserError("Pillow's complex text layout (raqm) is unavailable, so Arabic would be drawn "
                        "unjoined and in reverse order: install the system FriBiDi library "
                        "(Debian: apt-get install libfribidi0) and retry")
