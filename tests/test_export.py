"""`htraug htr export` / `gan export`: ONNX files checked with onnxruntime (and TorchScript with
torch.jit) against the eager networks within 1e-4, metadata read back by the onnx package, and
`htr recognize` running from the exported files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from benchmark.cli import main
from datasets.errors import UserError
from datasets.export import ONNX_OPSET, format_for, onnx_bytes, torchscript_bytes
from datasets.format import read_grey_png
from datasets.preprocess import fit_to_canvas, to_unit_range
from gan.export import ExportGenerator, fold_spectral_norm
from gan.generate import load_gan, render, sample_z
from gan.networks import Generator, NetConfig, WordEncoder, encode_words
from htr.checkpoint import load_recognizer

from recognizer_files import ALPHABET, train_bar_recognizer, write_mixed_dataset

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-4


def session(path_or_bytes) -> "ort.InferenceSession":
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    base = tmp_path_factory.mktemp("export-htr")
    torch.set_num_threads(1)
    run = train_bar_recognizer(base)
    data = write_mixed_dataset(base / "mixed")
    files = {"onnx": base / "recognizer.onnx", "torchscript": base / "recognizer.pt"}
    for path in files.values():
        assert main(["htr", "export", "--model", str(run), "--out", str(path)]) == 0
    return {"run": run, "data": data, **files}


def canvases(data: Path) -> np.ndarray:
    out = [fit_to_canvas(read_grey_png(p), 16, 64, "ltr") for p in sorted((data / "images").iterdir())]
    return to_unit_range(np.stack([c for c in out if c is not None]))[:, None]


def test_recognizer_onnx_and_torchscript_equal_eager_on_a_batch(recognizer, capsys):
    model, _, _ = load_recognizer(recognizer["run"])
    x = canvases(recognizer["data"])                     # 11 images: not the traced batch size
    with torch.no_grad():
        eager = model(torch.from_numpy(x)).numpy()
    got = session(recognizer["onnx"]).run(["log_probs"], {"images": x})[0]
    assert got.shape == eager.shape == (16, len(x), ALPHABET.num_classes)
    assert np.abs(got - eager).max() <= TOL
    for n in (1, 3):                                      # any batch size
        assert np.abs(session(recognizer["onnx"]).run(None, {"images": x[:n]})[0] - eager[:, :n]).max() <= TOL
    ts = torch.jit.load(str(recognizer["torchscript"]))
    with torch.no_grad():
        assert np.abs(ts(torch.from_numpy(x)).numpy() - eager).max() <= TOL


def test_exported_files_carry_alphabet_direction_canvas_and_preprocessing(recognizer):
    model = onnx.load(str(recognizer["onnx"]))
    meta = {p.key: p.value for p in model.metadata_props}
    d = json.loads(meta["htraug"])
    assert d["kind"] == "recognizer" and d["alphabet"]["symbols"] == ALPHABET.symbols
    assert (d["direction"], d["height"], d["width"], d["frames"]) == ("ltr", 16, 64, 16)
    assert "to height 16" in d["preprocessing"]["resize"] and "right" in d["preprocessing"]["pad"]
    assert [i.name for i in model.graph.input] == ["images"] and [o.name for o in model.graph.output] == ["log_probs"]
    assert any(op.version == ONNX_OPSET for op in model.opset_import)
    extra = {"htraug.json": ""}
    torch.jit.load(str(recognizer["torchscript"]), _extra_files=extra)
    assert json.loads(extra["htraug.json"]) == d
    assert "/" not in (d["source"]["checkpoint"] or "")          # no machine paths in the file


def test_recognize_from_exported_files_gives_the_same_text(recognizer, capsys):
    images = str(recognizer["data"] / "images")
    results = {}
    for name in ("run", "onnx", "torchscript"):
        assert main(["htr", "recognize", "--model", str(recognizer[name]), images, "--json"]) == 1   # one too wide
        results[name] = json.loads(capsys.readouterr().out)
    texts = {k: [r["text"] for r in v["results"]] for k, v in results.items()}
    assert texts["onnx"] == texts["run"] == texts["torchscript"] and len(set(texts["run"])) > 4
    assert results["onnx"]["model_format"] == "onnx" and results["torchscript"]["model_format"] == "torchscript"
    for a, b in zip(results["run"]["results"], results["onnx"]["results"]):
        assert abs(a["confidence"] - b["confidence"]) <= TOL


# --- the generator ----------------------------------------------------------------------------

def random_nets(cond: str, rtl: bool, seed: int = 0):
    """φ and G with random weights and batch-norm statistics (eval mode) and a second copy of them."""
    torch.manual_seed(seed)
    cfg = NetConfig(num_symbols=12, height=16, width=64, channel_mult=0.25, cond=cond, rtl=rtl,
                    char_px=6.0 if cond in ("aligned", "spatial") else 0.0)
    phi, G = WordEncoder(cfg), Generator(cfg)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    if cfg.aligned:
        torch.nn.init.normal_(phi.paper)
    phi2, G2 = WordEncoder(cfg), Generator(cfg)
    phi2.load_state_dict(phi.state_dict())
    G2.load_state_dict(G.state_dict())
    return cfg, phi.eval(), G.eval(), ExportGenerator(fold_spectral_norm(phi2), fold_spectral_norm(G2)).eval()


def word_batch(cfg, batch: int, chars: int, seed: int, pad: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, chars + 1, (batch,), generator=g)
    lengths[0] = chars
    tokens = torch.randint(1, cfg.num_symbols + 1, (batch, chars + pad), generator=g)
    tokens[torch.arange(chars + pad)[None, :] >= lengths[:, None]] = 0
    return torch.randn(batch, cfg.z_dim, generator=g), tokens, lengths


@pytest.mark.parametrize("cond,rtl", [("cbn", False), ("linear", False), ("aligned", True), ("spatial", False),
                                      ("spatial", True)])
def test_generator_onnx_equals_eager_phi_and_g_for_words_of_any_length(cond, rtl):
    cfg, phi, G, net = random_nets(cond, rtl)
    example = word_batch(cfg, 2, 4, seed=1)
    axes = {"z": {0: "batch"}, "tokens": {0: "batch", 1: "chars"}, "lengths": {0: "batch"}, "images": {0: "batch"}}
    desc = {"format": "htraug-export", "version": 1, "kind": "generator"}
    sess = session(onnx_bytes(net, example, ["z", "tokens", "lengths"], ["images"], axes, desc))
    for batch, chars, pad, seed in ((5, 6, 0, 2), (1, 1, 0, 3), (7, 9, 3, 4)):   # lengths vary within a batch
        z, tokens, lengths = word_batch(cfg, batch, chars, seed, pad)
        with torch.no_grad():
            eager = G(z, phi(tokens, lengths)).numpy()                            # the trainer's packed LSTM
        got = sess.run(None, {"z": z.numpy(), "tokens": tokens.numpy(), "lengths": lengths.numpy()})[0]
        assert got.shape == (batch, 1, 16, 64) and np.abs(got - eager).max() <= TOL


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, make_tiny):
    from gan.config import GanTrainConfig
    from gan.train import train

    base = tmp_path_factory.mktemp("export-gan")
    torch.set_num_threads(1)
    data = make_tiny(base / "data")
    run = train(GanTrainConfig(data=str(data), out=str(base / "run"), height=16, channel_mult=0.25, htr_width_mult=0.25,
                               batch_size=4, iterations=2, eval_every=2, eval_words=8, fid_n=0, gs_n=0, progress=False))
    return base, run


def test_gan_export_cli_onnx_and_torchscript_equal_the_checkpoint(gan_run, tiny_words, capsys):
    base, run = gan_run
    gan = load_gan(run)
    words = tiny_words[:6]
    z = sample_z(len(words), gan.net_config.z_dim, torch.Generator().manual_seed(7))
    tokens, lengths = encode_words(words, gan.alphabet)
    assert len(set(lengths.tolist())) > 1
    eager = render(gan.phi, gan.G, gan.alphabet, words, z).numpy()
    feed = {"z": z.numpy(), "tokens": tokens.numpy(), "lengths": lengths.numpy()}
    for name in ("generator.onnx", "generator.pt"):
        assert main(["gan", "export", "--model", str(run), "--out", str(base / name)]) == 0
        assert "max |exported - eager|" in capsys.readouterr().out
    got = session(base / "generator.onnx").run(["images"], feed)[0]
    assert np.abs(got - eager).max() <= TOL
    extra = {"htraug.json": ""}
    ts = torch.jit.load(str(base / "generator.pt"), _extra_files=extra)
    with torch.no_grad():
        assert np.abs(ts(z, tokens, lengths).numpy() - eager).max() <= TOL
    d = json.loads({p.key: p.value for p in onnx.load(str(base / "generator.onnx")).metadata_props}["htraug"])
    assert d == json.loads(extra["htraug.json"])
    assert d["kind"] == "generator" and d["alphabet"]["symbols"] == gan.alphabet.symbols
    assert (d["z_dim"], d["height"], d["width"], d["max_chars"]) == (gan.net_config.z_dim, 16, 64, gan.ckpt["max_chars"])
    assert [i["name"] for i in d["inputs"]] == ["z", "tokens", "lengths"]


def test_export_errors_are_one_line_and_leave_nothing(gan_run, recognizer, tmp_path, capsys, monkeypatch):
    base, run = gan_run
    with pytest.raises(UserError, match="cannot tell the export format"):
        format_for(tmp_path / "model.bin")
    assert format_for(tmp_path / "model.bin", "onnx") == "onnx"
    cases = [(["htr", "export", "--model", str(run), "--out", str(tmp_path / "a.onnx")], "not an htraug recognizer"),
             (["gan", "export", "--model", str(recognizer["run"]), "--out", str(tmp_path / "b.onnx")], "not an htraug GAN"),
             (["htr", "recognize", "--model", str(base / "generator.onnx"), str(recognizer["data"] / "images")],
              "not a recognizer"),
             (["htr", "export", "--model", str(recognizer["run"]), "--out", str(tmp_path / "c.xyz")], "export format")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    monkeypatch.setattr("datasets.export.TOLERANCE", -1.0)      # no export can pass: nothing is written
    out = tmp_path / "d.onnx"
    assert main(["htr", "export", "--model", str(recognizer["run"]), "--out", str(out)]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_torchscript_bytes_round_trip_keeps_the_description():
    net = torch.nn.Linear(3, 2).eval()
    data = torchscript_bytes(net, (torch.zeros(1, 3),), {"format": "htraug-export", "version": 1, "kind": "x"})
    extra = {"htraug.json": ""}
    import io
    torch.jit.load(io.BytesIO(data), _extra_files=extra)
    assert json.loads(extra["htraug.json"])["kind"] == "x"
