"""The study's config path end to end with a dataset imported as distributed (a RIMES-layout
fixture): the config's importer options reach the importer, the data stage imports at the
profile's canvas, and the study runs and reports. The fast test trains nothing (the conftest
fake backend with the real importer); the slow one runs the real smoke study on the import."""
from __future__ import annotations

import json

import pytest

from benchmark.study import load_study_config, run_study
from datasets.errors import UserError
from import_layouts import RIMES_FILES, build_rimes


def _config(tmp_path, root, options: dict, profile: str = "smoke") -> object:
    opts = "".join(f'{k} = {json.dumps(v)}\n' if not isinstance(v, dict) else
                   f'{k} = {{ {", ".join(f"{a} = {json.dumps(b)}" for a, b in v.items())} }}\n'
                   for k, v in options.items())
    f = tmp_path / "study.toml"
    f.write_text(f'profile = "{profile}"\n[overrides]\nhtr_seeds = 1\n'
                 f'[[datasets]]\nname = "rimes"\nformat = "rimes"\npath = "{root}"\n[datasets.options]\n{opts}',
                 encoding="utf-8")
    return load_study_config(config_file=f)


def test_study_over_an_imported_rimes_layout(tmp_path, fake_backend):
    from benchmark.backend import RealBackend
    from reports.render import render_report

    lay = build_rimes(tmp_path / "RIMES", n=20)

    class ImportingBackend(fake_backend):
        """Fake training and metrics; the real importer."""

        def import_dataset(self, fmt, root, out, height, width, options):
            return RealBackend(log=lambda m: None, show_progress=False).import_dataset(fmt, root, out, height, width,
                                                                                       {**options, "log": lambda m: None})

    cfg = _config(tmp_path, tmp_path / "RIMES", {"on_bad": "skip", "gt": {s: f for s, (f, _) in RIMES_FILES.items()}})
    assert cfg.datasets[0].options["gt"]["val"] == "ground_truth_validation_icdar2011.txt"
    res = run_study(cfg, tmp_path / "study", backend=ImportingBackend(), log=lambda m: None, device="cpu")
    assert res["complete"]
    e = res["datasets"]["rimes"]
    assert e["source"] == "import:rimes" and e["language"] == "fr"
    assert {s: e["stats"][s]["images"] for s in ("train", "val", "test")} == {s: lay.count(s) for s in ("train", "val", "test")}
    [report] = (tmp_path / "study").rglob("import_report.tsv")
    data = report.parent
    meta = json.loads((data / "meta.json").read_text())
    assert meta["importer"]["height"] == cfg.profile.height and meta["importer"]["width"] == cfg.profile.width
    assert meta["skipped"] == {"malformed_line": 1, "missing_image": 1, "unreadable_image": 1, "out_of_alphabet": 1}
    assert render_report(tmp_path / "study").is_file()


def test_unknown_importer_option_is_an_error_before_any_work(tmp_path):
    build_rimes(tmp_path / "RIMES", n=2, bad=False)
    with pytest.raises(UserError, match="on_bda"):
        _config(tmp_path, tmp_path / "RIMES", {"on_bda": "skip"})
    assert not (tmp_path / "study").exists()


@pytest.mark.slow
def test_real_smoke_study_over_an_imported_rimes_layout(tmp_path):
    """The real data, judge, GAN, synthetic, HTR and report stages of the smoke profile (598 s on 2
    CPU cores that another study was using too)."""
    pytest.importorskip("gan.train")
    from reports.render import render_report

    lay = build_rimes(tmp_path / "RIMES", n=60)
    cfg = _config(tmp_path, tmp_path / "RIMES", {})
    res = run_study(cfg, tmp_path / "study", log=lambda m: None, device="cpu")
    assert res["complete"], res["units"]["missing"][:5]
    e = res["datasets"]["rimes"]
    assert e["stats"]["train"]["images"] == lay.count("train")
    assert set(e["htr"]["rows"]) >= {"real", "real+synthetic"} and e["gan"]["final"]["fid"] is not None
    assert render_report(tmp_path / "study").is_file()
