"""Word priors: alphabet use, filtering, determinism, label-estimated priors."""
import numpy as np
import pytest

from datasets.alphabet import ARABIC, FRENCH, Alphabet
from datasets.errors import UserError
from datasets.words import make_prior, prior_from_texts, strip_tashkeel


@pytest.fixture(scope="module")
def fr():
    return make_prior("fr")


@pytest.fixture(scope="module")
def ar():
    return make_prior("ar")


def test_french_prior_uses_the_whole_rimes_alphabet(fr):
    assert fr.language == "fr"
    assert abs(fr.probs.sum() - 1) < 1e-9 and len(fr.words) == len(fr.probs)
    assert all(FRENCH.covers(w) for w in fr.words)
    assert set("".join(fr.words)) == set(FRENCH.symbols)
    sample = fr.sample(20000, np.random.default_rng(0))
    assert len(set("".join(sample))) >= 80  # frequency-weighted draws still reach most symbols
    kinds = {
        "capitalised": lambda w: w[:1].isupper() and w[1:].islower(),
        "all caps": lambda w: len(w) > 1 and w.isupper(),
        "date": lambda w: w.count("/") == 2 and w.replace("/", "").isdigit(),
        "amount": lambda w: w.endswith("€") and any(c.isdigit() for c in w),
        "number": lambda w: w.isdigit(),
        "punctuation": lambda w: w in {".", ",", "-"},
    }
    for name, pred in kinds.items():
        assert any(pred(w) for w in sample), name
    assert "l'" in fr.words and "de" == fr.words[0]


def test_arabic_prior_is_stripped_and_covered(ar):
    assert all(ARABIC.covers(w) for w in ar.words)
    assert any(all(c in "٠١٢٣٤٥٦٧٨٩" for c in w) for w in ar.words)
    assert "في" in ar.words[:5]
    assert strip_tashkeel("مُحَمَّد") == "محمد" and strip_tashkeel("كـتـاب") == "كتاب"


def test_sampling_is_deterministic_and_frequency_weighted(fr):
    a = fr.sample(500, np.random.default_rng(42))
    b = fr.sample(500, np.random.default_rng(42))
    assert a == b
    assert a != fr.sample(500, np.random.default_rng(43))
    counts = {w: a.count(w) for w in set(a)}
    assert max(counts, key=counts.get) in fr.words[:5]


def test_alphabet_and_length_filters():
    small = Alphabet("abcdefghijklmnopqrstuvwxyz", "lower")
    p = make_prior("fr", small, max_chars=4, top_n=2000)
    assert all(small.covers(w) and len(w) <= 4 for w in p.words)
    with pytest.raises(UserError):
        make_prior("de")


def test_prior_from_texts_and_filtered():
    p = prior_from_texts(["the", "cat", "the", "a", "the"], "en")
    assert p.words[0] == "the" and abs(p.probs[0] - 0.6) < 1e-9
    q = p.filtered(lambda w: len(w) == 3)
    assert set(q.words) == {"the", "cat"} and abs(q.probs.sum() - 1) < 1e-9
    with pytest.raises(UserError):
        prior_from_texts([], "en")
