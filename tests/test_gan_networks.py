"""Shapes and size rules of φ, G, D (and R as the GAN uses it)."""
import pytest
import torch

from datasets.errors import UserError
from gan.networks import (ConditionalBatchNorm, Discriminator, Generator, NetConfig, WordEncoder, build_recognizer, char_columns,
                          count_parameters, encode_words)
from gan.words import estimate_char_px

pytestmark = pytest.mark.usefixtures("one_thread")


@torch.no_grad()
def _forward(cfg, alphabet, batch=2, nets=None):
    torch.manual_seed(0)
    phi, G, D = nets or (WordEncoder(cfg), Generator(cfg), Discriminator(cfg))
    tokens, lengths = encode_words(["des", "tres"][:batch], alphabet)
    word = phi(tokens, lengths)
    x = G(torch.randn(batch, cfg.z_dim), word)
    return word, x, D(x)


def test_paper_config_shapes_and_sizes(tiny_alphabet):
    cfg = NetConfig(num_symbols=86)                       # 128×512, channel_mult 1.0
    assert cfg.n_blocks == 7 and cfg.z_dim == 128
    assert cfg.g_filters == [256, 128, 128, 64, 32, 16, 16]
    assert cfg.d_filters == [16, 16, 32, 64, 128, 128, 256]
    assert (cfg.g_attention_after, cfg.d_attention_after) == (4, 3)
    nets = phi, G, D = WordEncoder(cfg), Generator(cfg), Discriminator(cfg)
    word, x, s = _forward(cfg, tiny_alphabet, nets=nets)
    assert word.shape == (2, 256)
    assert x.shape == (2, 1, 128, 512) and x.abs().max() <= 1
    assert s.shape == (2,)
    assert count_parameters(G) > count_parameters(D) > 0
    assert G.fc.out_features == 1024                      # → 256 × 1 × 4
    assert G.blocks[0].bn1.mlp[0].out_features == 512     # CBN hidden layer
    assert isinstance(G.blocks[0].shortcut, torch.nn.Identity)          # 256 → 256
    assert isinstance(G.blocks[1].shortcut, torch.nn.Conv2d)            # 256 → 128


@pytest.mark.parametrize("height,mult", [(16, 0.25), (32, 0.5)])
def test_small_configs_shapes(height, mult, tiny_alphabet):
    cfg = NetConfig(num_symbols=len(tiny_alphabet.symbols), height=height, width=4 * height, channel_mult=mult)
    _, x, s = _forward(cfg, tiny_alphabet)
    assert x.shape == (2, 1, height, 4 * height) and s.shape == (2,)
    R = build_recognizer(tiny_alphabet.num_classes, height, 0.25)
    with torch.no_grad():
        lp = R(x)
    assert lp.shape == (4 * height // 4, 2, tiny_alphabet.num_classes)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-4)


@pytest.mark.parametrize("attention,cond", [(False, "cbn"), (True, "linear"), (False, "linear")])
def test_ablation_networks(attention, cond, tiny_alphabet):
    cfg = NetConfig(num_symbols=12, height=16, width=64, channel_mult=0.25, attention=attention, cond=cond)
    _, x, s = _forward(cfg, tiny_alphabet)
    assert x.shape == (2, 1, 16, 64) and s.shape == (2,)
    G = Generator(cfg)
    assert (G.attention is not None) == attention
    if cond == "linear":
        assert G.fc.in_features == cfg.z_dim + 256


@pytest.mark.parametrize("cond", ["aligned", "spatial"])
@pytest.mark.parametrize("height,mult", [(16, 0.25), (32, 0.5), (128, 1.0)])
def test_aligned_conditioning_shapes(height, mult, cond, tiny_alphabet):
    cfg = NetConfig(num_symbols=len(tiny_alphabet.symbols), height=height, width=4 * height, channel_mult=mult,
                    cond=cond, char_px=height / 3)
    word, x, s = _forward(cfg, tiny_alphabet)
    assert word.shape == (2, 256, 4 * height)
    assert x.shape == (2, 1, height, 4 * height) and s.shape == (2,)


@pytest.mark.parametrize("rtl", [False, True])
def test_aligned_map_places_each_character(rtl, tiny_alphabet):
    """Column x of φ's map holds the (layer-normalised) BiLSTM output of character
    ⌊(x + ½) / char_px⌋ counted from the writing side, and the learned paper vector past the
    word's end."""
    cfg = NetConfig(num_symbols=len(tiny_alphabet.symbols), height=16, width=64, cond="aligned", char_px=5.0, rtl=rtl)
    torch.manual_seed(0)
    phi = WordEncoder(cfg).eval()
    torch.nn.init.normal_(phi.paper)
    tokens, lengths = encode_words(["des", "tres"], tiny_alphabet)
    with torch.no_grad():
        cols = phi(tokens, lengths)
        states, _ = phi.lstm(phi.embed(tokens[1:]))          # "tres": the longest word, no padding
        states = torch.nn.functional.layer_norm(states, states.shape[-1:])
    order = range(64) if not rtl else range(63, -1, -1)      # columns from the writing side
    for k, x in enumerate(order):
        i = int((k + 0.5) // 5)
        expected = states[0, i] if i < 4 else phi.paper
        assert torch.allclose(cols[1, :, x], expected, atol=1e-5), (x, i)
    index, inside = char_columns(lengths, 64, 5.0, rtl)
    assert inside.sum(1).tolist() == [15, 20]                 # 3 and 4 characters × 5 px


def test_char_px_is_estimated_from_the_inked_extent():
    import numpy as np
    images = np.full((3, 16, 64), 255, dtype=np.uint8)
    images[0, :, 2:20] = 0       # "abc": ink up to column 19 → 20 px / 3 chars from the left
    images[1, :, 0:30] = 0       # "abcde": 30 px / 5
    images[2, :, 50:60] = 0      # "ab": 60 px / 2 from the left
    assert estimate_char_px(images, ["abc", "abcde", "ab"], "ltr") == pytest.approx(20 / 3)
    assert estimate_char_px(images, ["abc", "abcde", "ab"], "rtl") == pytest.approx(64 / 5)   # 62/3, 64/5, 14/2


def test_discriminator_without_batch_norm():
    """d_norm='none': no batch norm in D, so in training mode each image's score no longer
    depends on the other images of its batch (with 'bn' it does)."""
    from torch.nn.utils import parametrize
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 64)
    scores = {}
    for norm in ("bn", "none"):
        D = Discriminator(NetConfig(num_symbols=12, height=16, width=64, channel_mult=0.25, d_norm=norm))
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules()) == (norm == "bn")
        with torch.no_grad(), parametrize.cached():      # one spectral-norm power iteration for both calls
            scores[norm] = D(x[:1]), D(x)[:1]
    assert torch.allclose(*scores["none"], atol=1e-5)
    assert not torch.allclose(*scores["bn"], atol=1e-3)
    with pytest.raises(UserError, match="D normalisation"):
        NetConfig(num_symbols=12, height=16, width=64, d_norm="layer")


