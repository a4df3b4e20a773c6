"""Generation: a dataset directory the HTR trainer reads, word checks, sample grids."""
import numpy as np
import pytest
from PIL import Image

from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.format import load_dataset
from datasets.torch_dataset import WordImageDataset
from gan.config import GanTrainConfig
from gan.generate import generate, load_gan, write_sample_grids
from gan.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def _train_tiny(make_tiny, root, direction="ltr"):
    data = make_tiny(root / f"data-{direction}", direction=direction)
    cfg = GanTrainConfig(data=str(data), out=str(root / f"run-{direction}"), height=16, channel_mult=0.25,
                         htr_width_mult=0.25, batch_size=4, iterations=1, eval_every=1, eval_words=8,
                         fid_n=0, gs_n=0, progress=False)
    return data, train(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny):
    return _train_tiny(make_tiny, tmp_path_factory.mktemp("gen"))


def test_generate_writes_a_dataset_the_htr_trainer_reads(trained, tmp_path, tiny_words):
    data, run = trained
    out = generate(run, 10, tmp_path / "syn", seed=3, batch_size=4, show_progress=False)
    ds = load_dataset(out, check_images=True)
    real = load_dataset(data)
    assert len(ds) == 10
    assert (ds.meta.language, ds.meta.direction) == (real.meta.language, real.meta.direction)
    assert ds.meta.alphabet.fingerprint == real.meta.alphabet.fingerprint
    assert (ds.meta.height, ds.meta.width) == (16, 64)
    prov = ds.meta.provenance
    assert prov["run"] == str(run) and prov["seed"] == 3 and prov["iteration"] == 1
    assert set(ds.texts) <= set(tiny_words)
    torch_ds = WordImageDataset(out, ds.meta.alphabet, 16, 64, show_progress=False)
    assert len(torch_ds) == 10 and torch_ds[0][0].shape == (1, 16, 64)
    again = generate(run, 10, tmp_path / "syn2", seed=3, batch_size=7, show_progress=False)
    a, b = load_dataset(out), load_dataset(again)
    assert a.texts == b.texts
    assert all(np.array_equal(a.load_image(i), b.load_image(i)) for i in range(10))   # batch-size independent


def test_words_file_rejects_too_long_words_with_a_count(trained, tmp_path, capsys):
    _, run = trained
    words = tmp_path / "words.txt"
    words.write_text("le\nmot\nestcelamemenrst\n\n", encoding="utf-8")     # max_chars is 4 here
    out = generate(run, 5, tmp_path / "syn", words=words, show_progress=False)
    ds = load_dataset(out)
    assert ds.texts == ["le", "mot", "le", "mot", "le"]
    assert ds.meta.provenance["rejected_too_long"] == 1
    assert "1 of 3 words rejected" in capsys.readouterr().err


@pytest.mark.parametrize("content,match", [("le\nxyz\n", "outside the alphabet"), ("\n\n", "empty"),
                                           ("estcelamemenrst\n", "too long")])
def test_bad_word_lists_are_one_line_errors(trained, tmp_path, content, match):
    _, run = trained
    words = tmp_path / "w.txt"
    words.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=match) as e:
        generate(run, 3, tmp_path / "syn", words=words, show_progress=False)
    assert "\n" not in str(e.value) and not (tmp_path / "syn").exists()


def test_other_alphabet_and_bad_inputs_are_one_line_errors(trained, tmp_path, make_tiny):
    _, run = trained
    other = make_tiny(tmp_path / "other", alphabet=Alphabet("abcdelmnorstu", "other"))
    with pytest.raises(UserError, match="alphabet") as e:
        generate(run, 3, tmp_path / "syn", like=other, show_progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="no such"):
        generate(tmp_path / "missing", 3, tmp_path / "syn")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        generate(tmp_path / "junk.pt", 3, tmp_path / "syn")
    with pytest.raises(UserError, match="--n"):
        generate(run, 0, tmp_path / "syn")


def test_sample_grids_png(trained, tmp_path):
    _, run = trained
    png = write_sample_grids(run, tmp_path / "grid.png", n_words=3, n_styles=2)
    with Image.open(png) as im:
        assert im.mode == "L" and im.width > 2 * 64 and im.height > 2 * 3 * 16
    assert load_gan(run).G.training is False


def test_rtl_generation_keeps_direction(tmp_path, make_tiny, tiny_alphabet):
    data, run = _train_tiny(make_tiny, tmp_path, "rtl")
    ds = load_dataset(generate(run, 3, tmp_path / "syn", show_progress=False))
    assert ds.meta.direction == "rtl" and ds.meta.alphabet.fingerprint == tiny_alphabet.fingerprint


def test_sample_grid_labels_use_a_font_with_every_french_letter():
    """Row labels such as 'était' or 'œuvre' must not fall back to missing-glyph boxes."""
    from pathlib import Path

    from datasets.alphabet import FRENCH
    from datasets.fonts import glyph_coverage
    from gan.samples import _label_font_path

    path = _label_font_path()
    if path is None:
        pytest.skip("fonts-noto-core is not installed")
    assert glyph_coverage(Path(path), FRENCH.symbols) == frozenset(FRENCH.symbols)
