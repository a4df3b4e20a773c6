"""Regression check: `htraug compare BASELINE RESULTS [--tolerance FILE]` (docs/DESIGN.md §9.2).

Both sides are flattened to `metric path → number`; each metric gets a direction (lower is better
for cer/wer/fid/gs/kid and readability errors, higher for gains, equal for dataset statistics) and
a tolerance from the first matching rule of the tolerance file: max(abs, rel × |baseline|). A
metric that moves the wrong way by more than its tolerance, or disappears, fails the check.
"""
from __future__ import annotations

from dataclasses import dataclass
import fnmatch
import math
from pathlib import Path
import sys

from datasets.errors import UserError
from datasets.files import parse_json_file

from .results import SWEEP_ROWS, load_results

DEFAULT_TOLERANCES = Path(__file__).parent / "baselines" / "tolerances.json"
LOWER_IS_BETTER = ("cer", "wer", "fid", "gs", "kid")
HIGHER_IS_BETTER = ("diversity", "d_share")
_TOL_KEYS = {"match", "abs", "rel", "ignore", "direction"}


@dataclass(frozen=True)
class Check:
    """One compared metric."""

    metric: str
    baseline: float | None
    run: float | None
    delta: float | None
    tolerance: float | None
    direction: str
    status: str      # ok | better | REGRESSED | MISSING | new | ignored

    @property
    def failed(self) -> bool:
        return self.status in ("REGRESSED", "MISSING")


_ABSENT = object()


def _get(table, key):
    return table.get(key, _ABSENT) if isinstance(table, dict) else _ABSENT


def flatten_metrics(results: dict, unusable: dict | None = None) -> dict[str, float]:
    """The comparable numbers of a results.json, keyed by a stable path; `unusable` (when given)
    receives the metric paths that are present with no finite number (NaN, infinity, null)."""
    out: dict[str, float] = {}

    def put(key: str, value):
        if value is _ABSENT:
            return
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[key] = float(value)
        elif unusable is not None:
            unusable[key] = value

    for ds, entry in sorted(results.get("datasets", {}).items()):
        for split, stats in sorted((entry.get("stats") or {}).items()):
            if isinstance(stats, dict):
                for k in ("images", "words", "characters"):
                    put(f"{ds}/data/{split}/{k}", _get(stats, k))
        for k, v in ((entry.get("judge") or {}).get("test") or {}).items():
            if k in ("cer", "wer", "cer_ci", "wer_ci"):
                put(f"{ds}/judge/{k}", v)
        for k, v in ((entry.get("gan") or {}).get("final") or {}).items():
            if k in ("fid", "kid", "gs", "readability_cer", "readability_wer", "diversity"):
                put(f"{ds}/gan/final/{k}", v)
        for row, agg in ((entry.get("htr") or {}).get("rows") or {}).items():
            for k in ("cer_mean", "wer_mean", "cer_ci_mean", "wer_ci_mean", "cer_std", "wer_std"):
                put(f"{ds}/htr/{row}/{k}", _get(agg, k))
        for point in entry.get("sweep") or []:
            f = f"f{point['fraction']:g}"
            for row in SWEEP_ROWS:
                for k in ("cer_mean", "wer_mean"):
                    put(f"{ds}/sweep/{f}/{row}/{k}", _get(point.get(row) or {}, k))
            for k in ("gain_cer", "gain_wer"):
                put(f"{ds}/sweep/{f}/{k}", _get(point, k))
        for name, v in (entry.get("variants") or {}).items():
            for k, val in (v.items() if isinstance(v, dict) else ()):
                if k.endswith("_mean"):
                    put(f"{ds}/variant/{name}/{k}", val)
        for group, rows in (entry.get("ablations") or {}).items():
            for r in rows:
                setting = str(r.get("setting", "")).replace(" (ours)", "")
                for k in ("fid", "gs"):
                    put(f"{ds}/ablation/{group}/{setting}/{k}", _get(r, k))
    return out


def direction_of(metric: str) -> str:
    """'lower', 'higher' or 'equal' (dataset statistics) for a flattened metric path."""
    leaf = metric.rsplit("/", 1)[-1]
    if leaf.startswith("gain_") or leaf.startswith(HIGHER_IS_BETTER):
        return "higher"
    if "/data/" in metric:
        return "equal"
    base = leaf.replace("readability_", "").replace("synthetic_only_", "").split("_")[0]
    if base in LOWER_IS_BETTER:
        return "lower"
    return "equal"


def load_tolerances(path: Path | None) -> dict:
    """Read and validate a tolerance file: {"default": {abs, rel}, "rules": [{match, abs, rel, ignore,
    direction}]}; every field is type-checked (one-line errors naming the file and the field)."""
    path = Path(path) if path else DEFAULT_TOLERANCES
    if not path.is_file():
        raise UserError(f"{path}: tolerance file does not exist")
    obj = parse_json_file(path)
    if not isinstance(obj, dict) or set(obj) - {"default", "rules", "comment"}:
        raise UserError(f"{path}: expected an object with 'default' and 'rules'")
    if "default" in obj:
        _check_rule(obj["default"], path, "default", needs_match=False)
    rules = obj.get("rules", [])
    if not isinstance(rules, list):
        raise UserError(f"{path}: 'rules' must be a list of rules, got {type(rules).__name__}")
    for i, rule in enumerate(rules):
        _check_rule(rule, path, f"rules[{i}]", needs_match=True)
    return obj


