"""GAN training: the three updates, ablation switches, logs, resume, divergence guard, CLI options."""
import argparse
import json
import shutil

import pytest
import torch

from datasets.errors import UserError
from gan.checkpoint import read_checkpoint
from datasets.options import parse_none_or_float
from benchmark.metrics.generator import score_generator
from gan.config import GanTrainConfig
from gan.networks import Discriminator, Generator, NetConfig, WordEncoder, build_recognizer, encode_words
from gan.train import GanTraining, TrainingDiverged, g_step, train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, make_tiny):
    return make_tiny(tmp_path_factory.mktemp("gan") / "tiny")


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), height=16, channel_mult=0.25, htr_width_mult=0.25, batch_size=4,
                iterations=2, eval_every=2, eval_words=8, fid_n=0, gs_n=0, progress=False)
    base.update(kw)
    return GanTrainConfig(**base)


def test_g_step_leaves_d_and_r_parameters_alone(tiny_alphabet):
    """R's (and D's) parameters receive no gradient from generated images; G and φ do."""
    torch.manual_seed(0)
    cfg = NetConfig(num_symbols=12, height=16, width=64, channel_mult=0.25)
    phi, G, D = WordEncoder(cfg), Generator(cfg), Discriminator(cfg)
    R = build_recognizer(tiny_alphabet.num_classes, 16, 0.25)
    opt = torch.optim.Adam(list(phi.parameters()) + list(G.parameters()), lr=2e-4, betas=(0.0, 0.999))
    words = ["le", "des", "mot", "tres"]
    tokens, lengths = encode_words(words, tiny_alphabet)
    targets = torch.cat([torch.tensor(tiny_alphabet.encode(w)) for w in words])
    before = [p.detach().clone() for p in G.parameters()]
    out = g_step(phi, G, D, R, opt, tokens, lengths, targets, torch.randn(4, cfg.z_dim), 1.0, "hinge")
    assert all(p.grad is None for p in R.parameters())
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None for p in G.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in phi.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, G.parameters()))
    assert torch.isfinite(torch.stack(list(out.values()))).all()


@pytest.mark.parametrize("switch", [{"alpha": None}, {"alpha": 0.1}, {"alpha": 10.0}, {"loss": "gan"},
                                    {"loss": "lsgan"}, {"attention": False}, {"cond": "linear"},
                                    {"cond": "aligned"}, {"cond": "spatial"}, {"d_norm": "none"}])
def test_each_ablation_switch_trains(tiny, tmp_path, switch):
    run = train(_cfg(tiny, tmp_path / "run", iterations=1, eval_every=1, **switch))
    ckpt = read_checkpoint(run / "last.pt")
    assert ckpt["iteration"] == 1
    for key, value in switch.items():
        assert ckpt["train_config"][key] == value


def test_aligned_run_generates_only_words_its_layout_holds(tiny, tmp_path):
    """With aligned codes the longest generated word is capped at width // char_px characters."""
    run = train(_cfg(tiny, tmp_path / "run", iterations=1, eval_every=1, cond="aligned"))
    ckpt = read_checkpoint(run / "last.pt")
    char_px = ckpt["net_config"]["char_px"]
    assert char_px > 0 and ckpt["max_chars"] <= ckpt["train_config"]["width"] // char_px
    start = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start["char_px"] == char_px and start["rtl"] is False


def test_run_directory_contents(tiny, tmp_path):
    run = train(_cfg(tiny, tmp_path / "run", iterations=2, eval_every=1, sample_every=2))
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "start" and [r["iteration"] for r in log[1:]] == [1, 2]
    for key in ("loss_d", "loss_r", "loss_g_adv", "loss_g_ctc", "grad_ratio_r_d", "cer_R", "wer_R", "best"):
        assert key in log[-1]
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["iter_000002_styles.png", "iter_000002_words.png"]


