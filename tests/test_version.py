"""`htraug --version`, and the Python htraug needs (≥ 3.11: the study's TOML configs are read
with the standard library's tomllib), stated the same way by pyproject.toml, run_all.sh and the CLI."""
from __future__ import annotations

from importlib import metadata
from pathlib import Path
import re
import subprocess
import sys
import tomllib
from types import SimpleNamespace

import pytest

from benchmark.cli import main
from datasets.errors import UserError
from datasets.version import MIN_PYTHON, package_version, python_problem

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"htraug {PYPROJECT['project']['version']}"
    assert package_version() == metadata.version("htraug") == PYPROJECT["project"]["version"]


def test_version_from_the_installed_command():
    exe = Path(sys.executable).with_name("htraug")
    if not exe.is_file():
        pytest.skip("the htraug command is not installed beside this Python")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"htraug {PYPROJECT['project']['version']}"


def test_one_minimum_python_everywhere():
    need = ".".join(map(str, MIN_PYTHON))
    assert PYPROJECT["project"]["requires-python"] == f">={need}"
    script = (ROOT / "run_all.sh").read_text(encoding="utf-8")
    assert f"sys.version_info < ({MIN_PYTHON[0]}, {MIN_PYTHON[1]})" in script
    assert not re.search(r"3\.10|\(3, 10\)", script)
    assert sys.version_info[:2] >= MIN_PYTHON and python_problem() is None
    assert python_problem((3, 10, 12)) == f"htraug needs Python ≥ {need} (this is Python 3.10.12)"


def test_too_old_python_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr("datasets.version.sys", SimpleNamespace(version_info=(3, 10, 4, "final", 0)))
    assert main(["data", "--help"]) == 2
    assert capsys.readouterr().err == "htraug: error: htraug needs Python ≥ 3.11 (this is Python 3.10.4)\n"


def test_toml_study_config_reads_with_the_standard_library(tmp_path):
    from benchmark.study import load_study_config

    good = tmp_path / "study.toml"
    good.write_text('profile = "smoke"\nseed = 3\ndatasets = ["rimes-like"]\n[overrides]\nhtr_seeds = 1\n', encoding="utf-8")
    cfg = load_study_config(config_file=good)
    assert (cfg.seed, cfg.profile.htr_seeds, [d.name for d in cfg.datasets]) == (3, 1, ["rimes-like"])
    bad = tmp_path / "bad.toml"
    bad.write_text('profile = "smoke\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.toml: invalid TOML \(.*line 1"):
        load_study_config(config_file=bad)
