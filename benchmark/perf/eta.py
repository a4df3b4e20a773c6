"""How right was a study's first ETA? (`python -m benchmark.perf.eta STUDY_DIR`)

Reads a finished study's `results.json` and sets each stage's measured seconds against the cost
model: a stage's projected time is a fixed start-up plus a part that the calibration scales (the
recognizer's speed for recognizer stages, the GAN's for GANs, generation and scoring). From the
measured times it prints the speed factors that would have projected them exactly, beside the
factors the last run's calibration chose (when the results record them), and the first ETA beside
the wall time (when that run did not reuse finished stages).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from datasets.errors import UserError

from ..study.config import config_from_json
from ..study.plan import plan_study
from ..study.run import CALIBRATION_KEYS
from reports.results import load_results


def stage_costs(results: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """Each planned stage's projected seconds as fixed + scaled × factor, grouped by the factor
    that scales it ('htr' or 'gan'; stages neither scales are left out): {factor: {stage: (fixed, scaled)}}."""
    if not isinstance(results.get("config"), dict):
        raise UserError("results.json has no study config (config): not written by `htraug study run`")
    cfg = config_from_json(results["config"])
    device = results.get("device", "cpu")

    def costs(speed):
        return {s.name: s.cost for s in plan_study(cfg, backend=None, device=device, fingerprints=False, speed=speed)}

    one = costs({"htr": 1.0, "gan": 1.0})
    by = {k: costs({"htr": 1.0, "gan": 1.0, k: 2.0}) for k in ("htr", "gan")}
    groups: dict[str, dict[str, tuple[float, float]]] = {"htr": {}, "gan": {}}
    for name, c in one.items():
        for kind, group in groups.items():
            scaled = by[kind][name] - c
            if scaled:
                group[name] = (c - scaled, scaled)
    return groups


def eta_report(results: dict) -> dict:
    """Per factor: stages, measured seconds, the factor that fits them (Σ(measured − fixed) / Σ scaled;
    None where the fixed start-up outweighs the scaled part) and the calibration's; and the first
    ETA against the wall time."""
    timings = results.get("timings", {})
    measured = {n: t for n, t in (timings.get("stages_s") or {}).items() if isinstance(t, (int, float))}
    if not measured:
        raise UserError("results.json has no stage timings (timings.stages_s): run the study first")
    calibration = timings.get("calibration") or {}
    out = {"factors": {}, "projected_s": timings.get("projected_s"), "wall_s": timings.get("wall_s")}
    for kind, stages in stage_costs(results).items():
        names = [n for n in stages if n in measured]
        if not names:
            continue
        fixed = sum(stages[n][0] for n in names)
        scaled = sum(stages[n][1] for n in names)
        seconds = sum(measured[n] for n in names)
        # Stages whose projection is mostly fixed start-up (the smoke profile's) say nothing of the speed.
        fitted = round((seconds - fixed) / scaled, 3) if scaled >= fixed and seconds > fixed else None
        out["factors"][kind] = {"stages": len(names), "measured_s": round(seconds, 1), "fitted": fitted,
                                "calibrated": calibration.get(CALIBRATION_KEYS[kind])}
    # A run that reused finished stages is shorter than its longest stage: its ETA had nothing to project.
    if out["projected_s"] and out["wall_s"] and out["wall_s"] >= max(measured.values()):
        out["eta_error"] = round(out["projected_s"] / out["wall_s"] - 1.0, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf.eta", description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path, help="a finished study directory (its results.json)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    try:
        report = eta_report(load_results(args.study))
    except UserError as exc:
        print(f"eta: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    names = {"htr": "recognizer steps", "gan": "GAN iterations"}
    for kind, f in report["factors"].items():
        cal = f"×{f['calibrated']:.2f}" if f["calibrated"] is not None else "not recorded"
        fit = (f"fits ×{f['fitted']:.2f} the cost table's time" if f["fitted"] is not None
               else "too short to fit (their projection is mostly fixed start-up)")
        print(f"{names[kind]}: {f['stages']} stage(s), {f['measured_s']:.0f} s measured; {fit}, calibration {cal}")
    if "eta_error" in report:
        print(f"first ETA {report['projected_s']:.0f} s against {report['wall_s']:.0f} s wall "
              f"({report['eta_error']:+.1%})")
    elif report["wall_s"] is not None:
        print(f"first ETA not comparable: the last run took {report['wall_s']:.0f} s, less than its longest "
              "stage (it reused finished stages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
