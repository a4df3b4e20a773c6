"""Running a study into its directory (or merging shard directories) and writing results.json."""
from __future__ import annotations

import os
from pathlib import Path
import platform
import shutil
import sys
import time
from typing import Callable, Mapping

from datasets.cpus import available_cpus, bf16_autocast, native_bf16_cpu
from datasets.errors import UserError
from datasets.files import atomic_write_json
from reports.results import load_results

from ..backend import RealBackend, StudyBackend
from ..runner import StageRunner, format_seconds
from ..stage import shard_units
from .assemble import assemble_results
from .config import StudyConfig, config_from_json
from .cost import calibrate, detect_device
from .plan import plan_study, select_targets


def versions() -> dict:
    """Versions of the interpreter and the main libraries (recorded once per run)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        from importlib.metadata import version
        out["htraug"] = version("htraug")
    except Exception:
        out["htraug"] = "unknown"
    for mod in ("torch", "numpy", "gudhi", "pandas", "matplotlib"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except Exception:
                continue
        out[mod] = getattr(m, "__version__", "unknown")
    try:
        import torch
        out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        out["torch_threads"] = torch.get_num_threads()
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        out["cpu_native_bf16"] = native_bf16_cpu()
    except Exception:
        pass
    return out


def copy_figures(study_dir: Path, results: dict) -> None:
    """Copy every image the report needs into STUDY/samples/ and repoint results at the copies,
    so a study directory (or a merge of shards) renders without the stage work directories."""
    for ds, entry in results["datasets"].items():
        dest = study_dir / "samples" / ds
        gan = entry.get("gan", {})

        def copy(rel: str, sub: str) -> str:
            src = study_dir / rel
            if rel.startswith("samples/"):
                return rel
            target = dest / sub / Path(rel).name
            if src.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists() or target.stat().st_size != src.stat().st_size:
                    shutil.copyfile(src, target)
            # a merged study has no stage work dirs, only the shards' copies under samples/
            return os.path.relpath(target, study_dir) if target.is_file() else rel

        if gan.get("samples"):
            gan["samples"] = [copy(s, "gan_run") for s in gan["samples"]]
        if gan.get("grids"):
            gan["grids"] = [copy(p, "grids") for p in gan["grids"]]
        data_stage = results.get("stages", {}).get(f"{ds}/data", {}).get("result") or {}
        if data_stage.get("samples_png"):
            entry["data_samples"] = copy(data_stage["samples_png"], "data")


def write_results(study_dir: Path, results: dict) -> Path:
    """Copy figures, then write results.json atomically."""
    copy_figures(study_dir, results)
    path = study_dir / "results.json"
    atomic_write_json(path, results)
    return path


def run_study(cfg: StudyConfig, out: Path, backend: StudyBackend | None = None,
              shard: tuple[int, int] | None = None, log: Callable[[str], None] | None = None,
              device: str | None = None, now: Callable[[], float] = time.time, jobs: int = 1) -> dict:
    """Run (or resume) a study into `out`; returns the results.json document.

    `jobs` > 1 runs that many independent stages at once in forked workers, each with an equal
    share of this machine's CPUs as torch threads (and, on GPUs, its own `gpus_per_stage` GPUs);
    their progress bars are printed as one status line per running stage every 30 s."""
    out = Path(out)
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    device = device or detect_device()
    real = backend is None
    backend = backend or RealBackend(gpus=cfg.gpus_per_stage, log=log, device="cuda" if device == "gpu" else "cpu")
    threads = max(1, available_cpus() // jobs) if jobs > 1 else None
    stages = plan_study(cfg, backend, device)
    runner = StageRunner(out, stages, log=log)
    order = runner.closure(select_targets(stages, shard))
    speed = None
    if real and device == "cpu" and runner.projected(order, jobs) > CALIBRATE_ABOVE_S:
        speed = timed_calibration(threads or available_cpus(), log, jobs, cfg.profile.amp_modes())
        stages = plan_study(cfg, backend, device, speed=speed)
        runner = StageRunner(out, stages, log=log)
        order = runner.closure(select_targets(stages, shard))
    targets = select_targets(stages, shard)
    projected = runner.projected(order, jobs)
    units = [s.name for s in stages if s.unit]
    log(f"study {cfg.profile.name}: {len(cfg.datasets)} dataset(s), {len(order)} stage(s)"
        f"{f' (shard {shard[0]}/{shard[1]})' if shard else ''}, projected ~{format_seconds(projected)} on {device}"
        f"{f' with {jobs} jobs' if jobs > 1 else ''}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "study.json", {"config": cfg.to_json(), "shard": list(shard) if shard else None})
    t0 = now()
    if jobs > 1:
        preload = getattr(backend, "preload", None)
        if preload:
            preload()   # import once here, not in every forked worker
    runner.run(targets, jobs=jobs, threads=threads,
               gpu_slots=gpu_slots(cfg, jobs) if device == "gpu" and jobs > 1 else None)
    records = {n: {"result": runner.results[n], "seconds": round(runner.timings[n], 3), "hash": runner.hashes[n]}
               for n in order}
    results = assemble_results(cfg.to_json(), records, shard_units(units, shard), shard,
                               extra={"versions": versions(), "device": device})
    results["timings"]["wall_s"] = round(now() - t0, 3)
    results["timings"]["projected_s"] = round(projected, 1)
    if speed:
        results["timings"]["calibration"] = calibration_record(speed)
    write_results(out, results)
    return results


# The ETA calibration's factors in results.json (`timings.calibration`), by what was timed: named so
# that no key reads as one of the results' tables (`htr`, `gan`).
CALIBRATION_KEYS = {"htr": "recognizer_step", "gan": "gan_iteration"}


def calibration_record(speed: Mapping[str, float]) -> dict[str, float]:
    """The calibration's factors (cost.calibrate) as results.json keeps them; benchmark.perf.eta
    sets them against the factors the stages ran at."""
    return {CALIBRATION_KEYS[k]: round(v, 3) for k, v in speed.items()}


CALIBRATE_ABOVE_S = 600   # calibrate the ETA on this machine when the table projects more than this


def timed_calibration(threads: int, log: Callable[[str], None], jobs: int = 1,
                      amp: Mapping[str, str] | None = None) -> dict[str, float]:
    """Calibrate the CPU cost table on this machine (a few seconds; `jobs` stages at once, as the
    study will run them; each step in its recipe's precision, `amp` as Profile.amp_modes) and say so."""
    t0 = time.perf_counter()
    speed = calibrate(threads, jobs, amp)
    amp = amp or {}
    precision = {k: " in bf16" if bf16_autocast(amp.get(k, "off"), "cpu") else "" for k in ("htr", "gan")}
    log(f"ETA calibrated on this machine in {time.perf_counter() - t0:.0f}s ({jobs} stage(s) at once, "
        f"{threads} thread(s) each): recognizer steps{precision['htr']} ×{speed['htr']:.2f}, "
        f"GAN iterations{precision['gan']} ×{speed['gan']:.2f} the cost table's time")
    return speed


def gpu_slots(cfg: StudyConfig, jobs: int) -> list[str]:
    """CUDA_VISIBLE_DEVICES of each parallel stage: `gpus_per_stage` consecutive GPUs apiece."""
    per = max(1, cfg.gpus_per_stage)
    return [",".join(str(g) for g in range(k * per, (k + 1) * per)) for k in range(jobs)]


def merge_studies(dirs: list[Path], out: Path, log: Callable[[str], None] | None = None) -> dict:
    """One results.json from shard results: union of recorded stages, same config required."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if not dirs:
        raise UserError("study merge: name at least one study directory")
    docs = [(Path(d), load_results(d)) for d in dirs]
    cfg_json = docs[0][1]["config"]
    same = lambda c: {k: v for k, v in c.items() if k != "gpus"}  # noqa: E731 - GPU count may differ per shard
    for d, doc in docs[1:]:
        if same(doc["config"]) != same(cfg_json):
            raise UserError(f"{d}: was run with a different config than {docs[0][0]}; cannot merge")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    for d, doc in docs:
        seconds = doc.get("timings", {}).get("stages_s", {})
        for name, rec in doc.get("stages", {}).items():
            prev = records.get(name)
            if prev and prev.get("hash") != rec.get("hash"):
                raise UserError(f"{d}: stage {name} differs from another shard's (hash mismatch)")
            records[name] = {**rec, "seconds": seconds.get(name)}
        src = d / "samples"
        if src.is_dir() and src.resolve() != (out / "samples").resolve():
            shutil.copytree(src, out / "samples", dirs_exist_ok=True)
    # expected units: re-plan with a null backend (planning runs nothing)
    cfg = config_from_json(cfg_json)
    units = [s.name for s in plan_study(cfg, backend=None, fingerprints=False) if s.unit]
    first = docs[0][1]
    results = assemble_results(cfg_json, records, units, None,
                               extra={"versions": first.get("versions"), "device": first.get("device"),
                                      "merged_from": [str(d) for d, _ in docs]})
    results["timings"]["wall_s"] = round(sum((doc.get("timings", {}).get("wall_s") or 0) for _, doc in docs), 3)
    if results["units"]["missing"]:
        log(f"merge: {len(results['units']['missing'])} unit(s) missing, e.g. {results['units']['missing'][0]}")
    write_results(out, results)
    return results