def _check_rule(rule, path: Path, where: str, needs_match: bool) -> None:
    keys = _TOL_KEYS if needs_match else _TOL_KEYS - {"match"}
    if not isinstance(rule, dict) or (needs_match and "match" not in rule) or set(rule) - keys:
        need = "'match' and only " if needs_match else "only "
        raise UserError(f"{path}: {where} must be an object with {need}{', '.join(sorted(keys))}")
    if needs_match and not isinstance(rule["match"], str):
        raise UserError(f"{path}: {where}.match must be a string (a metric path pattern), got {rule['match']!r}")
    for key in ("abs", "rel"):
        v = rule.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UserError(f"{path}: {where}.{key} must be a number ≥ 0, got {v!r}")
    if not isinstance(rule.get("ignore", False), bool):
        raise UserError(f"{path}: {where}.ignore must be true or false, got {rule['ignore']!r}")
    if rule.get("direction", "lower") not in ("lower", "higher", "equal"):
        raise UserError(f"{path}: {where}.direction must be lower, higher or equal, got {rule['direction']!r}")


def tolerance_for(metric: str, baseline: float, tol: dict) -> tuple[float | None, str | None]:
    """(allowed move, direction override) for a metric; None tolerance means ignored."""
    rule = next((r for r in tol.get("rules", []) if fnmatch.fnmatchcase(metric, r["match"])), None)
    rule = rule or tol.get("default", {"abs": 0.0, "rel": 0.0})
    if rule.get("ignore"):
        return None, None
    allowed = max(float(rule.get("abs", 0.0)), float(rule.get("rel", 0.0)) * abs(baseline))
    return allowed, rule.get("direction")


def compare(baseline: dict, run: dict, tol: dict, where: str = "baseline") -> list[Check]:
    """Compare two results documents metric by metric. A baseline metric that would be checked but
    holds no number is an error, since nothing could regress against it: NaN or infinity always,
    null where the run has a number (null on both sides is a metric neither study computed)."""
    unusable: dict = {}
    b, r = flatten_metrics(baseline, unusable), flatten_metrics(run)
    bad = [m for m in sorted(unusable) if tolerance_for(m, 0.0, tol)[0] is not None
           and (unusable[m] is not None or m in r)]
    if bad:
        shown = ", ".join(f"{m} = {_show(unusable[m])}" for m in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise UserError(f"{where}: {len(bad)} baseline metric(s) hold no number ({shown}); a baseline must hold "
                        "the numbers to compare with (regenerate it, or ignore these metrics in the tolerance file)")
    checks: list[Check] = []
    for metric in sorted(set(b) | set(r)):
        direction = direction_of(metric)
        if metric not in b:
            checks.append(Check(metric, None, r[metric], None, None, direction, "new"))
            continue
        allowed, override = tolerance_for(metric, b[metric], tol)
        direction = override or direction
        if allowed is None:
            checks.append(Check(metric, b[metric], r.get(metric), None if metric not in r else r[metric] - b[metric],
                                None, direction, "ignored"))
            continue
        if metric not in r:
            checks.append(Check(metric, b[metric], None, None, allowed, direction, "MISSING"))
            continue
        delta = r[metric] - b[metric]
        worse = {"lower": delta, "higher": -delta, "equal": abs(delta)}[direction]
        if worse > allowed + 1e-12:
            status = "REGRESSED"
        elif worse < 0 and direction != "equal":
            status = "better"
        else:
            status = "ok"
        checks.append(Check(metric, b[metric], r[metric], delta, allowed, direction, status))
    return checks


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e5):
        return f"{v:.3g}"
    return f"{v:.3f}"


def format_table(checks: list[Check], show_all: bool = False) -> str:
    """A fixed-width table: metric, baseline, run, delta, tolerance, status."""
    rows = [c for c in checks if show_all or c.status not in ("ignored",)]
    header = ("metric", "baseline", "run", "delta", "tolerance", "status")
    body = [(c.metric, _fmt(c.baseline), _fmt(c.run), _fmt(c.delta),
             ("±" if c.direction == "equal" else "") + _fmt(c.tolerance), c.status) for c in rows]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) if i < 5 else h for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append("  ".join(x.ljust(w) if i == 0 else x.rjust(w) if i < 5 else x for i, (x, w) in enumerate(zip(row, widths))))
    failed = [c for c in checks if c.failed]
    lines.append("")
    lines.append(f"{len(failed)} regression(s) in {sum(c.status not in ('ignored', 'new') for c in checks)} checked metric(s)"
                 if failed else f"no regression in {sum(c.status not in ('ignored', 'new') for c in checks)} checked metric(s)")
    return "\n".join(lines)


def _show(value) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _load(path: Path) -> dict:
    return load_results(path)


def compare_files(baseline: Path, results: Path, tolerance: Path | None = None, show_all: bool = False,
                  stream=None) -> int:
    """Print the comparison table; 1 when a metric regressed past its tolerance, else 0."""
    stream = stream or sys.stdout
    checks = compare(_load(baseline), _load(results), load_tolerances(tolerance), where=str(baseline))
    print(format_table(checks, show_all), file=stream)
    return 1 if any(c.failed for c in checks) else 0
