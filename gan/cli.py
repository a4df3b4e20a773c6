"""`htraug gan train | generate | samples`: the conditioned GAN from the command line."""
from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Callable, Mapping

from datasets.distributed import DEVICES_HELP, resolve_device
from datasets.errors import UserError
from datasets.options import add_arguments, given, non_negative_float, non_negative_int, positive_float, positive_int
from datasets.runs import RESUME_RULE, RunDir

if TYPE_CHECKING:
    from .config import GanTrainConfig

TRAIN_EPILOG = """\
Paper settings (Alonso et al. 2019) are the defaults: 128x512 images, channel multiplier 1.0,
batch 64, Adam lr 2e-4 betas (0, 0.999), hinge loss, alpha 1, self-attention, CBN conditioning.
--profile smoke|quick|paper takes sizes, budgets and the GAN recipe from a study profile;
explicit flags win.
Ablations (paper Tables II-V): --alpha none|0.1|1|10, --loss gan|lsgan|hinge, --no-attention,
--cond cbn|linear. --cond aligned (not in the paper) lays the characters' codes out along
the width so every column of G knows which character it draws; --cond spatial also gives each
row its own CBN gain and bias. --readers and --r-augment (not in the paper) average R's CTC with
other trained recognizers' on distorted fakes: one recognizer alone is fooled by patterns no
other recognizer reads (RESULTS.md "GAN").
The run directory gets last.pt (full state; --resume continues it exactly, reusing the stored
options unless given again), best.pt (best evaluation: FID with --judge, else readability CER),
config.json, log.jsonl (one line per evaluation) and samples/iter_XXXXXX_{words,styles}.png.
Multi-GPU: torchrun --nproc-per-node N -m benchmark.cli gan train ... --device cuda
"""


def register(g, profiles: Mapping[str, Mapping] | None = None, scorer: Callable | None = None) -> None:
    """Fill the `gan` command group. `profiles` maps a study profile name to the GanTrainConfig
    fields it sets (`gan train --profile`); `scorer` computes FID and GS during training
    (see gan/evaluate.py)."""
    _register_train(g, dict(profiles or {}), scorer)
    _register_generate(g)
    _register_samples(g)
    _register_export(g)
    _register_imitate(g)


def _register_train(g, profiles: dict, scorer: Callable | None) -> None:
    from .config import GanTrainConfig

    p = g.add_parser("train", help="train the GAN (φ, G, D, R) on a dataset directory",
                     description="Train the word-conditioned GAN with an auxiliary recognizer on a dataset directory.",
                     epilog=TRAIN_EPILOG + "\n" + RESUME_RULE, formatter_class=argparse.RawDescriptionHelpFormatter)
    if profiles:
        p.add_argument("--profile", choices=sorted(profiles), help="take sizes, budgets and the GAN recipe from a study "
                       "profile; explicit flags win")
    add_arguments(p, GanTrainConfig, required=("out",))
    p.set_defaults(func=lambda args: _train(args, profiles, scorer))


def train_config_from_args(args, profiles: Mapping[str, Mapping]) -> "GanTrainConfig":
    """Stored options (when resuming) < profile < explicit flags."""
    from .checkpoint import CHECKPOINT
    from .config import GanTrainConfig

    base: dict = {}
    if getattr(args, "resume", False):
        base.update(RunDir(args.out, CHECKPOINT).stored_config(GanTrainConfig))
    if getattr(args, "profile", None):
        base.update(profiles[args.profile])
    flags = given(args, GanTrainConfig)
    if "height" in flags and "width" not in flags:
        base.pop("width", None)           # the width follows an explicit height
    if not {**base, **flags}.get("data"):
        raise UserError("--data is required (except with --resume on an existing run)")
    return GanTrainConfig.from_json({**base, **flags})


def _train(args, profiles: Mapping[str, Mapping], scorer: Callable | None) -> int:
    from .train import train

    cfg = train_config_from_args(args, profiles)
    run = train(cfg, scorer=scorer)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"GAN run: {run} (best: {run / 'best.pt'}, log: {run / 'log.jsonl'})")
    return 0


