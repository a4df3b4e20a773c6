"""`htraug htr train|eval` and the `htraug metrics text` handler (registered by benchmark.metrics.cli)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from datasets.alphabet import normalize_text
from datasets.errors import UserError
from datasets.format import read_text_file


def register(sub) -> None:
    """Add the `htr` command group to the top-level sub-parsers."""
    from benchmark.cli import add_group

    htr = add_group(sub, "htr", "train and evaluate the gated-CNN/BiLSTM CTC recognizer")
    _add_train_parser(htr)
    _add_eval_parser(htr)


def _add_train_parser(htr) -> None:
    p = htr.add_parser("train", help="train a recognizer with CTC and early stopping on validation CER",
                       description="Train the gated convolutional recurrent recognizer (RMSprop, CTC, early stopping on "
                                   "validation CER). RUN receives config.json, log.jsonl, best.pt and last.pt.")
    p.add_argument("--train", required=True, metavar="DIR", help="real training dataset directory (defines the alphabet)")
    p.add_argument("--extra", action="append", default=[], metavar="DIR", help="additional (e.g. synthetic) training set; repeatable")
    p.add_argument("--extra-ratio", type=float, default=None, metavar="R",
                   help="share of every batch drawn from --extra sets (default: plain concatenation)")
    p.add_argument("--val", required=True, metavar="DIR", help="validation dataset directory (early stopping)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=50)
    p.add_argument("--patience", type=int, default=5, help="validations without improvement before stopping")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--optimizer", choices=("rmsprop", "adam"), default="rmsprop")
    p.add_argument("--lr-factor", type=float, default=1.0,
                   help="reduce-on-plateau: multiply the lr by this after --lr-patience validations without improvement (default 1: off)")
    p.add_argument("--lr-patience", type=int, default=2)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="cosine: lower the lr along a half cosine to 0 at the end of --max-epochs (default: constant)")
    p.add_argument("--height", type=int, default=None, help="canvas height (default: the training set's)")
    p.add_argument("--width", type=int, default=None, help="canvas width (default: the training set's, else 4×height)")
    p.add_argument("--width-mult", type=float, default=1.0, help="multiplier of the encoder's feature counts")
    p.add_argument("--dropout", type=float, default=0.0, help="decoder dropout during training (default 0)")
    p.add_argument("--augment", action="store_true", help="classic distortions (affine, elastic, stroke width, noise)")
    p.add_argument("--max-train", type=int, default=None, metavar="N", help="use a fixed random subset of N real training images")
    p.add_argument("--eval-every", type=int, default=0, metavar="STEPS", help="validate every N steps (default: every epoch)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much training time (final validation included)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (resumable)")
    p.add_argument("--resume", action="store_true", help="continue RUN from its last.pt (exactly)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA, or on a CPU with native bf16 (AVX-512 BF16 / AMX); CTC stays in float32")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (CUDA only)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; 1 is best on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=train_command)


def _add_eval_parser(htr) -> None:
    p = htr.add_parser("eval", help="ED/WER of a trained recognizer on a dataset",
                       description="Evaluate a recognizer (run directory or checkpoint) on a dataset directory: "
                                   "ED and WER, case-sensitive and case-insensitive.")
    p.add_argument("--model", required=True, metavar="RUN", help="run directory (uses best.pt) or checkpoint file")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--out-tsv", default=None, metavar="FILE", help="per-image predictions: path, reference, hypothesis")
    p.add_argument("--lexicon", default=None, metavar="FILE", help="snap each hypothesis to the closest word of FILE (one per line)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.set_defaults(func=eval_command)


def train_command(args) -> int:
    from .train import HtrTrainConfig, train

    cfg = HtrTrainConfig(
        train=args.train, val=args.val, out=args.out, extra=list(args.extra), extra_ratio=args.extra_ratio,
        seed=args.seed, max_epochs=args.max_epochs, patience=args.patience, batch_size=args.batch_size,
        lr=args.lr, optimizer=args.optimizer, lr_factor=args.lr_factor, lr_patience=args.lr_patience, lr_schedule=args.lr_schedule, height=args.height, width=args.width, width_mult=args.width_mult, dropout=args.dropout,
        augment=args.augment, max_train=args.max_train, resume=args.resume, device=args.device, amp=args.amp, compile=args.compile,
        eval_every=args.eval_every, max_minutes=args.max_minutes, max_steps=args.max_steps,
        threads=args.threads, show_progress=not args.quiet,
    )
    run = train(cfg)
    summary = _best_summary(run)
    if summary:
        print(summary)
    return 0


def _best_summary(run: Path) -> str:
    """One line describing the best validation of a run, from its log."""
    log = run / "log.jsonl"
    if not log.is_file():
        return f"{run}: no validation yet"
    entries = [json.loads(ln) for ln in log.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not entries:
        return f"{run}: no validation yet"
    best = min(entries, key=lambda e: e["val_cer"])
    return (f"{run}: best val ED {best['val_cer']:.2f}% WER {best['val_wer']:.2f}% "
            f"(epoch {best['epoch']}, step {best['step']}); {len(entries)} validations")


def eval_command(args) -> int:
    from .evaluate import evaluate

    lexicon = [w for w in read_lines(args.lexicon) if w.strip()] if args.lexicon else None
    m = evaluate(args.model, args.data, out_tsv=args.out_tsv, batch_size=args.batch_size, device=args.device,
                 show_progress=True, lexicon=lexicon)
    if args.json:
        print(json.dumps(m, ensure_ascii=False))
    else:
        _print_text_metrics(m)
        if m.get("dropped"):
            print(f"({m['dropped']} images wider than the canvas were not evaluated)")
    return 0


def _print_text_metrics(m: dict, unit: str = "images") -> None:
    print(f"{unit}: {m['n']}  reference characters: {m['chars']}")
    print(f"ED  {m['cer']:6.2f}%   WER  {m['wer']:6.2f}%   (case-sensitive)")
    print(f"ED  {m['cer_ci']:6.2f}%   WER  {m['wer_ci']:6.2f}%   (case-insensitive)")


# --- htraug metrics text -------------------------------------------------------------------

def add_metrics_text_parser(metrics_subparsers) -> argparse.ArgumentParser:
    """Add `text` to the `htraug metrics` sub-parsers (called by benchmark.metrics.cli)."""
    p = metrics_subparsers.add_parser(
        "text", help="ED/WER between a reference and a hypothesis file (one transcription per line)",
        description="Corpus-level character edit distance (ED %) and word error rate (WER %) between two UTF-8 "
                    "files compared line by line, case-sensitive and case-insensitive.")
    p.add_argument("--ref", required=True, metavar="FILE", help="reference transcriptions, one per line")
    p.add_argument("--hyp", required=True, metavar="FILE", help="hypotheses, one per line (same order)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=metrics_text_command)
    return p


def read_lines(path) -> list[str]:
    """Lines of a UTF-8 text file (BOM tolerated, NFC-normalised, line ends removed, empty lines kept)."""
    text = read_text_file(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [normalize_text(ln.rstrip("\r")) for ln in lines]


def metrics_text_command(args) -> int:
    """`htraug metrics text --ref FILE --hyp FILE [--json]`."""
    from benchmark.metrics.text import text_metrics

    refs, hyps = read_lines(args.ref), read_lines(args.hyp)
    if len(refs) != len(hyps):
        raise UserError(f"{args.ref} has {len(refs)} lines but {args.hyp} has {len(hyps)}; lines are compared in order")
    if not refs:
        raise UserError(f"{args.ref}: no lines to compare")
    m = text_metrics(refs, hyps)
    if args.json:
        print(json.dumps(m, ensure_ascii=False))
    else:
        _print_text_metrics(m, unit="lines")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from benchmark.cli import main
    sys.exit(main(["htr", *sys.argv[1:]]))
