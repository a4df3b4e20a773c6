"""`--tensorboard DIR` on `htr train` and `gan train`: event files that TensorBoard's own reader
loads, holding the log.jsonl records (scalars and text) and the GAN's sample grids; a resumed run
rewinds them as it rewinds log.jsonl."""
from __future__ import annotations

import builtins
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from benchmark.cli import main
from datasets.errors import UserError
from datasets.files import read_jsonl
from datasets.runs import RunDir, close_tensorboard, scalars_of
from htr.checkpoint import CHECKPOINT

from recognizer_files import write_bar_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def events(logdir: Path) -> EventAccumulator:
    """TensorBoard's own reader (the one its plugins load runs through), over everything on disk."""
    close_tensorboard(logdir)                   # as at the end of a process
    acc = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def series(acc: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    """(steps, values) of a scalar tag."""
    found = acc.Tensors(tag)
    return [e.step for e in found], [float(tensor_util.make_ndarray(e.tensor_proto)) for e in found]


def same(got: tuple[list[int], list[float]], records: list[dict], step: str, key: str) -> bool:
    """The tag holds `key` of every record at its `step` (float32 precision)."""
    return got[0] == [r[step] for r in records] and got[1] == pytest.approx([float(r[key]) for r in records], rel=1e-6)


def texts(acc: EventAccumulator) -> list[dict]:
    return [json.loads(tensor_util.make_ndarray(e.tensor_proto).item().decode()) for e in acc.Tensors("log.jsonl/text_summary")]


def images(acc: EventAccumulator, tag: str) -> list[tuple[int, np.ndarray]]:
    """(step, uint8 image) of an image tag (its tensor: width, height, PNG bytes)."""
    out = []
    for e in acc.Tensors(tag):
        png = tensor_util.make_ndarray(e.tensor_proto)[2]
        out.append((e.step, np.asarray(Image.open(io.BytesIO(png)).convert("L"))))
    return out


def test_htr_train_writes_the_log_records_as_tensorboard_scalars_and_text(tmp_path, capsys):
    train = write_bar_dataset(tmp_path / "train", 24, 0)
    val = write_bar_dataset(tmp_path / "val", 8, 1)
    tb = tmp_path / "tb"
    argv = ["htr", "train", "--train", str(train), "--val", str(val), "--out", str(tmp_path / "run"), "--max-epochs", "2",
            "--batch-size", "8", "--width-mult", "0.25", "--eval-every", "1", "--quiet", "--tensorboard", str(tb)]
    assert main(argv) == 0
    log = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert len(log) == 6
    acc = events(tb)
    for key in ("val_cer", "val_wer", "val_loss", "train_loss", "lr", "best_cer", "improved"):
        assert same(series(acc, key), log, "step", key), key
    assert texts(acc) == log                                     # the same records as log.jsonl
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert stored["tensorboard"] == str(tb)


def test_a_rewound_log_purges_later_events_as_tensorboard_reads_them(tmp_path):
    tb = tmp_path / "tb"
    first = RunDir(tmp_path / "run", CHECKPOINT)
    first.rewind_log("step", 0)                                  # a fresh start, as both trainers begin
    first.write_config({"tensorboard": str(tb)})
    for step in (1, 2, 3):
        first.log({"step": step, "x": step, "nested": {"y": -step}, "name": "a"})
    close_tensorboard(tb)
    resumed = RunDir(tmp_path / "run", CHECKPOINT)               # a new process continues from step 1
    resumed.rewind_log("step", 1)
    resumed.write_config({"tensorboard": str(tb)})
    resumed.log({"step": 2, "x": 20, "nested": {"y": -20}, "name": "b"})
    acc = events(tb)
    assert series(acc, "x") == ([1, 2], [1.0, 20.0])
    assert series(acc, "nested/y") == ([1, 2], [-1.0, -20.0])
    assert texts(acc) == read_jsonl(tmp_path / "run" / "log.jsonl")
    assert scalars_of({"a": True, "b": float("nan"), "c": "x", "d": {"e": 2}}) == {"a": 1.0, "d/e": 2.0}


def test_missing_tensorboard_package_is_a_one_line_error_before_training(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard.") or name == "torch.utils.tensorboard":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    run = RunDir(tmp_path / "run", CHECKPOINT)
    with pytest.raises(UserError, match=r"pip install 'htraug\[tensorboard\]'"):
        run.write_config({"tensorboard": str(tmp_path / "tb")})
    assert not (tmp_path / "run").exists()
    run.write_config({"tensorboard": None})                      # without it nothing changes
    assert (tmp_path / "run" / "config.json").is_file()


def test_gan_train_writes_scalars_records_and_sample_grids(tmp_path, make_tiny, capsys):
    data = make_tiny(tmp_path / "data")
    tb, run = tmp_path / "tb", tmp_path / "run"
    common = ["gan", "train", "--data", str(data), "--out", str(run), "--height", "16", "--channel-mult", "0.25",
              "--htr-width-mult", "0.25", "--batch-size", "4", "--eval-every", "1", "--eval-words", "8", "--fid-n", "0",
              "--gs-n", "0", "--quiet", "--tensorboard", str(tb)]
    assert main(common + ["--iterations", "2"]) == 0
    close_tensorboard(tb)
    assert main(common + ["--iterations", "3", "--resume"]) == 0       # continues: TensorBoard follows the log
    log = read_jsonl(run / "log.jsonl")
    evals = [r for r in log if r.get("event") == "eval"]
    assert [r["iteration"] for r in evals] == [1, 2, 3]
    acc = events(tb)
    for key in ("loss_d", "loss_r", "loss_g_adv", "cer_R"):
        assert same(series(acc, key), evals, "iteration", key), key
    assert texts(acc) == log
    for kind in ("words", "styles"):
        grids = images(acc, f"samples/{kind}")
        assert [step for step, _ in grids] == [1, 2, 3]
        png = np.asarray(Image.open(run / "samples" / f"iter_000003_{kind}.png"))
        assert np.array_equal(grids[-1][1], png)                    # the grid as RUN/samples holds it
