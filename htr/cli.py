"""`htraug htr train|eval`: the recognizer from the command line."""
from __future__ import annotations

import json
from pathlib import Path

from datasets.distributed import DEVICES_HELP, resolve_device
from datasets.format import read_lines
from datasets.options import add_arguments, from_args
from datasets.files import read_jsonl
from datasets.runs import LOG, RESUME_RULE, RunDir

from .scoring import format_text_metrics


def register(group) -> None:
    """Fill the `htr` command group (train, eval)."""
    _add_train_parser(group)
    _add_eval_parser(group)


def _add_train_parser(htr) -> None:
    from .config import HtrTrainConfig

    p = htr.add_parser("train", help="train a recognizer with CTC and early stopping on validation CER",
                       description="Train the gated convolutional recurrent recognizer (RMSprop, CTC, early stopping on "
                                   "validation CER). RUN receives config.json, log.jsonl, best.pt and last.pt.",
                       epilog=RESUME_RULE)
    add_arguments(p, HtrTrainConfig, required=("out",))
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
    p.add_argument("--device", default="cpu", help=DEVICES_HELP)
    p.set_defaults(func=eval_command)


def train_command(args) -> int:
    from .checkpoint import CHECKPOINT
    from .config import HtrTrainConfig
    from .train import train

    cfg = from_args(HtrTrainConfig, args, RunDir(args.out, CHECKPOINT).stored_config() if getattr(args, "resume", False) else {})
    run = train(cfg)
    summary = _best_summary(run)
    if summary:
        print(summary)
    return 0


def _best_summary(run: Path) -> str:
    """One line describing the best validation of a run, from its log."""
    entries = [e for e in read_jsonl(run / LOG) if "val_cer" in e]
    if not entries:
        return f"{run}: no validation yet"
    best = min(entries, key=lambda e: e["val_cer"])
    return (f"{run}: best val ED {best['val_cer']:.2f}% WER {best['val_wer']:.2f}% "
            f"(epoch {best['epoch']}, step {best['step']}); {len(entries)} validations")


def eval_command(args) -> int:
    from .evaluate import evaluate

    lexicon = [w for w in read_lines(args.lexicon) if w.strip()] if args.lexicon else None
    m = evaluate(args.model, args.data, out_tsv=args.out_tsv, batch_size=args.batch_size, device=str(resolve_device(args.device)),
                 show_progress=True, lexicon=lexicon)
    if args.json:
        print(json.dumps(m, ensure_ascii=False))
    else:
        print(format_text_metrics(m))
        if m.get("dropped"):
            print(f"({m['dropped']} images wider than the canvas were not evaluated)")
    return 0