def _all_state(run):
    ckpt = read_checkpoint(run / "last.pt")
    tensors = {f"{n}.{k}": v for n, sd in ckpt["models"].items() for k, v in sd.items()}
    for name in ("opt_g", "opt_d", "opt_r"):
        for pid, st in ckpt["state"][name]["state"].items():
            for k, v in st.items():
                tensors[f"{name}.{pid}.{k}"] = torch.as_tensor(v)
    return ckpt["iteration"], tensors


def test_resume_equals_uninterrupted(tiny, tmp_path):
    """Bitwise on CPU: 4 iterations straight == 2 iterations, then resumed to 4."""
    straight = train(_cfg(tiny, tmp_path / "a", iterations=4, eval_every=2))
    train(_cfg(tiny, tmp_path / "b", iterations=2, eval_every=2))
    resumed = train(_cfg(tiny, tmp_path / "b", iterations=4, eval_every=2, resume=True))
    (ia, a), (ib, b) = _all_state(straight), _all_state(resumed)
    assert ia == ib == 4 and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _numbers(records):
    """Log records without the wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in ("train_seconds", "eval_seconds")} for r in records]


def test_resumed_log_is_rewound_to_the_checkpoint(tiny, tmp_path):
    """Records written after the last checkpoint (a run killed between its log line and last.pt)
    are dropped on resume and written again; a run cut off before any checkpoint starts a fresh log."""
    straight = train(_cfg(tiny, tmp_path / "a", iterations=4, eval_every=2))
    run = train(_cfg(tiny, tmp_path / "b", iterations=2, eval_every=2))
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps({"event": "eval", "iteration": 4, "fid": -1.0}) + "\n")   # never checkpointed
    train(_cfg(tiny, run, iterations=4, eval_every=2, resume=True))
    log = _log(run)
    assert [(r["event"], r["iteration"]) for r in log] == [("start", 0), ("eval", 2), ("resume", 2), ("eval", 4)]
    assert _numbers([r for r in log if r["event"] == "eval"]) == _numbers([r for r in _log(straight) if r["event"] == "eval"])

    fresh = tmp_path / "c"
    fresh.mkdir()
    (fresh / "log.jsonl").write_text(json.dumps({"event": "start", "iteration": 0}) + "\n")   # killed before last.pt
    train(_cfg(tiny, fresh, iterations=2, eval_every=2, resume=True))
    assert [(r["event"], r["iteration"]) for r in _log(fresh)] == [("start", 0), ("eval", 2)]


def test_time_budget_stops_at_a_sync_point_with_checkpoint_and_samples(tiny, tmp_path):
    """--max-minutes: the run stops at the first loss read-out past the budget, evaluated and saved."""
    run = train(_cfg(tiny, tmp_path / "run", iterations=1000, eval_every=500, max_minutes=1e-6))
    assert read_checkpoint(run / "last.pt")["iteration"] == 10
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "eval" and log[-1]["iteration"] == 10
    assert (run / "samples" / "iter_000010_words.png").is_file()


def test_existing_run_needs_resume_and_same_settings(tiny, tmp_path):
    train(_cfg(tiny, tmp_path / "run", iterations=1, eval_every=1))
    with pytest.raises(UserError, match="--resume"):
        train(_cfg(tiny, tmp_path / "run", iterations=2))
    with pytest.raises(UserError, match="alpha") as e:
        train(_cfg(tiny, tmp_path / "run", iterations=2, alpha=10.0, resume=True))
    assert "\n" not in str(e.value)


def test_divergence_stops_with_one_line_and_keeps_checkpoint(tiny, tmp_path, monkeypatch):
    t = GanTraining(_cfg(tiny, tmp_path / "run", iterations=5, eval_every=2))
    real_step = t.step
    def step():
        values = real_step()
        return values * float("nan") if t.iteration >= 2 else values
    monkeypatch.setattr(t, "step", step)
    with pytest.raises(TrainingDiverged) as e:
        t.fit()
    msg = str(e.value)
    assert "\n" not in msg and "iteration 3" in msg and "loss_d" in msg and "iteration 2" in msg
    assert read_checkpoint(tmp_path / "run" / "last.pt")["iteration"] == 2


def test_bad_config_values_are_one_line_errors(tiny, tmp_path):
    for kw in ({"loss": "wgan"}, {"cond": "concat"}, {"batch_size": 1}, {"alpha": -1.0}, {"iterations": 0}, {"max_minutes": 0}):
        with pytest.raises(UserError) as e:
            _cfg(tiny, tmp_path / "x", **kw)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="height"):
        train(_cfg(tiny, tmp_path / "y", height=24, width=96))
    assert parse_none_or_float("none") is None and parse_none_or_float("10") == 10.0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_none_or_float("big")


def test_cli_options_map_to_config(tmp_path):
    from benchmark.cli import build_parser
    from benchmark.profiles import PROFILES, gan_train_fields
    import gan.cli as cli

    profiles = {name: gan_train_fields(p) for name, p in PROFILES.items()}
    parser = build_parser()
    args = parser.parse_args(["gan", "train", "--data", "D", "--out", str(tmp_path / "r"), "--height", "32",
                              "--alpha", "none", "--loss", "lsgan", "--no-attention", "--cond", "linear",
                              "--eval-every", "7", "--profile", "smoke"])
    cfg = cli.train_config_from_args(args, profiles)
    assert (cfg.height, cfg.width, cfg.alpha, cfg.loss, cfg.attention, cfg.cond, cfg.eval_every) == \
        (32, 128, None, "lsgan", False, "linear", 7)
    assert cfg.channel_mult == 0.25 and cfg.iterations == 30          # from the smoke profile
    default = cli.train_config_from_args(parser.parse_args(["gan", "train", "--data", "D", "--out", "R"]), profiles)
    assert (default.height, default.width, default.batch_size, default.lr, default.betas, default.alpha) == \
        (128, 512, 64, 2e-4, (0.0, 0.999), 1.0)


def test_judge_readability_fid_and_gs_in_the_log(tmp_path, make_tiny):
    """With a judge recognizer: judge CER, FID ('htr' features) and GS are logged; best.pt by FID."""
    from htr.train import HtrTrainConfig, train as train_htr

    data = make_tiny(tmp_path / "d72", n=72)
    judge = train_htr(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "judge"), max_steps=1,
                                     width_mult=0.25, batch_size=8, threads=1, show_progress=False))
    run = train(_cfg(data, tmp_path / "run", iterations=1, eval_every=1, judge=str(judge), fid_n=64, gs_n=64, gs_reps=2),
                scorer=score_generator)
    rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert "metrics_error" not in rec, rec.get("metrics_error")
    for key in ("cer_judge", "wer_judge", "fid", "gs"):
        assert isinstance(rec[key], float), key
    assert rec["fid_n"] == 64 and rec["gs_n"] == 64 and rec["best"]["metric"] == "fid"


def test_non_finite_weights_are_never_checkpointed(tiny, tmp_path, monkeypatch):
    t = GanTraining(_cfg(tiny, tmp_path / "run", iterations=3, eval_every=1))
    real_step = t.step
    def step():
        values = real_step()
        if t.iteration == 1:                      # running iteration 2: corrupt G, losses stay finite
            with torch.no_grad():
                next(t.nets.G.parameters()).fill_(float("inf"))
        return values
    monkeypatch.setattr(t, "step", step)
    with pytest.raises(TrainingDiverged, match="non-finite weights in G") as e:
        t.fit()
    assert "\n" not in str(e.value)
    assert read_checkpoint(tmp_path / "run" / "last.pt")["iteration"] == 1


def test_rtl_ctc_targets_reverse_digit_runs_only():
    from datasets.alphabet import Alphabet
    from gan.words import ctc_frames_needed, ctc_targets

    a = Alphabet("بت١٢٣", "ar-digits")
    word = "ب١٢٣ت"
    assert ctc_targets([word], a, "rtl").tolist() == a.encode("ب٣٢١ت")
    assert ctc_targets([word], a, "ltr").tolist() == a.encode(word)
    assert ctc_frames_needed("ب١١٢") == ctc_frames_needed("ب٢١١") == 5


def test_r_init_starts_r_from_a_recognizer_and_refuses_mismatches(tmp_path, make_tiny):
    """--r-init: R begins with the recognizer's weights; another width or height is a one-line error."""
    from htr.checkpoint import read_checkpoint as read_htr, resolve
    from htr.train import HtrTrainConfig, train as train_htr

    data = make_tiny(tmp_path / "d", n=32)
    rec = train_htr(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "rec"), max_steps=2,
                                   width_mult=0.25, batch_size=8, threads=1, show_progress=False))
    t = GanTraining(_cfg(data, tmp_path / "run", r_init=str(rec)))
    start = read_htr(resolve(rec))["model"]
    assert all(torch.equal(v, t.nets.R.state_dict()[k]) for k, v in start.items())
    scratch = GanTraining(_cfg(data, tmp_path / "run0"))
    assert not all(torch.equal(v, scratch.nets.R.state_dict()[k]) for k, v in start.items())
    with pytest.raises(UserError, match="width multiplier 0.25 differs"):
        GanTraining(_cfg(data, tmp_path / "run1", r_init=str(rec), htr_width_mult=0.5))
    with pytest.raises(UserError, match="height 16 differs"):
        GanTraining(_cfg(data, tmp_path / "run2", r_init=str(rec), height=32))
    # a resumed run takes R from its own last.pt: the r-init run may be gone by then
    train(_cfg(data, tmp_path / "run3", r_init=str(rec), iterations=1, eval_every=1))
    shutil.rmtree(rec)
    resumed = train(_cfg(data, tmp_path / "run3", r_init=str(rec), iterations=2, eval_every=1, resume=True))
    assert read_checkpoint(resumed / "last.pt")["iteration"] == 2


