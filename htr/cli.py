"""`htraug htr train|eval`: the recognizer from the command line."""
from __future__ import annotations

import json
from pathlib import Path

from datasets.distributed import DEVICES_HELP, resolve_device
from datasets.format import read_lines
from datasets.errors import UserError
from datasets.options import add_arguments, from_args, positive_int
from datasets.files import check_new_file, read_jsonl
from datasets.runs import LOG, RESUME_RULE, RunDir

from .scoring import TextNormalization, format_text_metrics


def register(group) -> None:
    """Fill the `htr` command group (train, eval, recognize, export)."""
    _add_train_parser(group)
    _add_eval_parser(group)
    _add_recognize_parser(group)
    _add_export_parser(group)


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
                                   "ED and WER, case-sensitive and case-insensitive. WER is the share of images "
                                   "not transcribed exactly (word images; `word_accuracy` = 100 - WER), `line_wer` "
                                   "the word-level edit distance (text lines).")
    p.add_argument("--model", required=True, metavar="RUN", help="run directory (uses best.pt) or checkpoint file")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset directory")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--out-tsv", default=None, metavar="FILE", help="per-image predictions: path, reference, hypothesis")
    p.add_argument("--lexicon", default=None, metavar="FILE", help="snap each hypothesis to the closest word of FILE (one per line)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="B", help="images per forward pass (default 64)")
    p.add_argument("--device", default="cpu", help=DEVICES_HELP)
    add_arguments(p, TextNormalization)
    p.set_defaults(func=eval_command)


def train_command(args) -> int:
    from .checkpoint import CHECKPOINT
    from .config import HtrTrainConfig
    from .train import train

    cfg = from_args(HtrTrainConfig, args, RunDir(args.out, CHECKPOINT).stored_config(HtrTrainConfig) if getattr(args, "resume", False) else {})
    run = train(cfg)
    summary = _best_summary(run)
    if summary:
        print(summary)
    return 0


def _best_summary(run: Path) -> str:
    """One line describing the best validation of a run (of its last attempt after a stall
    restart, the one best.pt holds), from its log."""
    records = read_jsonl(run / LOG)
    restarts = [i for i, e in enumerate(records) if e.get("event") == "restart"]
    entries = [e for e in records[restarts[-1] + 1 if restarts else 0:] if "val_cer" in e]
    if not entries:
        return f"{run}: no validation yet"
    best = min(entries, key=lambda e: e["val_cer"])
    restarted = f", after {len(restarts)} stall restart(s)" if restarts else ""
    return (f"{run}: best val ED {best['val_cer']:.2f}% WER {best['val_wer']:.2f}% "
            f"(epoch {best['epoch']}, step {best['step']}); {len(entries)} validations{restarted}")


def read_lexicon(path) -> list[str] | None:
    """The words of a --lexicon file (one per line); a file without words is an error."""
    if path is None:
        return None
    words = [w.strip() for w in read_lines(path) if w.strip()]
    if not words:
        raise UserError(f"{path}: the lexicon has no words (one word per line)")
    return words


def eval_command(args) -> int:
    from .evaluate import evaluate

    lexicon = read_lexicon(args.lexicon)
    check_new_file(args.out_tsv)
    m = evaluate(args.model, args.data, out_tsv=args.out_tsv, batch_size=args.batch_size, device=str(resolve_device(args.device)),
                 show_progress=True, lexicon=lexicon, normalization=from_args(TextNormalization, args))
    if args.json:
        print(json.dumps(m, ensure_ascii=False))
    else:
        print(format_text_metrics(m))
        if m.get("dropped"):
            print(f"({m['dropped']} images wider than the canvas were not evaluated)")
    return 0




def _add_recognize_parser(htr) -> None:
    from .recognize import CONFIDENCE_HELP, IMAGE_SUFFIXES

    p = htr.add_parser(
        "recognize", help="transcribe image files (PNG, JPEG, TIFF, ...) with a trained recognizer",
        description="Transcribe word images with a recognizer: a run directory or checkpoint, or a file written by "
                    "`htraug htr export` (ONNX through onnxruntime, or TorchScript). Every image is preprocessed as "
                    "in training: greyscale, isometric resize to the model's canvas height, white padding to its "
                    "width on the side the script ends (the model's direction), values in [-1, 1]; images are read "
                    "in batches and decoded greedily. Output: path, text and confidence per image (TSV with a "
                    f"header, or JSON). The {CONFIDENCE_HELP}.",
        epilog="An image that cannot be read, or that is wider than the canvas once resized (training drops those "
               "too), is reported on stderr and skipped; the others are still recognized, and a summary line "
               "counts both. Exit status: 0 when every image was recognized, 1 when some were skipped, 2 when "
               f"none could be. Folders are read for files named *{', *'.join(IMAGE_SUFFIXES)} (not recursively).",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--model", required=True, metavar="RUN", help="run directory (best.pt), checkpoint, or exported "
                   ".onnx / TorchScript file")
    p.add_argument("--list", default=None, metavar="FILE", help="also read the images listed in FILE, one path per "
                   "line (or the first tab-separated field: a labels.tsv works), relative to FILE's folder")
    p.add_argument("--lexicon", default=None, metavar="FILE", help="snap each transcription to the closest word of "
                   "FILE (one per line); the greedy text is kept in a 'greedy' column")
    p.add_argument("--out", default=None, metavar="FILE", help="write the results to FILE (TSV; JSON with --json "
                   "or a .json name) instead of standard output")
    p.add_argument("--json", action="store_true", help="JSON instead of TSV (with the skipped files and why)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="B", help="images per forward pass (default 64)")
    p.add_argument("--device", default="cpu", help=DEVICES_HELP + " (checkpoints and TorchScript; ONNX runs on the CPU)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N", help="CPU threads of torch and onnxruntime "
                   "(default: torch's; 1 is best on a busy machine)")
    p.set_defaults(func=recognize_command)


def recognize_command(args) -> int:
    import sys

    from .recognize import collect_images, open_recognizer, recognize_files, results_json, results_tsv, write_results

    from datasets.cpus import torch_threads

    paths = collect_images(args.images, args.list)
    lexicon = read_lexicon(args.lexicon)
    check_new_file(args.out)
    with torch_threads(args.threads):
        rec = open_recognizer(args.model, str(resolve_device(args.device)))
        done, skipped = recognize_files(rec, paths, args.batch_size, lexicon,
                                        on_skip=lambda why: print(f"htraug: warning: {why}", file=sys.stderr),
                                        show_progress=args.out is not None)
    as_json = args.json or (args.out is not None and args.out.lower().endswith(".json"))
    text = results_json(done, skipped, rec, args.model, bool(lexicon)) if as_json else results_tsv(done, bool(lexicon))
    if not done:
        raise UserError(f"none of the {len(paths)} images could be recognized (see the warnings above)")
    if args.out is not None:
        write_results(text, args.out)
    else:
        sys.stdout.write(text)
    wide = sum(1 for s in skipped if s["problem"] == "too wide")
    unreadable = len(skipped) - wide
    extra = f" ({unreadable} unreadable, {wide} too wide for the canvas)" if skipped else ""
    where = f" → {args.out}" if args.out is not None else ""
    print(f"recognized {len(done)} of {len(paths)} images{extra}{where}", file=sys.stderr)
    return 1 if skipped else 0


def _add_export_parser(htr) -> None:
    p = htr.add_parser(
        "export", help="export a trained recognizer to ONNX or TorchScript (alphabet and preprocessing inside)",
        description="Write a recognizer as an ONNX model (metadata_props key 'htraug') or a TorchScript archive "
                    "(extra file htraug.json) that carries its alphabet, script direction, canvas and preprocessing. "
                    "Input 'images': float32 (batch, 1, height, width), the canvas scaled to [-1, 1] (white = +1); "
                    "output 'log_probs': float32 (frames, batch, classes), class 0 the CTC blank. The batch size is "
                    "free. The file is checked against the checkpoint on a batch (ONNX with onnxruntime, when "
                    "installed) and written only when every output agrees within 1e-4. "
                    "`htraug htr recognize --model FILE` reads images with it.")
    p.add_argument("--model", required=True, metavar="RUN", help="run directory (best.pt) or checkpoint file")
    p.add_argument("--out", required=True, metavar="FILE", help="output file: *.onnx, or *.pt for TorchScript")
    p.add_argument("--format", choices=("onnx", "torchscript"), default=None,
                   help="export format (default: from the --out file name)")
    p.set_defaults(func=export_command)


def export_command(args) -> int:
    from datasets.export import export_summary

    from .export import export_recognizer

    check_new_file(args.out)
    print(export_summary(export_recognizer(args.model, args.out, args.format)))
    return 0
