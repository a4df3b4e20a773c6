"""Corpus-level text metrics (docs/DESIGN.md §7): character edit distance %, word error rates and
the text normalisation applied before scoring.

The recognizer scores itself with these (validation, evaluation); the metrics registry
re-exports them (`benchmark.metrics.text`).

Two word error rates, because a word image and a text line need different ones:
  `wer`       the share of transcriptions (word images) that differ from their reference, % — the
              paper's WER for word images; `word_accuracy` = 100 − `wer`.
  `line_wer`  Σ word-level Levenshtein distance / Σ reference words, % — the WER of text lines.
              Words are separated by whitespace or "▁" (how dataset labels write spaces). For
              one-word references and hypotheses it equals `wer`.
"""
from __future__ import annotations

from dataclasses import dataclass
import re
import unicodedata

import editdistance

from datasets.options import Options, option

NORMAL_FORMS = ("none", "nfc", "nfkc")
WORD_SEPARATORS = re.compile(r"[\s\u2581]+")   # whitespace and ▁ (U+2581, labels' space)
TATWEEL = "\u0640"
# Combining marks that make distinct Arabic letters (hamza above/below, madda: أ إ آ ؤ ئ), kept by
# --strip-diacritics, which removes the vowel signs (harakat, tanwin, shadda, sukun), the
# superscript alef and Latin accents.
KEPT_MARKS = frozenset("\u0653\u0654\u0655")


@dataclass(frozen=True, kw_only=True)
class TextNormalization(Options):
    """How references and hypotheses are normalised before they are scored (both alike)."""

    normalize: str = option("none", "Unicode normalisation before scoring: nfc (canonical composition) or nfkc "
                            "(also folds compatibility forms: ligatures, Arabic presentation forms, full-width "
                            "letters)", choices=NORMAL_FORMS)
    strip_diacritics: bool = option(False, "drop diacritics before scoring: Latin accents (é → e), Arabic "
                                    "harakat, tanwin, shadda, sukun, superscript alef and tatweel; hamza and madda "
                                    "stay (أ إ آ ؤ ئ are letters of their own)")
    strip_punct: bool = option(False, "drop punctuation (Unicode categories P*: . , ' - « » ، ؛ ؟ ...) before scoring")

    @property
    def active(self) -> bool:
        return self.normalize != "none" or self.strip_diacritics or self.strip_punct

    def apply(self, text: str) -> str:
        """`text` as it is scored."""
        if self.normalize != "none":
            text = unicodedata.normalize(self.normalize.upper(), text)
        if self.strip_diacritics:
            compat = self.normalize == "nfkc"
            decomposed = unicodedata.normalize("NFKD" if compat else "NFD", text)
            kept = "".join(c for c in decomposed
                           if c != TATWEEL and (unicodedata.category(c) != "Mn" or c in KEPT_MARKS))
            text = unicodedata.normalize("NFKC" if compat else "NFC", kept)
        if self.strip_punct:
            text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
        return text


NO_NORMALIZATION = TextNormalization()


def words_of(text: str) -> list[str]:
    """The words of a transcription (separated by whitespace or ▁)."""
    return [w for w in WORD_SEPARATORS.split(text) if w]


def text_metrics(refs: list[str], hyps: list[str], normalization: TextNormalization | None = None) -> dict:
    """ED (CER) % = Σ Levenshtein(ref, hyp) / Σ len(ref) × 100; WER % = share of word images
    whose hypothesis is not exactly the reference (`word_accuracy` = 100 − WER); line WER % =
    Σ word-level Levenshtein / Σ reference words × 100. Case-sensitive, with `_ci` variants
    beside; references and hypotheses are first normalised alike (`normalization`, recorded in
    the result)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    norm = normalization or NO_NORMALIZATION
    if norm.active:
        refs, hyps = [norm.apply(r) for r in refs], [norm.apply(h) for h in hyps]
    out = {"n": len(refs)}
    for suffix, fold in (("", lambda s: s), ("_ci", str.casefold)):
        errors = chars = wrong = word_errors = ref_words = 0
        for r, h in zip(refs, hyps):
            r, h = fold(r), fold(h)
            errors += editdistance.eval(r, h)
            chars += len(r)
            wrong += r != h
            rw = words_of(r)
            word_errors += editdistance.eval(rw, words_of(h))
            ref_words += len(rw)
        out[f"cer{suffix}"] = 100.0 * errors / chars if chars else 0.0
        out[f"wer{suffix}"] = 100.0 * wrong / len(refs) if refs else 0.0
        out[f"char_errors{suffix}"] = errors
        out[f"word_accuracy{suffix}"] = 100.0 - out[f"wer{suffix}"] if refs else 0.0
        out[f"line_wer{suffix}"] = 100.0 * word_errors / ref_words if ref_words else 0.0
        out[f"word_errors{suffix}"] = word_errors
    out["chars"] = sum(len(r) for r in refs)
    out["ref_words"] = sum(len(words_of(r)) for r in refs)
    out["normalization"] = norm.to_json()
    return out


def format_text_metrics(m: dict, unit: str = "images") -> str:
    """Lines for a terminal: sample count, then ED/WER case-sensitive and case-insensitive, and
    (for lines) the word-level line WER; the normalisation when one was applied."""
    lines = [f"{unit}: {m['n']}  reference characters: {m['chars']}",
             f"ED  {m['cer']:6.2f}%   WER  {m['wer']:6.2f}%   (case-sensitive)",
             f"ED  {m['cer_ci']:6.2f}%   WER  {m['wer_ci']:6.2f}%   (case-insensitive)"]
    if "line_wer" in m:
        if unit == "lines":
            lines.append(f"line WER (word edit distance over {m['ref_words']} reference words)  {m['line_wer']:6.2f}%   "
                         f"case-insensitive {m['line_wer_ci']:6.2f}%   (WER above: share of lines not exactly right)")
        else:
            lines.append(f"word accuracy {m['word_accuracy']:6.2f}%   (WER above: share of {unit} not exactly right)")
    norm = m.get("normalization") or {}
    applied = [f"normalize {norm['normalize']}"] if norm.get("normalize", "none") != "none" else []
    applied += [name.replace("_", "-") for name in ("strip_diacritics", "strip_punct") if norm.get(name)]
    if applied:
        lines.append("scored after: " + ", ".join(applied))
    return "\n".join(lines)
