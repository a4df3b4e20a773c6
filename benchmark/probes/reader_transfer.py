"""Probe: does a recognizer's CTC gradient teach letters that an independent judge can read?

    python -m benchmark.probes.reader_transfer --data TRAIN_DIR --readers RUN[,RUN...] --judge RUN
        [--model glyphs|generator] [--cond aligned|spatial] [--augment] [--iterations 600] [--lr L]
        [--seed 0] [--threads 1]
        [--json FILE] [--png FILE]

No discriminator: images are optimised for the mean CTC loss of the frozen `--readers` (eval
mode) on words drawn from p_w, laid out like `gan train --cond aligned` (character i at columns
[i·char_px, (i+1)·char_px) from the writing side, char_px measured on the real data).

* `--model glyphs` — the freest model: one learnable 16-column patch per character class,
  stretched over that character's cell (default lr 0.05). It shows what the readers' gradient
  alone can teach when nothing constrains the pixels.
* `--model generator` — φ and G of the suite (quick sizes, `--cond aligned` or `spatial`; Adam
  2e-4, β₁ 0, batch 16, as `gan train`), the same objective: how fast G itself learns from it.
* `--augment` applies the classic distortions of `htr.augment` (differentiable) to every batch
  before the readers (expectation over transformations).

Every 100 iterations: CTC, CER of the first reader and CER of the judge (a recognizer that never
took part) on 128 fixed words. The judge's CER is the number that matters: a low reader CER with
a judge CER near 100 % means the images exploit the readers, not letters.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

import numpy as np
import torch

from htr.scoring import text_metrics
from datasets.alphabet import is_rtl
from datasets.errors import UserError
from datasets.preprocess import default_width
from datasets.format import load_dataset
from datasets.packed import load_packed
from gan.generate import sample_z
from gan.options import ALIGNED_CONDITIONING
from gan.networks import Generator, NetConfig, WordEncoder, char_columns, encode_words
from gan.words import build_prior, ctc_targets, estimate_char_px
from htr.augment import augment_batch
from htr.checkpoint import load_recognizer
from htr.evaluate import recognize
from htr.model import GatedCRNN, ctc_loss

EVAL_WORDS, BATCH, SUBCOLUMNS = 128, 16, 16


class GlyphBank(torch.nn.Module):
    """One learnable (height × SUBCOLUMNS) patch per character class, placed by `char_columns`."""

    def __init__(self, num_classes: int, height: int, width: int, char_px: float, rtl: bool):
        super().__init__()
        self.bank = torch.nn.Parameter(0.1 * torch.randn(num_classes, height, SUBCOLUMNS))
        self.width, self.char_px, self.rtl = width, char_px, rtl
        centres = torch.arange(width, dtype=torch.float32) + 0.5
        sub = ((centres / char_px) % 1.0 * SUBCOLUMNS).long().clamp(max=SUBCOLUMNS - 1)
        self.register_buffer("sub", sub.flip(0) if rtl else sub)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        index, inside = char_columns(lengths, self.width, self.char_px, self.rtl)
        chars = tokens.gather(1, index.clamp(max=tokens.shape[1] - 1)) * inside        # B × W, 0 = paper
        cols = self.bank[chars, :, self.sub[None, :].expand_as(chars)]               # B × W × H
        img = torch.tanh(cols.permute(0, 2, 1))[:, None]
        return torch.where(inside[:, None, None, :], img, torch.ones_like(img))


class AlignedGenerator(torch.nn.Module):
    """φ and G of `gan train --cond aligned|spatial`, with a fixed noise stream."""

    def __init__(self, cfg: NetConfig, seed: int):
        super().__init__()
        self.phi, self.G = WordEncoder(cfg), Generator(cfg)
        self.z_dim, self.zgen = cfg.z_dim, torch.Generator().manual_seed(seed + 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.G(sample_z(len(lengths), self.z_dim, self.zgen), self.phi(tokens, lengths))


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ds = load_dataset(args.data)
    alphabet, direction = ds.meta.alphabet, ds.meta.direction
    readers = [load_recognizer(r, "cpu")[0].eval() for r in args.readers.split(",")]
    judge, judge_alphabet, _ = load_recognizer(args.judge, "cpu")
    height = readers[0].height
    if any(r.height != height for r in readers) or judge.height != height:
        raise UserError("--readers and --judge must share one image height")
    for p in (p for r in readers for p in r.parameters()):
        p.requires_grad_(False)
    width = default_width(height)
    packed = load_packed(ds, height, width, False)
    char_px = estimate_char_px(packed.images, list(packed.texts), direction)
    prior = build_prior(ds.meta.language, alphabet, max(1, int(width // char_px)), GatedCRNN.num_frames(width),
                        list(packed.texts))
    rtl = is_rtl(direction)
    if args.model == "glyphs":
        model = GlyphBank(alphabet.num_classes, height, width, char_px, rtl)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr or 0.05)
    else:
        cfg = NetConfig(num_symbols=len(alphabet.symbols), height=height, width=width, channel_mult=0.5,
                        cond=args.cond, char_px=char_px, rtl=rtl)
        model = AlignedGenerator(cfg, args.seed)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr or 2e-4, betas=(0.0, 0.999))
    rng, agen = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed + 2)
    eval_words = prior.sample(EVAL_WORDS, np.random.default_rng(args.seed + 3))
    eval_tokens, eval_lengths = encode_words(eval_words, alphabet)
    rows, t0 = [], time.perf_counter()
    print(f"char_px {char_px:.2f}, {len(readers)} reader(s), model {args.model}, augment {args.augment}", flush=True)
    for it in range(1, args.iterations + 1):
        words = prior.sample(BATCH, rng)
        tokens, lengths = encode_words(words, alphabet)
        x = model(tokens, lengths)
        if args.augment:
            x = augment_batch(x, agen)
        targets = ctc_targets(words, alphabet, direction)
        loss = sum(ctc_loss(r(x), targets, lengths) for r in readers) / len(readers)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % 100 == 0 or it == args.iterations:
            model.eval()
            with torch.no_grad():
                images = model(eval_tokens, eval_lengths)
            model.train()
            cer_r = text_metrics(eval_words, recognize(readers[0], alphabet, images, 128, "cpu"))["cer"]
            cer_j = text_metrics(eval_words, recognize(judge, judge_alphabet, images, 128, "cpu"))["cer"]
            rows.append({"iteration": it, "seconds": round(time.perf_counter() - t0, 1), "ctc": round(loss.item(), 3),
                         "cer_reader": round(cer_r, 2), "cer_judge": round(cer_j, 2)})
            print("  ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    if args.png:
        from gan.samples import save_png
        from gan.generate import to_u8
        save_png(np.concatenate(list(to_u8(images[:12])), axis=0), Path(args.png))
    return {"config": vars(args), "char_px": char_px, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.probes.reader_transfer", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, metavar="DIR", help="real training dataset directory (char_px, p_w)")
    p.add_argument("--readers", required=True, metavar="RUN[,RUN...]", help="frozen recognizers whose mean CTC is minimised")
    p.add_argument("--judge", required=True, metavar="RUN", help="independent recognizer that reads the result")
    p.add_argument("--model", choices=("glyphs", "generator"), default="glyphs")
    p.add_argument("--cond", choices=ALIGNED_CONDITIONING, default="aligned", help="G's conditioning (--model generator)")
    p.add_argument("--augment", action="store_true", help="classic distortions before the readers")
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--lr", type=float, help="Adam lr (default 0.05 glyphs, 2e-4 generator)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="write the config and rows as JSON")
    p.add_argument("--png", metavar="FILE", help="write 12 of the evaluation words as one PNG column")
    args = p.parse_args(argv)
    try:
        result = run(args)
    except UserError as exc:
        print(f"reader_transfer: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
