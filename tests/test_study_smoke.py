"""The real smoke study end to end (data → judge → GAN → synthetic → HTR grid → report → compare).

About a minute on 2 idle CPU cores; part of the default run, so CI runs the smoke study and the
regression compare against the committed baseline.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

BASELINE = Path(__file__).resolve().parents[1] / "reports/baselines/smoke.json"


def test_smoke_study_end_to_end(tmp_path):
    pytest.importorskip("gan.train")
    pytest.importorskip("htr.train")
    from benchmark.study import load_study_config, run_study
    from reports.compare import compare, load_tolerances
    from reports.render import render_report

    cfg = load_study_config("smoke", seed=0)
    lines: list[str] = []
    res = run_study(cfg, tmp_path, log=lines.append)
    assert res["complete"], res["units"]["missing"][:5]
    for ds in ("rimes-like", "arabic-like"):
        e = res["datasets"][ds]
        assert e["stats"]["train"]["images"] > 0
        assert set(e["htr"]["rows"]) == {"real", "real+synthetic", "real+classic", "real+synthetic+classic", "synthetic",
                                         "synthetic+classic"}
        assert e["gan"]["final"]["fid"] is not None and e["gan"]["grids"]
    assert res["datasets"]["rimes-like"]["ablations"]
    html = render_report(tmp_path)
    assert html.is_file() and (tmp_path / "report/report.md").is_file()

    # a second run is a no-op: every stage is up to date
    lines.clear()
    again = run_study(cfg, tmp_path, log=lines.append)
    assert all("up to date" in l for l in lines if l.startswith("["))
    assert again["datasets"] == json.loads(json.dumps(res["datasets"]))

    if BASELINE.is_file():
        checks = compare(json.loads(BASELINE.read_text()), res, load_tolerances(None))
        failed = [c for c in checks if c.failed]
        assert not failed, failed[:5]
