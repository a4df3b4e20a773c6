"""Text normalisation of transcriptions, stated and chosen per dataset (docs/DESIGN.md §4.2):
NFC for Latin scripts, NFKC for Arabic (it maps presentation forms, e.g. the lam-alef ligature
U+FEFB, to letters), optional removal of Arabic diacritics for evaluations that ignore them.
Whitespace inside a transcription becomes the space symbol (alphabets hold no whitespace)."""
from __future__ import annotations

import re
import unicodedata

# tashkeel (fathatan .. sukun), the further combining marks U+0656-U+065F, superscript alef, tatweel;
# maddah and hamza above/below (U+0653-U+0655) are kept: NFC composes them into letters.
ARABIC_DIACRITICS = re.compile("[\u064b-\u0652\u0656-\u065f\u0670\u0640]")
_SPACES = re.compile(r"\s+")


def normalize(text: str, form: str = "nfc", strip_diacritics: bool = False) -> str:
    """`text` in Unicode form NFC or NFKC, with Arabic diacritics removed when asked (then NFC
    again, so the result is NFC whatever the form)."""
    text = unicodedata.normalize(form.upper(), text)
    if strip_diacritics:
        text = unicodedata.normalize("NFC", ARABIC_DIACRITICS.sub("", text))
    return text


def clean(text: str, form: str, strip_diacritics: bool, space_symbol: str) -> str:
    """A stored transcription: normalised, trimmed, inner whitespace runs as `space_symbol`
    (empty when nothing is left)."""
    return _SPACES.sub(space_symbol, normalize(text, form, strip_diacritics).strip())


def describe(form: str, strip_diacritics: bool) -> str:
    """The normalisation in words, for meta.json."""
    return form.upper() + (", Arabic diacritics and tatweel removed" if strip_diacritics else "")
