"""The word-conditioned GAN of Alonso, Moysset & Messina (ICDAR 2019): networks φ, G and D.

Read top to bottom: the size rules (`NetConfig`), the word encoder φ, the building blocks
(spectral norm, conditional batch norm, self-attention, residual blocks), the generator G and
the discriminator D. The recognizer R is `htr.model.GatedCRNN` (built by `build_recognizer`).

Paper configuration (height 128, width 512, channel_mult 1.0) — exact:
  φ: character embedding 128 → 4-layer bidirectional LSTM, hidden 128.
  G: z ∈ R^128 split into 8 chunks of 16. Chunk 1 → linear 1024 → 256×1×4. Seven up-sampling
     ResBlocks with 256, 128, 128, 64, 32, 16, 16 filters, block i fed [chunk i+1, φ(s)] through
     conditional batch norm (CBN) whose gain and bias come from a 512-unit hidden layer;
     self-attention between blocks 4 and 5; BN → ReLU → conv3×3 → tanh gives 1×128×512.
  D: seven down-sampling ResBlocks with 16, 16, 32, 64, 128, 128, 256 filters, self-attention
     between blocks 3 and 4, one plain ResBlock (256), sum over height and width, linear → score.
  Spectral normalisation on every convolution and linear layer of G and D (CBN's layers included).

Decisions where the paper is silent (docs/DESIGN.md §6):
  * φ(s) is a single 256-d vector: the last BiLSTM layer's final forward state (after the last
    character) concatenated with its final backward state (after the first character).
  * Other sizes: height must be a power of two in 16…128 and width = 4 × height. G and D have
    n = log2(height) up/down-sampling blocks. G keeps the first n entries of the paper's filter
    list (so the 1×4 seed and its 256 filters are the paper's at every size); D keeps the last n
    entries (its mirror). Self-attention sits where the feature map has height/8 rows in both
    networks (after G's block n-3 and D's block 3, i.e. the paper's positions at n = 7).
    The noise keeps 16 values per chunk, so z has 16 × (n + 1) values (128 at n = 7).
    Filters and the CBN hidden layer are multiplied by `channel_mult` (at least 4 and 16).
  * `d_norm='none'` drops D's batch norms (spectral norm only, as SAGAN/BigGAN). With batches
    of one kind, batch norm re-centres every fake batch on its own statistics, so D cannot see a
    shift shared by the whole batch (less ink, no diversity); measured in RESULTS "GAN".
  * D's first block does not normalise or activate the raw image (BigGAN-style first block);
    D's LeakyReLU slope is 0.2; D applies LeakyReLU before the spatial sum.
  * SAGAN attention: query/key with C/8 channels, value with C/2 channels, keys and values
    max-pooled 2×2, output 1×1 convolution, residual gain γ initialised to 0.
  * Conditioning ablation `cond='linear'` (paper Table V): the whole z and φ(s) enter the first
    linear layer; every block uses plain (affine) batch norm.
  * `cond='aligned'` (not in the paper; an option, measured in RESULTS "GAN"): φ keeps the last
    BiLSTM layer's output at every character, layer-normalised, and lays it out along the canvas
    width, `char_px` pixels per character (the real data's median) from the writing side (LTR:
    left, RTL: right; past the word's end a learned 'paper' vector). Every CBN layer pools this
    map to its own width and predicts a gain and bias per column, so column x of every block
    knows which character it draws; with one global vector G must learn a word's layout itself.
  * `cond='spatial'` (not in the paper; measured in RESULTS "GAN"): as 'aligned', plus (a) each
    character's code adds a layer-normalised projection of its embedding to the BiLSTM output
    (at initialisation the BiLSTM codes of different characters are ≈ 0.99 cosine-similar), and
    (b) every CBN layer predicts a gain and bias for each *row* of each column, so a character's
    code shapes its glyph in two dimensions (SPADE-like; one per column leaves the vertical shape
    to the convolutions).
"""
from __future__ import annotations

