"""Alphabets: the one place that maps characters to CTC class indices.

Index 0 is the CTC blank; symbol i of the alphabet string is class i + 1.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import unicodedata

from .errors import UserError

_LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"
# RIMES-like: letters, digits, French accented letters and the punctuation found in RIMES words.
FRENCH_SYMBOLS = (
    _LATIN + _DIGITS
    + "àâçéèêëîïôùûœ"  # lower-case accented letters
    + "ÀÇÉÈŒ"  # capitals that occur at the start of words and in all-caps forms
    + "'-.,/€"  # apostrophes, hyphens, dates, amounts
)
_ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"  # the 28 letters
_HAMZA_FORMS = "ءأإآؤئ"
ARABIC_SYMBOLS = _ARABIC_LETTERS + _HAMZA_FORMS + "ةى" + "٠١٢٣٤٥٦٧٨٩"

LANGUAGE_DIRECTION = {"fr": "ltr", "ar": "rtl"}
DIRECTIONS = ("ltr", "rtl")   # script directions as stored in meta.json; models keep a bool `rtl`


def is_rtl(direction: str) -> bool:
    """True for a right-to-left script; an unknown direction is an error."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'ltr' or 'rtl', got {direction!r}")
    return direction == "rtl"


def direction_name(rtl: bool) -> str:
    """'rtl' or 'ltr' for a model's `rtl` flag."""
    return "rtl" if rtl else "ltr"


@dataclass(frozen=True)
class Alphabet:
    """An ordered set of symbols; class 0 is the CTC blank."""

    symbols: str
    name: str = "custom"

    def __post_init__(self):
        if len(set(self.symbols)) != len(self.symbols):
            dup = sorted({c for c in self.symbols if self.symbols.count(c) > 1})
            raise UserError(f"alphabet '{self.name}' repeats symbols: {''.join(dup)!r}")
        if any(c.isspace() for c in self.symbols):
            raise UserError(f"alphabet '{self.name}' contains whitespace")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.symbols)})

    @property
    def num_classes(self) -> int:
        """Number of CTC output classes (symbols + blank)."""
        return len(self.symbols) + 1

    @property
    def fingerprint(self) -> str:
        """Short hash identifying this exact symbol order (stored in checkpoints)."""
        return hashlib.sha1(self.symbols.encode("utf-8")).hexdigest()[:12]

    def missing(self, text: str) -> list[str]:
        """Characters of `text` that are not in the alphabet, in order of appearance."""
        seen: list[str] = []
        for c in text:
            if c not in self._index and c not in seen:
                seen.append(c)
        return seen

    def covers(self, text: str) -> bool:
        return not self.missing(text)

    def encode(self, text: str) -> list[int]:
        """Map a transcription to class indices (1..len); raises UserError on unknown characters."""
        try:
            return [self._index[c] for c in text]
        except KeyError:
            bad = "".join(self.missing(text))
            raise UserError(f"characters {bad!r} of {text!r} are not in the alphabet '{self.name}'") from None

    def decode(self, indices) -> str:
        """Map class indices back to text; the blank (0) and out-of-range indices are skipped."""
        n = len(self.symbols)
        return "".join(self.symbols[i - 1] for i in (int(j) for j in indices) if 1 <= i <= n)

    def to_json(self) -> dict:
        return {"name": self.name, "symbols": self.symbols}

    @staticmethod
    def from_json(obj) -> "Alphabet":
        if isinstance(obj, str):
            return Alphabet(obj)
        return Alphabet(obj["symbols"], obj.get("name", "custom"))


FRENCH = Alphabet(FRENCH_SYMBOLS, "rimes-like-fr")
ARABIC = Alphabet(ARABIC_SYMBOLS, "arabic")
BUILTIN = {FRENCH.name: FRENCH, ARABIC.name: ARABIC}


def for_language(language: str) -> Alphabet:
    """Built-in alphabet for a language code ('fr' or 'ar')."""
    table = {"fr": FRENCH, "ar": ARABIC}
    if language not in table:
        raise UserError(f"no built-in alphabet for language {language!r}; expected one of {sorted(table)}")
    return table[language]


def normalize_text(text: str) -> str:
    """Unicode NFC normalisation used for every transcription (stored, rendered, compared)."""
    return unicodedata.normalize("NFC", text)


def alphabet_from_texts(texts, name: str = "derived") -> Alphabet:
    """Alphabet of all characters occurring in `texts`, sorted by code point."""
    chars = sorted({c for t in texts for c in t})
    return Alphabet("".join(chars), name)


_DIGITS_ALL = set("0123456789٠١٢٣٤٥٦٧٨٩")


def ctc_order(text: str, direction: str) -> str:
    """The order in which a recognizer reading left to right meets the characters of `text`.

    LTR: the logical order. RTL: the model flips the image, so it reads the logical order too —
    except for digit runs, which bidi draws left to right inside RTL text; those come out
    reversed. The mapping is its own inverse, so it also turns a decoded sequence back into
    logical order. Stored labels are never changed.
    """
    if direction != "rtl":
        return text
    out: list[str] = []
    run: list[str] = []
    for c in text:
        if c in _DIGITS_ALL:
            run.append(c)
            continue
        out.extend(reversed(run))
        run.clear()
        out.append(c)
    out.extend(reversed(run))
    return "".join(out)
