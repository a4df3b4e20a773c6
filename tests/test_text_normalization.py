"""Text metrics for lines and word images: line WER as a word-level edit distance (checked against
jiwer and by hand), word accuracy, and the normalisation options (NFC/NFKC, diacritics,
punctuation) on the command line, in `htr eval` and in the study config."""
from __future__ import annotations

import json
from pathlib import Path
import random

import pytest

from benchmark.cli import main
from benchmark.metrics.text import TextNormalization, text_metrics, words_of
from datasets.errors import UserError

jiwer = pytest.importorskip("jiwer")

LINES_REF = ["the cat sat on the mat", "a b c", "hello world"]
LINES_HYP = ["the cat sit on mat", "a x b c d", "hello world"]


def test_line_wer_is_the_word_edit_distance_over_reference_words():
    m = text_metrics(LINES_REF, LINES_HYP)
    # by hand: sat→sit and a deleted "the" (2 of 6 words); two insertions (2 of 3); none (0 of 2)
    assert (m["word_errors"], m["ref_words"]) == (4, 11)
    assert m["line_wer"] == pytest.approx(100 * 4 / 11)
    assert m["line_wer"] == pytest.approx(100 * jiwer.wer(LINES_REF, LINES_HYP))
    assert m["wer"] == pytest.approx(100 * 2 / 3) and m["word_accuracy"] == pytest.approx(100 / 3)


def test_line_wer_equals_jiwer_on_a_random_corpus():
    rng = random.Random(7)
    vocab = ["le", "la", "de", "chat", "chien", "maison", "été", "un", "deux", "trois"]
    refs, hyps = [], []
    for _ in range(200):
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 9))]
        hyp = [w if rng.random() > 0.3 else rng.choice(vocab) for w in ref if rng.random() > 0.1]
        hyp += [rng.choice(vocab) for _ in range(rng.randint(0, 2))]
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    m = text_metrics(refs, hyps)
    assert m["line_wer"] == pytest.approx(100 * jiwer.wer(refs, hyps), rel=1e-12)
    assert m["cer"] == pytest.approx(100 * jiwer.cer(refs, hyps), rel=1e-12)


def test_for_word_images_line_wer_is_the_image_wer():
    refs, hyps = ["le", "chat", "été", "Paris"], ["le", "chats", "", "paris"]
    m = text_metrics(refs, hyps)
    assert m["wer"] == m["line_wer"] == pytest.approx(75.0)
    assert m["word_accuracy"] == pytest.approx(25.0) and m["wer_ci"] == m["line_wer_ci"] == pytest.approx(50.0)
    assert words_of("un▁deux  trois\tquatre") == ["un", "deux", "trois", "quatre"]   # ▁ is a labels' space
    assert text_metrics(["un▁deux"], ["un deux"])["line_wer"] == 0.0


def test_normalisation_options_change_what_is_scored():
    assert TextNormalization(normalize="nfkc").apply("ﬁn ﻻ Ａ１") == "fin لا A1"
    assert TextNormalization(normalize="nfc").apply("e\u0301") == "é"
    strip = TextNormalization(strip_diacritics=True)
    assert strip.apply("élève Ça") == "eleve Ca"
    assert strip.apply("مُحَمَّدٌ") == "محمد"                     # harakat, shadda, tanwin
    assert strip.apply("أَحْمَد إِسْلَام آمِن مُؤْمِن") == "أحمد إسلام آمن مؤمن"   # hamza and madda stay
    assert strip.apply("كــتــاب") == "كتاب"                        # tatweel
    assert TextNormalization(strip_punct=True).apply("l'été, «oui» ؟ a-b 5€") == "lété oui  ab 5€"
    refs, hyps = ["مُحَمَّد", "l'été"], ["محمد", "lete"]
    assert text_metrics(refs, hyps)["cer"] > 0
    m = text_metrics(refs, hyps, TextNormalization(strip_diacritics=True, strip_punct=True))
    assert m["cer"] == 0.0 and m["wer"] == 0.0
    assert m["normalization"] == {"normalize": "none", "strip_diacritics": True, "strip_punct": True}
    with pytest.raises(UserError, match="normalize"):
        TextNormalization(normalize="nfd")