def test_g_step_averages_r_with_frozen_readers_on_distorted_images(tiny_alphabet):
    """The R term is the mean CTC of R and the readers; readers and R get no parameter gradient;
    with `augment` the CTC is taken on the distorted batch and still reaches G."""
    from htr.augment import augment_batch
    from htr.model import ctc_loss
    torch.manual_seed(0)
    cfg = NetConfig(num_symbols=12, height=16, width=64, channel_mult=0.25, cond="spatial", char_px=8.0)
    phi, G, D = WordEncoder(cfg), Generator(cfg), Discriminator(cfg)
    R = build_recognizer(tiny_alphabet.num_classes, 16, 0.25)
    reader = build_recognizer(tiny_alphabet.num_classes, 16, 0.25).eval()
    opt = torch.optim.Adam(list(phi.parameters()) + list(G.parameters()), lr=2e-4, betas=(0.0, 0.999))
    words = ["le", "des", "mot", "tres"]
    tokens, lengths = encode_words(words, tiny_alphabet)
    targets = torch.cat([torch.tensor(tiny_alphabet.encode(w)) for w in words])
    z = torch.randn(4, cfg.z_dim)
    state = {k: v.clone() for k, v in G.state_dict().items()}, {k: v.clone() for k, v in phi.state_dict().items()}

    def run(readers=(), augment=None):
        G.load_state_dict(state[0]), phi.load_state_dict(state[1])
        return g_step(phi, G, D, R, opt, tokens, lengths, targets, z, 1.0, "hinge", readers=readers, r_augment=augment)

    alone, with_itself = run(), run(readers=(R,))
    assert torch.allclose(alone["loss_g_ctc"], with_itself["loss_g_ctc"])
    pair = run(readers=(reader,))
    own = run(readers=())
    with torch.no_grad():
        G.load_state_dict(state[0]), phi.load_state_dict(state[1])
        x = G(z, phi(tokens, lengths))
        expected = (ctc_loss(R(x), targets, lengths) + ctc_loss(reader(x), targets, lengths)) / 2
    assert torch.allclose(pair["loss_g_ctc"], expected, atol=1e-5) and not torch.allclose(pair["loss_g_ctc"], own["loss_g_ctc"])
    assert all(p.grad is None for m in (R, reader) for p in m.parameters())
    seen = []
    distorted = run(readers=(reader,), augment=lambda x: seen.append(x) or augment_batch(x, torch.Generator().manual_seed(1)))
    with torch.no_grad():
        xa = augment_batch(seen[0].detach(), torch.Generator().manual_seed(1))
        expected = (ctc_loss(R(xa), targets, lengths) + ctc_loss(reader(xa), targets, lengths)) / 2
    assert len(seen) == 1 and not torch.equal(xa, seen[0])
    assert torch.allclose(distorted["loss_g_ctc"], expected, atol=1e-5)
    assert torch.isfinite(distorted["grad_norm_r"]) and distorted["grad_norm_r"] > 0


