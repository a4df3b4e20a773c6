"""Word priors p_w: the distribution of words that stand-in datasets and the GAN generate (docs/DESIGN.md §5).

French ("RIMES-like"): the `wordfreq` French list, frequency weighted, mixed with capitalised and
ALL-CAPS variants, numbers, dates, amounts and punctuation tokens so that the 86-symbol RIMES
alphabet is actually used. Arabic: the `wordfreq` Arabic list without tashkeel and tatweel,
restricted to the 28 letters, hamza forms, ة and ى, plus Arabic-Indic numbers.
A prior can also be estimated from a real dataset's training labels (`prior_from_texts`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import re
from typing import Callable, Iterable

import numpy as np

from .alphabet import Alphabet, for_language, normalize_text
from .errors import UserError

# Mixture weights of the French prior (share of the total probability mass).
FR_MIX = {"lexical": 0.86, "numbers": 0.04, "dates": 0.015, "amounts": 0.015, "punctuation": 0.07}
# Inside the lexical share: plain, Capitalised, ALL-CAPS forms of each word.
FR_CASE_MIX = {"plain": 0.80, "capitalised": 0.16, "upper": 0.04}
# Punctuation tokens as separate words (as in RIMES word-level ground truth), relative weights.
FR_PUNCTUATION = {".": 0.38, ",": 0.34, "-": 0.12, "'": 0.06, "/": 0.05, "€": 0.05}
# wordfreq splits French elisions at the apostrophe ("l'homme" -> "l", "homme"); RIMES keeps "l'".
FR_ELISIONS = frozenset({"l", "d", "c", "j", "n", "s", "m", "t", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu"})
AR_MIX = {"lexical": 0.97, "numbers": 0.03}
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
# Tashkeel (harakat, tanwin, shadda, sukun, superscript alef, Quranic marks) and tatweel.
_AR_STRIP = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
# Fixed seed for the synthetic tokens (numbers, dates, amounts): the prior itself is a constant.
_TOKEN_SEED = 20190920
_N_SYNTHETIC = 3000


@dataclass(frozen=True, eq=False)
class WordPrior:
    """A finite word distribution: `words[i]` has probability `probs[i]` (sums to 1)."""

    language: str
    words: tuple[str, ...]
    probs: np.ndarray
    source: str = ""
    _cdf: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        p = np.asarray(self.probs, dtype=np.float64)
        if len(self.words) == 0 or p.shape != (len(self.words),):
            raise UserError(f"word prior '{self.source or self.language}' is empty or malformed")
        if np.any(p < 0) or not np.isfinite(p).all() or p.sum() <= 0:
            raise UserError(f"word prior '{self.source or self.language}' has invalid probabilities")
        p = p / p.sum()
        object.__setattr__(self, "probs", p)
        object.__setattr__(self, "_cdf", np.cumsum(p))

    def __len__(self) -> int:
        return len(self.words)

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """Draw `n` words, frequency weighted (deterministic for the generator's state)."""
        u = rng.random(int(n)) * self._cdf[-1]
        idx = np.minimum(np.searchsorted(self._cdf, u, side="right"), len(self.words) - 1)
        return [self.words[i] for i in idx]

    def filtered(self, keep: Callable[[str], bool], source: str | None = None) -> "WordPrior":
        """The prior restricted to words where `keep(word)` is true (renormalised)."""
        mask = np.fromiter((bool(keep(w)) for w in self.words), dtype=bool, count=len(self.words))
        if not mask.any():
            raise UserError(f"word prior '{self.source or self.language}': no word left after filtering")
        words = tuple(w for w, m in zip(self.words, mask) if m)
        return WordPrior(self.language, words, self.probs[mask], source or self.source)

    def mass(self, keep: Callable[[str], bool]) -> float:
        """Total probability of the words where `keep(word)` is true."""
        return float(sum(p for w, p in zip(self.words, self.probs) if keep(w)))


def make_prior(language: str, alphabet: Alphabet | None = None, max_chars: int | None = None,
               top_n: int = 50000) -> WordPrior:
    """The built-in prior for 'fr' (RIMES-like) or 'ar' from wordfreq, restricted to `alphabet`.

    Words containing characters outside the alphabet or longer than `max_chars` are dropped.
    Too-wide words (for the image canvas) are filtered where rendering happens.
    """
    if language not in ("fr", "ar"):
        raise UserError(f"no built-in word prior for language {language!r}; expected 'fr' or 'ar' "
                        "(use a dataset's own labels for other languages)")
    if top_n < 1:
        raise UserError(f"top_n must be ≥ 1, got {top_n}")
    alphabet = alphabet or for_language(language)
    weights = _french_weights(top_n) if language == "fr" else _arabic_weights(top_n)
    items = [(w, p) for w, p in weights.items()
             if p > 0 and alphabet.covers(w) and (max_chars is None or len(w) <= max_chars)]
    if not items:
        raise UserError(f"no {language} word fits alphabet '{alphabet.name}'"
                        + (f" with at most {max_chars} characters" if max_chars else ""))
    items.sort(key=lambda wp: (-wp[1], wp[0]))
    words, probs = zip(*items)
    return WordPrior(language, tuple(words), np.array(probs), f"wordfreq:{language}:top{top_n}")


def prior_from_texts(texts: Iterable[str], language: str) -> WordPrior:
    """Empirical prior of a dataset's labels (each label is one word image's transcription)."""
    counts = Counter(normalize_text(t) for t in texts if t and t.strip())
    if not counts:
        raise UserError("cannot build a word prior from an empty list of transcriptions")
    items = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    words, c = zip(*items)
    return WordPrior(language, tuple(words), np.array(c, dtype=np.float64), "labels")


def _lexicon(language: str, top_n: int) -> dict[str, float]:
    """wordfreq's top-n words of a language with their frequencies (normalised to sum 1)."""
    import wordfreq  # imported lazily: loading the lists takes a fraction of a second

    freqs = wordfreq.get_frequency_dict(language, wordlist="best")
    top = wordfreq.top_n_list(language, top_n, wordlist="best")
    out = {w: float(freqs.get(w, 0.0)) for w in top}
    total = sum(out.values()) or 1.0
    return {w: f / total for w, f in out.items()}


def _add(acc: dict[str, float], word: str, p: float) -> None:
    acc[word] = acc.get(word, 0.0) + p


def _french_weights(top_n: int) -> dict[str, float]:
    """Mixture of lexical words (three casings), numbers, dates, amounts and punctuation."""
    acc: dict[str, float] = {}
    lex = {}
    for w, p in _lexicon("fr", top_n).items():
        if any(c.isdigit() for c in w) or not any(c.isalpha() for c in w):
            continue
        lex[w + "'" if w in FR_ELISIONS else w] = p
    total = sum(lex.values())
    for w, p in lex.items():
        share = FR_MIX["lexical"] * p / total
        _add(acc, w, share * FR_CASE_MIX["plain"])
        _add(acc, w[:1].upper() + w[1:], share * FR_CASE_MIX["capitalised"])
        _add(acc, w.upper(), share * FR_CASE_MIX["upper"])
    rng = np.random.default_rng(_TOKEN_SEED)
    for kind, gen in (("numbers", _fr_number), ("dates", _fr_date), ("amounts", _fr_amount)):
        tokens = [gen(rng) for _ in range(_N_SYNTHETIC)]
        for t in tokens:
            _add(acc, t, FR_MIX[kind] / len(tokens))
    for t, q in FR_PUNCTUATION.items():
        _add(acc, t, FR_MIX["punctuation"] * q)
    return acc


def _fr_number(rng: np.random.Generator) -> str:
    """Integers (small ones most often), postal codes, phone-number groups, ordinals-free."""
    r = rng.random()
    if r < 0.55:
        return str(int(rng.zipf(1.6)) % 1000)
    if r < 0.75:
        return str(int(rng.integers(1900, 2030)))
    if r < 0.90:
        return f"{int(rng.integers(1, 96)):02d}{int(rng.integers(0, 1000)):03d}"
    return ".".join(f"{int(rng.integers(0, 100)):02d}" for _ in range(int(rng.integers(2, 4))))


def _fr_date(rng: np.random.Generator) -> str:
    d, m, y = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1995, 2012))
    fmt = int(rng.integers(0, 4))
    if fmt == 0:
        return f"{d:02d}/{m:02d}/{y}"
    if fmt == 1:
        return f"{d}/{m}/{y % 100:02d}"
    if fmt == 2:
        return f"{d:02d}/{m:02d}/{y % 100:02d}"
    return f"{d:02d}-{m:02d}-{y}"