def _register_generate(g) -> None:
    p = g.add_parser("generate", help="write N generated word images as a dataset directory",
                     description="Generate synthetic word images with a trained GAN into a dataset directory "
                                 "(docs/DESIGN.md §4) that `htraug htr train` reads directly.")
    a = p.add_argument
    a("--model", metavar="RUN", required=True, help="GAN run directory (best.pt, else last.pt) or checkpoint file")
    a("--n", type=positive_int, required=True, metavar="N", help="number of images")
    a("--out", metavar="DIR", required=True, help="dataset directory to create")
    a("--words", metavar="FILE", help="words to render, one per line, cycled (default: sample the word prior p_w)")
    a("--like", metavar="DIR", help="dataset the output will be mixed with: its alphabet and direction must match")
    a("--seed", type=non_negative_int, default=0, help="seed for words and noise (default 0)")
    a("--batch-size", type=positive_int, default=256, metavar="B", help="images per forward pass (default 256)")
    a("--device", default="cpu", help=DEVICES_HELP + " (default cpu)")
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
    a("--n-words", type=positive_int, default=8, help="words when sampling p_w (default 8)")
    a("--n-styles", type=positive_int, default=4, help="noise vectors z (default 4)")
    a("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    a("--device", default="cpu", help=DEVICES_HELP + " (default cpu)")
    p.set_defaults(func=_samples)


def _samples(args) -> int:
    from datasets.files import check_new_file

    from .generate import write_sample_grids

    check_new_file(args.out)
    out = write_sample_grids(args.model, args.out, words=args.words, n_words=args.n_words, n_styles=args.n_styles,
                             seed=args.seed, device=_device(args.device))
    print(f"wrote {out}")
    return 0


def _register_export(g) -> None:
    p = g.add_parser("export", help="export φ and G to ONNX or TorchScript (alphabet and input contract inside)",
                     description="Write the generator (φ and G in eval mode, spectral norm folded in) as an ONNX model "
                                 "(metadata_props key 'htraug') or a TorchScript archive (extra file htraug.json) that "
                                 "carries the alphabet, direction, canvas and input contract. Inputs: 'z' float32 "
                                 "(batch, z_dim) standard normal noise; 'tokens' int64 (batch, chars), each word's "
                                 "class indices (symbol i of the alphabet is i+1) in reading order, padded with 0 after "
                                 "the word; 'lengths' int64 (batch,), each word's length (1..chars). Output 'images' "
                                 "float32 (batch, 1, H, W) in [-1, 1], white = +1. Words of different lengths may share "
                                 "a batch. The file is checked against the checkpoint's φ and G on a batch of words of "
                                 "several lengths (ONNX with onnxruntime, when installed) and written only when every "
                                 "pixel agrees within 1e-4.")
    a = p.add_argument
    a("--model", metavar="RUN", required=True, help="GAN run directory (best.pt, else last.pt) or checkpoint file")
    a("--out", metavar="FILE", required=True, help="output file: *.onnx, or *.pt for TorchScript")
    a("--format", choices=("onnx", "torchscript"), default=None, help="export format (default: from the --out file name)")
    p.set_defaults(func=_export)


def _export(args) -> int:
    from datasets.export import export_summary

    from datasets.files import check_new_file

    from .export import export_generator

    check_new_file(args.out)
    print(export_summary(export_generator(args.model, args.out, args.format)))
    return 0


def _device(name: str) -> str:
    return str(resolve_device(name))


def _register_imitate(g) -> None:
    p = g.add_parser("imitate", help="write new words in the style of a writer's reference images",
                     description="Find the noise z with which G reproduces a writer's reference images of known "
                                 "transcription (only z is optimised: pixel + recognizer-feature loss), then draw new "
                                 "words with it (docs/DESIGN.md §6.9).")
    a = p.add_argument
    a("--model", metavar="RUN", required=True, help="GAN run directory or checkpoint file")
    a("--style", metavar="DIR|TSV", required=True, help="a dataset directory (with --writer: that writer's images) or "
      "a TSV file of 'image_path<TAB>word' lines (paths relative to the file)")
    a("--writer", metavar="ID", help="the writer whose images of --style DIR are the references (meta.json writers)")
    a("--max-style", type=positive_int, default=8, metavar="N", help="reference images at most (default 8)")
    a("--words", nargs="+", required=True, metavar="WORD", help="the words to write")
    a("--out", metavar="PNG", required=True, help="the imitated words, one above the other")
    a("--steps", type=positive_int, default=300, help="optimisation steps on z (default 300)")
    a("--lr", type=positive_float, default=0.05, help="Adam learning rate on z (default 0.05)")
    a("--feature-weight", type=non_negative_float, default=1.0, help="weight of R's feature distance beside pixels (default 1)")
    a("--seed", type=non_negative_int, default=0, help="seed of z's starting draw (default 0)")
    a("--device", default="cpu", help=DEVICES_HELP + " (default cpu)")
    a("--json", action="store_true", help="print the fit (losses) as JSON")
    p.set_defaults(func=_imitate)


def _imitate(args) -> int:
    import json

    import numpy as np

    from .imitate import imitate
    from .samples import save_png, tile

    images, fit = imitate(args.model, args.style, args.words, writer=args.writer, max_style=args.max_style,
                          steps=args.steps, lr=args.lr, feature_weight=args.feature_weight, seed=args.seed,
                          device=_device(args.device))
    save_png(tile(np.asarray(images), len(images), 1), args.out)
    summary = {"out": args.out, "words": list(args.words), "loss": fit.loss, "random_z_loss": fit.random_loss,
               "steps": len(fit.curve)}
    print(json.dumps(summary, ensure_ascii=False) if args.json else
          f"wrote {args.out}: reconstruction loss {fit.loss:.4f} (random z: {fit.random_loss:.4f})")
    return 0
