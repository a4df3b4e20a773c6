"""`htraug study run|merge`, `htraug report` and `htraug compare` (docs/DESIGN.md §8–9)."""
from __future__ import annotations

from pathlib import Path
import sys

from datasets.options import non_negative_int, positive_int


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
    run.add_argument("--gpus", type=non_negative_int, default=None, metavar="N",
                     help="GPUs of this machine: independent stages run side by side, --gpus-per-stage each")
    run.add_argument("--gpus-per-stage", type=positive_int, default=None, metavar="K",
                     help="GPUs of one trainer, under torchrun (DDP) when K > 1 (default 1)")
    run.add_argument("--inception-weights", metavar="FILE", default=None,
                     help="pytorch-fid pt_inception-2015-12-05-6726825d.pth (or $HTRAUG_INCEPTION_WEIGHTS): Inception "
                          "FID beside the judge-feature FID (the paper profile needs it)")
    run.add_argument("--fid-features", choices=("htr", "inception"), default=None,
                     help="htr: run a profile that needs Inception FID with the judge's features only (not "
                          "comparable with the paper's FID); inception: refuse to start without the weights")
    run.add_argument("--seed", type=non_negative_int, default=None, help="the one seed for data, training and evaluation")
    run.add_argument("--jobs", type=positive_int, default=None, metavar="N",
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
    cfg = load_study_config(args.profile, args.config, args.seed, args.gpus, args.inception_weights, args.fid_features,
                            args.gpus_per_stage)
    out = args.out or Path("studies") / cfg.profile.name
    device = detect_device()
    jobs = default_jobs(device, cfg.gpus, cfg.gpus_per_stage) if args.jobs is None else args.jobs
    if args.dry_run or cfg.profile.name.startswith("paper"):
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


def default_jobs(device: str, gpus: int, gpus_per_stage: int = 1) -> int:
    """Parallel stages by default: one per CPU (at most 4) on a CPU-only machine; with GPUs one per
    group of --gpus-per-stage GPUs."""
    if device == "gpu" or gpus:
        return max(1, gpus // max(1, gpus_per_stage))
    from datasets.cpus import available_cpus
    return max(1, min(4, available_cpus()))


def print_projection(cfg, out: Path, shard, device: str, list_stages: bool = False, jobs: int = 1) -> None:
    """Print the projected duration before any work: on this machine, and for the paper profiles
    (or a CPU machine) the GPU-hours and the wall time on 1, 4 and 8 GPUs (stages side by side,
    --gpus-per-stage GPUs each), from the cost model's measured rates."""
    from .runner import StageRunner, format_seconds
    from .study import plan_study, select_targets

    speed = None
    if device == "cpu":
        from .study.run import CALIBRATE_ABOVE_S, timed_calibration
        stages = plan_study(cfg, backend=None, device="cpu", fingerprints=False)
        runner = StageRunner(out, stages, log=_log)
        if runner.projected(runner.closure(select_targets(stages, shard)), jobs) > CALIBRATE_ABOVE_S:
            from datasets.cpus import available_cpus
            speed = timed_calibration(max(1, available_cpus() // jobs), _log, jobs, cfg.profile.amp_modes())

    def plan(dev: str):
        stages = plan_study(cfg, backend=None, device=dev, fingerprints=False, speed=speed if dev == "cpu" else None)
        runner = StageRunner(out, stages, log=_log)
        return runner, runner.closure(select_targets(stages, shard)), {s.name: s for s in stages}

    runner, order, by_name = plan(device)
    where = f"{len(order)} stages" + (f", shard {shard[0]}/{shard[1]}" if shard else "")
    print(f"projected duration of profile {cfg.profile.name!r} on this machine ({device}"
          f"{f', {cfg.gpus} GPUs' if cfg.gpus > 1 else ''}{f', {jobs} jobs' if jobs > 1 else ''}): "
          f"~{format_seconds(runner.projected(order, jobs))} ({where})", flush=True)
    gpu_runner, gpu_order, gpu_stages = plan("gpu") if device != "gpu" else (runner, order, by_name)
    show_gpu = device != "gpu" or cfg.profile.name.startswith("paper")
    if show_gpu:
        per = max(1, cfg.gpus_per_stage)
        hours = sum(gpu_stages[n].cost for n in gpu_order) * per / 3600
        walls = ", ".join(f"{g} GPU{'s' if g > 1 else ''} ~{format_seconds(gpu_runner.projected(gpu_order, max(1, g // per)))}"
                          for g in (1, 4, 8) if g >= per)
        print(f"  GPU-hours (H100-class, the perf harness's rates): {hours:,.1f}; wall time on {walls}", flush=True)
    if list_stages:
        print(f"  {'stage':<55} {'this machine':>13}" + (f" {'GPU-hours':>10}" if show_gpu else ""))
        for n in order:
            gpu = f" {gpu_stages[n].cost * max(1, cfg.gpus_per_stage) / 3600:>10.2f}" if show_gpu else ""
            print(f"  {n:<55} {'~' + format_seconds(by_name[n].cost):>13}{gpu}{'  [unit]' if by_name[n].unit else ''}")


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
