"""The GAN step-cost probe: times the trainer's own step on a run's configuration, per recipe change."""
import pytest

import gan.train
from benchmark.perf import gan_step_cost
from gan.config import GanTrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_tiny):
    root = tmp_path_factory.mktemp("step_cost")
    data = make_tiny(root / "tiny")
    cfg = GanTrainConfig(data=str(data), out=str(root / "run"), height=16, channel_mult=0.25, htr_width_mult=0.25,
                         batch_size=4, iterations=2, eval_every=2, eval_words=8, fid_n=0, gs_n=0, progress=False)
    gan.train.train(cfg)
    return root / "run"


def test_each_setting_is_timed_with_its_change(run, capsys, monkeypatch):
    seen = []

    class Recording(gan.train.GanTraining):
        def __init__(self, cfg, *args, **kw):
            seen.append((cfg.d_steps, cfg.lr_d, cfg.iterations))
            super().__init__(cfg, *args, **kw)

    monkeypatch.setattr(gan.train, "GanTraining", Recording)
    assert gan_step_cost.main([str(run), "--set", "d_steps=2 lr_d=1e-3", "--iterations", "2", "--warmup", "1",
                               "--rounds", "2"]) == 0
    assert seen == [(1, None, 3), (2, 1e-3, 3)] * 2                      # alternated, warm-up included
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines[:4]] == ["round 1", "round 1", "round 2", "round 2"]
    assert "the run's recipe: best" in lines[4] and "×1.000" in lines[4]
    assert lines[5].startswith("d_steps=2 lr_d=0.001: best") and " s/iteration, ×" in lines[5]


@pytest.mark.parametrize("args, word", [(["--set", "d_step=2"], "d_step=2"), (["--set", "d_steps"], "field=value"),
                                        (["--set", "d_steps=0"], "d_steps"), (["--rounds", "0"], "--rounds")])
def test_bad_settings_are_one_line_errors_before_any_timing(run, capsys, args, word):
    assert gan_step_cost.main([str(run), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("gan_step_cost: error: ") and word in err and err.count("\n") == 1


def test_a_directory_without_a_run_is_refused(tmp_path, capsys):
    assert gan_step_cost.main([str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
