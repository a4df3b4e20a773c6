"""The `htraug` command: every (sub)command explains itself; bad input is one line, exit 2."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from benchmark.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix=()):
    """Every command path of the parser tree, e.g. ('data', 'build')."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _commands(sub, prefix + (name,))


ALL = sorted(set(_commands(build_parser())))


def test_every_expected_command_is_registered():
    names = {" ".join(c) for c in ALL}
    for want in ("data build", "data import", "htr train", "htr eval", "gan train", "gan generate",
                 "metrics fid", "metrics kid", "metrics gs", "metrics readability", "metrics text",
                 "study run", "report", "compare", "bench"):
        assert want in names, f"missing command: htraug {want}"


@pytest.mark.parametrize("path", ALL, ids=[" ".join(c) for c in ALL])
def test_help_explains_itself(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: htraug " + " ".join(path))
    assert len(out.splitlines()) >= 3


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", "htr", "eval", "--model", str(tmp_path / "none"),
                           "--data", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("htraug: error:") and "none" in lines[0]
    assert "Traceback" not in proc.stderr
