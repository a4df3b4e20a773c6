"""`htraug gan train | generate | samples`: the conditioned GAN from the command line."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from datasets.errors import UserError

from .options import CONDITIONING, D_NORMS, LOSSES

TRAIN_EPILOG = """\
Paper settings (Alonso et al. 2019) are the defaults: 128x512 images, channel multiplier 1.0,
batch 64, Adam lr 2e-4 betas (0, 0.999), hinge loss, alpha 1, self-attention, CBN conditioning.
--profile smoke|quick|paper takes sizes and budgets from a study profile; explicit flags win.
Ablations (paper Tables II-V): --alpha none|0.1|1|10, --loss gan|lsgan|hinge, --no-attention,
--cond cbn|linear. --cond aligned (not in the paper) lays the characters' codes out along
the width so every column of G knows which character it draws; --cond spatial also gives each
row its own CBN gain and bias. --readers and --r-augment (not in the paper) average R's CTC with
other trained recognizers' on distorted fakes: one recognizer alone is fooled by patterns no
other recognizer reads (RESULTS.md "GAN").
The run directory gets last.pt (full state; --resume continues it exactly, reusing the stored
options unless given again), best.pt (best evaluation: FID with --judge, else readability CER),
log.jsonl (one line per evaluation) and samples/iter_XXXXXX_{words,styles}.png.
Multi-GPU: torchrun --nproc-per-node N -m benchmark.cli gan train ... --device cuda
"""


def register(sub) -> None:
    from benchmark.cli import add_group

    g = add_group(sub, "gan", "word-conditioned GAN: train, generate synthetic datasets, draw sample grids")
    _register_train(g)
    _register_generate(g)
    _register_samples(g)


def _register_train(g) -> None:
    p = g.add_parser("train", help="train the GAN (φ, G, D, R) on a dataset directory",
                     description="Train the word-conditioned GAN with an auxiliary recognizer on a dataset directory.",
                     epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--data", metavar="DIR", help="training dataset directory (required unless resuming)")
    a("--out", metavar="RUN", required=True, help="run directory to create (or resume)")
    a("--val", metavar="DIR", help="reference images for FID/GS (default: the training set)")
    a("--profile", choices=("smoke", "quick", "paper"), help="take sizes and budgets from a study profile")
    a("--iterations", type=int, metavar="N", help="training iterations (default 100000)")
    a("--max-minutes", type=float, metavar="M", help="stop earlier after M minutes of training (evaluates, saves, draws samples)")
    a("--batch-size", type=int, metavar="B", help="images per batch (default 64)")
    a("--height", type=int, metavar="H", help="image height, power of two 16..128 (default 128)")
    a("--width", type=int, metavar="W", help="image width, must be 4 x height (default)")
    a("--channel-mult", type=float, metavar="M", help="G/D filter multiplier (default 1.0 = paper)")
    a("--htr-width-mult", type=float, metavar="M", help="recognizer R width multiplier (default 1.0)")
    a("--r-init", metavar="RUN", help="start R from this recognizer's weights (an `htr train` run trained on real "
      "images of the same alphabet, height and --htr-width-mult); default: R from scratch, as the paper")
    a("--readers", metavar="RUN[,RUN...]", help="extra recognizers trained on real images of this alphabet and height: "
      "frozen, their CTC on generated images is averaged with R's in G's update (not in the paper)")
    a("--r-augment", action="store_const", const=True, help="distort generated images with the classic augmentations "
      "before R and the readers in G's update (not in the paper)")
    a("--lr", type=float, help="Adam learning rate for all networks (default 2e-4)")
    a("--alpha", metavar="A", help="gradient balancing: none, or a positive number (default 1)")
    a("--loss", choices=LOSSES, help="adversarial loss (default hinge)")
    a("--no-attention", dest="attention", action="store_const", const=False, help="drop self-attention in G and D")
    a("--cond", choices=CONDITIONING, help="inputs through CBN layers (default, paper), the first linear layer "
      "(Table V), or CBN aligned with the characters' positions, per column ('aligned') or per pixel ('spatial'); "
      "both not in the paper")
    a("--d-norm", choices=D_NORMS, help="D's normalisation: batch norm (default, SPEC) or none (spectral norm only)")
    a("--max-chars", type=int, metavar="N", help="longest word to generate (default: longest training label)")
    a("--eval-every", type=int, metavar="K", help="evaluate and checkpoint every K iterations (default 1000)")
    a("--sample-every", type=int, metavar="K", help="write sample grids every K iterations (default: --eval-every)")
    a("--eval-words", type=int, metavar="N", help="generated words read back for readability (default 256)")
    a("--judge", metavar="RUN", help="trained recognizer run: FID 'htr' features and judge readability")
    a("--fid-n", type=int, metavar="N", help="images per side for FID, 0 = off (default 1000)")
    a("--gs-n", type=int, metavar="N", help="points per side for the Geometry Score, 0 = off (default 500)")
    a("--gs-reps", type=int, metavar="N", help="Geometry Score repetitions (default 20)")
    a("--seed", type=int, help="seed for initialisation, data order, words and noise (default 0)")
    a("--device", help="cpu, cuda, cuda:N or auto (default cpu)")
    a("--amp", action="store_const", const=True, help="bf16 autocast on CUDA")
    a("--channels-last", action="store_const", const=True, help="NHWC memory format for G, D and R on CUDA")
    a("--compile", action="store_const", const=True, help="torch.compile G, D and R on CUDA (first steps compile)")
    a("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's; 1 is best on a busy machine)")
    a("--resume", action="store_true", help="continue RUN from its last.pt")
    a("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


FLAG_TO_FIELD = {
    "data": "data", "out": "out", "val": "val", "iterations": "iterations", "max_minutes": "max_minutes", "batch_size": "batch_size",
    "height": "height", "width": "width", "channel_mult": "channel_mult", "htr_width_mult": "htr_width_mult", "r_init": "r_init",
    "readers": "readers", "r_augment": "r_augment",
    "lr": "lr", "loss": "loss", "attention": "attention", "cond": "cond", "d_norm": "d_norm", "max_chars": "max_chars",
    "eval_every": "eval_every", "sample_every": "sample_every", "eval_words": "eval_words", "judge": "judge",
    "fid_n": "fid_n", "gs_n": "gs_n", "gs_reps": "gs_reps", "seed": "seed", "device": "device", "amp": "amp", "channels_last": "channels_last", "compile": "compile", "threads": "threads",
}


def _profile_fields(name: str) -> dict:
    from benchmark.profiles import get_profile

    p = get_profile(name)
    return {"height": p.height, "width": p.width, "channel_mult": p.gan_channel_mult, "iterations": p.gan_iterations,
            "batch_size": p.gan_batch, "eval_every": p.gan_eval_every, "htr_width_mult": p.htr_width_mult,
            "fid_n": p.fid_n, "gs_n": p.gs_n, "gs_reps": p.gs_reps, "cond": p.gan_cond, "d_norm": p.gan_d_norm}


def train_config_from_args(args) -> "GanTrainConfig":
    """Stored options (when resuming) < profile < explicit flags."""
    from .config import GanTrainConfig, parse_alpha

    fields: dict = {}
    stored = Path(args.out) / "config.json"
    if args.resume and stored.is_file():
        fields.update(json.loads(stored.read_text(encoding="utf-8")))
    if args.profile:
        fields.update(_profile_fields(args.profile))
    fields.update({f: getattr(args, k) for k, f in FLAG_TO_FIELD.items() if getattr(args, k) is not None})
    if args.alpha is not None:
        fields["alpha"] = parse_alpha(args.alpha)
    if args.height is not None and args.width is None:
        fields["width"] = 4 * args.height
    fields["resume"] = bool(args.resume)
    fields["progress"] = not args.quiet
    if not fields.get("data"):
        raise UserError("--data is required (except with --resume on an existing run)")
    return GanTrainConfig.from_json(fields)


def _train(args) -> int:
    from .train import train

    cfg = train_config_from_args(args)
    run = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"GAN run: {run} (best: {run / 'best.pt'}, log: {run / 'log.jsonl'})")
    return 0


def _register_generate(g) -> None:
    p = g.add_parser("generate", help="write N generated word images as a dataset directory",
                     description="Generate synthetic word images with a trained GAN into a dataset directory "
                                 "(SPEC §4) that `htraug htr train` reads directly.")
    a = p.add_argument
    a("--model", metavar="RUN", required=True, help="GAN run directory (best.pt, else last.pt) or checkpoint file")
    a("--n", type=int, required=True, metavar="N", help="number of images")
    a("--out", metavar="DIR", required=True, help="dataset directory to create")
    a("--words", metavar="FILE", help="words to render, one per line, cycled (default: sample the word prior p_w)")
    a("--like", metavar="DIR", help="dataset the output will be mixed with: its alphabet and direction must match")
    a("--seed", type=int, default=0, help="seed for words and noise (default 0)")
    a("--batch-size", type=int, default=256, metavar="B", help="images per forward pass (default 256)")
    a("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    a("--amp", action="store_true", help="bf16 autocast on CUDA")
    a("--overwrite", action="store_true", help="replace DIR if it exists")
    p.set_defaults(func=_generate)


def _generate(args) -> int:
    from .generate import generate

    out = generate(args.model, args.n, args.out, words=args.words, seed=args.seed, batch_size=args.batch_size,
                   device=_device(args.device), like=args.like, overwrite=args.overwrite, amp=args.amp)
    print(f"wrote {args.n} generated images to {out}")
    return 0


def _register_samples(g) -> None:
    p = g.add_parser("samples", help="draw sample grids (fixed word x varying z, fixed z x varying word)",
                     description="Draw one PNG: fixed word x varying z (top), fixed z x varying word (bottom).")
    a = p.add_argument
    a("--model", metavar="RUN", required=True, help="GAN run directory or checkpoint file")
    a("--out", metavar="PNG", required=True, help="output PNG file")
    a("--words", metavar="FILE", help="words, one per line (default: distinct words from p_w)")
    a("--n-words", type=int, default=8, help="words when sampling p_w (default 8)")
    a("--n-styles", type=int, default=4, help="noise vectors z (default 4)")
    a("--seed", type=int, default=0, help="seed (default 0)")
    a("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.set_defaults(func=_samples)


def _samples(args) -> int:
    from .generate import write_sample_grids

    if args.n_words < 1 or args.n_styles < 1:
        raise UserError("--n-words and --n-styles must be ≥ 1")
    out = write_sample_grids(args.model, args.out, words=args.words, n_words=args.n_words, n_styles=args.n_styles,
                             seed=args.seed, device=_device(args.device))
    print(f"wrote {out}")
    return 0


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    return name
