"""The study's results file, as reports read it: its schema tag, the grid's row names, and
`load_results`. The study writes results.json with these names; reports and `compare` read it
through here and import nothing of the study itself."""
from __future__ import annotations

from pathlib import Path

from datasets.errors import UserError
from datasets.files import parse_json_file

SCHEMA_VERSION = 1
KIND = "htraug-study"
RESULTS_FILE = "results.json"
ROWS = ("real", "real+synthetic", "real+classic", "real+synthetic+classic", "synthetic")   # HTR training data
SWEEP_ROWS = ("real", "real+synthetic")   # the rows of the real-data-size sweep


def load_results(path) -> dict:
    """Read a results.json (or a study directory containing one) with one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"{path}: no {RESULTS_FILE} (run `htraug study run` first)")
    obj = parse_json_file(path)
    if not isinstance(obj, dict) or obj.get("kind") != KIND:
        raise UserError(f"{path}: not an htraug study results file")
    return obj
