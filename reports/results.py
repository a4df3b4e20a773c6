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
# HTR training data, each row the '+'-joined parts it trains on: real images, synthetic words, and
# classic augmentation of what it trains on ("synthetic+classic": generated words alone, distorted)
ROWS = ("real", "real+synthetic", "real+classic", "real+synthetic+classic", "synthetic", "synthetic+classic")
SWEEP_ROWS = ("real", "real+synthetic")   # the rows of the real-data-size sweep


def row_uses(row: str, part: str) -> bool:
    """Whether grid row `row` trains with `part` (real, synthetic or classic)."""
    return part in row.split("+")


def load_results(path) -> dict:
    """Read a results.json (or a study directory containing one) with one-line errors; its
    fields are type-checked (`check_results`) before anything reports them."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"{path}: no {RESULTS_FILE} (run `htraug study run` first)")
    obj = parse_json_file(path)
    if not isinstance(obj, dict) or obj.get("kind") != KIND:
        raise UserError(f"{path}: not an htraug study results file")
    check_results(obj, path)
    return obj


# What reports and `compare` read, by key: tables (objects), lists of objects, lists, and numbers
# (or null). A key elsewhere in the file is not checked; one of these with another type is an
# error naming the file and the field.
_TABLES = {"datasets", "stats", "judge", "test", "gan", "final", "htr", "rows", "seeds", "variants", "ablations",
           "synthetic", "change", "units", "timings", "versions", "profile", "config"}
_RECORDS = {"sweep", "log", "per_seed", "curve"}
_LISTS = {"grids", "samples", "missing", "warnings", "gan_departures"}
_NUMBERS = {"cer", "wer", "cer_ci", "wer_ci", "fid", "kid", "gs", "fid_inception", "readability_cer", "readability_wer",
            "diversity", "diversity_pixels", "gain_cer", "gain_wer", "fraction", "best_fid", "best_gs", "images",
            "words", "characters", "n", "n_real", "n_seeds", "loss_d", "d_share", "val_cer", "val_wer", "train_loss",
            "val_loss", "iteration", "step", "epoch", "fid_n", "gs_n", "gs_reps", "seed", "done", "expected",
            "paired_seeds", "paired_ahead", "synthetic_gan_seed"}
_NUMBER_SUFFIXES = ("_mean", "_std")
_NAMED = {"datasets", "rows", "variants", "ablations", "stats", "versions", "timings", "parameters"}


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def check_results(obj: dict, path) -> None:
    """Type-check the fields of a results file that reports and `compare` use (one-line errors
    naming the file and the field, e.g. "results.json: datasets.fr.htr.rows.real.cer_mean must
    be a number, got 'abc'")."""
    def fail(where: str, want: str, value) -> None:
        shown = repr(value) if isinstance(value, (str, int, float, bool)) else _type_name(value)
        raise UserError(f"{path}: {where} must be {want}, got {shown}")

    def walk(value, where: str, key: str | None, depth: int) -> None:
        if key in _TABLES and not isinstance(value, dict):
            fail(where, "a table (JSON object)", value)
        if key in _RECORDS:
            if not isinstance(value, list):
                fail(where, "a list", value)
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    fail(f"{where}[{i}]", "a table (JSON object)", item)
        if key in _LISTS and not isinstance(value, list):
            fail(where, "a list", value)
        if key is not None and (key in _NUMBERS or key.endswith(_NUMBER_SUFFIXES)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                fail(where, "a number or null", value)
        if isinstance(value, dict) and depth < 12:
            for k, v in value.items():     # the children of a table of names (datasets, rows, ...) are named freely
                walk(v, f"{where}.{k}" if where else str(k), None if key in _NAMED else str(k), depth + 1)
        elif isinstance(value, list) and depth < 12:
            for i, v in enumerate(value):
                if isinstance(v, (dict, list)):
                    walk(v, f"{where}[{i}]", None, depth + 1)

    walk({k: obj[k] for k in ("datasets", "units", "timings", "versions") if k in obj}, "", None, 0)
    for name, entry in (obj.get("datasets") or {}).items():
        if not isinstance(entry, dict):
            fail(f"datasets.{name}", "a table (JSON object)", entry)
        for i, point in enumerate(entry.get("sweep") or []):
            if not isinstance(point.get("fraction"), (int, float)) or isinstance(point.get("fraction"), bool):
                fail(f"datasets.{name}.sweep[{i}].fraction", "a number", point.get("fraction"))
        for group, rows in (entry.get("ablations") or {}).items():
            if not isinstance(rows, list) or not all(isinstance(r, dict) and "setting" in r for r in rows):
                fail(f"datasets.{name}.ablations.{group}", "a list of tables with a 'setting'", rows)
    for key in ("profile", "config"):
        if key in obj and not isinstance(obj[key], dict):
            fail(key, "a table (JSON object)", obj[key])
