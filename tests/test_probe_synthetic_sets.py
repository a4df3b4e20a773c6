"""The synthetic-set probe: pitch statistics of constructed words, the stretch, a stretched set's
spread against the real one it follows, and the mix of several generators' sets."""
import numpy as np
import pytest

from benchmark.probes.synthetic_sets import main, measure_pitch, stretch, write_pitch
from datasets.alphabet import Alphabet
from datasets.format import DatasetMeta, DatasetWriter, load_dataset

ALPHABET = Alphabet("abcdefgh", "probe")
HEIGHT, WIDTH = 8, 128


def block_image(n_chars: int, pitch: float, margin: int, rtl: bool = False, grey: int = 0) -> np.ndarray:
    """A word of `n_chars` drawn as one ink block `n_chars · pitch` pixels wide, `margin` pixels
    from the writing side."""
    image = np.full((HEIGHT, WIDTH), 255, np.uint8)
    width = int(round(n_chars * pitch))
    left = WIDTH - margin - width if rtl else margin
    image[2:6, left:left + width] = grey
    return image


def write_set(root, words, images, rtl: bool = False):
    meta = DatasetMeta("probe", "xx", "rtl" if rtl else "ltr", ALPHABET, HEIGHT, WIDTH)
    writer = DatasetWriter(root, meta)
    for word, image in zip(words, images):
        writer.add(image, word)
    writer.close()
    return load_dataset(root)


@pytest.mark.parametrize("rtl", [False, True])
def test_measure_pitch_reads_extent_over_length_and_the_writing_side_margin(tmp_path, rtl):
    """Words at 6 and 9 px/char (log-std = half the log ratio) and margins 2..5 from the writing
    side; two-letter words never count."""
    words = ["abcd", "abcdef", "ab"] * 20
    images = [block_image(len(w), 6.0 if i % 2 == 0 else 9.0, 2 + i % 4, rtl) if len(w) >= 3
              else block_image(2, 30.0, 40, rtl) for i, w in enumerate(words)]
    p = measure_pitch(write_set(tmp_path / "s", words, images, rtl))
    assert p.words == 40
    assert p.log_mean == pytest.approx(np.log(np.sqrt(54.0)), abs=1e-6)
    assert p.log_std == pytest.approx(np.log(1.5) / 2, abs=1e-6)
    assert p.margin == (2, 5)


@pytest.mark.parametrize("rtl", [False, True])
def test_stretch_resizes_the_ink_and_places_it_from_the_writing_side(rtl):
    image = block_image(4, 10.0, 7, rtl)                 # 40 px of ink
    out = stretch(image, 1.5, 3, rtl)
    ink = np.flatnonzero((out < 128).any(axis=0))
    assert len(ink) == 60 and ink[-1] - ink[0] == 59
    assert (WIDTH - 1 - ink[-1] if rtl else ink[0]) == 3
    wide = stretch(image, 10.0, 3, rtl)                  # 400 px would not fit: narrowed to the canvas
    ink = np.flatnonzero((wide < 128).any(axis=0))
    assert len(ink) == WIDTH - 3
    assert np.array_equal(stretch(np.full((HEIGHT, WIDTH), 255, np.uint8), 2.0, 3, rtl), np.full((HEIGHT, WIDTH), 255))


def test_a_stretched_set_takes_the_real_sets_pitch_mean_and_spread(tmp_path):
    """A generator-like set at one pitch, stretched to follow real words whose log pitch has
    mean log 7 and std 0.3: the stretched set measures the same (sampling error aside)."""
    rng = np.random.default_rng(0)
    words = [ALPHABET.symbols[: 3 + i % 3] for i in range(400)]
    real = write_set(tmp_path / "real", words,
                     [block_image(len(w), float(np.exp(np.log(7.0) + 0.3 * rng.standard_normal())), 4) for w in words])
    fake = write_set(tmp_path / "fake", words, [block_image(len(w), 9.0, 0) for w in words])
    real_p, fake_p = measure_pitch(real), measure_pitch(fake)
    assert fake_p.log_std < 0.05 < 0.25 < real_p.log_std
    write_pitch(fake, real_p, fake_p, tmp_path / "out", seed=0)
    out_p = measure_pitch(load_dataset(tmp_path / "out"))
    assert out_p.log_mean == pytest.approx(real_p.log_mean, abs=0.05)
    assert out_p.log_std == pytest.approx(real_p.log_std, abs=0.05)
    assert real_p.margin[0] <= out_p.margin[0] and out_p.margin[1] <= real_p.margin[1]
    assert load_dataset(tmp_path / "out").texts == words


def test_mix_takes_image_i_from_set_i_mod_k_and_keeps_the_words(tmp_path):
    words = ["abc", "bcd", "cde", "def", "efg"]
    sets = [tmp_path / f"g{k}" for k in range(3)]
    for k, root in enumerate(sets):
        write_set(root, words, [block_image(3, 8.0, 2, grey=40 * k) for _ in words])
    assert main(["mix", *map(str, sets), "--out", str(tmp_path / "mix")]) == 0
    mixed = load_dataset(tmp_path / "mix")
    assert mixed.texts == words
    assert [int(mixed.load_image(i).min()) for i in range(len(words))] == [0, 40, 80, 0, 40]


def test_mix_refuses_sets_of_other_words_in_one_line_and_writes_nothing(tmp_path, capsys):
    write_set(tmp_path / "a", ["abc", "bcd"], [block_image(3, 8.0, 2)] * 2)
    write_set(tmp_path / "b", ["abc", "bce"], [block_image(3, 8.0, 2)] * 2)
    assert main(["mix", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "mix")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels.tsv:2" in err[0] and "'bce'" in err[0]
    assert not (tmp_path / "mix").exists()
    assert main(["mix", str(tmp_path / "a"), "--out", str(tmp_path / "mix")]) == 2
    assert "at least 2 sets" in capsys.readouterr().err


def test_pitch_refuses_a_real_set_of_the_other_direction(tmp_path, capsys):
    write_set(tmp_path / "ltr", ["abc", "bcd"], [block_image(3, 8.0, 2)] * 2)
    write_set(tmp_path / "rtl", ["abc", "bcd"], [block_image(3, 8.0, 2, rtl=True)] * 2, rtl=True)
    assert main(["pitch", str(tmp_path / "ltr"), "--like", str(tmp_path / "rtl"), "--out", str(tmp_path / "o")]) == 2
    assert "direction rtl" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
