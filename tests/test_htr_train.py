"""CTC training: exact resume, early stopping, mixing, evaluation and one-line input errors."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.format import DatasetMeta, DatasetWriter
from htr.checkpoint import load_recognizer, read_checkpoint
from htr.evaluate import evaluate, recognize
from htr.train import BatchPlan, HtrTrainConfig, initial_progress, is_improvement, train
import htr.train as htr_train
from benchmark.cli import build_parser

SYMBOLS = "abcd"


pytestmark = pytest.mark.usefixtures("one_thread")


def make_dataset(root: Path, n: int, seed: int, symbols: str = SYMBOLS, direction: str = "ltr",
                 words=None) -> Path:
    """Tiny 16×64 dataset: each letter drawn as a black bar whose width encodes the letter."""
    rng = np.random.default_rng(seed)
    meta = DatasetMeta(name=root.name, language="xx", direction=direction, alphabet=Alphabet(symbols),
                       height=16, width=64, split=root.name)
    w = DatasetWriter(root, meta)
    for i in range(n):
        word = words[i % len(words)] if words else "".join(rng.choice(list(symbols), rng.integers(1, 5)))
        img = np.full((16, 64), 255, np.uint8)
        for j, ch in enumerate(word):
            k = symbols.index(ch) if ch in symbols else 0
            x0 = 2 + j * 12
            img[3:13, x0:x0 + 2 + 2 * k] = rng.integers(0, 60)
        if direction == "rtl":
            img = img[:, ::-1]
        w.add(img, word, writer=str(i % 3))
    w.close()
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("htrdata")
    return {
        "train": make_dataset(base / "train", 48, 0),
        "val": make_dataset(base / "val", 16, 1),
        "extra": make_dataset(base / "extra", 32, 2),
        "base": base,
    }


def cfg(data, out, **kw):
    base = dict(train=str(data["train"]), val=str(data["val"]), out=str(out), seed=3, max_epochs=3, patience=5,
                batch_size=8, lr=1e-3, width_mult=0.25, show_progress=False, save_every=4)
    base.update(kw)
    return HtrTrainConfig(**base)


def weights(path):
    return read_checkpoint(path)["model"]


def same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def log_numbers(run):
    lines = [json.loads(x) for x in (Path(run) / "log.jsonl").read_text().splitlines()]
    return [(e["epoch"], e["step"], e["train_loss"], e["val_cer"], e["val_wer"]) for e in lines]


def test_resume_after_interruption_matches_uninterrupted_run(data, tmp_path):
    kw = dict(extra=[str(data["extra"])], extra_ratio=0.25, augment=True)
    full = train(cfg(data, tmp_path / "full", **kw))
    part = train(cfg(data, tmp_path / "part", max_steps=7, **kw))     # mid-epoch (6 batches/epoch)
    assert read_checkpoint(part / "last.pt")["state"]["progress"]["step"] == 7
    assert not read_checkpoint(part / "last.pt")["state"]["progress"]["finished"]
    resumed = train(cfg(data, tmp_path / "part", resume=True, **kw))
    assert same_weights(weights(full / "last.pt"), weights(resumed / "last.pt"))
    assert same_weights(weights(full / "best.pt"), weights(resumed / "best.pt"))
    assert log_numbers(full) == log_numbers(resumed)
    # same seed, fresh directory → identical numbers
    again = train(cfg(data, tmp_path / "again", **kw))
    assert same_weights(weights(full / "last.pt"), weights(again / "last.pt"))


def test_run_cut_off_before_its_first_checkpoint_restarts_with_a_fresh_log(data, tmp_path):
    full = train(cfg(data, tmp_path / "full"))
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "log.jsonl").write_text(json.dumps({"epoch": 1, "step": 6, "train_loss": 9.0, "val_cer": 99.0, "val_wer": 99.0}) + "\n")
    train(cfg(data, cut, resume=True))
    assert log_numbers(full) == log_numbers(cut)


def test_finished_run_resume_is_a_no_op_and_rerun_without_resume_refused(data, tmp_path):
    run = train(cfg(data, tmp_path / "r", max_epochs=1))
    before = (run / "last.pt").stat().st_mtime_ns
    train(cfg(data, tmp_path / "r", max_epochs=1, resume=True))
    assert (run / "last.pt").stat().st_mtime_ns == before
    with pytest.raises(UserError, match="--resume"):
        train(cfg(data, tmp_path / "r", max_epochs=1))
    with pytest.raises(UserError, match="different configuration"):
        train(cfg(data, tmp_path / "r", max_epochs=1, resume=True, seed=99))


def test_early_stopping_keeps_the_best_checkpoint(data, tmp_path, monkeypatch):
    scripted = iter([60.0, 40.0, 45.0, 50.0, 10.0])
    snapshots = []

    def fake_validate(model, val, batch_size, device):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        c = next(scripted)
        return {"cer": c, "wer": c, "cer_ci": c, "wer_ci": c, "n": 1}

    monkeypatch.setattr(htr_train, "validate_model", fake_validate)
    run = train(cfg(data, tmp_path / "es", max_epochs=10, patience=2))
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [e["val_cer"] for e in log] == [60.0, 40.0, 45.0, 50.0]          # stopped after 2 bad epochs
    best = read_checkpoint(run / "best.pt")
    assert best["val_cer"] == 40.0 and best["step"] == log[1]["step"]
    assert same_weights(best["model"], snapshots[1])
    last = read_checkpoint(run / "last.pt")["state"]["progress"]
    assert last["finished"] and last["stop_reason"] == "early_stopping"


def test_lr_is_reduced_after_lr_patience_bad_validations(data, tmp_path, monkeypatch):
    scripted = iter([60.0, 40.0, 45.0, 50.0, 30.0, 35.0, 36.0, 37.0])

    def fake_validate(model, val, batch_size, device):
        c = next(scripted)
        return {"cer": c, "wer": c, "cer_ci": c, "wer_ci": c, "n": 1}

    monkeypatch.setattr(htr_train, "validate_model", fake_validate)
    run = train(cfg(data, tmp_path / "lr", max_epochs=8, patience=10, lr=1e-3, lr_factor=0.5, lr_patience=2))
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    # bad validations at 45, 50 (→ halve), then 35, 36 (→ halve again); 37 is the third bad one
    assert [e["lr"] for e in log] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4])
    last = read_checkpoint(run / "last.pt")
    assert last["state"]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    assert last["state"]["progress"]["lr_decays"] == 2


def test_cosine_schedule_follows_the_step_and_resumes_exactly(data, tmp_path):
    assert htr_train.cosine_lr(1e-3, 0, 100) == pytest.approx(1e-3)
    assert htr_train.cosine_lr(1e-3, 50, 100) == pytest.approx(5e-4)
    assert htr_train.cosine_lr(1e-3, 100, 100) == pytest.approx(0.0, abs=1e-12)
    run = train(cfg(data, tmp_path / "cos", max_epochs=3, patience=10, lr_schedule="cosine"))
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    per_epoch = log[0]["step"]
    total = per_epoch * 3
    # the lr logged after an epoch is the one its last step used (steps are counted from 0)
    assert [e["lr"] for e in log] == pytest.approx([htr_train.cosine_lr(1e-3, e["step"] - 1, total) for e in log])
    cut = tmp_path / "cos_cut"
    train(cfg(data, cut, max_epochs=3, patience=10, lr_schedule="cosine", max_steps=per_epoch + 2))
    train(cfg(data, cut, max_epochs=3, patience=10, lr_schedule="cosine", resume=True))
    assert same_weights(weights(run / "last.pt"), weights(cut / "last.pt"))
    with pytest.raises(UserError, match="exclude each other"):
        cfg(data, tmp_path / "x", lr_schedule="cosine", lr_factor=0.5).validate()


def _constant_validation(cer):
    def fake_validate(model, val, batch_size, device):
        return {"cer": cer, "wer": 100.0, "cer_ci": cer, "wer_ci": 100.0, "n": 1, "loss": 4.0}
    return fake_validate


def _events(run):
    return [json.loads(x) for x in (Path(run) / "log.jsonl").read_text().splitlines() if '"event"' in x]


def test_stall_guard_restarts_a_plateaued_run_twice_and_resumes_exactly(data, tmp_path, monkeypatch):
    monkeypatch.setattr(htr_train, "validate_model", _constant_validation(99.0))   # never leaves the plateau
    kw = dict(max_epochs=10, patience=10, eval_every=2, stall_steps=4)
    full = train(cfg(data, tmp_path / "full", max_steps=6, **kw))
    assert [(e["step"], e["attempt"]) for e in _events(full)] == [(4, 1), (8, 2)]   # at most MAX_RESTARTS
    assert "99.0 % ≥ 95 % after 4 steps" in _events(full)[0]["reason"]
    progress = read_checkpoint(full / "last.pt")["state"]["progress"]
    assert progress["step"] == 8 + 6 and progress["attempt"] == 2     # the last attempt got the whole budget
    from htr.cli import _best_summary
    assert _best_summary(full).endswith("(epoch 1, step 10); 3 validations, after 2 stall restart(s)")  # best.pt's attempt
    plain = train(cfg(data, tmp_path / "plain", max_steps=14, **{**kw, "stall_steps": 0}))
    assert not _events(plain)
    assert not same_weights(weights(full / "last.pt"), weights(plain / "last.pt"))   # new initialisations
    cut = tmp_path / "cut"
    assert read_checkpoint(train(cfg(data, cut, max_steps=5, **kw)) / "last.pt")["state"]["progress"]["step"] == 13
    train(cfg(data, cut, max_steps=6, resume=True, **kw))
    assert same_weights(weights(full / "last.pt"), weights(cut / "last.pt"))
    assert (full / "log.jsonl").read_text().count("\n") == (cut / "log.jsonl").read_text().count("\n")
    assert _events(cut) == _events(full)


def test_stall_guard_leaves_a_learning_run_alone(data, tmp_path, monkeypatch):
    kw = dict(max_epochs=10, patience=10, eval_every=2, max_steps=8)
    scripted = iter([99.0, 90.0, 80.0, 70.0] * 2)
    monkeypatch.setattr(htr_train, "validate_model", lambda *a: _constant_validation(next(scripted))(*a))
    guarded = train(cfg(data, tmp_path / "guarded", stall_steps=4, **kw))
    plain = train(cfg(data, tmp_path / "plain", **kw))
    assert not _events(guarded)
    assert same_weights(weights(guarded / "last.pt"), weights(plain / "last.pt"))
    with pytest.raises(UserError, match="stall-steps"):
        cfg(data, tmp_path / "x", stall_steps=-1).validate()


def test_amp_on_cpu_runs_the_network_in_bfloat16(data, tmp_path, monkeypatch):
    """--amp on, on a CPU: convolutions run in bf16 under autocast, the CTC loss stays float32, weights stay fp32."""
    seen = {}
    real_step = htr_train.Trainer.step

    def step(self, rows):
        if not seen:
            self.model.encoder.conv1.register_forward_hook(lambda m, i, o: seen.setdefault("conv", o.dtype) and None)
            self.model.register_forward_hook(lambda m, i, o: seen.setdefault("log_probs", o.dtype) and None)
        return real_step(self, rows)

    monkeypatch.setattr(htr_train.Trainer, "step", step)
    run = train(cfg(data, tmp_path / "amp", amp="on", max_epochs=1))
    assert seen == {"conv": torch.bfloat16, "log_probs": torch.float32}
    w = weights(run / "last.pt")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in w.values() if v.is_floating_point())


def test_amp_flag_alone_means_on_takes_a_mode_and_rejects_others(capsys):
    parser = build_parser()
    base = ["htr", "train", "--train", "T", "--val", "V", "--out", "R"]
    assert parser.parse_args(base + ["--amp"]).amp == "on"
    assert parser.parse_args(base + ["--amp", "auto"]).amp == "auto"
    assert not hasattr(parser.parse_args(base), "amp")              # not given: the recipe's value
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--amp", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    with pytest.raises(UserError, match="amp"):
        HtrTrainConfig(train="T", val="V", out="R", amp="fp16")


def test_amp_auto_resolves_per_device_and_is_recorded(data, tmp_path, monkeypatch):
    from datasets import cpus

    assert [cpus.bf16_autocast(m, "cpu") for m in ("off", "on")] == [False, True]
    assert cpus.bf16_autocast("auto", "cuda") and not cpus.bf16_autocast("off", "cuda")
    monkeypatch.setattr(cpus, "native_bf16_cpu", lambda: False)
    assert not cpus.bf16_autocast("auto", "cpu")
    with pytest.raises(ValueError, match="amp mode"):
        cpus.bf16_autocast("yes", "cpu")
    run = train(cfg(data, tmp_path / "auto", amp="auto", max_epochs=1))   # native bf16 patched away: float32
    stored = json.loads((run / "config.json").read_text())
    assert stored["config"]["amp"] == "auto" and stored["bf16_autocast"] is False
    assert same_weights(weights(run / "last.pt"), weights(train(cfg(data, tmp_path / "off", max_epochs=1)) / "last.pt"))


def test_amp_defines_the_run(data, tmp_path):
    train(cfg(data, tmp_path / "r", max_epochs=1, save_every=1, max_steps=2))
    with pytest.raises(UserError, match="different configuration"):
        train(cfg(data, tmp_path / "r", max_epochs=1, resume=True, amp="on"))


def test_native_bf16_is_off_on_an_emulated_avx2_machine():
    import subprocess
    import sys

    env = {**__import__("os").environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", "from datasets.cpus import native_bf16_cpu; print(native_bf16_cpu())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_equal_cer_is_broken_by_validation_loss():
    state = initial_progress()
    assert is_improvement({"cer": 100.0, "loss": 5.0}, state)
    state.update(best_cer=100.0, best_loss=5.0)
    assert is_improvement({"cer": 100.0, "loss": 4.0}, state)        # still all blanks, but learning
    assert not is_improvement({"cer": 100.0, "loss": 5.5}, state)
    assert not is_improvement({"cer": 100.0}, state)
    assert is_improvement({"cer": 90.0, "loss": 9.0}, state)
    assert not is_improvement({"cer": 100.5, "loss": 1.0}, state)


def test_batch_plan_mixing_modes():
    concat = BatchPlan(np.arange(10), [6], batch_size=4, extra_ratio=None, seed=0)
    rows = np.concatenate(concat.epoch(0))
    assert len(concat.epoch(0)) == 4 and len(rows) == 16 and len({tuple(r) for r in rows}) == 16
    ratio = BatchPlan(np.arange(12), [5], batch_size=4, extra_ratio=0.5, seed=0)
    batches = ratio.epoch(1)
    assert len(batches) == 6
    assert all((b[:, 0] == 1).sum() == 2 and (b[:, 0] == 0).sum() == 2 for b in batches)
    assert sorted(np.concatenate(batches)[np.concatenate(batches)[:, 0] == 0, 1]) == list(range(12))
    assert all(np.array_equal(a, b) for a, b in zip(ratio.epoch(1), BatchPlan(np.arange(12), [5], 4, 0.5, 0).epoch(1)))


def test_max_train_subsamples_deterministically(data, tmp_path):
    run = train(cfg(data, tmp_path / "sub", max_epochs=1, max_train=20))
    conf = json.loads((run / "config.json").read_text())
    assert conf["real_train_images"] == 20 and conf["parameters"] > 0 and conf["frames"] == 16


def test_evaluate_and_cli(data, tmp_path, capsys):
    run = train(cfg(data, tmp_path / "ev", max_epochs=1))
    model, alphabet, info = load_recognizer(run)
    assert info["alphabet_fingerprint"] == Alphabet(SYMBOLS).fingerprint and model.width == 64
    tsv = tmp_path / "pred.tsv"
    m = evaluate(run, data["val"], out_tsv=tsv)
    assert m["n"] == 16 and {"cer", "wer", "cer_ci", "wer_ci"} <= set(m)
    rows = tsv.read_text().splitlines()
    assert rows[0] == "path\treference\thypothesis" and len(rows) == 17
    snapped = tmp_path / "snapped.tsv"
    evaluate(run, data["val"], out_tsv=snapped, lexicon=["abc"])
    assert {r.split("\t")[2] for r in snapped.read_text().splitlines()[1:]} == {"abc"}
    x = torch.ones(3, 1, 16, 64)
    assert len(recognize(model, alphabet, x, batch_size=2)) == 3

    parser = build_parser()
    args = parser.parse_args(["htr", "eval", "--model", str(run), "--data", str(data["val"]), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["cer"] == pytest.approx(m["cer"])
    args = parser.parse_args(["htr", "eval", "--model", str(run), "--data", str(data["val"])])
    args.func(args)
    text = capsys.readouterr().out
    assert "case-sensitive" in text and "case-insensitive" in text


def test_rtl_training_runs(tmp_path):
    tr = make_dataset(tmp_path / "tr", 16, 0, symbols="سلام", direction="rtl")
    va = make_dataset(tmp_path / "va", 8, 1, symbols="سلام", direction="rtl")
    run = train(HtrTrainConfig(train=str(tr), val=str(va), out=str(tmp_path / "run"), max_epochs=1,
                               batch_size=8, width_mult=0.25, show_progress=False))
    model, _, _ = load_recognizer(run)
    assert model.rtl
    assert evaluate(run, va)["n"] == 8


# --- bad input: one-line errors ------------------------------------------------------------

def one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def test_label_outside_the_model_alphabet(data, tmp_path):
    odd = make_dataset(tmp_path / "odd", 8, 5, symbols="abcdz", words=["abz", "zz"])
    with pytest.raises(UserError) as e:
        train(cfg(data, tmp_path / "x", val=str(odd)))
    assert "'z'" in one_line(e)
    with pytest.raises(UserError) as e:
        train(cfg(data, tmp_path / "y", extra=[str(odd)]))
    assert "'z'" in one_line(e)


def test_empty_dataset(data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    meta = DatasetMeta(name="empty", language="xx", direction="ltr", alphabet=Alphabet(SYMBOLS))
    (empty / "meta.json").write_text(json.dumps(meta.to_json()))
    (empty / "labels.tsv").write_text("")
    with pytest.raises(UserError) as e:
        train(cfg(data, tmp_path / "z", train=str(empty)))
    assert "empty" in one_line(e)


def test_checkpoint_from_another_alphabet(data, tmp_path):
    run = train(cfg(data, tmp_path / "ab", max_epochs=1))
    other = make_dataset(tmp_path / "other", 8, 6, symbols="xyz")
    with pytest.raises(UserError) as e:
        evaluate(run, other)
    assert "alphabet" in one_line(e)
    rtl = make_dataset(tmp_path / "rtl", 8, 6, direction="rtl")
    with pytest.raises(UserError) as e:
        evaluate(run, rtl)
    assert "rtl" in one_line(e)


def test_bad_options_and_missing_checkpoint(data, tmp_path):
    with pytest.raises(UserError):
        HtrTrainConfig(train="a", val="b", out="c", extra_ratio=0.5).validate()
    with pytest.raises(UserError):
        HtrTrainConfig(train="a", val="b", out="c", optimizer="sgd").validate()
    with pytest.raises(UserError) as e:
        load_recognizer(tmp_path / "nope")
    one_line(e)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError) as e:
        load_recognizer(junk)
    one_line(e)


def test_rtl_targets_follow_ctc_order(tmp_path):
    from datasets.torch_dataset import WordImageDataset

    ds = make_dataset(tmp_path / "digits", 2, 0, symbols="ب١٢", direction="rtl", words=["ب١٢", "١٢"])
    wds = WordImageDataset(ds, Alphabet("ب١٢"), 16, 64, show_progress=False)
    assert [t.tolist() for t in wds.targets] == [[1, 3, 2], [3, 2]]
