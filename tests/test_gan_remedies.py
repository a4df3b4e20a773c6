"""The GAN's remedies against D overfitting and style collapse (not in the paper, off by default):
DiffAugment before D (with ADA's adaptive probability) and the mode-seeking term on z. Each is a
no-op when off, differentiable when on, and resumes exactly."""
import pytest
import torch

from benchmark.cli import main as htraug
from datasets.errors import UserError
from gan.augment import DiffAugment, brightness, cutout, ink, translate
from gan.options import TRANSFORMS
from gan.checkpoint import read_checkpoint
from gan.config import GanTrainConfig
from gan.networks import Discriminator, Generator, NetConfig, WordEncoder, build_recognizer, encode_words
from gan.steps import g_step, mode_seeking
from gan.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, make_tiny):
    return make_tiny(tmp_path_factory.mktemp("remedies") / "tiny")


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), height=16, channel_mult=0.25, htr_width_mult=0.25, batch_size=4,
                iterations=2, eval_every=2, eval_words=8, fid_n=0, gs_n=0, progress=False)
    return GanTrainConfig(**{**base, **kw})


def _params(run) -> dict[str, torch.Tensor]:
    ckpt = read_checkpoint(run / "last.pt")
    return {f"{n}.{k}": v for n, sd in ckpt["models"].items() for k, v in sd.items()}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _images(seed: int = 0, b: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.ones(b, 1, 16, 64)
    x[:, :, 4:12, 8:56] = torch.rand(b, 1, 8, 48, generator=g) * 2 - 1      # ink in the middle, white paper around
    return x


@pytest.mark.parametrize("fn", [translate, cutout, ink, brightness])
def test_each_transform_is_differentiable_and_keeps_the_shape(fn):
    x = _images().requires_grad_(True)
    y = fn(x, torch.Generator().manual_seed(1), 1.0)
    assert y.shape == x.shape
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_transforms_respect_white_paper_and_probability():
    white = torch.ones(4, 1, 16, 64)
    g = torch.Generator().manual_seed(2)
    for fn in (translate, cutout, ink):           # the border, the hole and the ink scale keep paper white
        assert torch.equal(fn(white, g, 1.0), white)
    x = _images()
    for fn in (translate, cutout, ink, brightness):
        assert torch.equal(fn(x, torch.Generator().manual_seed(3), 0.0), x)   # p = 0: every sample untouched
    moved = translate(x, torch.Generator().manual_seed(4), 1.0)
    assert not torch.equal(moved, x) and moved.min() >= x.min() and moved.max() <= 1.0
    holed = cutout(x, torch.Generator().manual_seed(5), 1.0)
    assert ((holed == 1) & (x != 1)).any()         # some ink erased to white


def test_ada_moves_p_toward_the_target_within_0_and_1():
    aug = DiffAugment(("translation",), torch.Generator(), p=0.5, ada_target=0.6, ada_speed=1000)
    aug.adapt(0.9, 100)                     # D too sure of real images: more augmentation
    assert aug.p == pytest.approx(0.6)
    aug.adapt(0.1, 300)
    assert aug.p == pytest.approx(0.3)
    aug.adapt(-1.0, 10_000)
    assert aug.p == 0.0
    fixed = DiffAugment(("translation",), torch.Generator(), p=0.5)
    fixed.adapt(1.0, 10_000)
    assert fixed.p == 0.5


def _g_inputs(alphabet, b=4):
    torch.manual_seed(0)
    cfg = NetConfig(num_symbols=len(alphabet.symbols), height=16, width=64, channel_mult=0.25)
    nets = WordEncoder(cfg), Generator(cfg), Discriminator(cfg), build_recognizer(alphabet.num_classes, 16, 0.25)
    words = ["le", "des"] * (b // 2)
    tokens, lengths = encode_words(words, alphabet)
    targets = torch.cat([torch.tensor(alphabet.encode(w)) for w in words])
    return cfg, nets, tokens, lengths, targets, torch.randn(b, cfg.z_dim, generator=torch.Generator().manual_seed(1))


def test_g_step_gradient_reaches_g_through_diffaugment_and_mode_seeking(tiny_alphabet):
    """With DiffAugment the adversarial gradient is taken through the transforms; the mode-seeking
    term adds its own image gradient; both change G's update."""
    def grads(**kw):
        cfg, (phi, G, D, R), tokens, lengths, targets, z = _g_inputs(tiny_alphabet)
        opt = torch.optim.SGD(list(phi.parameters()) + list(G.parameters()), lr=0.0)
        out = g_step(phi, G, D, R, opt, tokens, lengths, targets, z, 1.0, "hinge", **kw)
        return torch.cat([p.grad.flatten() for p in G.parameters()]), out

    plain, out = grads()
    assert "loss_ms" not in out
    augmented, _ = grads(d_augment=DiffAugment(TRANSFORMS, torch.Generator().manual_seed(0)))
    seeking, out = grads(ms_weight=1.0)
    assert augmented.abs().sum() > 0 and not torch.equal(augmented, plain)
    assert seeking.abs().sum() > 0 and not torch.equal(seeking, plain) and out["loss_ms"] > 0


def test_mode_seeking_is_large_for_identical_pairs():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    same = torch.rand(4, 1, 8, 8).repeat(2, 1, 1, 1)
    varied = torch.rand(8, 1, 8, 8)
    assert mode_seeking(same, z) > 1000 * mode_seeking(varied, z)


def test_mode_seeking_over_the_word_columns_sees_only_them():
    """Over all columns the word-region term equals the whole-image term; over some columns its
    image gradient is zero elsewhere, so marks past the word earn nothing."""
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    x = torch.rand(8, 1, 4, 10, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    every = torch.ones(8, 10, dtype=torch.bool)
    assert torch.allclose(mode_seeking(x, z, every), mode_seeking(x, z))
    word = torch.arange(10)[None, :].expand(8, -1) < torch.tensor([3, 5, 7, 10, 3, 5, 7, 10])[:, None]
    (grad,) = torch.autograd.grad(mode_seeking(x, z, word), x)
    inside = word[:, None, None, :].expand_as(grad)
    assert grad[~inside].abs().max() == 0 and grad[inside].abs().min() > 0


def test_mode_seeking_over_the_word_trains_and_needs_the_aligned_layout(tiny, tmp_path):
    run = train(_cfg(tiny, tmp_path / "run", iterations=2, eval_every=2, cond="spatial", ms_weight=1.0, ms_region="word"))
    assert (run / "last.pt").exists()
    with pytest.raises(UserError, match="ms_region.*aligned or spatial"):
        GanTrainConfig(data="d", out="o", ms_weight=1.0, ms_region="word", cond="cbn").check()


def test_remedies_off_are_a_bitwise_no_op(tiny, tmp_path):
    """Options of a remedy that is off leave training bitwise as it is; a policy at p = 0 too."""
    base = _params(train(_cfg(tiny, tmp_path / "base")))
    off = _params(train(_cfg(tiny, tmp_path / "off", diff_augment="", augment_p=0.3, ada_speed=5.0, ms_weight=0.0)))
    zero_p = _params(train(_cfg(tiny, tmp_path / "p0", diff_augment="translation,cutout", augment_p=0.0)))
    same_lr = _params(train(_cfg(tiny, tmp_path / "lr", d_steps=1, lr_d=GanTrainConfig.lr)))   # D's lr = G's: the paper
    assert _equal(base, off) and _equal(base, zero_p) and _equal(base, same_lr)
    on = _params(train(_cfg(tiny, tmp_path / "on", diff_augment="translation,cutout")))
    assert not _equal(base, on)


def test_d_steps_and_d_learning_rate_train_d_more(tiny, tmp_path):
    """d_steps = 2: two D updates (and two real batches) per iteration, one of G and R; lr_d: D's own
    Adam learning rate, G's and R's unchanged. Either changes training."""
    base = _params(train(_cfg(tiny, tmp_path / "base")))
    run = train(_cfg(tiny, tmp_path / "run", d_steps=2, lr_d=8e-4))
    state = read_checkpoint(run / "last.pt")["state"]
    steps = {k: {float(s["step"]) for s in state[k]["state"].values()} for k in ("opt_d", "opt_g", "opt_r")}
    assert steps == {"opt_d": {4.0}, "opt_g": {2.0}, "opt_r": {2.0}}
    assert [g["lr"] for k in ("opt_d", "opt_g", "opt_r") for g in state[k]["param_groups"]] == [8e-4, 2e-4, 2e-4]
    for kw in ({"d_steps": 2}, {"lr_d": 8e-4}):
        assert not _equal(base, _params(train(_cfg(tiny, tmp_path / str(kw), **kw))))


def test_remedies_resume_exactly(tiny, tmp_path):
    """DiffAugment's stream, ADA's p, the mode-seeking pairs and the extra D updates survive a resume bitwise."""
    kw = dict(diff_augment="translation,cutout,ink", augment_p=0.5, ada_target=0.6, ada_speed=50.0, ms_weight=0.5,
              d_steps=2, lr_d=4e-4)
    straight = train(_cfg(tiny, tmp_path / "a", iterations=20, eval_every=10, **kw))
    train(_cfg(tiny, tmp_path / "b", iterations=10, eval_every=10, **kw))
    resumed = train(_cfg(tiny, tmp_path / "b", iterations=20, eval_every=10, resume=True, **kw))
    assert _equal(_params(straight), _params(resumed))
    p_a = read_checkpoint(straight / "last.pt")["state"]["diffaug"]["p"]
    p_b = read_checkpoint(resumed / "last.pt")["state"]["diffaug"]["p"]
    assert p_a == p_b and p_a != 0.5                       # ADA moved p, identically


def test_alpha_schedule_runs_alpha_none_first_then_balances(tiny, tmp_path):
    """alpha_from = K: the first K iterations are α none's bitwise, then α balances (they part)."""
    none2 = _params(train(_cfg(tiny, tmp_path / "none2", alpha=None)))
    sched2 = _params(train(_cfg(tiny, tmp_path / "sched2", alpha=1.0, alpha_from=2)))
    assert _equal(none2, sched2)
    none4 = _params(train(_cfg(tiny, tmp_path / "none4", alpha=None, iterations=4, eval_every=4)))
    sched4 = _params(train(_cfg(tiny, tmp_path / "sched4", alpha=1.0, alpha_from=2, iterations=4, eval_every=4)))
    alpha4 = _params(train(_cfg(tiny, tmp_path / "alpha4", alpha=1.0, iterations=4, eval_every=4)))
    assert not _equal(none4, sched4) and not _equal(alpha4, sched4)


def test_share_of_d_and_remedy_values_are_logged(tiny, tmp_path):
    import json
    run = train(_cfg(tiny, tmp_path / "run", iterations=2, eval_every=2, diff_augment="translation", ms_weight=1.0))
    rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert 0 < rec["d_share"] <= 1 and rec["loss_ms"] > 0 and rec["augment_p"] == 1.0 and "d_real_sign" in rec


@pytest.mark.parametrize("kw, word", [({"diff_augment": "translation,blur"}, "blur"), ({"augment_p": 1.5}, "augment_p"),
                                      ({"augment_p": -0.1}, "augment_p"), ({"ms_weight": -1.0}, "ms_weight"),
                                      ({"ada_target": 2.0}, "ada_target"), ({"ada_target": 0.6}, "diff-augment"),
                                      ({"ada_speed": 0.0}, "ada_speed"), ({"ms_weight": 1.0, "batch_size": 5}, "even"),
                                      ({"alpha_from": -1}, "alpha_from"), ({"alpha_from": 5, "alpha": None}, "alpha"),
                                      ({"d_steps": 0}, "d_steps"), ({"lr_d": 0.0}, "lr_d"), ({"lr_d": -1e-4}, "lr_d"),
                                      ({"d_steps": 2, "fast_step": True}, "--fast")])
def test_bad_remedy_values_are_one_line_errors(tiny, tmp_path, kw, word):
    with pytest.raises(UserError) as exc:
        _cfg(tiny, tmp_path / "x", **kw)
    assert word in str(exc.value) and "\n" not in str(exc.value)


def _exit_code(argv) -> int:
    try:
        return htraug(argv)
    except SystemExit as exc:          # argparse's own errors
        return int(exc.code)


def test_bad_remedy_flags_stop_before_any_work(tiny, tmp_path, capsys):
    for flags in (["--diff-augment", "zoom"], ["--augment-p", "2"], ["--ms-weight", "-3"], ["--ada-target", "x"],
                  ["--d-steps", "0"], ["--lr-d", "-1e-4"], ["--d-steps", "2", "--fast"]):
        assert _exit_code(["gan", "train", "--data", str(tiny), "--out", str(tmp_path / "r"), *flags]) == 2
        assert not (tmp_path / "r").exists()
    assert "Traceback" not in capsys.readouterr().err
