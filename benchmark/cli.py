"""The `htraug` command: the root parser creates every command group and hands it to the package
that fills it (`datasets.cli.register(group)`, ...), so no package imports the root."""
from __future__ import annotations

import argparse
import os
import sys


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: "htraug htr train: error: ... (see htraug htr train --help)".
    Every command's parser is one (sub-parsers take their parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def command_group(sub, name: str, help: str) -> argparse._SubParsersAction:
    """Add a command group (e.g. `htraug data ...`) and return its sub-parsers."""
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=lambda args, p=p: (p.print_help(), 2)[1])
    return p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


def build_parser() -> argparse.ArgumentParser:
    """The full `htraug` parser; handlers are set with `set_defaults(func=...)` and return an exit code."""
    import datasets.cli
    import gan.cli
    import htr.cli
    from . import study_cli
    from .metrics import cli as metrics_cli
    from .metrics.generator import score_generator
    from .perf import cli as perf_cli
    from .profiles import PROFILES, gan_train_fields
    from datasets.version import package_version

    parser = Parser(
        prog="htraug",
        description="Benchmark suite for handwritten-text-recognition data augmentation with a "
                    "word-conditioned GAN (Alonso et al., ICDAR 2019).",
    )
    parser.add_argument("--version", action="version", version=f"htraug {package_version()}",
                        help="print the version of htraug and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    datasets.cli.register(command_group(sub, "data", "Build offline stand-in datasets, import real ones, show their statistics."))
    htr.cli.register(command_group(sub, "htr", "train and evaluate the gated-CNN/BiLSTM CTC recognizer"))
    gan.cli.register(command_group(sub, "gan", "word-conditioned GAN: train, generate synthetic datasets, draw sample grids"),
                     profiles={name: gan_train_fields(p) for name, p in PROFILES.items()},
                     scorer=score_generator)
    metrics_cli.register(command_group(sub, "metrics", "distribution and text metrics: FID, KID, Geometry Score, readability, ED/WER"))
    study_cli.register(sub, command_group(sub, "study", "run the whole benchmark study (data → GAN → synthetic data → HTR → results)"))
    perf_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from datasets.cpus import keep_freed_memory
    from datasets.errors import UserError
    from datasets.interrupts import Terminated, install
    from datasets.version import python_problem

    problem = python_problem()
    if problem:
        print(f"htraug: error: {problem}", file=sys.stderr)
        return 2
    install()          # SIGTERM unwinds like Ctrl-C: staging removed, locks released, last.pt written
    keep_freed_memory()  # no page faults on every training step's re-allocated buffers (datasets/cpus.py)
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
    except Terminated:
        print("htraug: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("htraug: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `htraug ... | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # The last resort for a file problem no command turned into a message of its own.
        if os.environ.get("HTRAUG_DEBUG"):
            raise
        from datasets.files import os_error_message
        where = exc.filename if getattr(exc, "filename", None) else "a file"
        print(f"htraug: error: {os_error_message(exc, where, 'access')}", file=sys.stderr)
        return 2
    except MemoryError:
        print("htraug: error: out of memory (try a smaller --batch-size or profile)", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("HTRAUG_DEBUG"):
            raise
        print(f"htraug: internal error: {type(exc).__name__}: {exc} (set HTRAUG_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