@pytest.mark.parametrize("cond", ["aligned", "spatial"])
def test_aligned_conditioning_needs_a_character_width(cond):
    with pytest.raises(UserError, match=f"{cond} conditioning needs char_px"):
        NetConfig(num_symbols=12, height=16, width=64, cond=cond)


def test_spatial_cbn_gives_every_row_of_every_column_its_own_gain_and_bias():
    """rows > 0: the condition map sets one gain and bias per channel, row and column; the
    gain/bias of column x depend on column x's code only."""
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm(channels=3, cond_dim=5, hidden=8, rows=4).eval()
    x = torch.zeros(2, 3, 4, 6)                      # BN(0) = 0 in eval mode: the output is the bias
    cond = torch.randn(2, 5, 6)
    with torch.no_grad():
        out = cbn(x, cond)
        changed = cond.clone()
        changed[:, :, 2] += 1.0
        out2 = cbn(x, changed)
    assert out.shape == (2, 3, 4, 6)
    assert not torch.allclose(out[:, :, 0], out[:, :, 1])               # rows differ
    assert torch.equal(out2[..., [0, 1, 3, 4, 5]], out[..., [0, 1, 3, 4, 5]])
    assert not torch.allclose(out2[..., 2], out[..., 2])
    with pytest.raises(ValueError, match="4 rows"):
        cbn(torch.zeros(2, 3, 8, 6), cond)


def test_spatial_codes_add_the_character_identity(tiny_alphabet):
    """'spatial' φ: the layer-normalised BiLSTM code plus a layer-normalised projection of the
    character's embedding, so two characters in the same context differ far more than with
    'aligned' (whose codes start ≈ 0.99 cosine-similar)."""
    def similarity(cond):
        torch.manual_seed(0)
        cfg = NetConfig(num_symbols=len(tiny_alphabet.symbols), height=16, width=64, cond=cond, char_px=5.0)
        phi = WordEncoder(cfg).eval()
        tokens, lengths = encode_words(["des", "tes"], tiny_alphabet)
        with torch.no_grad():
            cols = phi(tokens, lengths)
        return torch.nn.functional.cosine_similarity(cols[0, :, 2], cols[1, :, 2], dim=0).item()   # 'd' vs 't'
    assert similarity("aligned") > 0.9
    assert similarity("spatial") < similarity("aligned") - 0.2


def test_word_encoding_ignores_padding(tiny_alphabet):
    """φ(s) of a word does not depend on the longer words padded beside it."""
    cfg = NetConfig(num_symbols=12, height=16, width=64)
    torch.manual_seed(0)
    phi = WordEncoder(cfg).eval()
    alone = phi(*encode_words(["le"], tiny_alphabet))
    batch = phi(*encode_words(["le", "cane", "tres"], tiny_alphabet))
    assert torch.allclose(alone[0], batch[0], atol=1e-6)


@pytest.mark.parametrize("height,width", [(24, 96), (256, 1024), (32, 64), (8, 32)])
def test_bad_sizes_are_one_line_errors(height, width):
    with pytest.raises(UserError) as e:
        NetConfig(num_symbols=12, height=height, width=width)
    assert "\n" not in str(e.value)
