"""Shapes and size rules of φ, G, D (and R as the GAN uses it)."""
import pytest
import torch

from datasets.errors import UserError
from gan.networks import (Discriminator, Generator, NetConfig, WordEncoder, build_recognizer,
                          count_parameters, encode_words)
from test_gan_data import TINY_ALPHABET

pytestmark = pytest.mark.usefixtures("one_thread")


@torch.no_grad()
def _forward(cfg, batch=2, nets=None):
    torch.manual_seed(0)
    phi, G, D = nets or (WordEncoder(cfg), Generator(cfg), Discriminator(cfg))
    tokens, lengths = encode_words(["des", "tres"][:batch], TINY_ALPHABET)
    word = phi(tokens, lengths)
    x = G(torch.randn(batch, cfg.z_dim), word)
    return word, x, D(x)


def test_paper_config_shapes_and_sizes():
    cfg = NetConfig(num_symbols=86)                       # 128×512, channel_mult 1.0
    assert cfg.n_blocks == 7 and cfg.z_dim == 128
    assert cfg.g_filters == [256, 128, 128, 64, 32, 16, 16]
    assert cfg.d_filters == [16, 16, 32, 64, 128, 128, 256]
    assert (cfg.g_attention_after, cfg.d_attention_after) == (4, 3)
    nets = phi, G, D = WordEncoder(cfg), Generator(cfg), Discriminator(cfg)
    word, x, s = _forward(cfg, nets=nets)
    assert word.shape == (2, 256)
    assert x.shape == (2, 1, 128, 512) and x.abs().max() <= 1
    assert s.shape == (2,)
    assert count_parameters(G) > count_parameters(D) > 0
    assert G.fc.out_features == 1024                      # → 256 × 1 × 4
    assert G.blocks[0].bn1.mlp[0].out_features == 512     # CBN hidden layer
    assert isinstance(G.blocks[0].shortcut, torch.nn.Identity)          # 256 → 256
    assert isinstance(G.blocks[1].shortcut, torch.nn.Conv2d)            # 256 → 128


@pytest.mark.parametrize("height,mult", [(16, 0.25), (32, 0.5)])
def test_small_configs_shapes(height, mult):
    cfg = NetConfig(num_symbols=len(TINY_ALPHABET.symbols), height=height, width=4 * height, channel_mult=mult)
    _, x, s = _forward(cfg)
    assert x.shape == (2, 1, height, 4 * height) and s.shape == (2,)
    R = build_recognizer(TINY_ALPHABET.num_classes, height, 0.25)
    with torch.no_grad():
        lp = R(x)
    assert lp.shape == (4 * height // 4, 2, TINY_ALPHABET.num_classes)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-4)


@pytest.mark.parametrize("attention,cond", [(False, "cbn"), (True, "linear"), (False, "linear")])
def test_ablation_networks(attention, cond):
    cfg = NetConfig(num_symbols=12, height=16, width=64, channel_mult=0.25, attention=attention, cond=cond)
    _, x, s = _forward(cfg)
    assert x.shape == (2, 1, 16, 64) and s.shape == (2,)
    G = Generator(cfg)
    assert (G.attention is not None) == attention
    if cond == "linear":
        assert G.fc.in_features == cfg.z_dim + 256


def test_word_encoding_ignores_padding():
    """φ(s) of a word does not depend on the longer words padded beside it."""
    cfg = NetConfig(num_symbols=12, height=16, width=64)
    torch.manual_seed(0)
    phi = WordEncoder(cfg).eval()
    alone = phi(*encode_words(["le"], TINY_ALPHABET))
    batch = phi(*encode_words(["le", "cane", "tres"], TINY_ALPHABET))
    assert torch.allclose(alone[0], batch[0], atol=1e-6)


@pytest.mark.parametrize("height,width", [(24, 96), (256, 1024), (32, 64), (8, 32)])
def test_bad_sizes_are_one_line_errors(height, width):
    with pytest.raises(UserError) as e:
        NetConfig(num_symbols=12, height=height, width=width)
    assert "\n" not in str(e.value)
