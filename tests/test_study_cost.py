"""The study's cost model and its calibration on this machine (the first ETA)."""
import pytest

from benchmark.profiles import PROFILES
from benchmark.study import cost
from benchmark.study.run import timed_calibration
from datasets.errors import UserError


def test_speed_scales_the_cpu_figures_not_the_fixed_overheads():
    p = PROFILES["quick"]
    base = cost.cost_model(p, "cpu")
    fast = cost.cost_model(p, "cpu", {"htr": 2.0, "gan": 3.0})
    assert fast["htr"] - 3.0 == pytest.approx(2.0 * (base["htr"] - 3.0))
    assert fast["generate"] - 1.0 == pytest.approx(3.0 * (base["generate"] - 1.0))
    assert 2.9 * base["gan"] < fast["gan"] < 3.0 * base["gan"]      # all but its fixed start-up
    assert fast["data"] == base["data"]


def test_calibration_is_the_measured_over_the_tables_time(monkeypatch):
    ref = cost.calibration_reference()
    monkeypatch.setattr(cost, "calibration_workloads", lambda threads, amp: {"htr": 2 * ref["htr"], "gan": 0.5 * ref["gan"]})
    assert cost.calibrate(1) == {"htr": pytest.approx(2.0), "gan": pytest.approx(0.5)}
    lines = []
    import benchmark.study.run as run
    monkeypatch.setattr(run, "calibrate", lambda threads, jobs, amp: cost.calibrate(threads))
    assert timed_calibration(1, lines.append, 2) == {"htr": pytest.approx(2.0), "gan": pytest.approx(0.5)}
    assert "ETA calibrated on this machine" in lines[0] and "×2.00" in lines[0]
    timed_calibration(1, lines.append, 1, {"htr": "on", "gan": "off"})
    assert "recognizer steps in bf16 ×2.00" in lines[1] and "GAN iterations ×0.50" in lines[1]
    timed_calibration(1, lines.append, 1, {"htr": "off", "gan": "on"})
    assert "recognizer steps ×2.00" in lines[2] and "GAN iterations in bf16 ×0.50" in lines[2]


@pytest.mark.slow
def test_calibration_runs_in_parallel_workers():
    speed = cost.calibrate(1, jobs=2)
    assert speed["htr"] > 0 and speed["gan"] > 0


def test_the_gan_recipe_scales_the_cpu_gan_iteration():
    from dataclasses import replace
    quick = PROFILES["quick"]
    paper_nets = replace(quick, gan=replace(quick.gan, cond="cbn", ms_region="image", d_steps=1), gan_readers=())
    assert cost.gan_recipe_factor(paper_nets) == 1.0
    assert cost.gan_recipe_factor(quick) == pytest.approx(1.32 * (1 + 0.04 * 2) * 1.27)   # spatial, two readers, two D updates
    fixed = 5.0 + 3 * ((2 * quick.fid_n + 2 * quick.gs_n) * 4e-3 + 1e-4 * quick.gs_n * quick.gs_reps)   # 3 evaluations
    assert cost.cost_model(quick, "cpu")["gan"] - fixed == pytest.approx(
        cost.gan_recipe_factor(quick) * (cost.cost_model(paper_nets, "cpu")["gan"] - fixed))
    assert cost.cost_model(quick, "gpu")["gan"] == cost.cost_model(paper_nets, "gpu")["gan"]   # GPU: trainer rates
    one_d = replace(quick, gan=replace(quick.gan, d_steps=1))                      # each extra D update: +27 %
    assert cost.gan_recipe_factor(quick) == pytest.approx(1.27 * cost.gan_recipe_factor(one_d))


def _quick_gan_parts():
    """The quick GAN's projected seconds: its evaluations' fixed part and its iterations' part."""
    quick = PROFILES["quick"]
    metric = (2 * quick.fid_n + 2 * quick.gs_n) * 4e-3 + 1e-4 * quick.gs_n * quick.gs_reps
    main = cost.cost_model(quick, "cpu")["gan"]
    return metric, main - 5.0 - 3 * metric                 # 5 s start-up, 3 evaluations at 32×128


def test_a_variant_is_priced_on_its_own_recipe():
    from dataclasses import replace
    from benchmark.study import load_study_config, plan_study
    cfg = load_study_config("quick", seed=0)
    variants = {"same": {"lr_d": 1e-3}, "three": {"d_steps": 3}, "cbn": {"cond": "cbn", "ms_region": "image"},
                "alone": {"readers": False}, "short": {"iterations": 300}}
    cfg = replace(cfg, profile=replace(cfg.profile, gan_variants=variants))
    stages = {s.name: s.cost for s in plan_study(cfg, backend=None, fingerprints=False)}
    same, three, cbn, alone, short = (stages[f"rimes-like/variant/{v}/s0"] for v in variants)
    metric, iterations = _quick_gan_parts()
    assert same - stages["rimes-like/gan"] > 0                       # scored, generated, read: more than the GAN
    assert three - same == pytest.approx(iterations * 0.27 / 1.27)  # a third D update: +27 % of a one-update step
    assert same - cbn == pytest.approx(iterations * (1 - 1 / 1.32))  # CBN instead of spatial conditioning
    assert same - alone == pytest.approx(iterations * (1 - 1 / 1.08))   # without the two frozen readers
    assert same - short == pytest.approx(iterations * 2 / 3 + 2 * metric)   # a third of the iterations, one evaluation


