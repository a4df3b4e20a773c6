"""The `htraug` command: one entry point, subcommands registered by each package's cli module."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each module exposes `register(subparsers)` adding its subcommands; handlers are set with
# `parser.set_defaults(func=...)` and take the parsed namespace, returning an exit code.
COMMAND_MODULES = (
    "datasets.cli",   # data build / data import / data stats
    "htr.cli",        # htr train / htr eval
    "gan.cli",        # gan train / gan generate
    "benchmark.metrics.cli",  # metrics fid / kid / gs / text / readability
    "benchmark.study_cli",    # study run / report / compare
    "benchmark.perf.cli",     # bench
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="htraug",
        description="Benchmark suite for handwritten-text-recognition data augmentation with a "
                    "word-conditioned GAN (Alonso et al., ICDAR 2019).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from datasets.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"htraug: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("htraug: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `htraug ... | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except MemoryError:
        print("htraug: error: out of memory (try a smaller --batch-size or profile)", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("HTRAUG_DEBUG"):
            raise
        print(f"htraug: internal error: {type(exc).__name__}: {exc} (set HTRAUG_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def add_group(sub, name: str, help: str) -> argparse._SubParsersAction:
    """Add a command group (e.g. `htraug data ...`) and return its sub-parsers."""
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=lambda args, p=p: (p.print_help(), 2)[1])
    return p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


if __name__ == "__main__":
    sys.exit(main())
