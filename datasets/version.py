"""htraug's version and the Python it needs: one answer for `htraug --version` and exported models."""
from __future__ import annotations

from pathlib import Path
import sys

DIST_NAME = "htraug"
MIN_PYTHON = (3, 11)   # the study's TOML configs are read with the standard library's tomllib


def package_version() -> str:
    """The version of this htraug: a source tree's pyproject.toml (so a checkout never reports a
    stale installed version), else the installed distribution's metadata, else "unknown"."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            project = {}
        if project.get("name") == DIST_NAME and isinstance(project.get("version"), str):
            return project["version"]
    from importlib import metadata

    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        return "unknown"


def python_problem(version_info=None) -> str | None:
    """A one-line reason when this Python is too old for htraug, else None."""
    v = tuple(version_info or sys.version_info)[:3]
    if v[:2] < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        return f"htraug needs Python ≥ {need} (this is Python {'.'.join(map(str, v))})"
    return None
