"""No silent wrong result, no lost work, no half-written output: caches that see changed images,
last.pt on SIGINT/SIGTERM and at every save step, resume from anywhere with the same data only,
exclusive outputs and what killed writers leave behind."""
from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.cli import main
from datasets.errors import UserError
from datasets.files import StagingDir, exclusive, lock_path, remove_stale
from datasets.packed import load_packed

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the packed cache covers what it caches -------------------------------------------------------

def _blank(path: Path) -> None:
    with Image.open(path) as im:
        size = im.size
    Image.fromarray(np.full((size[1], size[0]), 255, np.uint8), mode="L").save(path)


def test_packed_cache_sees_an_image_replaced_blanked_or_truncated_in_place(tmp_path, make_tiny):
    ds = make_tiny(tmp_path / "d", n=8)
    first = np.array(load_packed(ds, 16, 64, show_progress=False).images)
    assert first[0].min() < 255                                   # ink
    _blank(ds / "images" / "0000000.png")
    again = np.array(load_packed(ds, 16, 64, show_progress=False).images)
    assert again[0].min() == 255 and np.array_equal(again[1:], first[1:])
    png = ds / "images" / "0000001.png"
    png.write_bytes(png.read_bytes()[:40])                        # truncated in place
    with pytest.raises(UserError, match="0000001.png"):
        load_packed(ds, 16, 64, show_progress=False)


def test_a_change_that_keeps_size_and_mtime_is_seen_by_the_content_check(tmp_path, make_tiny, monkeypatch):
    import datasets.packed as packed

    ds = make_tiny(tmp_path / "d", n=24)
    png = ds / "images" / "0000005.png"

    def write(value: int) -> None:           # uncompressed: the file size depends on the image size only
        Image.fromarray(np.full((16, 40), value, np.uint8), mode="L").save(png, compress_level=0)

    write(0)
    assert load_packed(ds, 16, 64, show_progress=False).images[5][:, :40].max() == 0
    st = png.stat()
    write(128)
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert png.stat().st_size == st.st_size and png.stat().st_mtime_ns == st.st_mtime_ns
    monkeypatch.setattr(packed, "SAMPLED_CHECKS", 1)
    monkeypatch.setattr(packed.random, "Random", lambda: type("R", (), {"sample": lambda self, r, k: [0]})())
    assert load_packed(ds, 16, 64, show_progress=False).images[5][:, :40].max() == 0   # not sampled: missed
    monkeypatch.setenv(packed.VERIFY_ENV, "1")                                           # the full check
    assert load_packed(ds, 16, 64, show_progress=False).images[5][:, :40].min() == 128
    monkeypatch.delenv(packed.VERIFY_ENV)
    write(200)
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(packed.random, "Random", lambda: type("R", (), {"sample": lambda self, r, k: [5]})())
    assert load_packed(ds, 16, 64, show_progress=False).images[5][:, :40].min() == 200  # sampled: seen


def test_fid_sees_changed_images_with_and_without_its_caches(tmp_path, make_tiny):
    from benchmark.metrics.registry import compute
    from htr.train import HtrTrainConfig, train

    real, fake = make_tiny(tmp_path / "real", n=12), make_tiny(tmp_path / "fake", n=12, seed=5)
    judge = train(HtrTrainConfig(train=str(real), val=str(fake), out=str(tmp_path / "judge"), max_epochs=1,
                                 batch_size=8, width_mult=0.25, show_progress=False))

    def fid(cache: bool) -> float:
        return compute("fid", str(real), str(fake), features="htr", judge=str(judge), cache=cache)["fid"]

    before, before_uncached = fid(True), fid(False)
    assert before == pytest.approx(before_uncached)
    for i in range(6):
        _blank(fake / "images" / f"{i:07d}.png")
    assert fid(True) != pytest.approx(before)
    assert fid(False) == pytest.approx(fid(True))
    fresh = make_tiny(tmp_path / "fresh", n=12, seed=7)
    compute("fid", str(real), str(fresh), features="htr", judge=str(judge), cache=False)
    assert not (fresh / ".cache").exists()                          # --no-cache: no cache at all