from dataclasses import dataclass, asdict
import math

import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from datasets.errors import UserError
from datasets.preprocess import default_width

from .options import ALIGNED_CONDITIONING, CONDITIONING, D_NORMS

G_FILTERS = (256, 128, 128, 64, 32, 16, 16)   # paper, G blocks 1..7
D_FILTERS = (16, 16, 32, 64, 128, 128, 256)   # paper, D blocks 1..7
LEAKY_SLOPE = 0.2
MIN_HEIGHT, MAX_HEIGHT = 16, 128


# ----------------------------------------------------------------------------------------------
# Size rules
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NetConfig:
    """Everything the shapes of φ, G and D depend on."""

    num_symbols: int              # alphabet size, CTC blank excluded
    height: int = 128
    width: int = 512
    channel_mult: float = 1.0
    attention: bool = True
    cond: str = "cbn"             # 'cbn' (paper) or 'linear' (Table V ablation)
    z_chunk: int = 16             # noise values per chunk (paper: 128 / 8)
    embed_dim: int = 128          # φ's character embedding
    lstm_hidden: int = 128        # φ's BiLSTM hidden size (per direction)
    lstm_layers: int = 4
    cbn_hidden: int = 512         # CBN hidden layer at channel_mult 1.0
    char_px: float = 0.0          # aligned/spatial: canvas pixels per character (from the real data)
    rtl: bool = False             # aligned/spatial: words start at the right edge of the canvas
    d_norm: str = "bn"            # D's normalisation: 'bn' (the default) or 'none' (spectral norm only)

    def __post_init__(self):
        h, w = self.height, self.width
        if h < MIN_HEIGHT or h > MAX_HEIGHT or h & (h - 1):
            raise UserError(f"GAN height {h} must be a power of two between {MIN_HEIGHT} and {MAX_HEIGHT}")
        if w != default_width(h):
            raise UserError(f"GAN width {w} must be 4 × height ({default_width(h)})")
        if self.cond not in CONDITIONING:
            raise UserError(f"conditioning {self.cond!r} must be one of {', '.join(CONDITIONING)}")
        if self.d_norm not in D_NORMS:
            raise UserError(f"D normalisation {self.d_norm!r} must be one of {', '.join(D_NORMS)}")
        if self.aligned and not self.char_px > 0:
            raise UserError(f"{self.cond} conditioning needs char_px > 0, got {self.char_px}")
        if not self.channel_mult > 0:
            raise UserError(f"channel multiplier {self.channel_mult} must be positive")
        if self.num_symbols < 1:
            raise UserError("the alphabet is empty")

    @property
    def aligned(self) -> bool:
        """φ(s) is a (B, 256, width) map of per-character codes ('aligned', 'spatial')."""
        return self.cond in ALIGNED_CONDITIONING

    @property
    def n_blocks(self) -> int:
        """Number of up-sampling (G) and down-sampling (D) residual blocks: log2(height)."""
        return int(math.log2(self.height))

    @property
    def z_dim(self) -> int:
        return self.z_chunk * (self.n_blocks + 1)

    @property
    def word_dim(self) -> int:
        """Size of φ(s): final forward + backward states of the last BiLSTM layer."""
        return 2 * self.lstm_hidden

    def scaled(self, channels: int, minimum: int = 4) -> int:
        return max(minimum, int(round(channels * self.channel_mult)))

    @property
    def g_filters(self) -> list[int]:
        return [self.scaled(c) for c in G_FILTERS[: self.n_blocks]]

    @property
    def d_filters(self) -> list[int]:
        return [self.scaled(c) for c in D_FILTERS[len(D_FILTERS) - self.n_blocks:]]

    @property
    def g_attention_after(self) -> int:
        """1-based index of the G block followed by self-attention (4 at height 128)."""
        return self.n_blocks - 3

    @property
    def d_attention_after(self) -> int:
        """1-based index of the D block followed by self-attention (3 at every height)."""
        return 3

    def to_json(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# φ: the word encoder
# ----------------------------------------------------------------------------------------------

class WordEncoder(nn.Module):
    """φ: characters → embedding 128 → 4-layer BiLSTM(128) → word code.

    'cbn' / 'linear': the 256-d word vector (B, 256). 'aligned' / 'spatial': a (B, 256, width)
    map whose column x holds the code of the character drawn there (see `char_columns`)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        # index 0 pads; character classes are the alphabet's CTC indices 1..num_symbols
        self.embed = nn.Embedding(cfg.num_symbols + 1, cfg.embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.lstm_hidden, num_layers=cfg.lstm_layers,
                            bidirectional=True, batch_first=True)
        if cfg.aligned:
            self.paper = nn.Parameter(torch.zeros(cfg.word_dim))   # the code of columns past the word
        if cfg.cond == "spatial":
            self.identity = nn.Linear(cfg.embed_dim, cfg.word_dim)   # the character itself, beside its context

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, L) zero-padded class indices, lengths (B,) → φ(s)."""
        embedded = self.embed(tokens)
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        if not self.cfg.aligned:
            # h_n: (layers × 2, B, hidden); the last layer's forward and backward final states
            return torch.cat([h_n[-2], h_n[-1]], dim=1)
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)     # B × L × 256
        # A deep LSTM's outputs start near zero (|h| ≈ 0.01 here), which leaves G blind to the word
        # next to the unit-variance noise; normalising each character's code fixes its scale.
        states = F.layer_norm(states, states.shape[-1:])
        if self.cfg.cond == "spatial":
            ident = self.identity(embedded[:, : states.shape[1]])
            states = states + F.layer_norm(ident, ident.shape[-1:])
        index, inside = char_columns(lengths.to(states.device), self.cfg.width, self.cfg.char_px, self.cfg.rtl)
        index = index.clamp(max=states.shape[1] - 1)
        cols = states.gather(1, index[:, :, None].expand(-1, -1, states.shape[2]))   # B × W × 256
        cols = torch.where(inside[:, :, None], cols, self.paper.to(cols.dtype))
        return cols.transpose(1, 2).contiguous()


