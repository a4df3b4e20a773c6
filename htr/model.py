"""The gated convolutional recurrent recognizer of Bluche & Messina (ICDAR 2017), read top to bottom.

Used twice in htraug: as the GAN's auxiliary recognizer R (its CTC gradient w.r.t. the generated
images) and as the HTR study recognizer trained from scratch with CTC (docs/DESIGN.md §6.3).

Architecture (`c` = width multiplier, features rounded, at least 1):

    input (B, 1, H, W) in [-1, 1], white = +1          RTL scripts: flipped left-right first
    conv 3×3, 8c,  tanh
    conv 4×2 stride 4×2 (height×width), 16c, tanh  → gate
    conv 3×3, 32c, tanh                            → gate
    conv 4×2 stride 4×2 (height×width), 64c, tanh  → gate
    conv 3×3, 128c, tanh
    max-pool over the remaining height             → (B, 128c, 1, W/4): one row of W/4 frames
    BiLSTM(128) → linear(128) + tanh → BiLSTM(128) → linear(classes incl. blank) → log_softmax

with gate(x) = x · sigmoid(conv3×3(x)) (same number of features).

Orientation of "2×4". Public ports disagree; we read the down-sampling kernel as 4 high × 2 wide
(stride 4×2). Two such convolutions divide the height by 16 and the width by 4, so the paper's
128×512 input leaves an 8 × 128 map, the height max-pool turns it into one row of 128 frames,
and every profile size keeps a 4:1 frame budget: 16×64 → 16 frames, 32×128 → 32, 64×256 → 64,
128×512 → 128. The other reading (2 high × 4 wide) would leave only W/16 frames (8 frames at
32×128), too few for CTC on long words. No input tiling is used. Heights must be ≥ 16; widths
that are not multiples of 4 lose their last columns (floor), see `num_frames`.

Pooled features (`features`, used by the FID/KID "htr" extractor and the readability judge): the
encoder output after the height max-pool, (B, 128c, T), reduced over time by mean and by max and
concatenated → (B, 2·128c). Padding columns are included (all images share the canvas width).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import CTC_REDUCTIONS

ENCODER_FEATURES = (8, 16, 32, 64, 128)
DOWN_KERNEL = (4, 2)      # height × width of the strided "2×4" convolutions (see module docstring)
DECODER_HIDDEN = 128      # per direction, as in the paper (not scaled by the width multiplier)
MIN_HEIGHT = DOWN_KERNEL[0] ** 2
FRAME_STRIDE = DOWN_KERNEL[1] ** 2


def orient_for_ctc(x: torch.Tensor, rtl: bool) -> torch.Tensor:
    """Return images in the order CTC reads them (left to right): RTL images are flipped.

    Stored labels stay in Unicode logical order; an RTL word's first letter is at the right edge
    of its (left-padded) image, so after the flip it is the first frame CTC sees.
    """
    return torch.flip(x, dims=[-1]) if rtl else x


class Gate(nn.Module):
    """Convolutional gate of Bluche & Messina: x · sigmoid(conv3×3(x))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class Encoder(nn.Module):
    """Five tanh convolutions with gates after the 2nd, 3rd and 4th; max-pool over height."""

    def __init__(self, width_mult: float = 1.0):
        super().__init__()
        c1, c2, c3, c4, c5 = (max(1, round(f * width_mult)) for f in ENCODER_FEATURES)
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, DOWN_KERNEL, stride=DOWN_KERNEL)
        self.gate2 = Gate(c2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.gate3 = Gate(c3)
        self.conv4 = nn.Conv2d(c3, c4, DOWN_KERNEL, stride=DOWN_KERNEL)
        self.gate4 = Gate(c4)
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1)
        self.out_features = c5

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) → (B, C5, H/16, W/4): the convolutional map before the height pool."""
        x = torch.tanh(self.conv1(x))
        x = self.gate2(torch.tanh(self.conv2(x)))
        x = self.gate3(torch.tanh(self.conv3(x)))
        x = self.gate4(torch.tanh(self.conv4(x)))
        return torch.tanh(self.conv5(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) → (B, C5, T): one row of frames after max-pooling the height away."""
        return self.feature_map(x).amax(dim=2)


