"""The study orchestration end to end with an injected lightweight backend (fake_backend, tests/conftest.py):
skip logic, interruption + restart, sharding + merge, config validation, torchrun commands."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmark.backend import torchrun_command
from benchmark.cli import main as htraug
from benchmark.study.assemble import paired_gain
from benchmark.study import (load_study_config, merge_studies, plan_study, run_study, select_targets,
                             load_results)
from datasets.errors import UserError

QUIET = {"log": lambda m: None, "device": "cpu"}
VOLATILE = ("timings", "versions", "merged_from", "shard")


def _stable(doc: dict) -> dict:
    """results.json minus what legitimately differs between runs (timings, versions, provenance)."""
    return {k: v for k, v in doc.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_study_config("smoke", seed=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, smoke_cfg, fake_backend):
    out = tmp_path_factory.mktemp("ref")
    backend = fake_backend()
    results = run_study(smoke_cfg, out, backend=backend, **QUIET)
    return out, results, backend


def test_paired_gain_is_the_difference_seed_by_seed_over_shared_seeds():
    real = [{"seed": 0, "test": {"cer": 50.0, "wer": 80.0}}, {"seed": 1, "test": {"cer": 40.0, "wer": 70.0}},
            {"seed": 2, "test": {"cer": 45.0, "wer": 75.0}}]
    augmented = [{"seed": 0, "test": {"cer": 44.0, "wer": 78.0}}, {"seed": 1, "test": {"cer": 42.0, "wer": 71.0}},
                 {"seed": 5, "test": {"cer": 10.0, "wer": 10.0}}]      # seed 5 has no real run: left out
    g = paired_gain(real, augmented)
    assert g["paired_seeds"] == 2 and g["paired_ahead"] == 1
    assert g["paired_gain_cer_mean"] == pytest.approx(2.0) and g["paired_gain_cer_std"] == pytest.approx(32 ** 0.5)   # gains 6, −2
    assert g["paired_gain_wer_mean"] == pytest.approx(0.5)
    assert paired_gain(real, [{"seed": 7, "test": {"cer": 1.0}}]) == {}


def test_sweep_points_carry_the_paired_gain_of_their_runs(reference):
    _, res, _ = reference
    fr = res["datasets"]["rimes-like"]
    point = next(p for p in fr["sweep"] if p["fraction"] == 1.0)
    real = {r["seed"]: r["cer"] for r in fr["htr"]["rows"]["real"]["per_seed"]}
    aug = {r["seed"]: r["cer"] for r in fr["htr"]["rows"]["real+synthetic"]["per_seed"]}
    diffs = [real[s] - aug[s] for s in sorted(set(real) & set(aug))]
    assert point["paired_seeds"] == len(diffs) == 2
    assert point["paired_gain_cer_mean"] == pytest.approx(sum(diffs) / 2)
    assert point["paired_ahead"] == sum(d > 0 for d in diffs)


def test_full_study_covers_every_section(reference, smoke_cfg):
    out, res, _ = reference
    assert res["complete"] and res["units"]["missing"] == []
    assert set(res["datasets"]) == {"rimes-like", "arabic-like"}
    fr = res["datasets"]["rimes-like"]
    assert set(fr["htr"]["rows"]) == {"real", "real+synthetic", "real+classic", "real+synthetic+classic", "synthetic",
                                      "synthetic+classic"}
    real = fr["htr"]["rows"]["real"]
    assert real["n_seeds"] == smoke_cfg.profile.htr_seeds and len(real["per_seed"]) == 2
    assert real["cer_std"] is not None and real["per_seed"][0]["curve"]
    assert [p["fraction"] for p in fr["sweep"]] == [0.5, 1.0] and "gain_cer" in fr["sweep"][0]
    assert fr["sweep"][0]["real"]["n_real"] == 80
    assert set(fr["ablations"]) == {"alpha", "loss", "attention", "conditioning"}
    assert [r["setting"] for r in fr["ablations"]["alpha"]] == ["none", "0.1", "1 (ours)", "10"]
    assert "ablations" not in res["datasets"]["arabic-like"]   # the grid runs on the first dataset
    final = fr["gan"]["final"]
    assert {"fid", "kid", "gs", "readability_cer", "readability_wer", "fid_features"} <= set(final)
    assert fr["gan"]["log"] and fr["stats"]["train"]["images"] == 160
    for rel in fr["gan"]["grids"] + fr["gan"]["samples"] + [fr["data_samples"]]:
        assert rel.startswith("samples/") and (out / rel).is_file()
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["datasets"] == res["datasets"] and on_disk["profile"]["name"] == "smoke"
    assert {"python", "torch", "numpy"} <= set(on_disk["versions"])
    assert on_disk["timings"]["stages_s"]


def test_each_row_trains_on_its_own_data(reference):
    """Real rows read the real training split (synthetic words as extra data where the row has
    them), synthetic rows the generated words alone; classic rows augment; n_real follows."""
    out, res, _ = reference
    rows = res["datasets"]["rimes-like"]["htr"]["rows"]
    for row, train, extra, augment in (("real+synthetic", "data/train", ["work/synthetic"], False),
                                       ("real+synthetic+classic", "data/train", ["work/synthetic"], True),
                                       ("synthetic", "work/synthetic", [], False),
                                       ("synthetic+classic", "work/synthetic", [], True)):
        opts = json.loads((out / "stages/rimes-like/htr" / row / "f1/s0/work/run/opts.json").read_text())
        assert (opts["train"], opts["extra"], opts["augment"]) == (train, extra, augment), row
        assert rows[row]["per_seed"][0]["n_real"] == (0 if row.startswith("synthetic") else 160), row


def test_rerun_skips_everything(reference, smoke_cfg, fake_backend):
    out, res, _ = reference
    backend = fake_backend()
    again = run_study(smoke_cfg, out, backend=backend, **QUIET)
    assert backend.train_calls == [] and backend.calls == []
    assert _stable(again) == _stable(res)


def test_more_seeds_run_only_the_new_units(tmp_path, reference, fake_backend):
    out, _, _ = reference
    import shutil
    shutil.copytree(out, tmp_path / "s", dirs_exist_ok=True)
    cfg2 = load_study_config("smoke", seed=0)
    from dataclasses import replace
    cfg2 = replace(cfg2, profile=replace(cfg2.profile, htr_seeds=3))
    backend = fake_backend()
    res = run_study(cfg2, tmp_path / "s", backend=backend, **QUIET)
    assert {k for k, _, _ in backend.train_calls} == {"htr"} and backend.calls == []
    assert len(backend.train_calls) == 2 * (6 + 2)          # seed 2 of every row and sweep row
    assert all("/s2/" in name for _, name, _ in backend.train_calls)
    assert res["datasets"]["rimes-like"]["htr"]["rows"]["real"]["n_seeds"] == 3


def test_row_seeds_give_single_rows_more_seeds_on_the_whole_real_set(tmp_path, fake_backend):
    from dataclasses import replace
    cfg = load_study_config("smoke", seed=0)
    cfg = replace(cfg, profile=replace(cfg.profile, row_seeds={"real": 3, "real+synthetic": 4}))
    units = {s.name for s in plan_study(cfg, backend=None) if s.unit}
    for ds in ("rimes-like", "arabic-like"):
        assert {f"{ds}/htr/real/f1/s2", f"{ds}/htr/real+synthetic/f1/s3"} <= units
        assert f"{ds}/htr/real/f1/s3" not in units and f"{ds}/htr/real+classic/f1/s2" not in units
        assert f"{ds}/htr/real/f0.5/s2" not in units                   # the sweep keeps htr_seeds
    rows = run_study(cfg, tmp_path / "s", backend=fake_backend(), **QUIET)["datasets"]["rimes-like"]["htr"]["rows"]
    assert [rows[r]["n_seeds"] for r in ("real", "real+synthetic", "real+classic")] == [3, 4, 2]


@pytest.mark.parametrize("row_seeds, message", [({"real+synthetic+x": 3}, "not among htr_rows"),
                                                 ({"real": 0}, "whole number ≥ 1"), ({"real": 2.5}, "whole number")])
def test_row_seeds_must_name_grid_rows_and_count_seeds(row_seeds, message):
    from benchmark.profiles import get_profile
    with pytest.raises(UserError, match=message):
        get_profile("smoke", {"row_seeds": row_seeds})


def test_interrupted_and_restarted_study_gives_identical_results(tmp_path, reference, smoke_cfg, fake_backend):
    _, ref, ref_backend = reference
    backend = fake_backend(interrupt_after=9)
    with pytest.raises(KeyboardInterrupt):
        run_study(smoke_cfg, tmp_path, backend=backend, **QUIET)
    assert not (tmp_path / "results.json").exists()
    interrupted = backend.train_calls[-1]
    again = fake_backend()
    res = run_study(smoke_cfg, tmp_path, backend=again, **QUIET)
    assert again.train_calls[0] == (interrupted[0], interrupted[1], True), "the interrupted trainer resumes"
    assert len(backend.train_calls) - 1 + len(again.train_calls) == len(ref_backend.train_calls)
    assert _stable(res) == _stable(ref)
    disk = json.loads((tmp_path / "results.json").read_text())
    assert _stable(disk) == _stable(json.loads(json.dumps(ref)))


def test_shards_merge_into_the_unsharded_results(tmp_path, reference, smoke_cfg, fake_backend):
    _, ref, _ = reference
    n = 3
    dirs = []
    for i in range(n):
        d = tmp_path / f"shard{i}"
        res = run_study(smoke_cfg, d, backend=fake_backend(), shard=(i, n), **QUIET)
        assert res["shard"] == {"index": i, "count": n}
        dirs.append(d)
    merged = merge_studies(dirs, tmp_path / "merged", log=lambda m: None)
    assert merged["complete"]
    assert _stable(merged) == _stable(ref)
    assert (tmp_path / "merged/results.json").is_file()
    for rel in merged["datasets"]["rimes-like"]["gan"]["grids"]:
        assert (tmp_path / "merged" / rel).is_file()


def test_merge_reports_missing_units(tmp_path, smoke_cfg, fake_backend):
    run_study(smoke_cfg, tmp_path / "a", backend=fake_backend(), shard=(0, 2), **QUIET)
    merged = merge_studies([tmp_path / "a"], tmp_path / "m", log=lambda m: None)
    assert not merged["complete"] and merged["units"]["missing"]


def test_shard_targets_partition_the_units(smoke_cfg):
    stages = plan_study(smoke_cfg, backend=None)
    units = {s.name for s in stages if s.unit}
    got = [set(select_targets(stages, (i, 4))) & units for i in range(4)]
    assert set().union(*got) == units and sum(map(len, got)) == len(units)
    prereq = {s.name for s in stages if not s.unit}
    assert prereq <= set(select_targets(stages, (0, 4))) and not prereq & set(select_targets(stages, (1, 4)))


def test_torchrun_command():
    cmd = torchrun_command("gan", Path("/s/run.json"), 4, python="/py")
    assert cmd == ["/py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
                   "-m", "benchmark.launch", "gan", "/s/run.json"]
    with pytest.raises(UserError):
        torchrun_command("htr", Path("x"), 0)


def test_gpus_route_training_through_torchrun(tmp_path, monkeypatch):
    import subprocess
    from benchmark import backend as backend_mod
    seen = {}

    def fake_run(cmd, env=None):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(backend_mod.subprocess, "run", fake_run)
    pytest.importorskip("htr.train")
    b = backend_mod.RealBackend(gpus=2, log=lambda m: None)
    opts = {"train": str(tmp_path / "t"), "val": str(tmp_path / "v"), "out": str(tmp_path / "run"), "seed": 3}
    with pytest.raises(UserError, match="bogus_option"):     # unknown trainer options are errors, never dropped
        b.train_htr({**opts, "bogus_option": 1}, resume=False)
    assert "cmd" not in seen
    out = b.train_htr(opts, resume=False)
    assert out == tmp_path / "run"
    assert seen["cmd"][1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    launch_cfg = json.loads(Path(seen["cmd"][-1]).read_text())
    assert launch_cfg["seed"] == 3 and launch_cfg["resume"] is False


def _one_line_error(**kw) -> str:
    with pytest.raises(UserError) as exc:
        load_study_config(**kw)
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_config_validation_errors_are_one_line(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"profile": "smoke", "colour": "red"}))
    assert "unknown key(s) colour" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"n_trian": 5}}))
    assert "n_trian" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"height": 24}}))
    assert "power of two" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"gan_cond": "film"}}))
    msg = _one_line_error(config_file=f)
    assert "cond" in msg and "film" in msg
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"gan_d_norm": "layer"}}))
    msg = _one_line_error(config_file=f)
    assert "d_norm" in msg and "layer" in msg
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"htr": {"lr": -1}}}))     # the nested spelling
    assert "lr" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"n_train": 160.5}}))     # a float where an integer belongs
    assert "n_train" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "overrides": {"fid_n": 100000}}))
    assert "fid_n" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "datasets": [{"name": "iam", "format": "iam", "path": str(tmp_path / "nope")}]}))
    assert "does not exist" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "datasets": [{"name": "x", "format": "nosuch", "path": str(tmp_path)}]}))
    assert "format" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "datasets": ["rimes-like", "rimes-like"]}))
    assert "twice" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "datasets": [{"name": "rimes-like", "options": {"colour": 1}}]}))
    assert "colour" in _one_line_error(config_file=f)
    f.write_text(json.dumps({"profile": "smoke", "datasets": [{"name": "rimes-like", "options": {"n_train": 1}}]}))
    assert "reserved" in _one_line_error(config_file=f)
    f.write_text("{not json")
    assert "invalid JSON" in _one_line_error(config_file=f)
    assert "unknown profile" in _one_line_error(profile="huge")
    assert "does not exist" in _one_line_error(config_file=tmp_path / "missing.toml")


def test_toml_config_with_imported_dataset(tmp_path):
    (tmp_path / "iam").mkdir()
    f = tmp_path / "study.toml"
    f.write_text(f'profile = "smoke"\nseed = 7\n[overrides]\nhtr_seeds = 1\n'
                 f'[[datasets]]\nname = "rimes-like"\n[[datasets]]\nname = "myiam"\nformat = "iam"\npath = "{tmp_path / "iam"}"\n'
                 f'[datasets.options]\nlanguage = "en"\n')
    cfg = load_study_config(config_file=f)
    assert cfg.seed == 7 and cfg.profile.htr_seeds == 1
    assert [d.kind for d in cfg.datasets] == ["rimes-like", "import"] and cfg.datasets[1].options == {"language": "en"}
    assert load_study_config(config_file=f, seed=3).seed == 3   # the command line wins


def test_cli_dry_run_and_errors(tmp_path, capsys):
    assert htraug(["study", "run", "--profile", "paper", "--fid-features", "htr", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("projected duration of profile 'paper'") and "rimes-like/ablation/loss=gan" in out
    assert "GPU-hours" in out and "1 GPU ~" in out and "4 GPUs ~" in out and "8 GPUs ~" in out
    assert htraug(["study", "run", "--profile", "smoke", "--shard", "5/2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard" in err
    assert not (tmp_path / "stages").exists()


def test_results_with_the_eta_calibration_load_and_the_eta_check_reads_it(reference, tmp_path):
    from benchmark.perf.eta import eta_report
    from benchmark.study.run import calibration_record, write_results

    doc = copy.deepcopy(reference[1])      # write_results moves the figures' paths: not the shared reference's
    doc["timings"]["calibration"] = calibration_record({"htr": 0.9321, "gan": 1.36})
    write_results(tmp_path, doc)
    loaded = load_results(tmp_path)       # no key of it reads as one of the results' tables
    assert loaded["timings"]["calibration"] == {"recognizer_step": 0.932, "gan_iteration": 1.36}
    assert eta_report(loaded)["factors"]["gan"]["calibrated"] == 1.36


def test_load_results_rejects_other_files(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(UserError):
        load_results(tmp_path)


def _run_recording_gan_options(fake_backend, cfg, out: Path) -> tuple[dict, list[dict]]:
    """Run the study with the fake backend; return results.json and the options of every GAN run."""
    seen: list[dict] = []

    class Recording(fake_backend):
        def train_gan(self, opts, resume):
            seen.append(dict(opts))
            return super().train_gan(opts, resume)

    return run_study(cfg, out, backend=Recording(), **QUIET), seen


def test_gan_r_init_trains_r_from_the_next_seeds_real_only_unit(tmp_path, smoke_cfg, fake_backend):
    """With gan_r_init the GAN (and every ablation) starts R from a real-only recognizer of seed S+1,
    never from the judge (seed S); that grid unit reuses the r-init stage instead of retraining."""
    from dataclasses import replace

    cfg = replace(smoke_cfg, profile=replace(smoke_cfg.profile, gan_r_init=True))
    stages = {s.name: s for s in plan_study(cfg, backend=None)}
    assert stages["rimes-like/gan"].inputs == ("rimes-like/data", "rimes-like/judge", "rimes-like/r-init")
    assert all("rimes-like/r-init" in s.inputs for n, s in stages.items() if "/ablation/" in n)
    res, seen = _run_recording_gan_options(fake_backend, cfg, tmp_path / "s")
    stage_of = lambda path: Path(path).parts[-3]    # noqa: E731  (…/stages/DATASET/STAGE/work/run)
    assert seen and all(stage_of(o["r_init"]) == "r-init" and stage_of(o["judge"]) == "judge" for o in seen)
    unit = json.loads((tmp_path / "s/stages/rimes-like/htr/real/f1/s1/stage.json").read_text())
    assert unit["result"]["run"] == "stages/rimes-like/r-init/work/run" and unit["result"]["seed"] == 1
    assert res["complete"]


def test_profile_gan_switches_reach_every_gan_run_and_table_v(tmp_path, smoke_cfg, fake_backend):
    """gan_cond / gan_d_norm set the main GAN and every ablation; a conditioning outside the paper's
    pair becomes Table V's "(ours)" row with cbn and linear as its ablations."""
    from dataclasses import replace

    p = smoke_cfg.profile
    cfg = replace(smoke_cfg, profile=replace(p, gan=replace(p.gan, cond="aligned", d_norm="none"), gan_seeds=1))
    stages = {s.name for s in plan_study(cfg, backend=None)}
    assert {"rimes-like/ablation/conditioning=cbn", "rimes-like/ablation/conditioning=linear"} <= stages
    res, seen = _run_recording_gan_options(fake_backend, cfg, tmp_path / "s")
    assert seen and all(o["d_norm"] == "none" for o in seen)
    conds = sorted(o["cond"] for o in seen)
    assert conds.count("aligned") == len(seen) - 2 and {"cbn", "linear"} <= set(conds)
    rows = [r["setting"] for r in res["datasets"]["rimes-like"]["ablations"]["conditioning"]]
    assert rows == ["linear", "cbn", "aligned (ours)"]