class UnpackedWordEncoder(nn.Module):
    """φ without packed sequences, on φ's own parameters (shared, so gradients reach φ): the same
    function of (tokens, lengths) for any padding width, traceable by the ONNX/TorchScript
    exporters and by `torch.compile(fullgraph=True)` (packing needs the lengths on the host).

    The forward direction runs over the padded rows, the backward direction over each word
    reversed within its own length (padding stays behind the word), so padding never reaches a
    character's state; the final states are taken at each word's last (forward) and first
    (backward) character."""

    def __init__(self, phi: WordEncoder):
        super().__init__()
        cfg = self.cfg = phi.cfg
        self.embed = phi.embed
        lstm = phi.lstm
        self.forward_layers, self.backward_layers = nn.ModuleList(), nn.ModuleList()
        for k in range(lstm.num_layers):
            size_in = lstm.input_size if k == 0 else 2 * lstm.hidden_size
            for layers, suffix in ((self.forward_layers, ""), (self.backward_layers, "_reverse")):
                one = nn.LSTM(size_in, lstm.hidden_size, batch_first=True)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    setattr(one, f"{name}_l0", getattr(lstm, f"{name}_l{k}{suffix}"))
                layers.append(one)
        if cfg.aligned:
            self.paper = phi.paper
        if cfg.cond == "spatial":
            self.identity = phi.identity

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(tokens)                                     # B × L × E
        steps = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
        inside = steps < lengths[:, None]
        # reverse each word within its length; padding positions map to themselves
        reverse = torch.where(inside, lengths[:, None] - 1 - steps, steps)
        h = embedded
        for fwd, bwd in zip(self.forward_layers, self.backward_layers):
            out_f, _ = fwd(h)
            flipped = h.gather(1, reverse[:, :, None].expand(-1, -1, h.shape[2]))
            out_b, _ = bwd(flipped)
            out_b = out_b.gather(1, reverse[:, :, None].expand(-1, -1, out_b.shape[2]))
            h = torch.cat([out_f, out_b], dim=2)
        if not self.cfg.aligned:
            last = (lengths - 1)[:, None, None].expand(-1, 1, out_f.shape[2])
            return torch.cat([out_f.gather(1, last)[:, 0], out_b[:, 0]], dim=1)
        code = (self.cfg.word_dim,)      # a constant shape: the exporters cannot trace h.shape[-1:]
        states = F.layer_norm(h, code)
        if self.cfg.cond == "spatial":
            states = states + F.layer_norm(self.identity(embedded), code)
        index, inside_cols = char_columns(lengths, self.cfg.width, self.cfg.char_px, self.cfg.rtl)
        index = torch.minimum(index, (lengths - 1)[:, None])              # columns past the word: masked below
        cols = states.gather(1, index[:, :, None].expand(-1, -1, states.shape[2]))
        cols = torch.where(inside_cols[:, :, None], cols, self.paper.to(cols.dtype))
        # constant channel and width sizes, so the exporter's shape inference knows them downstream
        return cols.transpose(1, 2).reshape(-1, self.cfg.word_dim, self.cfg.width)


