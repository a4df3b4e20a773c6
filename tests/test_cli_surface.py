"""The `htraug` command-line surface stays: every recorded flag is still accepted, every user error stays readable.

`tests/data/cli_surface.json` records the subcommands, options and positional arguments of
htraug 0.1.0 (see `cli_surface`); the bad-input table checks that each error still names what
the user got wrong, in one line, without a traceback.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import build_parser, main

RECORDED_PATH = Path(__file__).parent / "data" / "cli_surface.json"


# --- the parser walker (also what produced the recorded surface) ------------------------------

def command_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command path, parser) for every subcommand of the tree, e.g. ("htr train", parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = prefix + (name,)
                yield " ".join(path), sub
                yield from command_parsers(sub, path)


def option_record(action: argparse.Action) -> dict:
    """Whether an option takes a value (and whether it may be given without one), and its choices if it has any."""
    record = {"takes_value": action.nargs != 0}
    if action.nargs == "?":
        record["value_optional"] = True
    if action.choices is not None:
        record["choices"] = sorted(action.choices)
    return record


def parser_surface(parser: argparse.ArgumentParser) -> dict:
    """Option strings and positional argument names of one (sub)command."""
    options, positionals = {}, []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue  # its choices are commands of their own
        if action.option_strings:
            options.update({flag: option_record(action) for flag in action.option_strings})
        else:
            positionals.append(action.dest)
    return {"options": options, "positionals": positionals}


def cli_surface(parser: argparse.ArgumentParser) -> dict:
    """The surface of every subcommand, keyed by command path."""
    return {path: parser_surface(sub) for path, sub in command_parsers(parser)}


# --- comparing the recorded surface with the current parser ----------------------------------

def option_problems(command: str, flag: str, recorded: dict, current: dict | None) -> list[str]:
    """Ways in which the current option no longer accepts what the recorded one did."""
    where = f"htraug {command} {flag}"
    if current is None:
        return [f"{where}: option disappeared"]
    problems = []
    if recorded["takes_value"] != current["takes_value"] and not current.get("value_optional"):
        was = "took a value" if recorded["takes_value"] else "was a flag without value"
        problems.append(f"{where}: {was}, now takes_value={current['takes_value']}")
    if "choices" in recorded and "choices" in current:
        lost = sorted(set(recorded["choices"]) - set(current["choices"]))
        if lost:
            problems.append(f"{where}: choices no longer accepted: {', '.join(lost)}")
    return problems


def surface_problems(recorded: dict, current: dict) -> list[str]:
    """Every recorded command, option, choice or positional that the current surface lost."""
    problems = []
    for command, want in sorted(recorded.items()):
        have = current.get(command)
        if have is None:
            problems.append(f"htraug {command}: subcommand disappeared")
            continue
        for flag, option in sorted(want["options"].items()):
            problems += option_problems(command, flag, option, have["options"].get(flag))
        if want["positionals"] != have["positionals"]:
            problems.append(f"htraug {command}: positionals {want['positionals']} became {have['positionals']}")
    return problems


def recorded_commands() -> dict:
    """The recorded surface, command path -> options and positionals."""
    return json.loads(RECORDED_PATH.read_text(encoding="utf-8"))["commands"]


def test_recorded_surface_covers_every_command_group():
    recorded = recorded_commands()
    for command in ("data build", "data import", "data stats", "htr train", "htr eval", "gan train",
                    "gan generate", "gan samples", "metrics fid", "metrics text", "study run", "report",
                    "compare", "bench"):
        assert recorded[command]["options"], f"htraug {command}: nothing recorded"
    assert recorded["htr train"]["options"]["--batch-size"] == {"takes_value": True}
    assert recorded["gan train"]["options"]["--no-attention"] == {"takes_value": False}


def test_every_recorded_flag_is_still_accepted():
    problems = surface_problems(recorded_commands(), cli_surface(build_parser()))
    assert not problems, "command-line surface lost:\n" + "\n".join(problems)


def test_a_flag_that_now_takes_an_optional_value_is_still_accepted():
    current = copy.deepcopy(recorded_commands())
    current["htr train"]["options"]["--augment"] = {"takes_value": True, "value_optional": True}
    assert surface_problems(recorded_commands(), current) == []
    assert cli_surface(build_parser())["htr train"]["options"]["--amp"] == {
        "takes_value": True, "value_optional": True, "choices": ["auto", "off", "on"]}


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s.pop("gan samples"), "htraug gan samples: subcommand disappeared"),
    (lambda s: s["htr train"]["options"].pop("--lr-schedule"), "htraug htr train --lr-schedule: option disappeared"),
    (lambda s: s["htr train"]["options"]["--augment"].update(takes_value=True), "htraug htr train --augment: was a flag"),
    (lambda s: s["htr train"]["options"]["--lr"].update(takes_value=False), "htraug htr train --lr: took a value"),
    (lambda s: s["gan train"]["options"]["--loss"]["choices"].remove("lsgan"), "choices no longer accepted: lsgan"),
    (lambda s: s["compare"]["positionals"].reverse(), "htraug compare: positionals"),
], ids=["command", "option", "flag-now-takes-value", "value-now-flag", "choice", "positionals"])
def test_surface_check_reports_each_kind_of_loss(mutate, expected):
    current = copy.deepcopy(recorded_commands())
    mutate(current)
    problems = surface_problems(recorded_commands(), current)
    assert any(expected in p for p in problems), problems


# --- bad input: one readable error line, non-zero exit, no traceback -------------------------

# (case id, argv, substrings the last stderr line must contain). Paths are relative to a
# scratch directory holding the files written by `scratch_dir`; nothing named here exists unless
# that fixture writes it.
HTR_TRAIN = ["htr", "train", "--train", "train", "--val", "val", "--out", "run"]
GAN_TRAIN = ["gan", "train", "--data", "data", "--out", "run"]
GAN_GENERATE = ["gan", "generate", "--model", "gan-run", "--out", "generated"]
GAN_SAMPLES = ["gan", "samples", "--model", "gan-run", "--out", "samples.png"]
DATA_IMPORT = ["data", "import", "--format", "tsv", "--root", "root", "--out", "imported"]
STUDY_RUN = ["study", "run", "--profile", "smoke", "--out", "study", "--dry-run"]
IMAGES = ["--real", "images.npy", "--fake", "images.npy"]

BAD_INPUTS = [
    ("unknown-command", ["frobnicate"], ["frobnicate"]),
    ("unknown-htr-subcommand", ["htr", "frobnicate"], ["frobnicate"]),
    ("htr-train-without-train", ["htr", "train", "--val", "val", "--out", "run"], ["--train"]),
    ("htr-train-batch-size-0", [*HTR_TRAIN, "--batch-size", "0"], ["--batch-size"]),
    ("htr-train-batch-size-not-int", [*HTR_TRAIN, "--batch-size", "abc"], ["--batch-size", "abc"]),
    ("htr-train-optimizer-sgd", [*HTR_TRAIN, "--optimizer", "sgd"], ["--optimizer", "sgd"]),
    ("htr-train-cosine-with-lr-factor", [*HTR_TRAIN, "--lr-schedule", "cosine", "--lr-factor", "0.5"],
     ["--lr-schedule", "--lr-factor"]),
    ("htr-train-extra-ratio-1.5", [*HTR_TRAIN, "--extra", "synthetic", "--extra-ratio", "1.5"],
     ["--extra-ratio", "1.5"]),
    ("htr-train-extra-ratio-without-extra", [*HTR_TRAIN, "--extra-ratio", "0.5"], ["--extra-ratio", "--extra "]),
    ("htr-train-dropout-1.5", [*HTR_TRAIN, "--dropout", "1.5"], ["--dropout", "1.5"]),
    ("htr-train-height-8", [*HTR_TRAIN, "--height", "8"], ["--height", "8"]),
    ("htr-train-lr-factor-2", [*HTR_TRAIN, "--lr-factor", "2"], ["--lr-factor", "2"]),
    ("htr-train-patience-0", [*HTR_TRAIN, "--patience", "0"], ["--patience"]),
    ("htr-train-device-tpu", [*HTR_TRAIN, "--device", "tpu"], ["--device", "tpu"]),
    ("htr-eval-missing-model", ["htr", "eval", "--model", "does-not-exist", "--data", "data"], ["does-not-exist"]),
    ("htr-eval-without-data", ["htr", "eval", "--model", "does-not-exist"], ["--data"]),
    ("gan-train-alpha-abc", [*GAN_TRAIN, "--alpha", "abc"], ["alpha", "abc"]),
    ("gan-train-alpha-negative", [*GAN_TRAIN, "--alpha", "-1"], ["alpha", "-1"]),
    ("gan-train-loss-wgan", [*GAN_TRAIN, "--loss", "wgan"], ["--loss", "wgan"]),
    ("gan-train-cond-foo", [*GAN_TRAIN, "--cond", "foo"], ["--cond", "foo"]),
    ("gan-train-d-norm-foo", [*GAN_TRAIN, "--d-norm", "foo"], ["--d-norm", "foo"]),
    ("gan-train-batch-size-1", [*GAN_TRAIN, "--batch-size", "1"], ["batch-size", "2"]),
    ("gan-train-lr-0", [*GAN_TRAIN, "--lr", "0"], ["lr", "0"]),
    ("gan-train-iterations-0", [*GAN_TRAIN, "--iterations", "0"], ["iterations"]),
    ("gan-train-profile-huge", [*GAN_TRAIN, "--profile", "huge"], ["--profile", "huge"]),
    ("gan-train-without-data", ["gan", "train", "--out", "run"], ["--data"]),
    ("gan-train-without-out", ["gan", "train", "--data", "data"], ["--out"]),
    ("gan-generate-n-0", [*GAN_GENERATE, "--n", "0"], ["--n", "0"]),
    ("gan-generate-batch-size-0", [*GAN_GENERATE, "--n", "5", "--batch-size", "0"], ["--batch-size", "0"]),
    ("gan-generate-missing-model", ["gan", "generate", "--model", "does-not-exist", "--n", "5", "--out", "generated"],
     ["does-not-exist"]),
    ("gan-samples-n-words-0", [*GAN_SAMPLES, "--n-words", "0"], ["--n-words"]),
    ("gan-samples-n-styles-0", [*GAN_SAMPLES, "--n-styles", "0"], ["--n-styles"]),
    ("gan-samples-missing-model", ["gan", "samples", "--model", "does-not-exist", "--out", "samples.png"],
     ["does-not-exist"]),
    ("data-build-dataset-foo", ["data", "build", "--dataset", "foo", "--out", "built"], ["--dataset", "foo"]),
    ("data-build-without-out", ["data", "build", "--dataset", "rimes-like"], ["--out"]),
    ("data-import-format-foo", ["data", "import", "--format", "foo", "--root", "root", "--out", "imported"],
     ["--format", "foo"]),
    ("data-import-list-bad", [*DATA_IMPORT, "--list", "bad"], ["--list", "bad", "SPLIT=FILE"]),
    ("data-import-list-twice", [*DATA_IMPORT, "--list", "train=a.tsv", "--list", "train=b.tsv"], ["--list", "train"]),
    ("data-import-missing-root", ["data", "import", "--format", "tsv", "--root", "does-not-exist", "--out", "imported"],
     ["--root", "does-not-exist"]),
    ("data-stats-missing-dir", ["data", "stats", "does-not-exist"], ["does-not-exist"]),
    ("data-stats-without-dir", ["data", "stats"], ["DIR"]),
    ("metrics-fid-missing-real", ["metrics", "fid", "--real", "no-real-here", "--fake", "images.npy"], ["no-real-here"]),
    ("metrics-fid-missing-fake", ["metrics", "fid", "--real", "images.npy", "--fake", "no-fake-here"], ["no-fake-here"]),
    ("metrics-fid-inception-without-weights", ["metrics", "fid", *IMAGES, "--features", "inception"],
     ["--inception-weights", "HTRAUG_INCEPTION_WEIGHTS"]),
    ("metrics-fid-inception-weights-missing", ["metrics", "fid", *IMAGES, "--inception-weights", "no-weights.pth"],
     ["no-weights.pth"]),
    ("metrics-fid-features-resnet", ["metrics", "fid", *IMAGES, "--features", "resnet"], ["--features", "resnet"]),
    ("metrics-fid-htr-without-judge", ["metrics", "fid", *IMAGES, "--features", "htr"], ["--judge"]),
    ("metrics-kid-missing-real", ["metrics", "kid", "--real", "no-real-here", "--fake", "images.npy"], ["no-real-here"]),
    ("metrics-kid-inception-without-weights", ["metrics", "kid", *IMAGES], ["--inception-weights"]),
    ("metrics-gs-missing-real", ["metrics", "gs", "--real", "no-real-here", "--fake", "images.npy"], ["no-real-here"]),
    ("metrics-gs-without-fake", ["metrics", "gs", "--real", "images.npy"], ["--fake"]),
    ("metrics-readability-missing-judge", ["metrics", "readability", "--fake", "images.npy", "--judge", "no-judge-here"],
     ["no-judge-here"]),
    ("metrics-text-line-counts-differ", ["metrics", "text", "--ref", "ref.txt", "--hyp", "hyp.txt"],
     ["ref.txt", "2", "hyp.txt", "3"]),
    ("metrics-text-missing-ref", ["metrics", "text", "--ref", "no-ref.txt", "--hyp", "hyp.txt"], ["no-ref.txt"]),
    ("metrics-text-without-hyp", ["metrics", "text", "--ref", "ref.txt"], ["--hyp"]),
    ("study-run-jobs-0", [*STUDY_RUN, "--jobs", "0"], ["--jobs", "0"]),
    ("study-run-shard-5/2", [*STUDY_RUN, "--shard", "5/2"], ["--shard", "5/2"]),
    ("study-run-shard-abc", [*STUDY_RUN, "--shard", "abc"], ["--shard", "abc"]),
    ("study-run-profile-huge", ["study", "run", "--profile", "huge"], ["--profile", "huge"]),
    ("study-run-seed-negative", [*STUDY_RUN, "--seed", "-1"], ["seed", "-1"]),
    ("study-run-config-unknown-key", ["study", "run", "--config", "unknown-key.json", "--dry-run"],
     ["unknown-key.json", "bogus_key"]),
    ("study-run-config-invalid-json", ["study", "run", "--config", "invalid.json", "--dry-run"], ["invalid.json", "JSON"]),
    ("study-run-config-invalid-toml", ["study", "run", "--config", "invalid.toml", "--dry-run"], ["invalid.toml", "TOML"]),
    ("study-run-config-unknown-override-json", ["study", "run", "--config", "override.json", "--dry-run"],
     ["override.json", "no_such_field"]),
    ("study-run-config-unknown-override-toml", ["study", "run", "--config", "override.toml", "--dry-run"],
     ["override.toml", "no_such_field"]),
    ("study-run-config-missing", ["study", "run", "--config", "no-such-config.toml", "--dry-run"],
     ["no-such-config.toml"]),
    ("study-merge-without-results", ["study", "merge", "empty"], ["results.json"]),
    ("study-merge-without-dirs", ["study", "merge"], ["DIR"]),
    ("report-without-results", ["report", "empty"], ["results.json"]),
    ("report-missing-dir", ["report", "no-such-study"], ["no-such-study"]),
    ("compare-missing-files", ["compare", "no-baseline.json", "no-results.json"], ["no-baseline.json"]),
    ("compare-without-results", ["compare", "no-baseline.json"], ["RESULTS"]),
    ("bench-compile-mode-foo", ["bench", "--compile-mode", "foo"], ["--compile-mode", "foo"]),
    ("bench-batch-not-int", ["bench", "--batch", "abc"], ["--batch", "abc"]),
]


@pytest.fixture
def scratch_dir(tmp_path, monkeypatch):
    """A working directory with the few small files the bad-input cases name."""
    files = {
        "ref.txt": "un\ndeux\n",
        "hyp.txt": "un\ndeux\ntrois\n",
        "unknown-key.json": '{"profile": "smoke", "bogus_key": 1}\n',
        "invalid.json": '{"profile": "smoke",\n',
        "invalid.toml": 'profile = \n',
        "override.json": '{"overrides": {"no_such_field": 3}}\n',
        "override.toml": '[overrides]\nno_such_field = 3\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    np.save(tmp_path / "images.npy", np.zeros((4, 16, 64), np.uint8))
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HTRAUG_DEBUG", raising=False)
    monkeypatch.delenv("HTRAUG_INCEPTION_WEIGHTS", raising=False)
    return tmp_path


def exit_code(argv: list[str]) -> int:
    """What `htraug ARGV` exits with, whether main returns or argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, expected", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_a_readable_error(argv, expected, scratch_dir, capsys):
    code = exit_code(argv)
    err = capsys.readouterr().err
    assert code not in (0, None), f"htraug {' '.join(argv)} exited {code!r}"
    assert err.strip(), "no error message on stderr"
    assert "Traceback" not in err and "internal error" not in err, err
    last_line = [line for line in err.splitlines() if line.strip()][-1]
    missing = [text for text in expected if text not in last_line]
    assert not missing, f"last stderr line {last_line!r} does not mention {missing}"


def test_bench_help_exits_0(capsys):
    assert exit_code(["bench", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: htraug bench")