def test_fid_warns_when_samples_do_not_outnumber_dimensions(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(2, 16)))
    np.save(tmp_path / "b.npy", rng.normal(size=(2, 16)))
    assert main(["metrics", "fid", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "b.npy"), "--json"]) == 0
    out, err = capsys.readouterr()
    r = json.loads(out)
    assert r["singular"] is True and r["dim"] == 16
    assert "warning" in err and "singular" in err and "16" in err
    np.save(tmp_path / "c.npy", rng.normal(size=(40, 4)))
    assert main(["metrics", "fid", "--real", str(tmp_path / "c.npy"), "--fake", str(tmp_path / "c.npy"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["singular"] is False and "warning" not in err


# --- work is never lost ---------------------------------------------------------------------------

def _htr_cfg(make_tiny, tmp_path, out, **kw):
    from htr.train import HtrTrainConfig

    if not (tmp_path / "tr").exists():
        make_tiny(tmp_path / "tr", n=24)
        make_tiny(tmp_path / "va", n=8, seed=1)
    base = dict(train=str(tmp_path / "tr"), val=str(tmp_path / "va"), out=str(out), max_epochs=3, batch_size=8,
                width_mult=0.25, lr=1e-3, show_progress=False, save_every=3, seed=1)
    return HtrTrainConfig(**{**base, **kw})


def test_periodic_last_pt_is_written_when_the_save_step_ends_an_epoch(tmp_path, make_tiny, monkeypatch):
    import htr.train as htr_train

    saved = []
    real = htr_train.Trainer.save_last

    def record(self):
        saved.append((self.state["epoch"], self.state["batch"], self.state["step"]))
        real(self)

    monkeypatch.setattr(htr_train.Trainer, "save_last", record)
    htr_train.train(_htr_cfg(make_tiny, tmp_path, tmp_path / "run"))     # 3 steps per epoch, save every 3
    assert saved == [(1, 0, 3), (2, 0, 6), (3, 0, 9)]                     # before: only the final one


def _weights(path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def _htr_log(run: Path) -> list:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_htr_training_writes_last_pt_and_the_resume_is_exact(tmp_path, make_tiny, monkeypatch, sig):
    import htr.train as htr_train
    from datasets.interrupts import Terminated, install

    install()
    straight = htr_train.train(_htr_cfg(make_tiny, tmp_path, tmp_path / "straight", save_every=100))
    real_step = htr_train.Trainer.step

    def step(self, rows):
        if self.state["step"] == 4:
            os.kill(os.getpid(), sig)               # arrives in the middle of step 5
        return real_step(self, rows)

    monkeypatch.setattr(htr_train.Trainer, "step", step)
    with pytest.raises(Terminated if sig == signal.SIGTERM else KeyboardInterrupt):
        htr_train.train(_htr_cfg(make_tiny, tmp_path, tmp_path / "cut", save_every=100))
    monkeypatch.undo()
    last = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert last["state"]["progress"]["step"] == 5 and not last["state"]["progress"]["finished"]
    assert not lock_path(tmp_path / "cut").exists()
    resumed = htr_train.train(_htr_cfg(make_tiny, tmp_path, tmp_path / "cut", save_every=100, resume=True))
    a, b = _weights(straight / "last.pt"), _weights(resumed / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _htr_log(straight) == _htr_log(resumed)


def test_sigterm_during_gan_training_writes_last_pt_mid_window_and_the_resume_is_exact(tmp_path, make_tiny, monkeypatch):
    import gan.train as gan_train
    from datasets.interrupts import Terminated, install
    from gan.train import GanTrainConfig

    install()
    data = make_tiny(tmp_path / "tr", n=16)

    def cfg(out, **kw):
        return GanTrainConfig(data=str(data), out=str(out), height=16, channel_mult=0.125, htr_width_mult=0.25,
                              batch_size=4, iterations=6, eval_every=3, eval_words=4, fid_n=0, gs_n=0, progress=False,
                              **kw)

    straight = gan_train.train(cfg(tmp_path / "straight"))
    real_step = gan_train.GanTraining.step

    def step(self):
        if self.iteration == 3:                     # during iteration 4: between two evaluations
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self)

    monkeypatch.setattr(gan_train.GanTraining, "step", step)
    with pytest.raises(Terminated):
        gan_train.train(cfg(tmp_path / "cut"))
    monkeypatch.undo()
    last = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert last["iteration"] == 4 and len(last["state"]["pending"]) + len(last["state"]["window"]) == 1
    resumed = gan_train.train(cfg(tmp_path / "cut", resume=True))
    a = torch.load(straight / "last.pt", weights_only=True)["models"]
    b = torch.load(resumed / "last.pt", weights_only=True)["models"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])

    def evals(run):
        return [{k: v for k, v in r.items() if k not in ("train_seconds", "eval_seconds")}
                for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r.get("event") == "eval"]

    assert evals(straight) == evals(resumed) and len(evals(resumed)) == 2


def test_resume_from_another_working_directory_and_with_absolute_paths(tmp_path, make_tiny, monkeypatch, capsys):
    make_tiny(tmp_path / "tr", n=24)
    make_tiny(tmp_path / "va", n=8, seed=1)
    monkeypatch.chdir(tmp_path)
    common = ["--max-epochs", "2", "--batch-size", "8", "--width-mult", "0.25", "--quiet"]
    assert main(["htr", "train", "--train", "tr", "--val", "va", "--out", "run", "--max-steps", "2", *common]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["htr", "train", "--out", str(tmp_path / "run"), "--resume", "--max-steps", "4", "--quiet"]) == 0
    assert main(["htr", "train", "--out", str(tmp_path / "run"), "--resume", "--train", str(tmp_path / "tr"),
                 "--val", "../va", "--max-steps", "100", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["htr", "train", "--out", str(tmp_path / "run"), "--resume", "--val", str(tmp_path / "tr")]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["state"]["progress"]["finished"]


def test_resuming_a_run_without_last_pt_says_it_starts_afresh(tmp_path, make_tiny, capsys):
    from htr.train import train

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"epoch": 1, "step": 3}\n')
    train(_htr_cfg(make_tiny, tmp_path, run, max_epochs=1, resume=True))
    assert "no last.pt yet" in capsys.readouterr().err


# --- exclusive outputs, and what killed writers leave ----------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_staging_and_temporary_files_of_killed_writers_are_removed_by_the_next_writer(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".ds.tmp-{dead}-abc123").mkdir()
    (tmp_path / f".ds.tmp-{dead}-abc123" / "x.png").write_bytes(b"partial")
    (tmp_path / f".ds.old-{dead}").mkdir()
    live = tmp_path / f".ds.tmp-{os.getpid()}-live12"               # a writer still running: kept
    live.mkdir()
    (tmp_path / f".other.tmp-{dead}-zzz").mkdir()                    # another output's: not this writer's
    with StagingDir(tmp_path / "ds") as stage:
        (stage / "a").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".ds.tmp-%d-live12" % os.getpid(), "ds",
                                                                  f".other.tmp-{dead}-zzz"])
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / f".last.pt.{dead}-abcd1234.tmp").write_bytes(b"torn")
    (run / "samples" / f".iter_000002_words.png.{dead}-q1w2e3r4.tmp").write_bytes(b"torn")
    (run / f".best.pt.{os.getpid()}-abcd1234.tmp").write_bytes(b"mine")
    removed = remove_stale(run, recursive=True)
    assert len(removed) == 2 and sorted(p.name for p in run.iterdir()) == sorted(["samples", f".best.pt.{os.getpid()}-abcd1234.tmp"])


def test_sigterm_inside_a_staging_directory_removes_it(tmp_path):
    from datasets.interrupts import Terminated, install

    install()
    with pytest.raises(Terminated):
        with StagingDir(tmp_path / "ds") as stage:
            (stage / "part").write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):           # the handler raises at the next bytecode boundary
                pass
    assert list(tmp_path.iterdir()) == []


