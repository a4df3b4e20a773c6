"""`htraug study run|merge`, `htraug report` and `htraug compare` (docs/DESIGN.md §8–9)."""
from __future__ import annotations

from pathlib import Path
import sys

from datasets.errors import UserError


def register(sub, study) -> None:
    """Fill the `study` command group and add the top-level `report` and `compare` commands."""
    from .profiles import PROFILES

    run = study.add_parser("run", help="run or resume a study", description=(
        "Run every stage of the study; up-to-date stages are skipped and interrupted ones resume."))
    run.add_argument("--profile", choices=sorted(PROFILES), default=None,
                     help="size profile (default: the config's, else quick)")
    run.add_argument("--config", type=Path, help="JSON or TOML study config (profile, seed, overrides, datasets)")
    run.add_argument("--out", type=Path, help="study directory (default: studies/PROFILE)")
    run.add_argument("--shard", help="run only grid-unit slice i/N (0-based), e.g. 0/4 for a 4-job array")
    run.add_argument("--gpus", type=int, default=None, help="train GAN and HTR under torchrun on N local GPUs")
    run.add_argument("--seed", type=int, default=None, help="the one seed for data, training and evaluation")
    run.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="stages run at once, each with CPUs/N torch threads (default: on a CPU-only machine "
                          "min(4, CPUs); with a GPU 1). The same N gives the same numbers")
    run.add_argument("--dry-run", action="store_true", help="print the stage plan and projected duration, run nothing")
    run.add_argument("--no-report", action="store_true", help="do not render the report at the end")
    run.set_defaults(func=cmd_run)

    merge = study.add_parser("merge", help="merge shard study directories into one results.json and report")
    merge.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    merge.add_argument("--out", type=Path, help="merged study directory (default: the first DIR)")
    merge.add_argument("--no-report", action="store_true")
    merge.set_defaults(func=cmd_merge)

    rep = sub.add_parser("report", help="render a study's report (Markdown, HTML, CSV, PNG) without retraining")
    rep.add_argument("study", type=Path, metavar="STUDY_DIR")
    rep.add_argument("--out", type=Path, help="report directory (default: STUDY_DIR/report)")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", help="compare a study's results with a baseline; exit 1 on regression")
    cmp_.add_argument("baseline", type=Path, metavar="BASELINE", help="baseline results.json (or study dir)")
    cmp_.add_argument("results", type=Path, metavar="RESULTS", help="results.json (or study dir) to check")
    cmp_.add_argument("--tolerance", type=Path, help="tolerances JSON (default: reports/baselines/tolerances.json)")
    cmp_.add_argument("--all", action="store_true", help="list every metric, not only the checked ones")
    cmp_.set_defaults(func=cmd_compare)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_run(args) -> int:
    from .stage import parse_shard
    from .study import detect_device, load_study_config, run_study

    shard = parse_shard(args.shard)
    cfg = load_study_config(args.profile, args.config, args.seed, args.gpus)
    out = args.out or Path("studies") / cfg.profile.name
    device = detect_device()
    jobs = default_jobs(device, cfg.gpus) if args.jobs is None else args.jobs
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: must be ≥ 1")
    if args.dry_run or cfg.profile.name == "paper":
        print_projection(cfg, out, shard, device, list_stages=args.dry_run, jobs=jobs)
        if args.dry_run:
            return 0
    results = run_study(cfg, out, shard=shard, log=_log, device=device, jobs=jobs)
    units = results["units"]
    partial = "" if results["complete"] else f" (partial: {units['done']}/{units['expected']} units)"
    print(f"results: {out / 'results.json'}{partial}")
    if not args.no_report and shard is None:
        from reports.render import render_report
        print(f"report: {render_report(out)}")
    return 0


def default_jobs(device: str, gpus: int) -> int:
    """Parallel stages by default: one per CPU (at most 4) on a CPU-only machine, else 1."""
    if device == "gpu" or gpus:
        return 1
    from datasets.cpus import available_cpus
    return max(1, min(4, available_cpus()))


def print_projection(cfg, out: Path, shard, device: str, list_stages: bool = False, jobs: int = 1) -> None:
    """Print the projected duration (this machine, and GPUs for the paper profile) before any work."""
    from .runner import StageRunner, format_seconds
    from .study import plan_study, select_targets

    def total(dev: str, gpus: int, jobs: int = 1):
        import dataclasses
        stages = plan_study(dataclasses.replace(cfg, gpus=gpus), backend=None, device=dev, fingerprints=False)
        runner = StageRunner(out, stages, log=_log)
        order = runner.closure(select_targets(stages, shard))
        by_name = {s.name: s for s in stages}
        return runner.projected(order, jobs), order, by_name

    secs, order, by_name = total(device, cfg.gpus, jobs)
    where = f"{len(order)} stages" + (f", shard {shard[0]}/{shard[1]}" if shard else "")
    print(f"projected duration of profile {cfg.profile.name!r} on this machine ({device}"
          f"{f', {cfg.gpus} GPUs' if cfg.gpus > 1 else ''}{f', {jobs} jobs' if jobs > 1 else ''}): "
          f"~{format_seconds(secs)} ({where})", flush=True)
    if device != "gpu" or cfg.profile.name == "paper":
        for gpus in sorted({1, max(1, cfg.gpus), 8}):
            g, _, _ = total("gpu", gpus)
            print(f"  on {gpus} GPU(s): ~{format_seconds(g)}", flush=True)
    if list_stages:
        for n in order:
            print(f"  {n:<55} ~{format_seconds(by_name[n].cost)}{'  [unit]' if by_name[n].unit else ''}")


def cmd_merge(args) -> int:
    from .study import merge_studies
    out = args.out or args.dirs[0]
    results = merge_studies(args.dirs, out, log=_log)
    print(f"results: {Path(out) / 'results.json'} ({results['units']['done']}/{results['units']['expected']} units)")
    if not args.no_report:
        from reports.render import render_report
        print(f"report: {render_report(out)}")
    return 0


def cmd_report(args) -> int:
    from reports.render import render_report
    print(render_report(args.study, args.out))
    return 0


def cmd_compare(args) -> int:
    from reports.compare import compare_files
    return compare_files(args.baseline, args.results, args.tolerance, show_all=args.all)