def test_an_ablation_setting_is_priced_on_its_own_recipe():
    from dataclasses import replace
    from benchmark.study import load_study_config, plan_study
    cfg = load_study_config("quick", seed=0)
    p = cfg.profile                            # mode seeking over the image: CBN is a valid setting
    cfg = replace(cfg, profile=replace(p, gan=replace(p.gan, ms_region="image"), ablations=True, ablation_iterations=300,
                                       ablation_seeds=1))
    stages = {s.name: s.cost for s in plan_study(cfg, backend=None, fingerprints=False)}
    metric, iterations = _quick_gan_parts()
    final = cost.cost_model(PROFILES["quick"], "cpu")["final"]
    assert stages["rimes-like/ablation/loss=gan"] - final == pytest.approx(5.0 + metric + iterations / 3)
    assert stages["rimes-like/ablation/conditioning=cbn"] - final == pytest.approx(5.0 + metric + iterations / 3 / 1.32)


def test_a_profile_changed_for_a_variant():
    quick = PROFILES["quick"]
    v = quick.with_gan_change({"d_steps": 3, "readers": False})
    assert (v.gan.d_steps, v.gan.lr_d, v.gan_readers, v.gan_r_init) == (3, quick.gan.lr_d, (), quick.gan_r_init)
    assert quick.with_gan_change({"r_init": None}).gan_r_init is False and v.gan_variants == {}
    assert quick.with_gan_change({}).gan == quick.gan and quick.with_gan_change({}).gan_readers == quick.gan_readers
    with pytest.raises(UserError, match=r"^gan_variants 'x': readers may only be false or null"):
        quick.with_gan_change({"readers": ["real"]}, where="gan_variants 'x'")
    with pytest.raises(UserError, match=r"^gan_variants 'x': unknown key\(s\) d_step;"):
        quick.with_gan_change({"d_step": 2}, where="gan_variants 'x'")


def test_calibration_times_each_step_in_its_recipes_precision(monkeypatch):
    from benchmark.perf import harness
    from datasets import cpus
    seen = {}

    def recognizer_step(height, width_mult, batch, bf16):
        seen["htr"] = bf16
        return lambda: None

    def gan_step(profile, device, variant, batch):
        seen["gan"] = variant.amp
        return (lambda: None), {}

    monkeypatch.setattr(harness, "make_recognizer_step", recognizer_step)
    monkeypatch.setattr(harness, "make_gan_step", gan_step)
    monkeypatch.setattr(cpus, "native_bf16_cpu", lambda: True)
    cost.calibration_workloads(1, {"htr": "off", "gan": "auto"})
    assert seen == {"htr": False, "gan": True}
    monkeypatch.setattr(cpus, "native_bf16_cpu", lambda: False)
    cost.calibration_workloads(1, {"htr": "on", "gan": "auto"})     # auto: float32 where bf16 is emulated
    assert seen == {"htr": True, "gan": False}


def test_the_eta_check_recovers_the_speed_that_the_stages_ran_at(tmp_path):
    """Stage times drawn from the cost model at known speeds give those speeds back; a results file
    without stage timings or a study config is a one-line error."""
    from benchmark.perf.eta import eta_report, main as eta_main
    from benchmark.study import load_study_config, plan_study

    cfg = load_study_config("quick", seed=0)
    ran = {s.name: s.cost for s in plan_study(cfg, backend=None, fingerprints=False, speed={"htr": 1.5, "gan": 0.8})}
    results = {"config": cfg.to_json(), "device": "cpu",
               "timings": {"stages_s": ran, "projected_s": 900.0, "wall_s": 1000.0,
                           "calibration": {"recognizer_step": 1.2, "gan_iteration": 0.9}}}
    report = eta_report(results)
    assert report["factors"]["htr"]["fitted"] == pytest.approx(1.5, abs=1e-3)
    assert report["factors"]["gan"]["fitted"] == pytest.approx(0.8, abs=1e-3)
    assert report["factors"]["htr"]["calibrated"] == 1.2
    assert report["eta_error"] == pytest.approx(-0.1)
    assert report["factors"]["htr"]["stages"] > report["factors"]["gan"]["stages"] > 0
    smoke = load_study_config("smoke", seed=0)        # tiny recognizers: mostly fixed start-up, no fit
    halved = {"config": smoke.to_json(), "timings": {"stages_s": {
        s.name: 0.5 * s.cost for s in plan_study(smoke, backend=None, fingerprints=False)}}}
    assert eta_report(halved)["factors"]["htr"]["fitted"] is None
    resumed = {**results, "timings": {**results["timings"], "wall_s": 1.0}}   # every stage reused
    assert "eta_error" not in eta_report(resumed)
    merged = {**results, "timings": {**results["timings"], "stages_s": {**ran, "rimes-like/judge": None}}}
    assert eta_report(merged)["factors"]["htr"]["stages"] == report["factors"]["htr"]["stages"] - 1
    with pytest.raises(UserError, match="no stage timings"):
        eta_report({"config": cfg.to_json(), "timings": {"wall_s": 1.0}})
    with pytest.raises(UserError, match="no study config"):
        eta_report({"timings": {"stages_s": ran}})
    assert eta_main([str(tmp_path / "missing")]) == 2