class Decoder(nn.Module):
    """BiLSTM(128) → linear(128) + tanh → BiLSTM(128) → linear(num_classes).

    `dropout` (default 0: the plain network) drops the inputs of both BiLSTMs and of the output
    layer during training."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = DECODER_HIDDEN, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lstm1 = nn.LSTM(in_features, hidden, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, hidden)
        self.lstm2 = nn.LSTM(hidden, hidden, bidirectional=True)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """(T, B, F) → logits (T, B, num_classes)."""
        x, _ = self.lstm1(self.drop(seq))
        x = torch.tanh(self.proj(x))
        x, _ = self.lstm2(self.drop(x))
        return self.out(self.drop(x))


class GatedCRNN(nn.Module):
    """Gated CNN + BiLSTM recognizer with CTC output (class 0 = blank).

    `forward` returns float32 log-probabilities (T, B, C), time-major for `nn.CTCLoss`.
    """

    def __init__(self, num_classes: int, height: int, width_mult: float = 1.0, rtl: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be ≥ 2 (blank + one symbol), got {num_classes}")
        if height < MIN_HEIGHT:
            raise ValueError(f"image height must be ≥ {MIN_HEIGHT} for two 4-high down-sampling convolutions, got {height}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.num_classes = num_classes
        self.height = height
        self.width_mult = width_mult
        self.rtl = rtl
        self.dropout = dropout
        self.encoder = Encoder(width_mult)
        self.decoder = Decoder(self.encoder.out_features, num_classes, dropout=dropout)

    def config(self) -> dict:
        """Constructor arguments (stored in checkpoints to rebuild the model)."""
        return {"num_classes": self.num_classes, "height": self.height, "width_mult": self.width_mult, "rtl": self.rtl,
                "dropout": self.dropout}

    @staticmethod
    def num_frames(width: int) -> int:
        """Number of CTC frames T for an input of `width` pixels (W // 4)."""
        return (width // DOWN_KERNEL[1]) // DOWN_KERNEL[1]

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected images (B, 1, H, W), got shape {tuple(x.shape)}")
        if x.shape[2] != self.height:
            raise ValueError(f"model built for height {self.height}, got images of height {x.shape[2]}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) images → encoder frames (B, C5, T), RTL images flipped first."""
        self._check(x)
        return self.encoder(orient_for_ctc(x, self.rtl))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [-1, 1] → float32 log_softmax (T, B, num_classes)."""
        frames = self.encode(x).permute(2, 0, 1)          # (T, B, C5)
        logits = self.decoder(frames)
        return F.log_softmax(logits.float(), dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features (B, 2·C5): [mean over time, max over time] of the frames."""
        frames = self.encode(x).float()
        return torch.cat([frames.mean(dim=2), frames.amax(dim=2)], dim=1)


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
             reduction: str = "char") -> torch.Tensor:
    """CTC loss (blank 0), infinite losses zeroed; always computed in float32.

    `reduction`: "char" — the mean over the batch of each sample's loss divided by its target
    length (the recognizer's training loss); "sample" — the mean over the batch of each sample's
    loss summed over its frames, the expectation of the per-sample loss the GAN paper writes.
    `targets` is the concatenated 1-D form (or padded 2-D); every sample uses all T frames.
    """
    T, B = log_probs.shape[0], log_probs.shape[1]
    input_lengths = torch.full((B,), T, dtype=torch.long, device=log_probs.device)
    if reduction not in CTC_REDUCTIONS:
        raise ValueError(f"CTC reduction must be one of {CTC_REDUCTIONS}, got {reduction!r}")
    if reduction == "sample":
        return F.ctc_loss(log_probs.float(), targets, input_lengths, target_lengths,
                          blank=0, reduction="sum", zero_infinity=True) / B
    return F.ctc_loss(log_probs.float(), targets, input_lengths, target_lengths,
                      blank=0, reduction="mean", zero_infinity=True)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