def test_parallel_jobs_give_the_sequential_results(tmp_path, reference, fake_backend):
    """Two forked workers at once: every stage runs once, results equal the sequential study's."""
    _, ref, _ = reference
    cfg = load_study_config("smoke", seed=0)
    res = run_study(cfg, tmp_path, backend=fake_backend(), jobs=2, **QUIET)
    assert _stable(res) == _stable(ref)
    lines: list[str] = []
    res2 = run_study(cfg, tmp_path, backend=fake_backend(), jobs=2, log=lines.append, device="cpu")
    assert lines and not [m for m in lines if ": running" in m]       # all up to date now
    assert sum(": up to date, skipped" in m for m in lines) == len(res["stages"])
    assert _stable(res2) == _stable(ref)


def test_parallel_worker_failure_is_one_line_and_keeps_finished_stages(tmp_path, fake_backend):
    class FailingGan(fake_backend):
        def train_gan(self, opts, resume):
            raise UserError("gan: bad option X")

    cfg = load_study_config("smoke", seed=0)
    with pytest.raises(UserError, match="^gan: bad option X$"):
        run_study(cfg, tmp_path, backend=FailingGan(), jobs=2, **QUIET)
    assert not (tmp_path / "results.json").exists()
    assert (tmp_path / "stages/rimes-like/data/stage.json").is_file()      # finished work is kept
    assert not (tmp_path / "stages/rimes-like/gan/stage.json").exists()


