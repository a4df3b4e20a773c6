"""Fuzz harness: every subcommand × every class of bad input refused cleanly.

A case runs `htraug ARGV` in a scratch world (tiny datasets, a trained recognizer run, a trained
GAN run, a results file, plain files and folders) and expects: a non-zero exit (2), exactly one
line on stderr that starts with "htraug", says "error:" and names what was wrong, no traceback, no
"internal error", no temporary file name, and not one file of the world created, changed or
removed. The classes:

- numbers: every numeric flag of every subcommand (found by walking the parser) given -1, a
  word, NaN or infinity; bench's --only with an unknown measurement;
- output paths: OUT under a plain file, OUT an existing file, a directory where a file is
  written, a read-only file system and a full disk (faults injected below the project's file
  helpers, as the operating system would raise them);
- files: truncated, mistyped or non-UTF-8 config, tolerance, results, run and word files, broken
  checkpoints and datasets;
- runs: --resume of a missing run, a run resumed with other data;
- concurrent use: an output another process is writing (its lock held by a child process).

The fast cases run by default; the long tail (the remaining values of every numeric flag, the
commands whose refusal needs a model or a font pool loaded, real read-only and full tmpfs mounts
when the tests run as root) is marked slow. `python -m pytest tests/test_fuzz.py -m "slow or not
slow"` runs all of them; benchmark/RESULTS.md records the count.
"""
from __future__ import annotations

import argparse
import builtins
from contextlib import contextmanager
import errno
import io
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from benchmark.cli import build_parser, main

BASELINE = Path(__file__).resolve().parents[1] / "reports" / "baselines" / "smoke.json"


