"""Stage hashing, skipping, resuming, atomic publication and shard slicing (benchmark.stages)."""
from __future__ import annotations

import json

import pytest

from benchmark.runner import StageRunner, measured_speed
from benchmark.stage import Stage, parse_shard, shard_units, stage_hash
from datasets.files import StagingDir
from datasets.errors import UserError


def _graph(calls: list[str], cfg_a: dict, cfg_b: dict, fail_b: list | None = None):
    def a(ctx):
        calls.append("a")
        (ctx.work / "a.txt").write_text("A")
        return {"value": cfg_a["x"], "file": ctx.rel(ctx.work / "a.txt")}

    def b(ctx):
        calls.append("b")
        if fail_b:
            fail_b.pop()
            raise KeyboardInterrupt
        return {"value": ctx.inputs["a"]["value"] * 10 + cfg_b["y"], "resumed": ctx.resume}

    return [Stage("a", a, cfg_a), Stage("b", b, cfg_b, inputs=("a",))]


def test_unchanged_config_is_skipped(tmp_path):
    calls: list[str] = []
    r1 = StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 2}), log=lambda m: None).run()
    assert calls == ["a", "b"] and r1["b"]["value"] == 12
    runner = StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 2}), log=lambda m: None)
    r2 = runner.run()
    assert calls == ["a", "b"], "an up-to-date study must run nothing"
    assert r2 == r1 and set(runner.status.values()) == {"skipped"}


def test_changed_config_reruns_it_and_downstream_only(tmp_path):
    calls: list[str] = []
    StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 2}), log=lambda m: None).run()
    calls.clear()
    r = StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 3}), log=lambda m: None).run()
    assert calls == ["b"] and r["b"]["value"] == 13
    calls.clear()
    r = StageRunner(tmp_path, _graph(calls, {"x": 5}, {"y": 3}), log=lambda m: None).run()
    assert calls == ["a", "b"] and r["b"]["value"] == 53


def test_hash_covers_config_and_inputs():
    assert stage_hash({"a": 1, "b": [1, 2]}, {}) == stage_hash({"b": [1, 2], "a": 1}, {})
    assert stage_hash({"a": 1}, {"x": "h1"}) != stage_hash({"a": 1}, {"x": "h2"})
    assert stage_hash({"a": 1}, {}) != stage_hash({"a": 2}, {})


def test_interrupted_stage_leaves_no_marker_and_resumes(tmp_path):
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 2}, fail_b=[1]), log=lambda m: None).run()
    assert (tmp_path / "stages/a/stage.json").is_file()
    assert not (tmp_path / "stages/b/stage.json").exists()
    assert (tmp_path / "stages/b/work").is_dir()
    calls.clear()
    r = StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 2}), log=lambda m: None).run()
    assert calls == ["b"] and r["b"]["resumed"] is True
    marker = json.loads((tmp_path / "stages/b/stage.json").read_text())
    assert marker["resumed"] is True and marker["result"]["value"] == 12


def test_work_dir_of_another_config_is_wiped(tmp_path):
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 2}, fail_b=[1]), log=lambda m: None).run()
    (tmp_path / "stages/b/work/stale.pt").write_text("old")
    r = StageRunner(tmp_path, _graph(calls, {"x": 1}, {"y": 9}), log=lambda m: None).run()
    assert r["b"]["resumed"] is False
    assert not (tmp_path / "stages/b/work/stale.pt").exists()


def test_stage_outputs_are_published_atomically(tmp_path):
    seen = {}

    def fn(ctx):
        with StagingDir(ctx.work / "out", overwrite=True) as tmp:
            (tmp / "x").write_text("1")
            seen["tmp"] = tmp
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        StageRunner(tmp_path, [Stage("s", fn, {})], log=lambda m: None).run()
    assert not (tmp_path / "stages/s/work/out").exists() and not seen["tmp"].exists()
    assert not (tmp_path / "stages/s/stage.json").exists()

    def ok(ctx):
        with StagingDir(ctx.work / "out", overwrite=True) as tmp:
            (tmp / "x").write_text("2")
        return {"x": (ctx.work / "out/x").read_text()}

    assert StageRunner(tmp_path, [Stage("s", ok, {})], log=lambda m: None).run()["s"] == {"x": "2"}
    leftovers = [p.name for p in (tmp_path / "stages/s/work").iterdir() if p.name.startswith(".out")]
    assert leftovers == []


def test_non_json_result_is_not_recorded(tmp_path):
    with pytest.raises(TypeError):
        StageRunner(tmp_path, [Stage("s", lambda ctx: {"x": object()}, {})], log=lambda m: None).run()
    assert not (tmp_path / "stages/s/stage.json").exists()


def test_targets_run_only_their_dependencies(tmp_path):
    calls: list[str] = []
    stages = _graph(calls, {"x": 1}, {"y": 2}) + [Stage("c", lambda ctx: calls.append("c") or {}, {})]
    StageRunner(tmp_path, stages, log=lambda m: None).run(["b"])
    assert calls == ["a", "b"]