def test_readers_join_training_resume_exactly_and_refuse_mismatches(tmp_path, make_tiny):
    """--readers / --r-augment: a run resumes bitwise (the distortion stream is saved); a reader of
    another height is a one-line error before training."""
    from htr.train import HtrTrainConfig, train as train_htr

    data = make_tiny(tmp_path / "d", n=32)
    rec = train_htr(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "rec"), max_steps=2,
                                   width_mult=0.25, batch_size=8, threads=1, show_progress=False))
    opts = dict(readers=[str(rec)], r_augment=True, cond="spatial")
    straight = train(_cfg(data, tmp_path / "a", iterations=4, eval_every=2, **opts))
    train(_cfg(data, tmp_path / "b", iterations=2, eval_every=2, **opts))
    resumed = train(_cfg(data, tmp_path / "b", iterations=4, eval_every=2, resume=True, **opts))
    (ia, a), (ib, b) = _all_state(straight), _all_state(resumed)
    assert ia == ib == 4
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read_checkpoint(straight / "last.pt")["train_config"]["readers"] == [str(rec)]
    with pytest.raises(UserError, match=r"--readers .*height 16 differs from this run's 32"):
        GanTraining(_cfg(data, tmp_path / "c", height=32, **opts))


def test_amp_auto_trains_in_bf16_on_a_cpu_only_where_bf16_is_native_and_on_forces_it(tiny, tmp_path, monkeypatch):
    from datasets import cpus

    monkeypatch.setattr(cpus, "native_bf16_cpu", lambda: False)
    assert not GanTraining(_cfg(tiny, tmp_path / "emulated", amp="auto", iterations=1)).amp
    assert GanTraining(_cfg(tiny, tmp_path / "forced", amp="on", iterations=1)).amp
    monkeypatch.setattr(cpus, "native_bf16_cpu", lambda: True)
    assert not GanTraining(_cfg(tiny, tmp_path / "off", iterations=1)).amp
    native = GanTraining(_cfg(tiny, tmp_path / "native", amp="auto", iterations=1))
    assert native.amp
    with native.autocast():
        assert torch.nn.functional.linear(torch.ones(1, 2), torch.ones(2, 2)).dtype == torch.bfloat16


def test_amp_mode_defines_the_run_and_bad_modes_are_refused(tiny, tmp_path):
    train(_cfg(tiny, tmp_path / "run", iterations=1, eval_every=1))
    with pytest.raises(UserError, match="amp"):
        GanTraining(_cfg(tiny, tmp_path / "run", iterations=2, eval_every=1, amp="on", resume=True))
    with pytest.raises(UserError, match="amp"):
        _cfg(tiny, tmp_path / "bad", amp="fp16")
