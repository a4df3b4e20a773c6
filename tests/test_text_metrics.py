"""Corpus-level ED (CER) and WER on hand-computed cases, and `htraug metrics text`."""
import json

import pytest

from benchmark.cli import build_parser
from benchmark.metrics.text import text_metrics
from datasets.errors import UserError


@pytest.mark.parametrize("ref,hyp,errors", [
    ("abc", "abc", 0),
    ("abc", "abd", 1),      # substitution
    ("abc", "abxc", 1),     # insertion
    ("abc", "ac", 1),       # deletion
    ("abc", "", 3),         # empty hypothesis
    ("abc", "xyzabc", 3),   # three insertions
    ("kitten", "sitting", 3),
])
def test_single_word(ref, hyp, errors):
    m = text_metrics([ref], [hyp])
    assert m["char_errors"] == errors
    assert m["cer"] == pytest.approx(100.0 * errors / len(ref))
    assert m["wer"] == (0.0 if errors == 0 else 100.0)
    assert m["n"] == 1


def test_corpus_level_not_word_averaged():
    # per-word CERs 0% and 25% would average to 12.5%; corpus level is 1 / 6 characters
    m = text_metrics(["ab", "cdef"], ["ab", "cxef"])
    assert m["cer"] == pytest.approx(100 / 6)
    assert m["wer"] == pytest.approx(50.0)


def test_arabic_unicode():
    m = text_metrics(["مرحبا", "سلام"], ["مرحب", "سلام"])
    assert m["char_errors"] == 1 and m["chars"] == 9
    assert m["cer"] == pytest.approx(100 / 9)
    assert m["wer"] == pytest.approx(50.0)


def test_case_insensitive_variant():
    m = text_metrics(["Paris", "LE"], ["paris", "le"])
    assert m["cer"] == pytest.approx(300 / 7) and m["wer"] == 100.0
    assert m["cer_ci"] == 0.0 and m["wer_ci"] == 0.0


def test_accented_letters_count_as_one_character():
    m = text_metrics(["été"], ["ete"])
    assert m["char_errors"] == 2 and m["cer"] == pytest.approx(200 / 3)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        text_metrics(["a"], [])


def _metrics_parser():
    return build_parser()


def test_metrics_text_command(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("\ufeffabc\nمرحبا\nParis\n", encoding="utf-8")
    hyp.write_text("abd\nمرحبا\n\n", encoding="utf-8")        # third hypothesis empty
    args = _metrics_parser().parse_args(["metrics", "text", "--ref", str(ref), "--hyp", str(hyp), "--json"])
    assert args.func(args) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 3 and m["char_errors"] == 6 and m["cer"] == pytest.approx(600 / 13)
    args = _metrics_parser().parse_args(["metrics", "text", "--ref", str(ref), "--hyp", str(hyp)])
    args.func(args)
    out = capsys.readouterr().out
    assert "case-sensitive" in out and "case-insensitive" in out


def test_metrics_text_line_count_mismatch(tmp_path):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("a\nb\n", encoding="utf-8")
    hyp.write_text("a\n", encoding="utf-8")
    args = _metrics_parser().parse_args(["metrics", "text", "--ref", str(ref), "--hyp", str(hyp)])
    with pytest.raises(UserError) as e:
        args.func(args)
    assert "2 lines" in str(e.value) and "\n" not in str(e.value)
    args = _metrics_parser().parse_args(["metrics", "text", "--ref", str(tmp_path / "missing"), "--hyp", str(hyp)])
    with pytest.raises(UserError):
        args.func(args)