def test_a_second_writer_is_refused_and_the_lock_never_outlives_its_holder(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; sys.path.insert(0, sys.argv[2]); from datasets.files import exclusive\n"
                               "with exclusive(sys.argv[1]):\n print('held', flush=True); time.sleep(60)",
                               str(out), str(Path(__file__).resolve().parents[1])], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"being written by pid {holder.pid}"):
            with exclusive(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)        # kill -9: the kernel drops the lock
        holder.wait()
    with exclusive(out):                          # a stale lock file does not block
        assert lock_path(out).exists()
    assert not lock_path(out).exists()


def test_overwrite_replaces_a_directory_without_leaving_its_old_copy(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "old").write_text("old")
    with StagingDir(tmp_path / "ds", overwrite=True) as stage:
        (stage / "new").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["ds"] and [p.name for p in (tmp_path / "ds").iterdir()] == ["new"]


def test_gan_grids_missing_after_a_kill_between_last_pt_and_them_are_written_on_resume(tmp_path, make_tiny):
    import hashlib

    from gan.train import GanTrainConfig, train

    data = make_tiny(tmp_path / "tr", n=16)

    def cfg(out, **kw):
        return GanTrainConfig(data=str(data), out=str(out), height=16, channel_mult=0.125, htr_width_mult=0.25,
                              batch_size=4, eval_every=2, eval_words=4, fid_n=0, gs_n=0, progress=False, **kw)

    def grids(run):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run / "samples").glob("*.png")}

    straight = train(cfg(tmp_path / "straight", iterations=4))
    cut = train(cfg(tmp_path / "cut", iterations=2))
    for p in (cut / "samples").glob("iter_000002_*.png"):     # killed after last.pt, before its grids
        p.unlink()
    train(cfg(cut, iterations=4, resume=True))
    assert grids(cut) == grids(straight) and len(grids(cut)) == 4


def _sigterm_action(_):
    return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_pool_workers_of_the_builders_die_on_sigterm_without_a_python_handler(tmp_path, monkeypatch):
    """Processes forked after the CLI's install() (the renderer's and the packer's pool workers
    among them) have SIGTERM's default action, so a Pool's terminate() never waits on a worker's
    Python-level handler."""
    import multiprocessing as mp
    from types import SimpleNamespace
    import datasets.build as build
    import datasets.packed as packed
    from datasets.interrupts import install

    previous = signal.getsignal(signal.SIGTERM)
    install()
    try:
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL       # the parent keeps its handler
        monkeypatch.setattr(build, "Renderer", lambda *a: None)          # the initializers' own work aside
        monkeypatch.setattr(packed, "load_dataset", lambda root: None)
        ctx = SimpleNamespace(pool=None, direction="ltr", config=SimpleNamespace(height=1, width=1))
        for init, args in ((build._init_worker, (ctx,)), (packed._init_pack_worker, (str(tmp_path),))):
            with mp.get_context("fork").Pool(1, initializer=init, initargs=args) as pool:
                assert pool.map(_sigterm_action, [0]) == [True], init.__name__
    finally:
        signal.signal(signal.SIGTERM, previous)
