"""`htraug compare`: direction-aware tolerances and exit codes on crafted results."""
from __future__ import annotations

import copy
import json

import pytest

from benchmark.cli import main as htraug
from datasets.errors import UserError
from reports.compare import compare, direction_of, flatten_metrics, load_tolerances


def _results(cer=10.0, wer=30.0, fid=50.0, gs=0.01, kid=0.05, gain=1.0, images=160) -> dict:
    row = {"cer_mean": cer, "cer_std": 1.0, "wer_mean": wer, "wer_std": 2.0, "n_seeds": 2, "per_seed": []}
    return {
        "schema": 1, "kind": "htraug-study", "profile": {"name": "smoke"}, "config": {},
        "datasets": {"fr": {
            "stats": {"train": {"images": images, "words": 40, "characters": 30}},
            "gan": {"final": {"fid": fid, "gs": gs, "kid": kid, "readability_cer": 20.0, "fid_features": "htr"}},
            "htr": {"rows": {"real": dict(row), "real+synthetic": dict(row)}},
            "sweep": [{"fraction": 0.5, "real": {"cer_mean": cer, "wer_mean": wer},
                       "real+synthetic": {"cer_mean": cer - gain, "wer_mean": wer}, "gain_cer": gain}],
            "ablations": {"loss": [{"setting": "gan", "fid": 80.0, "gs": 0.02},
                                   {"setting": "hinge (ours)", "fid": fid, "gs": gs}]},
        }},
    }


TOL = {"default": {"abs": 0.0, "rel": 0.1},
       "rules": [{"match": "*_std", "ignore": True}, {"match": "*/data/*", "abs": 0},
                 {"match": "*/htr/*", "abs": 2.0}, {"match": "*/gs", "rel": 1.0}]}


def _status(checks, metric):
    return next(c for c in checks if c.metric == metric).status


def test_flatten_and_directions():
    flat = flatten_metrics(_results())
    assert flat["fr/htr/real/cer_mean"] == 10.0 and flat["fr/gan/final/fid"] == 50.0
    assert flat["fr/ablation/loss/hinge/fid"] == 50.0 and flat["fr/sweep/f0.5/gain_cer"] == 1.0
    assert direction_of("fr/htr/real/wer_mean") == "lower"
    assert direction_of("fr/gan/final/readability_cer") == "lower"
    assert direction_of("fr/gan/final/kid") == "lower"
    assert direction_of("fr/sweep/f0.5/gain_cer") == "higher"
    assert direction_of("fr/data/train/images") == "equal"


def test_identical_results_pass():
    checks = compare(_results(), _results(), TOL)
    assert not any(c.failed for c in checks)
    assert _status(checks, "fr/htr/real/cer_std") == "ignored"


def test_regressions_are_direction_aware():
    checks = compare(_results(), _results(cer=11.5, fid=40.0), TOL)
    assert _status(checks, "fr/htr/real/cer_mean") == "ok"            # +1.5 within abs 2
    assert _status(checks, "fr/gan/final/fid") == "better"            # lower FID is better
    checks = compare(_results(), _results(cer=12.5), TOL)
    assert _status(checks, "fr/htr/real/cer_mean") == "REGRESSED"
    checks = compare(_results(), _results(cer=5.0, fid=56.0), TOL)
    assert _status(checks, "fr/htr/real/cer_mean") == "better"
    assert _status(checks, "fr/gan/final/fid") == "REGRESSED"         # +6 > 10 % of 50
    checks = compare(_results(), _results(gain=0.8), TOL)
    assert _status(checks, "fr/sweep/f0.5/gain_cer") == "REGRESSED"   # higher is better: 0.2 > 0.1
    checks = compare(_results(), _results(images=161), TOL)
    assert _status(checks, "fr/data/train/images") == "REGRESSED"     # dataset changed


def test_missing_metric_fails_and_new_metric_does_not():
    run = _results()
    del run["datasets"]["fr"]["gan"]["final"]["kid"]
    assert _status(compare(_results(), run, TOL), "fr/gan/final/kid") == "MISSING"
    base = _results()
    del base["datasets"]["fr"]["gan"]["final"]["kid"]
    checks = compare(base, _results(), TOL)
    assert _status(checks, "fr/gan/final/kid") == "new" and not any(c.failed for c in checks)


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_cli_exit_codes(tmp_path, capsys):
    base = _write(tmp_path / "base.json", _results())
    tol = _write(tmp_path / "tol.json", TOL)
    assert htraug(["compare", str(base), str(_write(tmp_path / "same.json", _results())), "--tolerance", str(tol)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["metric", "baseline", "run", "delta", "tolerance", "status"]
    assert "no regression" in out
    bad = _write(tmp_path / "bad.json", _results(wer=40.0))
    assert htraug(["compare", str(base), str(bad), "--tolerance", str(tol)]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("fr/htr/real/wer_mean"))
    assert line.split()[1:] == ["30.000", "40.000", "10.000", "2.000", "REGRESSED"]
    # default tolerance file (reports/baselines/tolerances.json) is valid and used without --tolerance
    assert htraug(["compare", str(base), str(base)]) == 0
    capsys.readouterr()
    # user errors: one line, exit 2
    assert htraug(["compare", str(base), str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    broken = tmp_path / "tol_bad.json"
    broken.write_text(json.dumps({"rules": [{"pattern": "*"}]}))
    assert htraug(["compare", str(base), str(base), "--tolerance", str(broken)]) == 2


def test_default_tolerances_load():
    tol = load_tolerances(None)
    assert tol["rules"] and all("match" in r for r in tol["rules"])
    with pytest.raises(UserError):
        load_tolerances("/nonexistent/tol.json")


def test_smoke_baseline_matches_its_own_schema():
    from pathlib import Path
    base = Path(__file__).resolve().parents[1] / "reports/baselines/smoke.json"
    if not base.is_file():
        pytest.skip("reports/baselines/smoke.json not generated yet")
    doc = json.loads(base.read_text())
    assert doc["kind"] == "htraug-study" and doc["profile"]["name"] == "smoke"
    assert not any(c.failed for c in compare(doc, copy.deepcopy(doc), load_tolerances(None)))
