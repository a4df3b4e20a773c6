"""GAN variants in the study (profile field gan_variants): planned on the first dataset per GAN seed,
trained with their recipe change, scored like the main GAN, used alone to train a recognizer,
assembled beside the main GAN, reported and compared."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.profiles import get_profile
from benchmark.study import load_study_config, plan_study, run_study
from benchmark.study.stages import collapse_warnings
from datasets.errors import UserError
from reports.compare import compare, direction_of, flatten_metrics, load_tolerances
from reports.render import render_report

QUIET = {"log": lambda m: None, "device": "cpu"}
CHANGES = {"remedy": {"diff_augment": "translation,cutout", "ms_weight": 1.0},
           "plain": {"cond": "cbn", "r_init": False, "readers": False}}


@pytest.fixture(scope="module")
def cfg():
    base = load_study_config("smoke", seed=0)
    p = base.profile
    return replace(base, profile=replace(p, gan_variants=CHANGES, variant_seeds=2, gan_r_init=True,
                                         gan_readers=("real+classic",)))


def test_variants_are_units_of_the_first_dataset_per_gan_seed(cfg):
    stages = {s.name: s for s in plan_study(cfg, backend=None)}
    names = sorted(n for n in stages if "/variant/" in n)
    assert names == ["rimes-like/variant/plain/s0", "rimes-like/variant/plain/s1",
                     "rimes-like/variant/remedy/s0", "rimes-like/variant/remedy/s1"]
    assert all(stages[n].unit for n in names)
    assert stages[names[0]].inputs == stages["rimes-like/gan"].inputs      # data, judge, R's start, readers
    assert stages[names[0]].config["gan_seed"] == 0 and stages[names[1]].config["gan_seed"] == 1
    assert stages["rimes-like/variant/remedy/s0"].config["diff_augment"] == "translation,cutout"


def _recording(fake_backend):
    seen: list[dict] = []

    class Recording(fake_backend):
        def train_gan(self, opts, resume):
            seen.append(dict(opts))
            return super().train_gan(opts, resume)

    return Recording(), seen


def test_variants_train_score_and_assemble(tmp_path, cfg, fake_backend):
    backend, seen = _recording(fake_backend)
    res = run_study(cfg, tmp_path, backend=backend, **QUIET)
    assert res["complete"]
    by_out = {"/".join(Path(o["out"]).parts[-4:-2]): o for o in seen if "/variant/" in o["out"]}   # …/NAME/sK/work/gan
    remedy, plain = by_out["remedy/s0"], by_out["plain/s0"]
    assert remedy["diff_augment"] == "translation,cutout" and remedy["ms_weight"] == 1.0 and remedy["seed"] == 0
    assert remedy["r_init"] and remedy["readers"]                    # the study's recognizers, like the main GAN
    assert plain["cond"] == "cbn" and plain["r_init"] is None and "readers" not in plain   # dropped
    assert by_out["remedy/s1"]["seed"] == 1
    variants = res["datasets"]["rimes-like"]["variants"]
    assert list(variants) == ["main", "remedy", "plain"] and "variants" not in res["datasets"]["arabic-like"]
    for name in ("remedy", "plain"):
        v = variants[name]
        assert v["change"] == CHANGES[name] and [r["seed"] for r in v["per_seed"]] == [0, 1]
        for key in ("readability_cer", "diversity", "fid", "kid", "gs", "synthetic_only_cer"):
            assert isinstance(v[f"{key}_mean"], float) and isinstance(v[f"{key}_std"], float), key
    main = variants["main"]
    assert main["synthetic_only_cer_mean"] == res["datasets"]["rimes-like"]["htr"]["rows"]["synthetic"]["cer_mean"]
    assert main["diversity_mean"] == res["datasets"]["rimes-like"]["gan"]["final"]["diversity"]

    report = render_report(tmp_path).with_name("report.md").read_text()
    assert "GAN variants (remedies)" in report and "remedy" in report and "diff_augment=translation,cutout" in report

    flat = flatten_metrics(res)
    assert "rimes-like/variant/remedy/synthetic_only_cer_mean" in flat and "rimes-like/gan/final/diversity" in flat
    assert direction_of("rimes-like/variant/remedy/diversity_mean") == "higher"
    assert direction_of("rimes-like/variant/remedy/synthetic_only_cer_mean") == "lower"
    worse = {**res, "datasets": {**res["datasets"], "rimes-like": {**res["datasets"]["rimes-like"], "variants": {
        **variants, "remedy": {**variants["remedy"], "diversity_mean": variants["remedy"]["diversity_mean"] - 0.5}}}}}
    failed = [c.metric for c in compare(res, worse, load_tolerances(None)) if c.failed]
    assert failed == ["rimes-like/variant/remedy/diversity_mean"]


def test_collapse_warnings_come_from_the_log_and_a_low_diversity():
    log = [{"event": "eval", "warning": "D's loss stayed low"}, {"event": "eval"}]
    assert collapse_warnings({"diversity": 0.05}, log)[0] == "D's loss stayed low"
    assert "style collapse" in collapse_warnings({"diversity": 0.05}, [])[0]
    assert collapse_warnings({"diversity": 0.5}, [{"event": "eval"}]) == []


@pytest.mark.parametrize("variants, word", [({"a/b": {}}, "simple name"), ({"main": {}}, "main"),
                                            ({"x": {"diff_augment": "zoom"}}, "zoom"), ({"x": {"colour": 1}}, "colour"),
                                            ({"x": {"r_init": "run"}}, "false or null"), ({"x": 3}, "table")])
def test_bad_variants_are_one_line_errors(variants, word):
    with pytest.raises(UserError) as exc:
        get_profile("smoke", {"gan_variants": variants})
    assert word in str(exc.value) and "\n" not in str(exc.value)