def test_metrics_text_cli_reports_line_wer_and_the_normalisation(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("\n".join(LINES_REF) + "\n", encoding="utf-8")
    hyp.write_text("\n".join(LINES_HYP) + "\n", encoding="utf-8")
    assert main(["metrics", "text", "--ref", str(ref), "--hyp", str(hyp)]) == 0
    out = capsys.readouterr().out
    assert "line WER (word edit distance over 11 reference words)   36.36%" in out
    assert main(["metrics", "text", "--ref", str(ref), "--hyp", str(hyp), "--json", "--normalize", "nfkc",
                 "--strip-diacritics", "--strip-punct"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["line_wer"] == pytest.approx(100 * 4 / 11) and m["ref_words"] == 11
    assert m["normalization"] == {"normalize": "nfkc", "strip_diacritics": True, "strip_punct": True}
    with pytest.raises(SystemExit) as exc:                              # argparse: not a choice
        main(["metrics", "text", "--ref", str(ref), "--hyp", str(hyp), "--normalize", "nfd"])
    assert exc.value.code == 2 and "invalid choice: 'nfd'" in capsys.readouterr().err


def test_htr_eval_takes_the_normalisation_options(tmp_path, capsys, one_thread):
    from htr.train import HtrTrainConfig, train
    from recognizer_files import write_bar_dataset

    data = write_bar_dataset(tmp_path / "data", 8, 0)
    run = train(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "run"), max_epochs=1, batch_size=8,
                               width_mult=0.25, show_progress=False))
    assert main(["htr", "eval", "--model", str(run), "--data", str(data), "--json", "--strip-punct",
                 "--normalize", "nfc"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["normalization"] == {"normalize": "nfc", "strip_diacritics": False, "strip_punct": True}
    assert {"line_wer", "word_accuracy", "cer", "wer"} <= set(m)


def test_study_config_text_table_reaches_every_recognizer_evaluation(tmp_path, fake_backend):
    from benchmark.study import load_study_config, plan_study, run_study

    config = tmp_path / "study.toml"
    config.write_text('profile = "smoke"\ndatasets = ["rimes-like"]\n[text]\nnormalize = "nfkc"\nstrip_diacritics = true\n',
                      encoding="utf-8")
    cfg = load_study_config(config_file=config)
    assert cfg.text == TextNormalization(normalize="nfkc", strip_diacritics=True)
    assert cfg.to_json()["text"] == {"normalize": "nfkc", "strip_diacritics": True, "strip_punct": False}
    plain = load_study_config("smoke")
    assert plain.text is None and "text" not in plain.to_json()       # studies without it keep their hashes
    htr_stage = lambda s: "/htr/" in s.name or s.name.endswith("/judge")
    assert all("text" not in s.config for s in plan_study(plain, None, fingerprints=False) if htr_stage(s))
    assert all(s.config["text"]["normalize"] == "nfkc" for s in plan_study(cfg, None, fingerprints=False) if htr_stage(s))

    seen = []

    class Recording(fake_backend):
        def evaluate_htr(self, run, data_dir, out_tsv=None, text=None):
            if Path(out_tsv).name == "test_predictions.tsv":      # the grid units' and the judge's test scoring
                seen.append(text)
            return super().evaluate_htr(run, data_dir, out_tsv)

    results = run_study(cfg, tmp_path / "study", backend=Recording(), log=lambda m: None, device="cpu")
    assert seen and all(t == cfg.text.to_json() for t in seen)
    assert results["config"]["text"] == cfg.text.to_json()
    bad = tmp_path / "bad.toml"
    bad.write_text('[text]\nnormalise = "nfkc"\n', encoding="utf-8")
    with pytest.raises(UserError, match="text: unknown key.*normalise"):
        load_study_config(config_file=bad)
