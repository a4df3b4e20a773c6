"""Report rendering from a results.json (fake study): Markdown, self-contained HTML, CSV, PNG."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.cli import main as htraug
from benchmark.profiles import PROFILES, gan_departures, get_profile
from benchmark.study import load_study_config, run_study
from reports.render import (PAPER_LABEL, gan_departures_text, gan_precision, load_paper, recognizer_precision,
                            recognizer_restarts, render_report, stalled_recognizers)


@pytest.fixture(scope="module")
def study(tmp_path_factory, fake_backend):
    out = tmp_path_factory.mktemp("study")
    run_study(load_study_config("smoke", seed=0), out, backend=fake_backend(), log=lambda m: None, device="cpu")
    return out


@pytest.fixture(scope="module")
def report(study):
    return render_report(study)


def test_report_files(report):
    out = report.parent
    assert report.name == "report.html" and (out / "report.md").is_file()
    csvs = {p.name for p in (out / "tables").glob("*.csv")}
    assert {"table1_datasets.csv", "table6_htr.csv", "htr_per_seed.csv", "gan_final.csv", "sweep.csv",
            "table2_alpha.csv", "table3_loss.csv", "table4_attention.csv", "table5_conditioning.csv"} <= csvs
    pngs = {p.name for p in (out / "figures").glob("*.png")}
    for name in ("htr_bars.png", "sweep_gain.png", "htr_curves_rimes-like.png", "gan_quality_rimes-like.png",
                 "gan_losses_arabic-like.png", "samples_rimes-like_0.png", "samples_arabic-like_0.png",
                 "data_samples_rimes-like.png"):
        assert name in pngs, name
    for p in (out / "figures").glob("*.png"):
        with Image.open(p) as im:
            assert im.size[0] > 10 and im.size[1] > 10


def test_tables_have_ours_and_the_papers(report):
    t6 = pd.read_csv(report.parent / "tables/table6_htr.csv")
    assert set(t6["source"]) == {"this study", PAPER_LABEL}
    assert "4.34" in set(t6["validation ED %"].astype(str))          # the paper reports RIMES validation
    ours = t6[t6["source"] == "this study"]
    assert ours["test ED %"].str.contains("±").all() and ours["validation ED %"].str.contains("±").all()
    assert (t6[t6["source"] == PAPER_LABEL]["test ED %"] == "–").all()
    t2 = pd.read_csv(report.parent / "tables/table2_alpha.csv")
    assert list(t2["setting"]) == ["none", "0.1", "1 (ours)", "10"]
    assert "141.35" in t2[f"FID, {PAPER_LABEL}"].astype(str).tolist()
    t1 = pd.read_csv(report.parent / "tables/table1_datasets.csv")
    assert {"RIMES", "OpenHaRT", "rimes-like", "arabic-like"} <= set(t1["dataset"])


def test_readability_sits_beside_the_judge_on_real_words(study, report):
    import json
    res = json.loads((study / "results.json").read_text())
    gan = pd.read_csv(report.parent / "tables/gan_final.csv").set_index("dataset")
    for ds, e in res["datasets"].items():
        assert gan.loc[ds, "readability ED %"] == pytest.approx(e["gan"]["final"]["readability_cer"], abs=0.01)
        assert gan.loc[ds, "judge on real test ED %"] == pytest.approx(e["judge"]["test"]["cer"], abs=0.01)
        rows = e["htr"]["rows"]     # usefulness: the synthetic-only rows, without and with classic augmentation
        assert gan.loc[ds, "synthetic-only test ED %"] == pytest.approx(rows["synthetic"]["cer_mean"], abs=0.01)
        assert gan.loc[ds, "synthetic + classic aug. test ED %"] == pytest.approx(
            rows["synthetic+classic"]["cer_mean"], abs=0.01)


def test_markdown_mentions_every_section(report):
    md = (report.parent / "report.md").read_text()
    for heading in ("Datasets (Table I)", "Table VI", "Augmentation gain", "Generator quality", "Ablations (Tables II–V)"):
        assert heading in md
    assert PAPER_LABEL in md and "](figures/htr_bars.png)" in md


def test_html_is_self_contained(report):
    page = report.read_text()
    srcs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("<table>") >= 8


def test_report_cli_rerenders_without_training(study, tmp_path, capsys):
    assert htraug(["report", str(study), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r/report.html").is_file()
    assert htraug(["report", str(tmp_path / "nothing")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_paper_tables_are_complete():
    paper = load_paper()
    assert set(paper) == {f"table{i}" for i in range(1, 7)}
    assert paper["table1"]["rows"][0]["images"] == 129414
    assert {r["setting"]: r["fid"] for r in paper["table3"]["rows"]} == {"gan": 36.32, "lsgan": 116.09, "hinge": 23.94}
    assert paper["table6"]["rows"][1]["cer"] == 4.03


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_html_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,3000", report.resolve().as_uri()]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (3000, 1200)
    assert img.std() > 10, "the screenshot is blank"
    dark = (img < 128).mean()
    assert 0.005 < dark < 0.6, f"unexpected ink share {dark:.3f}"
    # Images are drawn: rows with mid-grey texture (plots / sample grids), not only text and white.
    assert (np.abs(np.diff(img, axis=1)) > 30).mean() > 0.005


def test_the_main_gans_departures_from_the_paper_are_named_in_words():
    quick = gan_departures(PROFILES["quick"].to_json())
    assert "ms_weight = 0.25 (paper: 0.0)" in quick and "cond = spatial (paper: cbn)" in quick
    assert "alpha = none (paper: 1.0)" in quick and "gan_readers = [real+classic] (paper: [])" in quick
    assert "d_steps = 2 (paper: 1)" in quick and "lr_d = 0.0008 (paper: none)" in quick
    assert 'diff_augment = translation,cutout,ink (paper: "")' in quick
    assert not any(d.split(" = ")[0] in ("channel_mult", "iterations", "batch_size", "eval_every") for d in quick)
    assert gan_departures(get_profile("paper", {"gan_amp": "on"}).to_json()) == []      # precision: a note, not a departure
    assert gan_departures(PROFILES["paper"].to_json()) == [] and gan_departures(PROFILES["smoke"].to_json()) == []
    back = get_profile("quick", {"gan_ms_weight": 0.0, "gan_ms_region": "image"}).to_json()
    assert not any(d.startswith("ms_") for d in gan_departures(back)) and len(gan_departures(back)) == len(quick) - 2
    text = gan_departures_text({"gan_departures": quick})
    assert text.startswith("The main GAN departs from the paper's configuration in: ") and "ms_region = word" in text
    assert gan_departures_text({"gan_departures": []}).startswith("The main GAN is the paper's configuration")
    assert gan_departures_text({}) is None                                     # results written before the field


def test_the_report_says_whether_the_gan_is_the_papers(report):
    md = report.with_name("report.md").read_text()
    assert "The main GAN is the paper's configuration (at this profile's size)." in md        # smoke: the paper's GAN


def _seed(seed, cer, val_cers):
    return {"seed": seed, "cer": cer, "curve": [{"step": 500 * (i + 1), "val_cer": v} for i, v in enumerate(val_cers)]}


def test_a_seed_left_on_the_blank_plateau_is_flagged_only_beside_one_that_learned(report):
    stalled, learned = _seed(0, 96.84, [99.4, 97.3, 97.3]), _seed(1, 45.27, [85.8, 74.3, 58.3])
    rows = lambda *seeds: {"datasets": {"rimes-like": {"htr": {"rows": {"real+synthetic": {"per_seed": list(seeds)}}}}}}  # noqa: E731
    [warning] = stalled_recognizers(rows(stalled, learned))
    assert warning.startswith("WARNING (rimes-like, real + synthetic, seed 0): this recognizer did not learn")
    assert "97.3 %" in warning and "96.84 %" in warning and "seed 1 of the row reached a validation ED of 58.3 %" in warning
    assert stalled_recognizers(rows(stalled, _seed(1, 99.0, [99.0, 98.0]))) == []     # no seed learned: plumbing scale
    assert stalled_recognizers(rows(_seed(0, 60.0, [90.0, 70.0]), learned)) == []       # slow, not stalled
    assert stalled_recognizers(rows({"seed": 0, "cer": 97.0}, learned)) == []           # no curve: nothing to judge
    assert "did not learn" not in report.with_name("report.md").read_text()           # smoke: no seed learns


def test_bf16_recognizers_are_counted_in_a_note_and_float32_ones_need_none():
    bf16 = {**_seed(0, 47.1, [80.0, 60.0]), "bf16": True}
    results = {"datasets": {"rimes-like": {"htr": {"rows": {"real": {"per_seed": [bf16, _seed(1, 45.0, [80.0])]},
                                                            "real+classic": {"per_seed": [{**bf16, "seed": 1}]}}}}}}
    notes = recognizer_precision(results)
    assert len(notes) == 1 and notes[0].startswith("NOTE: 2 of the 3 recognizers of this section trained") and "bf16" in notes[0]
    results["datasets"]["rimes-like"]["htr"]["rows"] = {"real": {"per_seed": [_seed(1, 45.0, [80.0])]}}
    assert recognizer_precision(results) == []


def test_bf16_gans_are_named_in_a_note_from_their_logs_and_float32_ones_need_none():
    def entry(amp):
        return {"gan": {"log": [{"event": "start", "iteration": 0, "amp": amp}, {"event": "eval", "iteration": 900}]}}
    results = {"datasets": {"rimes-like": entry(True), "arabic-like": entry(False)}}
    notes = gan_precision(results)
    assert len(notes) == 1 and notes[0].startswith("NOTE: the main GAN of rimes-like trained under bf16 autocast")
    assert gan_precision({"datasets": {"rimes-like": entry(False), "arabic-like": {}}}) == []


def test_a_stall_guard_restart_is_named_and_the_restarted_seed_is_not_flagged():
    restarted = _seed(0, 47.1, [99.4, 97.3, 97.3, 90.2, 70.5, 55.0])
    restarted["curve"].insert(3, {"event": "restart", "epoch": 20, "step": 1500, "attempt": 1,
                                  "reason": "validation CER 97.3 % ≥ 95 % after 1500 steps"})
    results = {"datasets": {"arabic-like": {"htr": {"rows": {"real": {"per_seed": [restarted, _seed(1, 45.0, [80.0, 60.0])]}}}}}}
    assert recognizer_restarts(results) == [
        "NOTE (arabic-like, real only, seed 0): restarted from a new initialisation at step 1500 (validation CER 97.3 % ≥ 95 % "
        "after 1500 steps); its result is the restarted run's."]
    assert stalled_recognizers(results) == []          # the restarted run learned
    assert recognizer_restarts({"datasets": {"arabic-like": {"htr": {"rows": {"real": {"per_seed": [_seed(1, 45.0, [80.0])]}}}}}}) == []