def _fr_amount(rng: np.random.Generator) -> str:
    euros = int(rng.zipf(1.4)) % 5000
    cents = int(rng.integers(0, 100))
    fmt = int(rng.integers(0, 4))
    if fmt == 0:
        return f"{euros},{cents:02d}€"
    if fmt == 1:
        return f"{euros}€"
    if fmt == 2:
        return f"{euros},{cents:02d}"
    return f"{euros}.{cents:02d}"


def strip_tashkeel(word: str) -> str:
    """Remove Arabic diacritics (tashkeel) and tatweel from a word."""
    return _AR_STRIP.sub("", normalize_text(word))


def _arabic_weights(top_n: int) -> dict[str, float]:
    """wordfreq Arabic words (diacritics stripped) plus Arabic-Indic digit numbers."""
    acc: dict[str, float] = {}
    lex: dict[str, float] = {}
    for w, p in _lexicon("ar", top_n).items():
        w = strip_tashkeel(w)
        if w:
            _add(lex, w, p)
    total = sum(lex.values())
    for w, p in lex.items():
        _add(acc, w, AR_MIX["lexical"] * p / total)
    rng = np.random.default_rng(_TOKEN_SEED)
    tokens = []
    for _ in range(_N_SYNTHETIC):
        n = int(rng.integers(1900, 2030)) if rng.random() < 0.3 else int(rng.zipf(1.6)) % 10000
        tokens.append(str(n).translate(ARABIC_INDIC))
    for t in tokens:
        _add(acc, t, AR_MIX["numbers"] / len(tokens))
    return acc
