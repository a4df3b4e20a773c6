"""The diversity metric: ≈ 0 for identical images, ≈ 1 for two independent draws of one real
distribution, monotone on a constructed mixture; dataset directories with writers; the CLI."""
import json

import numpy as np
import pytest

from benchmark.cli import main as htraug
from benchmark.metrics.diversity import diversity, diversity_words, writer_groups
from benchmark.metrics.registry import compute
from datasets.alphabet import Alphabet
from datasets.errors import UserError
from datasets.files import StagingDir
from datasets.format import DatasetMeta, DatasetWriter

WORDS = [f"w{i}" for i in range(24)]


def _draw(rng, n_per_word: int, words=WORDS, h=16, w=64):
    """Images of each word: a word template plus independent per-image variation (one writer each)."""
    templates = {word: np.random.default_rng(abs(hash(word)) % 2**32).normal(0, 50, (h, w)) for word in words}
    images, labels, writers = [], [], []
    for word in words:
        for j in range(n_per_word):
            img = 128 + templates[word] + rng.normal(0, 40, (h, w))
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(word)
            writers.append(f"writer{j}")
    return np.stack(images), labels, writers


def _div(real, fake, **kw):
    (ri, rw, rwr), (fi, fw, _) = real, fake
    return diversity(ri, fi, real_words=rw, real_writers=rwr, fake_words=fw, k=len(WORDS), m=8, **kw)


def test_identical_images_give_zero_and_a_second_real_draw_gives_one():
    real = _draw(np.random.default_rng(0), 8)
    other = _draw(np.random.default_rng(1), 8)
    assert _div(real, other)["diversity"] == pytest.approx(1.0, abs=0.05)
    imgs, words, writers = other
    collapsed = (np.stack([imgs[words.index(w)] for w in words]), words, writers)   # every z the same image
    res = _div(real, collapsed)
    assert res["diversity"] == 0.0 and res["diversity_pixels"] == 0.0 and res["diversity_words"] == len(WORDS)


def test_diversity_falls_monotonically_with_the_share_of_copies():
    real = _draw(np.random.default_rng(0), 8)
    imgs, words, writers = _draw(np.random.default_rng(2), 8)
    values = []
    for copies in range(0, 9, 2):          # the first `copies` images of each word become one image
        mixed = imgs.copy()
        for word in WORDS:
            idx = [i for i, w in enumerate(words) if w == word]
            mixed[idx[:copies]] = imgs[idx[0]]
        values.append(_div(real, (mixed, words, writers))["diversity"])
    assert all(a > b for a, b in zip(values, values[1:])) and values[-1] == 0.0


def test_real_side_pairs_only_distinct_writers():
    words = ["a", "a", "a", "b", "b"]
    writers = ["x", "x", "y", "z", "z"]
    groups = writer_groups(words, writers, m=8, seed=0)
    assert set(groups) == {"a"} and len(groups["a"]) == 2          # one image per writer; "b" has one writer
    each_own = writer_groups(words, None, m=2, seed=0)          # no writers recorded: every image its own
    assert set(each_own) == {"a", "b"} and len(each_own["a"]) == 2 and set(each_own["a"]) <= {0, 1, 2}
    assert each_own["b"] == [3, 4]


def test_judge_features_space(tiny_alphabet):
    import torch
    from htr.model import GatedCRNN

    torch.manual_seed(0)
    judge = (GatedCRNN(tiny_alphabet.num_classes, 16, 0.25).eval(), tiny_alphabet)
    real = _draw(np.random.default_rng(0), 6)
    res = _div(real, _draw(np.random.default_rng(1), 6), judge=judge)
    assert res["diversity"] == res["diversity_features"] and 0.7 < res["diversity"] < 1.3
    imgs, words, writers = real
    same = (np.stack([imgs[words.index(w)] for w in words]), words, writers)
    assert _div(real, same, judge=judge)["diversity_features"] == 0.0


def _dataset(root, images, words, writers=None):
    meta = DatasetMeta(name="d", language="xx", direction="ltr", alphabet=Alphabet("w0123456789", "digits"),
                       height=16, width=64, split="train")
    with StagingDir(root) as tmp:
        writer = DatasetWriter(tmp, meta)
        for k, (img, word) in enumerate(zip(images, words)):
            writer.add(img, word, writer=writers[k] if writers else None)
        writer.close()
    return root


def test_dataset_directories_registry_and_cli(tmp_path, capsys):
    real_imgs, words, writers = _draw(np.random.default_rng(0), 4, WORDS[:6])
    fake_imgs, fwords, _ = _draw(np.random.default_rng(5), 4, WORDS[:6])
    real = _dataset(tmp_path / "real", real_imgs, words, writers)
    fake = _dataset(tmp_path / "fake", fake_imgs, fwords)
    assert diversity_words(real, k=3, m=8) == ["w0", "w1", "w2"]
    res = compute("diversity", real, fake, k=6, m=4)
    assert res["metric"] == "diversity" and res["diversity_words"] == 6 and 0.6 < res["diversity"] < 1.4
    assert htraug(["metrics", "diversity", "--real", str(real), "--fake", str(fake), "--k", "6", "--m", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["diversity"] == pytest.approx(res["diversity"])


def test_bad_inputs_are_one_line_errors(tmp_path):
    real = _draw(np.random.default_rng(0), 4, WORDS[:2])
    with pytest.raises(UserError, match="no word"):
        _div(real, _draw(np.random.default_rng(1), 1, WORDS[:2]))
    with pytest.raises(UserError, match="m ≥ 2"):
        diversity(real[0], real[0], real_words=real[1], fake_words=real[1], m=1)
    with pytest.raises(UserError, match="words"):
        diversity(real[0], real[0], real_words=real[1])
