"""Write like this writer: only z is fitted to a writer's references, the fit beats the random
starting z on the reconstruction loss, and the command draws the asked words."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.cli import main as htraug
from datasets.errors import UserError
from gan.config import GanTrainConfig
from gan.generate import load_gan
from gan.imitate import fit_style, style_references
from gan.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny):
    root = tmp_path_factory.mktemp("imitate")
    data = make_tiny(root / "tiny", n=24)
    cfg = GanTrainConfig(data=str(data), out=str(root / "gan"), height=16, channel_mult=0.25, htr_width_mult=0.25,
                         batch_size=4, iterations=4, eval_every=4, eval_words=8, fid_n=0, gs_n=0, progress=False)
    return train(cfg), data


def _style_tsv(data, path, n=4):
    rows = [line.split("\t") for line in (data / "labels.tsv").read_text().splitlines()[:n]]
    path.write_text("".join(f"{data / rel}\t{word}\n" for rel, word in rows))
    return path, [w for _, w in rows]


def test_fit_changes_only_z_and_beats_random_z(trained, tmp_path):
    run, data = trained
    gan = load_gan(run)
    before = {k: v.clone() for k, v in gan.G.state_dict().items()}
    images, words = style_references(_style_tsv(data, tmp_path / "style.tsv")[0], None, 8, gan)
    fit = fit_style(gan, images, words, steps=40, lr=0.1, seed=0)
    assert fit.loss < fit.random_loss and len(fit.curve) == 40 and fit.z.shape == (1, gan.net_config.z_dim)
    assert all(torch.equal(v, gan.G.state_dict()[k]) for k, v in before.items())      # G untouched
    again = fit_style(load_gan(run), images, words, steps=40, lr=0.1, seed=0)
    assert torch.equal(again.z, fit.z)                                                 # one seed, one fit


def test_imitate_command_writes_the_words(trained, tmp_path, capsys):
    run, data = trained
    style, _ = _style_tsv(data, tmp_path / "style.tsv")
    out = tmp_path / "imitated.png"
    assert htraug(["gan", "imitate", "--model", str(run), "--style", str(style), "--words", "le", "mot", "des",
                   "--out", str(out), "--steps", "10", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["loss"] <= summary["random_z_loss"] and summary["words"] == ["le", "mot", "des"]
    with Image.open(out) as im:
        assert im.size[1] > 3 * 16 and np.asarray(im).min() < 255


def test_bad_references_are_one_line_errors(trained, tmp_path):
    run, data = trained
    bad = tmp_path / "bad.tsv"
    bad.write_text("no-tab-here\n")
    with pytest.raises(UserError, match="bad.tsv:1"):
        style_references(bad, None, 8, load_gan(run))
    with pytest.raises(UserError, match="writer"):
        style_references(data, "nobody", 8, load_gan(run))


def test_imitation_probe_scores_every_writer_and_draws_their_grids(trained, tmp_path):
    """The probe's JSON has one row per writer with both distances, and each grid shows every
    held-out word as real | imitated | random; images without a writer are left out."""
    from benchmark.probes.imitation import main as probe
    from htr.train import HtrTrainConfig, train as train_htr

    run, tiny = trained
    data = tmp_path / "writers"
    shutil.copytree(tiny, data)
    meta = json.loads((data / "meta.json").read_text())
    rels = [line.split("\t")[0] for line in (data / "labels.tsv").read_text().splitlines()]
    meta["writers"] = {rel: f"w{k % 2}" for k, rel in enumerate(rels[:20])}     # two writers, 4 images without
    (data / "meta.json").write_text(json.dumps(meta))
    judge = train_htr(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "judge"), max_epochs=1,
                                     batch_size=8, width_mult=0.25, show_progress=False, threads=1))
    out, grids = tmp_path / "probe.json", tmp_path / "grids"
    assert probe(["--gan", str(run), "--judge", str(judge), "--data", str(data), "--refs", "4", "--held", "3",
                  "--steps", "5", "--json", str(out), "--grid", str(grids)]) == 0
    result = json.loads(out.read_text())
    assert result["writers"] == 2 and [(r["writer"], r["held_out"]) for r in result["rows"]] == [("w0", 3), ("w1", 3)]
    assert 0 <= result["closer_than_random"] <= 2
    assert all(np.isfinite(result[k]) and result[k] > 0 for k in ("distance_imitated", "distance_random"))
    assert sorted(p.name for p in grids.iterdir()) == ["w0.png", "w1.png"]
    with Image.open(grids / "w0.png") as im:
        grid = np.asarray(im)
    gap_w, gap_h = grid.shape[1] - 3 * 64, grid.shape[0] - 3 * 16
    assert gap_w == gap_h == 4 * (gap_w // 4) > 0          # 3 columns of the canvas, 3 rows, equal gaps