def test_progress_lines_name_stage_and_eta(tmp_path):
    lines: list[str] = []
    StageRunner(tmp_path, _graph([], {"x": 1}, {"y": 2}), log=lines.append).run()
    assert lines[0].startswith("[1/2] a: running") and "ETA" in lines[0]
    assert any(l.startswith("[2/2] b: done in") for l in lines)
    lines.clear()
    StageRunner(tmp_path, _graph([], {"x": 1}, {"y": 2}), log=lines.append).run()
    assert lines == ["[1/2] a: up to date, skipped", "[2/2] b: up to date, skipped"]


def _busy_stage(ctx):
    """A stage that draws a progress bar and keeps working past a few heartbeats."""
    import time
    from datasets.progress import progress
    bar = progress(total=10, desc="busy")
    bar.update(3)
    bar.refresh()
    time.sleep(1.0)
    bar.close()
    return {"done": True}


def test_parallel_heartbeat_shows_each_running_stage_progress_bar(tmp_path):
    lines: list[str] = []
    stages = [Stage("p", _busy_stage, {"k": 1}), Stage("q", _busy_stage, {"k": 2})]
    res = StageRunner(tmp_path, stages, log=lines.append).run(jobs=2, heartbeat=0.3)
    assert res == {"p": {"done": True}, "q": {"done": True}}
    beats = [l for l in lines if l.startswith("  p (") or l.startswith("  q (")]
    assert any("busy" in l and "3/10" in l for l in beats), lines
    assert not list(tmp_path.rglob(".progress*"))                 # status files go with their stage


def _costed(costs: dict[str, float], edges: dict[str, tuple[str, ...]]) -> StageRunner:
    stages = [Stage(n, lambda ctx: {}, {}, inputs=edges.get(n, ()), cost=c) for n, c in costs.items()]
    return StageRunner(".", stages, log=lambda m: None)


def test_projection_with_jobs_is_bounded_by_the_critical_path_and_the_even_split():
    # a (10) → b (100) → c (10); d, e, f (30 each) independent
    runner = _costed({"a": 10, "b": 100, "c": 10, "d": 30, "e": 30, "f": 30}, {"b": ("a",), "c": ("b",)})
    order = runner.closure(["c", "d", "e", "f"])
    assert runner.critical_path(order)["a"] == 120 and runner.critical_path(order)["d"] == 30
    assert runner.projected(order, jobs=1) == 210
    assert runner.projected(order, jobs=2) == 120          # the a → b → c chain dominates 210 / 2
    assert runner.projected(order, jobs=4) == 120
    flat = _costed({n: 30 for n in "abcd"}, {})
    assert flat.projected(flat.closure(list("abcd")), jobs=2) == 60   # an even split


def test_eta_speed_starts_at_the_projection_and_follows_the_measurements():
    assert measured_speed(0, 0) == 1.0
    assert measured_speed(6, 4) == pytest.approx(126 / 124)        # two tiny stages barely move it
    assert measured_speed(2000, 1000) == pytest.approx(2120 / 1120)  # long stages dominate the prior
    assert measured_speed(500, 1000, prior=0) == 0.5


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_are_deterministic_disjoint_and_complete(n):
    units = [f"ds/htr/row{r}/f1/s{s}" for r in range(5) for s in range(3)] + ["ds/ablation/loss=gan"]
    parts = [shard_units(units, (i, n)) for i in range(n)]
    assert sorted(u for p in parts for u in p) == sorted(units)
    assert sum(len(p) for p in parts) == len(units)
    assert parts == [shard_units(list(reversed(units)), (i, n)) for i in range(n)]
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("text", ["1", "2/2", "-1/3", "a/b", "0/0"])
def test_bad_shard_is_a_one_line_error(text):
    with pytest.raises(UserError) as exc:
        parse_shard(text)
    assert "\n" not in str(exc.value)


def test_parse_shard():
    assert parse_shard("0/4") == (0, 4) and parse_shard(" 3 / 4 ") == (3, 4) and parse_shard(None) is None


def test_code_fingerprint_follows_source_edits(tmp_path, monkeypatch):
    from benchmark.study.plan import code_fingerprint
    pkg = tmp_path / "fakepkg_htraug"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_fingerprint(("fakepkg_htraug",))
    assert code_fingerprint(("fakepkg_htraug",)) == first
    (pkg / "mod.py").write_text("X = 2\n")
    assert code_fingerprint(("fakepkg_htraug",)) != first


def test_gpu_slots_pin_each_parallel_stage_to_its_own_gpus(tmp_path):
    """With GPU slots every forked worker sees only its slot's GPUs, and a slot is free again
    once its stage ends (two slots, four independent stages)."""
    import os
    import time as _time

    def fn(ctx):
        t0 = _time.time()
        _time.sleep(0.2)
        return {"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": t0, "t1": _time.time()}

    stages = [Stage(f"s{i}", fn, {"i": i}) for i in range(4)]
    res = StageRunner(tmp_path, stages, log=lambda m: None).run(jobs=2, heartbeat=0.1, gpu_slots=["0,1", "2,3"])
    runs = [res[f"s{i}"] for i in range(4)]
    assert {r["gpus"] for r in runs} == {"0,1", "2,3"}
    for a in runs:      # stages on one slot never overlap in time
        for b in runs:
            if a is not b and a["gpus"] == b["gpus"]:
                assert a["t1"] <= b["t0"] or b["t1"] <= a["t0"]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ or os.environ["CUDA_VISIBLE_DEVICES"] not in ("0,1", "2,3")