def char_columns(lengths: torch.Tensor, width: int, char_px: float, rtl: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Which character each canvas column draws: (index (B, width) long, inside (B, width) bool).

    Column x (centre x + ½, counted from the writing side) draws character ⌊(x + ½) / char_px⌋;
    columns past the last character are outside the word."""
    centres = torch.arange(width, device=lengths.device, dtype=torch.float32) + 0.5
    index = torch.floor(centres / char_px).long()
    if rtl:
        index = index.flip(0)
    index = index[None, :].expand(lengths.shape[0], -1)
    return index, index < lengths[:, None]


def encode_words(words: list[str], alphabet) -> tuple[torch.Tensor, torch.Tensor]:
    """Words → (tokens (B, L) zero-padded, lengths (B,)) with the alphabet's class indices."""
    codes = [alphabet.encode(w) for w in words]
    lengths = torch.tensor([len(c) for c in codes], dtype=torch.long)
    if len(codes) == 0 or int(lengths.min()) == 0:
        raise UserError("cannot encode an empty word")
    tokens = torch.zeros(len(codes), int(lengths.max()), dtype=torch.long)
    for i, c in enumerate(codes):
        tokens[i, : len(c)] = torch.tensor(c, dtype=torch.long)
    return tokens, lengths


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------

def sn_conv(cin: int, cout: int, k: int) -> nn.Module:
    """Spectrally normalised k×k convolution, stride 1, 'same' padding."""
    return spectral_norm(nn.Conv2d(cin, cout, k, padding=k // 2))


def sn_linear(cin: int, cout: int) -> nn.Module:
    return spectral_norm(nn.Linear(cin, cout))


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose per-channel gain and bias are predicted from the condition vector
    (De Vries et al. 2017): cond → linear(hidden) → ReLU → linear(2C); gain = 1 + first half.
    `rows > 0` (spatial conditioning): linear(2C · rows), a gain and bias per channel and row."""

    def __init__(self, channels: int, cond_dim: int, hidden: int, rows: int = 0):
        super().__init__()
        self.channels, self.rows = channels, rows
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.mlp = nn.Sequential(sn_linear(cond_dim, hidden), nn.ReLU(), sn_linear(hidden, 2 * channels * max(1, rows)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """cond (B, D): one gain/bias per channel; cond (B, D, W'): one per channel and column,
        W' average-pooled to x's width (aligned conditioning), or per channel, row and column
        when built with `rows` (spatial conditioning; x must have that many rows)."""
        if cond.dim() == 2:
            gain, bias = self.mlp(cond).chunk(2, dim=1)
            return self.bn(x) * (1 + gain[:, :, None, None]) + bias[:, :, None, None]
        if self.rows and x.shape[2] != self.rows:
            raise ValueError(f"spatial CBN built for {self.rows} rows, got a map of height {x.shape[2]}")
        cond = F.adaptive_avg_pool1d(cond, x.shape[-1])
        out = self.mlp(cond.transpose(1, 2))                                          # B × W × 2C·rows
        # one row (aligned) broadcasts over x's height; `rows` rows (spatial) give one per row
        out = out.view(out.shape[0], out.shape[1], 2, self.channels, max(1, self.rows)).permute(2, 0, 3, 4, 1)
        return self.bn(x) * (1 + out[0]) + out[1]                                     # out[i]: B × C × rows × W


class PlainBatchNorm(nn.BatchNorm2d):
    """Affine batch norm with CBN's call signature (the condition is ignored)."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


class SelfAttention(nn.Module):
    """SAGAN self-attention: every position attends to (2×2 max-pooled) positions of the map."""

    def __init__(self, channels: int):
        super().__init__()
        qk, v = max(1, channels // 8), max(1, channels // 2)
        self.query, self.key = sn_conv(channels, qk, 1), sn_conv(channels, qk, 1)
        self.value, self.out = sn_conv(channels, v, 1), sn_conv(v, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q = self.query(x).flatten(2)                               # B × qk × N
        k, v = self.key(x), self.value(x)
        if h >= 2 and w >= 2:
            k, v = F.max_pool2d(k, 2), F.max_pool2d(v, 2)
        k, v = k.flatten(2), v.flatten(2)                          # B × qk × M, B × v × M
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)        # B × N × M
        o = (v @ attn.transpose(1, 2)).view(b, -1, h, w)           # B × v × H × W
        return x + self.gamma * self.out(o)


class UpBlock(nn.Module):
    """G's ResBlock (paper Fig. 3): [CBN → ReLU → up ×2 → conv3×3 → CBN → ReLU → conv3×3]
    plus a shortcut (up ×2, then 1×1 conv only when the channel count changes).
    `rows` > 0: spatial CBN for an input of that height (the second CBN sees twice as many)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, hidden: int, conditional: bool, rows: int = 0):
        super().__init__()
        norm = (lambda c, r: ConditionalBatchNorm(c, cond_dim, hidden, r)) if conditional else (lambda c, r: PlainBatchNorm(c))
        self.bn1, self.conv1 = norm(cin, rows), sn_conv(cin, cout, 3)
        self.bn2, self.conv2 = norm(cout, 2 * rows), sn_conv(cout, cout, 3)
        self.shortcut = sn_conv(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """D's ResBlock: [BN → LeakyReLU → conv3×3 → BN → LeakyReLU → conv3×3 → avg-pool ×½]
    plus a shortcut (1×1 conv only when the channel count changes, then avg-pool).
    `down=False` gives the plain ResBlock; `preact=False` skips the first BN/LeakyReLU;
    `norm=False` drops both batch norms (spectral norm only, as BigGAN's D)."""

    def __init__(self, cin: int, cout: int, down: bool = True, preact: bool = True, norm: bool = True):
        super().__init__()
        self.down, self.preact = down, preact
        bn = nn.BatchNorm2d if norm else (lambda c: nn.Identity())
        self.bn1 = bn(cin) if preact else nn.Identity()
        self.conv1, self.bn2, self.conv2 = sn_conv(cin, cout, 3), bn(cout), sn_conv(cout, cout, 3)
        self.shortcut = sn_conv(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.bn1(x), LEAKY_SLOPE) if self.preact else x
        h = self.conv2(F.leaky_relu(self.bn2(self.conv1(h)), LEAKY_SLOPE))
        s = self.shortcut(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


# ----------------------------------------------------------------------------------------------
# G: the generator
# ----------------------------------------------------------------------------------------------

class Generator(nn.Module):
    """G(z, φ(s)) → image (B, 1, height, width) in [-1, 1] (white = +1)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        filters = cfg.g_filters
        self.seed_channels = filters[0]
        conditional = cfg.cond != "linear"
        fc_in = cfg.z_chunk if conditional else cfg.z_dim + cfg.word_dim
        self.fc = sn_linear(fc_in, self.seed_channels * 4)            # → C × 1 × 4
        cond_dim, hidden = cfg.z_chunk + cfg.word_dim, cfg.scaled(cfg.cbn_hidden, 16)
        cins = [self.seed_channels] + filters[:-1]
        rows = [2 ** i if cfg.cond == "spatial" else 0 for i in range(len(filters))]   # block i's input height
        self.blocks = nn.ModuleList(UpBlock(ci, co, cond_dim, hidden, conditional, r) for ci, co, r in zip(cins, filters, rows))
        self.attention = SelfAttention(filters[cfg.g_attention_after - 1]) if cfg.attention else None
        self.out_bn = nn.BatchNorm2d(filters[-1])
        self.out_conv = sn_conv(filters[-1], 1, 3)

    def forward(self, z: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) noise, word = φ(s): (B, 256), or (B, 256, width) for aligned/spatial conditioning."""
        chunks = z.split(self.cfg.z_chunk, dim=1)
        if self.cfg.cond == "linear":
            h = self.fc(torch.cat([z, word], dim=1))
            conds = [None] * len(self.blocks)
        else:   # cbn, aligned, spatial: [chunk, φ(s)] per block; a code map gets the chunk in every column
            h = self.fc(chunks[0])
            spread = (lambda c: c) if word.dim() == 2 else (lambda c: c[:, :, None].expand(-1, -1, word.shape[2]))
            conds = [torch.cat([spread(c), word], dim=1) for c in chunks[1:]]
        h = h.view(z.shape[0], self.seed_channels, 1, 4)
        for i, (block, cond) in enumerate(zip(self.blocks, conds), start=1):
            h = block(h, cond)
            if self.attention is not None and i == self.cfg.g_attention_after:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


# ----------------------------------------------------------------------------------------------
# D: the discriminator
# ----------------------------------------------------------------------------------------------

class Discriminator(nn.Module):
    """D(x) → one unbounded realism score per image (B,)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        filters = cfg.d_filters
        cins = [1] + filters[:-1]
        norm = cfg.d_norm == "bn"
        self.blocks = nn.ModuleList(DownBlock(ci, co, preact=(i > 0), norm=norm) for i, (ci, co) in enumerate(zip(cins, filters)))
        self.attention = SelfAttention(filters[cfg.d_attention_after - 1]) if cfg.attention else None
        self.plain = DownBlock(filters[-1], filters[-1], down=False, norm=norm)
        self.linear = sn_linear(filters[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks, start=1):
            h = block(h)
            if self.attention is not None and i == self.cfg.d_attention_after:
                h = self.attention(h)
        h = F.leaky_relu(self.plain(h), LEAKY_SLOPE).sum(dim=(2, 3))
        return self.linear(h).squeeze(1)


# ----------------------------------------------------------------------------------------------
# R and helpers
# ----------------------------------------------------------------------------------------------

def build_recognizer(num_classes: int, height: int, width_mult: float = 1.0, rtl: bool = False) -> nn.Module:
    """R: the gated convolutional recurrent recognizer of the HTR package (log-probs T×B×C)."""
    from htr.model import GatedCRNN
    return GatedCRNN(num_classes, height, width_mult=width_mult, rtl=rtl)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameter count (spectral-norm vectors u, v are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