# --- the world ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory, make_tiny):
    """Inputs every case may name, built once: tr/ and va/ (16×64), run/ (a recognizer), gan/ (a
    GAN), study/results.json (the smoke baseline), files and folders to get wrong."""
    import torch

    from gan.train import GanTrainConfig, train as train_gan
    from htr.train import HtrTrainConfig, train as train_htr

    root = tmp_path_factory.mktemp("world")
    make_tiny(root / "tr", n=16)
    make_tiny(root / "va", n=8, seed=1)
    before = torch.get_num_threads()
    try:
        train_htr(HtrTrainConfig(train=str(root / "tr"), val=str(root / "va"), out=str(root / "run"), max_epochs=1,
                                 batch_size=8, width_mult=0.25, show_progress=False, threads=1))
        train_gan(GanTrainConfig(data=str(root / "tr"), out=str(root / "gan"), iterations=2, eval_every=2,
                                 batch_size=4, channel_mult=0.125, height=16, fid_n=0, gs_n=0, eval_words=4,
                                 htr_width_mult=0.25, progress=False, threads=1))
    finally:
        torch.set_num_threads(before)
    (root / "study").mkdir()
    shutil.copyfile(BASELINE, root / "study" / "results.json")
    (root / "tsvroot").mkdir()
    shutil.copytree(root / "tr" / "images", root / "tsvroot" / "images")
    shutil.copyfile(root / "tr" / "labels.tsv", root / "tsvroot" / "train.tsv")
    files = {
        "plain": "a plain file\n",
        "words.txt": "le\nmot\n",
        "empty.txt": "",
        "ref.txt": "le\nmot\n",
        "hyp.txt": "le\nmo\n",
        "good.toml": 'profile = "smoke"\n',
        "float.toml": 'profile = "smoke"\n[overrides]\nn_train = 160.5\n',
        "typo.toml": 'profile = "smoke"\n[overrides]\nhtr_lr = "fast"\n',
        "truncated.json": '{"profile": "smoke", "overrides": {"n_tr',
        "seed.json": '{"profile": "smoke", "seed": "zero"}',
        "tol-rules.json": '{"rules": 3}',
        "tol-default.json": '{"default": 3}',
        "tol-abs.json": '{"rules": [{"match": "*", "abs": "wide"}]}',
        "tol-match.json": '{"rules": [{"match": 3}]}',
        "tol-negative.json": '{"rules": [{"match": "*", "rel": -1}]}',
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    for name in ("latin1.toml", "latin1.txt", "latin1.json"):
        (root / name).write_bytes(b"profile = \"smoke\"\n# caf\xe9\n")
    (root / "adir").mkdir()
    np.save(root / "images.npy", np.zeros((4, 16, 64), np.uint8))
    (root / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "broken.pt").write_bytes(b"not a checkpoint")
    results = json.loads(BASELINE.read_text(encoding="utf-8"))
    first = next(iter(results["datasets"]))
    for name, change in {
        "nan-baseline": lambda r: r["datasets"][first]["htr"]["rows"]["real"].update(cer_mean=float("nan")),
        "null-baseline": lambda r: r["datasets"][first]["htr"]["rows"]["real"].update(cer_mean=None),
        "text-metric": lambda r: r["datasets"][first]["htr"]["rows"]["real"].update(cer_mean="low"),
        "rows-text": lambda r: r["datasets"][first]["htr"].update(rows="none"),
        "datasets-list": lambda r: r.update(datasets=[]),
        "not-results": lambda r: r.update(kind="something else"),
    }.items():
        doc = json.loads(json.dumps(results))
        change(doc)
        (root / name).mkdir()
        (root / name / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    # A run whose config.json is cut off, and one whose config.json has mistyped options.
    for name, text in (("run-truncated", '{"config": {"train": "tr", "val"'),
                       ("run-mistyped", None)):
        shutil.copytree(root / "run", root / name)
        cfg = root / name / "config.json"
        if text is None:
            obj = json.loads(cfg.read_text(encoding="utf-8"))
            obj["config"]["batch_size"] = "eight"
            text = json.dumps(obj)
        cfg.write_text(text, encoding="utf-8")
    shutil.copytree(root / "run", root / "run-broken-last")
    (root / "run-broken-last" / "last.pt").write_bytes(b"\x00" * 10)
    # A dataset with a truncated image and one with an invalid meta.json.
    shutil.copytree(root / "tr", root / "tr-bad-meta", ignore=shutil.ignore_patterns(".cache"))
    (root / "tr-bad-meta" / "meta.json").write_text('{"name": ', encoding="utf-8")
    shutil.copytree(root / "tr", root / "tr-latin1-labels", ignore=shutil.ignore_patterns(".cache"))
    (root / "tr-latin1-labels" / "labels.tsv").write_bytes(b"images/0000000.png\tl\xe9\n")
    shutil.copytree(root / "va", root / "va-other")
    (root / "va-other" / "labels.tsv").write_text(
        (root / "va" / "labels.tsv").read_text(encoding="utf-8").replace("\tle\n", "\tsort\n", 1), encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder of the world: size and modification time of files."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = ()
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


def run_case(world: Path, argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `htraug ARGV` in the world (cwd), checking nothing changed."""
    before = snapshot(world)
    cwd = os.getcwd()
    os.chdir(world)
    try:
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    after = snapshot(world)
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    assert not (created or removed or changed), f"htraug {' '.join(argv)}: created {created}, removed {removed}, changed {changed}"
    return code, err


def assert_refused(code, err: str, argv: list[str], expect: tuple[str, ...]) -> None:
    # as a terminal shows it: a progress bar redrawn with carriage returns is not a line of its own
    lines = [shown for line in err.split("\n") if (shown := line.rsplit("\r", 1)[-1]).strip()]
    shown = f"htraug {' '.join(argv)} → exit {code}, stderr {err!r}"
    assert code == 2, shown
    assert len(lines) == 1, shown
    line = lines[0]
    assert line.startswith("htraug") and "error:" in line, shown
    assert "internal error" not in err and "Traceback" not in err, shown
    assert ".tmp" not in line and "tmp-" not in line, f"{shown}: names a temporary file"
    missing = [e for e in expect if e not in line]
    assert not missing, f"{shown}: does not mention {missing}"


# --- numbers: every numeric flag of every subcommand --------------------------------------------

# The least a subcommand needs so that only the fuzzed flag is wrong (paths in the world).
BASE_ARGV = {
    "data build": ["--dataset", "rimes-like", "--out", "new-ds"],
    "data import": ["--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "new-imp"],
    "data stats": ["tr"],
    "htr train": ["--train", "tr", "--val", "va", "--out", "new-run", "--quiet"],
    "htr eval": ["--model", "run", "--data", "va"],
    "htr recognize": ["--model", "run", "tr/images"],
    "gan train": ["--data", "tr", "--out", "new-gan", "--height", "16", "--quiet"],
    "gan generate": ["--model", "gan", "--n", "3", "--out", "new-syn"],
    "gan samples": ["--model", "gan", "--out", "new.png"],
    "gan imitate": ["--model", "gan", "--style", "tr", "--words", "le", "--out", "new.png"],
    "metrics fid": ["--real", "images.npy", "--fake", "images.npy"],
    "metrics kid": ["--real", "images.npy", "--fake", "images.npy"],
    "metrics gs": ["--real", "images.npy", "--fake", "images.npy"],
    "metrics readability": ["--fake", "tr", "--judge", "run"],
    "metrics diversity": ["--real", "tr", "--fake", "tr"],
    "study run": ["--profile", "smoke", "--out", "new-study", "--dry-run"],
    "bench": ["--profile", "smoke", "--only", "frechet"],
}


def _commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield " ".join(prefix + (name,)), sub
                yield from _commands(sub, prefix + (name,))


def _numeric(action) -> str | None:
    """'int' or 'float' for a flag that takes a number, else None."""
    t = action.type
    name = getattr(t, "__name__", "")
    if t is int or name == "int":
        return "int"
    if t is float or name in ("float", "parse_none_or_float"):
        return "float"
    return None


def numeric_flags() -> list[tuple[str, str, str]]:
    """(command, flag, 'int' or 'float') for every numeric flag of every subcommand."""
    out = []
    for command, sub in _commands(build_parser()):
        for action in sub._actions:
            kind = _numeric(action) if action.option_strings else None
            if kind:
                out.append((command, max(action.option_strings, key=len), kind))
    return out


def _number_cases():
    fast, slow = [], []
    for command, flag, kind in numeric_flags():
        values = ["-1", "abc"] + (["nan"] if kind == "float" else [])
        more = ["inf", "1.5"] if kind == "int" else ["inf", "-inf", "-0.5"]
        fast += [(command, flag, v) for v in values]
        slow += [(command, flag, v) for v in more]
    return ([pytest.param(*c, id=f"{c[0]} {c[1]} {c[2]}") for c in fast]
            + [pytest.param(*c, id=f"{c[0]} {c[1]} {c[2]}", marks=pytest.mark.slow) for c in slow])


def test_every_subcommand_with_numeric_flags_has_a_base_command_line():
    commands = {c for c, _, _ in numeric_flags()}
    assert commands <= set(BASE_ARGV), f"no BASE_ARGV for {sorted(commands - set(BASE_ARGV))}"
    assert len(numeric_flags()) > 80


def _leaf_commands() -> set[str]:
    return {c for c, sub in _commands(build_parser())
            if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)}


def _command_of(argv: list[str]) -> str:
    leaves = _leaf_commands()
    return next(" ".join(argv[:k]) for k in (2, 1) if " ".join(argv[:k]) in leaves)


def test_every_subcommand_is_fuzzed():
    """A new subcommand needs cases here: each one appears in at least one class of bad input."""
    covered = {c for c, _, _ in numeric_flags()}
    covered |= {_command_of(argv) for _, argv, _ in CASES}
    covered |= {_command_of(argv) for _, argv in WRITERS + LOCKED}
    assert _leaf_commands() - covered == set()


@pytest.mark.parametrize("command, flag, value", _number_cases())
def test_numeric_flag_refuses_bad_numbers(world, capsys, command, flag, value):
    argv = [*command.split(), *BASE_ARGV[command], f"{flag}={value}"]
    code, err = run_case(world, argv, capsys)
    assert_refused(code, err, argv, (flag,))


# --- every other class of bad input, per subcommand ----------------------------------------------

# (id, argv, words the error must name); the world's paths are relative to its root.
CASES = [
    # bad values the options accept no more
    ("bench-only-unknown", ["bench", "--only", "foo"], ("--only", "foo")),
    ("bench-only-empty", ["bench", "--only", ","], ("--only",)),
    ("bench-profile-unknown", ["bench", "--profile", "huge"], ("--profile", "huge")),
    ("htr-train-max-steps-negative", ["htr", "train", "--train", "tr", "--val", "va", "--out", "x", "--max-steps", "-1"],
     ("--max-steps",)),
    ("htr-train-eval-every-negative", ["htr", "train", "--train", "tr", "--val", "va", "--out", "x", "--eval-every", "-1"],
     ("--eval-every",)),
    ("htr-train-max-minutes-negative", ["htr", "train", "--train", "tr", "--val", "va", "--out", "x", "--max-minutes", "-1"],
     ("--max-minutes",)),
    ("htr-eval-empty-lexicon", ["htr", "eval", "--model", "run", "--data", "va", "--lexicon", "empty.txt"],
     ("empty.txt", "lexicon")),
    ("htr-eval-latin1-lexicon", ["htr", "eval", "--model", "run", "--data", "va", "--lexicon", "latin1.txt"],
     ("latin1.txt", "UTF-8")),
    ("htr-recognize-empty-lexicon", ["htr", "recognize", "--model", "run", "tr/images", "--lexicon", "empty.txt"],
     ("empty.txt", "lexicon")),
    ("data-import-height-0", ["data", "import", "--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "x", "--height", "0",
                              "--width", "0"], ("--height",)),
    ("data-build-height-0", ["data", "build", "--dataset", "rimes-like", "--out", "x", "--height", "0"], ("--height",)),
    ("data-build-width-below-height", ["data", "build", "--dataset", "rimes-like", "--out", "x", "--height", "32",
                                       "--width", "16"], ("32x16", "width")),
    ("data-build-writers-2", ["data", "build", "--dataset", "rimes-like", "--out", "x", "--writers-per-font", "2"],
     ("--writers-per-font",)),
    ("gan-train-batch-size-1", ["gan", "train", "--data", "tr", "--out", "x", "--batch-size", "1"], ("--batch-size",)),
    # output paths
    ("data-build-out-under-file", ["data", "build", "--dataset", "rimes-like", "--out", "plain/ds", "--train", "2",
                                   "--val", "0", "--test", "0", "--height", "16", "--width", "64"], ("plain/ds", "plain is a file")),
    ("data-build-out-is-file", ["data", "build", "--dataset", "rimes-like", "--out", "plain", "--train", "2"],
     ("plain", "already exists")),
    ("data-build-overwrite-file", ["data", "build", "--dataset", "rimes-like", "--out", "plain", "--train", "2",
                                   "--val", "0", "--test", "0", "--height", "16", "--width", "64", "--overwrite"],
     ("plain", "is a file")),
    ("data-import-out-under-file", ["data", "import", "--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "plain/imp"],
     ("plain/imp", "plain is a file")),
    ("data-import-out-is-file", ["data", "import", "--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "plain"],
     ("plain", "already exists")),
    ("data-import-overwrite-file", ["data", "import", "--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "plain",
                                    "--overwrite"], ("plain", "is a file")),
    ("htr-train-out-under-file", ["htr", "train", "--train", "tr", "--val", "va", "--out", "plain/run", "--quiet"],
     ("plain/run", "plain is a file")),
    ("htr-train-out-is-file", ["htr", "train", "--train", "tr", "--val", "va", "--out", "plain", "--quiet"],
     ("plain", "is a file")),
    ("htr-eval-out-tsv-dir", ["htr", "eval", "--model", "run", "--data", "va", "--out-tsv", "adir"], ("adir", "directory")),
    ("htr-eval-out-tsv-under-file", ["htr", "eval", "--model", "run", "--data", "va", "--out-tsv", "plain/p.tsv"],
     ("plain/p.tsv", "plain is a file")),
    ("htr-recognize-out-dir", ["htr", "recognize", "--model", "run", "tr/images", "--out", "adir"], ("adir", "directory")),
    ("htr-export-out-under-file", ["htr", "export", "--model", "run", "--out", "plain/m.pt"], ("plain/m.pt", "plain is a file")),
    ("gan-train-out-under-file", ["gan", "train", "--data", "tr", "--out", "plain/g", "--height", "16", "--quiet"],
     ("plain/g", "plain is a file")),
    ("gan-train-out-is-file", ["gan", "train", "--data", "tr", "--out", "plain", "--height", "16", "--quiet"],
     ("plain", "is a file")),
    ("gan-generate-out-under-file", ["gan", "generate", "--model", "gan", "--n", "2", "--out", "plain/syn"],
     ("plain/syn", "plain is a file")),
    ("gan-generate-out-is-file", ["gan", "generate", "--model", "gan", "--n", "2", "--out", "plain"], ("plain", "already exists")),
    ("gan-generate-overwrite-file", ["gan", "generate", "--model", "gan", "--n", "2", "--out", "plain", "--overwrite"],
     ("plain", "is a file")),
    ("gan-samples-out-dir", ["gan", "samples", "--model", "gan", "--out", "adir"], ("adir", "directory")),
    ("gan-samples-out-under-file", ["gan", "samples", "--model", "gan", "--out", "plain/s.png"], ("plain/s.png", "plain is a file")),
    ("gan-export-out-under-file", ["gan", "export", "--model", "gan", "--out", "plain/g.pt"], ("plain/g.pt", "plain is a file")),
    ("report-out-under-file", ["report", "study", "--out", "plain/rep"], ("plain/rep", "plain is a file")),
    ("report-out-is-file", ["report", "study", "--out", "plain"], ("plain", "is a file")),
    ("study-merge-out-under-file", ["study", "merge", "study", "--out", "plain/m"], ("plain/m",)),
    # files: configs, tolerances, results, words, checkpoints, datasets
    ("study-config-latin1", ["study", "run", "--config", "latin1.toml", "--dry-run", "--out", "x"], ("latin1.toml", "UTF-8")),
    ("study-config-float-size", ["study", "run", "--config", "float.toml", "--dry-run", "--out", "x"],
     ("float.toml", "n_train", "160.5")),
    ("study-config-mistyped-lr", ["study", "run", "--config", "typo.toml", "--dry-run", "--out", "x"], ("typo.toml", "lr")),
    ("study-config-truncated", ["study", "run", "--config", "truncated.json", "--dry-run", "--out", "x"],
     ("truncated.json", "JSON")),
    ("study-config-seed-text", ["study", "run", "--config", "seed.json", "--dry-run", "--out", "x"], ("seed.json", "seed")),
    ("study-config-is-dir", ["study", "run", "--config", "adir", "--dry-run", "--out", "x"], ("adir",)),
    ("compare-tolerance-rules-number", ["compare", "study", "study", "--tolerance", "tol-rules.json"], ("tol-rules.json", "rules")),
    ("compare-tolerance-default-number", ["compare", "study", "study", "--tolerance", "tol-default.json"],
     ("tol-default.json", "default")),
    ("compare-tolerance-abs-text", ["compare", "study", "study", "--tolerance", "tol-abs.json"], ("tol-abs.json", "abs")),
    ("compare-tolerance-match-number", ["compare", "study", "study", "--tolerance", "tol-match.json"],
     ("tol-match.json", "match")),
    ("compare-tolerance-negative", ["compare", "study", "study", "--tolerance", "tol-negative.json"],
     ("tol-negative.json", "rel")),
    ("compare-tolerance-latin1", ["compare", "study", "study", "--tolerance", "latin1.json"], ("latin1.json",)),
    ("compare-nan-baseline", ["compare", "nan-baseline", "study"], ("nan-baseline", "cer_mean", "nan")),
    ("compare-null-baseline", ["compare", "null-baseline", "study"], ("null-baseline", "cer_mean", "null")),
    ("compare-text-metric", ["compare", "study", "text-metric"], ("text-metric", "cer_mean", "low")),
    ("compare-rows-text", ["compare", "rows-text", "study"], ("rows-text", "rows")),
    ("compare-datasets-list", ["compare", "study", "datasets-list"], ("datasets-list", "datasets")),
    ("compare-not-results", ["compare", "not-results", "study"], ("not-results",)),
    ("report-text-metric", ["report", "text-metric", "--out", "rep"], ("text-metric", "cer_mean")),
    ("report-rows-text", ["report", "rows-text", "--out", "rep"], ("rows-text", "rows")),
    ("gan-generate-latin1-words", ["gan", "generate", "--model", "gan", "--n", "2", "--out", "x", "--words", "latin1.txt"],
     ("latin1.txt", "UTF-8")),
    ("gan-generate-empty-words", ["gan", "generate", "--model", "gan", "--n", "2", "--out", "x", "--words", "empty.txt"],
     ("empty.txt",)),
    ("gan-generate-broken-model", ["gan", "generate", "--model", "broken.pt", "--n", "2", "--out", "x"], ("broken.pt",)),
    ("htr-eval-broken-model", ["htr", "eval", "--model", "broken.pt", "--data", "va"], ("broken.pt",)),
    ("htr-eval-bad-meta", ["htr", "eval", "--model", "run", "--data", "tr-bad-meta"], ("tr-bad-meta/meta.json", "JSON")),
    ("htr-eval-latin1-labels", ["htr", "eval", "--model", "run", "--data", "tr-latin1-labels"],
     ("tr-latin1-labels/labels.tsv", "UTF-8")),
    ("metrics-fid-broken-npy", ["metrics", "fid", "--real", "broken.npy", "--fake", "images.npy"], ("broken.npy",)),
    ("metrics-text-latin1", ["metrics", "text", "--ref", "latin1.txt", "--hyp", "hyp.txt"], ("latin1.txt", "UTF-8")),
    ("data-stats-bad-meta", ["data", "stats", "tr-bad-meta"], ("tr-bad-meta",)),
    # runs and the resume rule
    ("htr-train-resume-missing", ["htr", "train", "--train", "tr", "--val", "va", "--out", "no-run", "--resume"],
     ("no-run", "no run to resume")),
    ("gan-train-resume-missing", ["gan", "train", "--data", "tr", "--out", "no-run", "--height", "16", "--resume"],
     ("no-run", "no run to resume")),
    ("htr-train-resume-truncated-config", ["htr", "train", "--out", "run-truncated", "--resume"],
     ("run-truncated/config.json", "JSON")),
    ("htr-train-resume-mistyped-config", ["htr", "train", "--out", "run-mistyped", "--resume"],
     ("run-mistyped/config.json", "batch_size")),
    ("htr-train-resume-broken-last", ["htr", "train", "--out", "run-broken-last", "--resume", "--quiet"],
     ("run-broken-last/last.pt",)),
    ("htr-train-resume-other-data", ["htr", "train", "--out", "run", "--resume", "--val", "va-other", "--quiet"],
     ("run", "val")),
    ("htr-train-existing-run", ["htr", "train", "--train", "tr", "--val", "va", "--out", "run", "--quiet"],
     ("run", "--resume")),
    ("gan-train-existing-run", ["gan", "train", "--data", "tr", "--out", "gan", "--height", "16", "--quiet"],
     ("gan", "--resume")),
]


@pytest.mark.parametrize("argv, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(world, capsys, argv, expect):
    code, err = run_case(world, argv, capsys)
    assert_refused(code, err, argv, expect)


def test_resume_with_changed_dataset_contents_is_refused(world, capsys, tmp_path):
    """A run resumed on a training set whose labels changed (same path) is refused."""
    shutil.copytree(world / "run", tmp_path / "run")
    shutil.copytree(world / "tr", tmp_path / "tr")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    # the copies stand in for the originals: the run recorded tr/ where it was trained
    import torch
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    last["config"]["train"] = str(tmp_path / "tr")
    last["inputs"]["paths"]["train"] = str((tmp_path / "tr").resolve())
    torch.save(last, tmp_path / "run" / "last.pt")
    cfg["config"]["train"] = str(tmp_path / "tr")
    cfg["inputs"] = last["inputs"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    labels = tmp_path / "tr" / "labels.tsv"
    labels.write_text(labels.read_text(encoding="utf-8").replace("\tle\n", "\tsort\n", 1), encoding="utf-8")
    code = main(["htr", "train", "--out", str(tmp_path / "run"), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "changed since the run started" in err and "train" in err, err


# --- output faults: a read-only file system and a full disk ---------------------------------------

WRITERS = [
    ("data-import", ["data", "import", "--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "{d}/imp"]),
    ("htr-train", ["htr", "train", "--train", "tr", "--val", "va", "--out", "{d}/run", "--max-epochs", "1",
                   "--batch-size", "8", "--width-mult", "0.25", "--quiet", "--threads", "1"]),
    ("htr-eval", ["htr", "eval", "--model", "run", "--data", "va", "--out-tsv", "{d}/pred.tsv"]),
    ("htr-recognize", ["htr", "recognize", "--model", "run", "tr/images", "--out", "{d}/rec.tsv"]),
    ("gan-generate", ["gan", "generate", "--model", "gan", "--n", "3", "--out", "{d}/syn"]),
    ("gan-samples", ["gan", "samples", "--model", "gan", "--out", "{d}/s.png", "--n-words", "2", "--n-styles", "2"]),
    ("gan-train", ["gan", "train", "--data", "tr", "--out", "{d}/g", "--iterations", "2", "--eval-every", "2",
                   "--batch-size", "4", "--channel-mult", "0.125", "--height", "16", "--fid-n", "0", "--gs-n", "0",
                   "--eval-words", "4", "--htr-width-mult", "0.25", "--quiet", "--threads", "1"]),
    ("report", ["report", "study", "--out", "{d}/rep"]),
    ("data-build", ["data", "build", "--dataset", "rimes-like", "--out", "{d}/ds", "--train", "2", "--val", "0",
                    "--test", "0", "--height", "16", "--width", "64", "--workers", "1"]),
    ("htr-export", ["htr", "export", "--model", "run", "--out", "{d}/m.pt"]),
]
SLOW_WRITERS = {"data-build", "htr-export", "report", "gan-train"}


class Faults:
    """Operating-system failures below the project's file helpers, for paths under one folder:
    'rofs' fails every creation (EROFS), 'full' every write of data (ENOSPC)."""

    def __init__(self, monkeypatch, folder: Path, kind: str):
        self.folder, self.kind = str(folder.resolve()), kind
        self.fds: set[int] = set()
        err = (errno.EROFS, "Read-only file system") if kind == "rofs" else (errno.ENOSPC, "No space left on device")
        self.err = err
        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
        real_mkstemp, real_mkdtemp, real_fdopen = tempfile.mkstemp, tempfile.mkdtemp, os.fdopen
        faults = self

        def inside(path) -> bool:
            try:
                return os.path.abspath(os.fsdecode(path)).startswith(faults.folder)
            except TypeError:
                return False

        def fail(path):
            raise OSError(err[0], err[1], os.fsdecode(path))

        def wrap(f):
            return _FullFile(f, err) if kind == "full" else f

        def fake_open(file, mode="r", *a, **k):
            writes = any(c in mode for c in "wax+")
            if writes and not isinstance(file, int) and inside(file):
                if kind == "rofs":
                    fail(file)
                return wrap(real_open(file, mode, *a, **k))
            return real_open(file, mode, *a, **k)

        def fake_os_open(path, flags, *a, **k):
            if inside(path) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and kind == "rofs":
                fail(path)
            return real_os_open(path, flags, *a, **k)

        def fake_mkdir(path, *a, **k):
            if inside(path) and kind == "rofs":
                fail(path)
            return real_mkdir(path, *a, **k)

        def fake_mkstemp(*a, dir=None, **k):
            if dir is not None and inside(dir) and kind == "rofs":
                fail(dir)
            fd, name = real_mkstemp(*a, dir=dir, **k)
            if dir is not None and inside(dir):
                faults.fds.add(fd)
            return fd, name

        def fake_mkdtemp(*a, dir=None, **k):
            if dir is not None and inside(dir) and kind == "rofs":
                fail(dir)
            return real_mkdtemp(*a, dir=dir, **k)

        def fake_fdopen(fd, *a, **k):
            f = real_fdopen(fd, *a, **k)
            return wrap(f) if fd in faults.fds else f

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(os, "open", fake_os_open)
        monkeypatch.setattr(os, "mkdir", fake_mkdir)
        monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)
        monkeypatch.setattr(tempfile, "mkdtemp", fake_mkdtemp)
        monkeypatch.setattr(os, "fdopen", fake_fdopen)


class _FullFile:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, f, err):
        self._f, self._err = f, err

    def write(self, data):
        if len(data):
            raise OSError(self._err[0], self._err[1])
        return 0

    def fileno(self):                  # writers that would write the descriptor directly use write()
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()
        return False

    def __iter__(self):
        return iter(self._f)


def _fault_cases():
    out = []
    for kind, words in (("rofs", "read-only file system"), ("full", "no space left on device")):
        for name, argv in WRITERS:
            marks = [pytest.mark.slow] if name in SLOW_WRITERS else []
            out.append(pytest.param(kind, argv, words, id=f"{name}-{kind}", marks=marks))
    return out


@pytest.mark.parametrize("kind, argv, words", _fault_cases())
def test_output_faults_name_the_users_path(world, capsys, monkeypatch, one_thread, kind, argv, words):
    target = world / f"fault-{kind}"
    target.mkdir(exist_ok=True)
    argv = [a.replace("{d}", target.name) for a in argv]
    out_arg = next(a for a in argv if a.startswith(target.name))
    Faults(monkeypatch, target, kind)
    code, err = run_case(world, argv, capsys)
    monkeypatch.undo()
    assert_refused(code, err, argv, (words, out_arg))


# --- concurrent use: another process is writing the output ----------------------------------------

@contextmanager
def lock_held_elsewhere(out: Path):
    """A child process holds OUT's lock (as a running htraug command would)."""
    from datasets.files import lock_path

    lock = lock_path(out)
    code = ("import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, str(os.getpid()).encode())\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
        lock.unlink(missing_ok=True)


LOCKED = [
    ("data-build", ["data", "build", "--dataset", "rimes-like", "--out", "busy", "--train", "2", "--val", "0", "--test",
                    "0", "--height", "16", "--width", "64", "--workers", "1"]),
    ("data-import", ["data", "import", "--format", "tsv", "--root", "tsvroot", "--language", "fr", "--out", "busy"]),
    ("htr-train", ["htr", "train", "--train", "tr", "--val", "va", "--out", "busy", "--quiet"]),
    ("htr-train-resume", ["htr", "train", "--out", "run", "--resume", "--quiet"]),
    ("gan-train", ["gan", "train", "--data", "tr", "--out", "busy", "--height", "16", "--quiet"]),
    ("gan-generate", ["gan", "generate", "--model", "gan", "--n", "2", "--out", "busy"]),
    ("report", ["report", "study", "--out", "busy"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in LOCKED], ids=[c[0] for c in LOCKED])
def test_an_output_being_written_by_another_process_is_refused(world, capsys, argv):
    out = argv[argv.index("--out") + 1]
    with lock_held_elsewhere(world / out) as pid:
        code, err = run_case(world, argv, capsys)
    assert_refused(code, err, argv, (out, f"is being written by pid {pid}"))


# --- the slow tail: real read-only and full file systems (needs root to mount a tmpfs) -------------

@contextmanager
def _tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("kind", ["rofs", "full"])
@pytest.mark.parametrize("name, argv", WRITERS, ids=[w[0] for w in WRITERS])
def test_real_read_only_and_full_file_systems(world, capsys, one_thread, tmp_path, kind, name, argv):
    words = "read-only file system" if kind == "rofs" else "no space left on device"
    mount = tmp_path / "mnt"
    with _tmpfs(mount, "ro,size=1m" if kind == "rofs" else "size=8k,nr_inodes=64"):
        if kind == "full":
            try:                                          # fill what is left
                with open(mount / "filler", "wb") as f:
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
            except OSError:
                pass
        link = world / f"mnt-{kind}"
        link.symlink_to(mount)
        try:
            argv = [a.replace("{d}", link.name) for a in argv]
            out_arg = next(a for a in argv if a.startswith(link.name))
            before = sorted(os.listdir(mount))
            code, err = run_case(world, argv, capsys)
            assert sorted(os.listdir(mount)) == before, "files left on the full/read-only file system"
        finally:
            link.unlink()
    assert_refused(code, err, argv, (words, out_arg))
