"""Recognizer shapes, RTL orientation, CTC loss, greedy decoding and classic augmentation."""
import math

import pytest
import torch

from datasets.alphabet import Alphabet
from htr.augment import augment_batch
from htr.decode import greedy_decode, greedy_indices, snap_to_lexicon
from htr.model import GatedCRNN, count_parameters, ctc_loss, orient_for_ctc

C = 10


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("height", [16, 32, 64, 128])
def test_shapes_at_every_profile_size(height):
    torch.manual_seed(0)
    width = 4 * height
    net = GatedCRNN(C, height, width_mult=0.5 if height < 128 else 1.0)
    x = torch.rand(2, 1, height, width) * 2 - 1
    lp = net(x)
    assert lp.shape == (width // 4, 2, C) == (net.num_frames(width), 2, C)
    assert lp.dtype == torch.float32
    assert torch.allclose(lp.exp().sum(-1), torch.ones(width // 4, 2), atol=1e-5)
    fmap = net.encoder.feature_map(x)
    assert fmap.shape[2] == height // 16          # 128×512 → 8 rows before the height pool
    assert net.encoder(x).shape == (2, net.encoder.out_features, width // 4)   # one row of frames
    assert net.features(x).shape == (2, 2 * net.encoder.out_features)


def test_paper_size_gives_one_row_of_128_frames():
    net = GatedCRNN(C, 128)
    assert net.num_frames(512) == 128
    fmap = net.encoder.feature_map(torch.zeros(1, 1, 128, 512))
    assert fmap.shape == (1, 128, 8, 128)
    assert net.encoder(torch.zeros(1, 1, 128, 512)).shape == (1, 128, 128)


def test_frames_suffice_for_ctc_on_quick_profile_words():
    # 32×128 canvas → 32 frames: a 12-letter word with 4 doubled letters needs 16 ≤ 32
    assert GatedCRNN.num_frames(128) >= 16


def test_width_multiplier_parameter_counts():
    counts = {m: count_parameters(GatedCRNN(87, 32, m)) for m in (0.5, 1.0, 2.0)}
    assert counts[0.5] < counts[1.0] < counts[2.0]
    assert 700_000 < counts[1.0] < 760_000          # 728,199 with 87 classes


def test_bad_construction():
    with pytest.raises(ValueError):
        GatedCRNN(C, 8)
    with pytest.raises(ValueError):
        GatedCRNN(1, 32)
    with pytest.raises(ValueError):
        GatedCRNN(C, 32)(torch.zeros(1, 1, 16, 64))


def test_rtl_flips_inside_the_input_path():
    torch.manual_seed(1)
    ltr = GatedCRNN(C, 16, 0.25)
    rtl = GatedCRNN(C, 16, 0.25, rtl=True)
    rtl.load_state_dict(ltr.state_dict())
    x = torch.randn(2, 1, 16, 64)
    assert torch.allclose(rtl(x), ltr(torch.flip(x, dims=[-1])), atol=1e-6)
    assert torch.equal(orient_for_ctc(x, False), x)


def test_ctc_loss_float32_and_gradient_reaches_images():
    torch.manual_seed(2)
    net = GatedCRNN(C, 16, 0.25)
    x = torch.randn(3, 1, 16, 64, requires_grad=True)
    targets = torch.tensor([1, 2, 3, 4, 5, 6, 7])
    lengths = torch.tensor([2, 3, 2])
    loss = ctc_loss(net(x), targets, lengths)
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # impossible alignment (target longer than T) is zeroed, not inf
    long = ctc_loss(net(x.detach()), torch.ones(60, dtype=torch.long), torch.tensor([20, 20, 20]))
    assert math.isfinite(long.item())


def _one_hot_log_probs(frames, num_classes):
    lp = torch.full((len(frames), 1, num_classes), -20.0)
    for t, k in enumerate(frames):
        lp[t, 0, k] = 0.0
    return lp


def test_greedy_decoding_collapses_repeats_and_drops_blanks():
    alphabet = Alphabet("ab")
    lp = _one_hot_log_probs([1, 1, 0, 1, 2, 2, 0, 0], 3)
    assert greedy_indices(lp) == [[1, 1, 2]]
    assert greedy_decode(lp, alphabet) == ["aab"]
    assert greedy_decode(_one_hot_log_probs([0, 0, 0], 3), alphabet) == [""]


def test_greedy_decoding_arabic_logical_order():
    alphabet = Alphabet("سلام")
    lp = _one_hot_log_probs([1, 0, 2, 2, 3, 0, 4], 5)
    assert greedy_decode(lp, alphabet) == ["سلام"]


def test_lexicon_snap():
    assert snap_to_lexicon(["helo", "wrld", "x"], ["hello", "world"]) == ["hello", "world", "hello"]
    assert snap_to_lexicon(["abc"], []) == ["abc"]


def test_augmentation_is_deterministic_and_in_range():
    x = torch.ones(4, 1, 16, 64)
    x[:, :, 4:12, 10:50] = -1.0
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    c = augment_batch(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    white = augment_batch(torch.ones(2, 1, 16, 64), torch.Generator().manual_seed(5))
    assert (white > 0.5).float().mean() > 0.99    # warping pads with white paper


def test_rtl_digit_runs_decode_back_to_logical_order():
    # a flipped RTL image shows the letters in logical order but a digit run reversed
    alphabet = Alphabet("بت١٢٣")
    frames = [1, 0, 5, 0, 4, 0, 3, 2]                 # ب ٣ ٢ ١ ت as the flipped frames show them
    assert greedy_decode(_one_hot_log_probs(frames, 6), alphabet, "rtl") == ["ب١٢٣ت"]
    assert greedy_decode(_one_hot_log_probs(frames, 6), alphabet, "ltr") == ["ب٣٢١ت"]


def test_decoder_dropout_acts_in_training_only_and_round_trips_in_config():
    torch.manual_seed(0)
    net = GatedCRNN(C, 16, width_mult=0.5, dropout=0.3)
    x = torch.rand(2, 1, 16, 64) * 2 - 1
    net.train()
    assert not torch.equal(net(x), net(x))            # a fresh dropout mask per forward
    net.eval()
    assert torch.equal(net(x), net(x))
    clone = GatedCRNN(**net.config())
    clone.load_state_dict(net.state_dict())
    clone.eval()
    assert clone.dropout == 0.3 and torch.equal(clone(x), net(x))
    with pytest.raises(ValueError):
        GatedCRNN(C, 16, dropout=1.0)


def test_ctc_reduction_sample_scales_the_gradient_by_the_word_length():
    """The paper's per-sample CTC (summed over frames, averaged over the batch) is the per-character
    form × the target length: with words of one length L, the image gradient grows by exactly L."""
    torch.manual_seed(0)
    model = GatedCRNN(6, 16, 0.25)
    x = torch.randn(3, 1, 16, 64, requires_grad=True)
    length = 4
    targets = torch.randint(1, 6, (3 * length,))
    lengths = torch.full((3,), length, dtype=torch.long)
    grads = {}
    for reduction in ("char", "sample"):
        x.grad = None
        ctc_loss(model(x), targets, lengths, reduction).backward()
        grads[reduction] = x.grad.clone()
    assert torch.allclose(grads["sample"], length * grads["char"], rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError):
        ctc_loss(model(x), targets, lengths, "word")