def test_gan_readers_are_grid_units_never_the_judge(tmp_path, smoke_cfg, fake_backend):
    """gan_readers rows feed every GAN run their units (all seeds) as frozen readers; the judge's
    model and R's starting point are never among them; gan_alpha/gan_r_augment reach every run."""
    from dataclasses import replace

    p = smoke_cfg.profile
    prof = replace(p, gan_r_init=True, gan_readers=("real", "real+classic"), gan=replace(p.gan, alpha=None, r_augment=True),
                   htr_seeds=3, ablation_iterations=2, gan_seeds=1)
    cfg = replace(smoke_cfg, profile=prof)
    stages = {s.name: s for s in plan_study(cfg, backend=None)}
    readers = ("rimes-like/htr/real/f1/s2", "rimes-like/htr/real+classic/f1/s0",
               "rimes-like/htr/real+classic/f1/s1", "rimes-like/htr/real+classic/f1/s2")
    assert stages["rimes-like/gan"].inputs[3:] == readers
    res, seen = _run_recording_gan_options(fake_backend, cfg, tmp_path / "s")
    for o in seen:   # …/stages/<unit>/work/run, the units of the GAN's own dataset
        ds = o["data"].split("/stages/")[1].split("/")[0]
        assert tuple(r.split("/stages/")[1].removesuffix("/work/run") for r in o["readers"]) == \
            tuple(u.replace("rimes-like", ds) for u in readers)
        assert o["r_augment"] is True
    alphas = sorted(str(o["alpha"]) for o in seen)
    assert alphas.count("None") == len(seen) - 3 and {"0.1", "1.0", "10.0"} <= set(alphas)
    rows = [r["setting"] for r in res["datasets"]["rimes-like"]["ablations"]["alpha"]]
    assert rows == ["none (ours)", "0.1", "1", "10"]


def test_sweep_on_the_first_dataset_only(smoke_cfg):
    from dataclasses import replace

    cfg = replace(smoke_cfg, profile=replace(smoke_cfg.profile, sweep_all_datasets=False))
    names = [s.name for s in plan_study(cfg, backend=None) if s.unit]
    assert any("rimes-like/htr/real/f0.5/" in n for n in names)
    assert not any("arabic-like" in n and "/f0.5/" in n for n in names)
