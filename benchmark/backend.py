"""The one place where the study meets the other packages (datasets, htr, gan, metrics).

`StudyBackend` names every operation a study stage performs. `RealBackend` calls the project's
builders, trainers, generator and metric registry; tests inject lightweight fakes. When another
package's API changes, only this file changes.
"""
from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
from typing import Callable, Protocol

from datasets.errors import UserError
from datasets.files import atomic_write_json


class StudyBackend(Protocol):
    """Operations the study needs; every path argument is absolute."""

    def build_standin(self, kind: str, out: Path, n_train: int, n_val: int, n_test: int,
                      height: int, width: int, seed: int, **options) -> Path: ...
    def import_dataset(self, fmt: str, root: Path, out: Path, height: int, width: int,
                       options: dict) -> Path: ...
    def train_htr(self, opts: dict, resume: bool) -> Path: ...
    def evaluate_htr(self, run: Path, data_dir: Path, out_tsv: Path | None, text: dict | None = None) -> dict: ...
    def train_gan(self, opts: dict, resume: bool) -> Path: ...
    def generate(self, run: Path, n: int, out: Path, words: list[str] | None, seed: int) -> Path: ...
    def sample_grids(self, run: Path, out_png: Path, seed: int) -> Path: ...
    def metric(self, name: str, real: Path, fake: Path, **opts) -> dict: ...
    def diversity_words(self, real: Path, k: int, m: int, seed: int) -> list[str]: ...


def torchrun_command(kind: str, config_path: Path, gpus: int, python: str | None = None) -> list[str]:
    """The command that trains `kind` ('htr' or 'gan') from a JSON config on `gpus` local GPUs."""
    if kind not in ("htr", "gan"):
        raise ValueError(f"unknown trainer kind {kind!r}")
    if gpus < 1:
        raise UserError(f"--gpus {gpus}: need at least 1")
    return [python or sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={gpus}", "-m", "benchmark.launch", kind, str(config_path)]


class RealBackend:
    """Calls the real builders, trainers and metrics; trains under torchrun when gpus > 1."""

    def __init__(self, gpus: int = 0, log: Callable[[str], None] | None = None,
                 show_progress: bool = True, device: str = "cpu"):
        self.gpus = gpus
        self.device = device   # torch device string for training, generation and metrics
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.show_progress = show_progress

    def preload(self) -> None:
        """Import the builders, trainers and metrics and run one tiny recognizer step on one
        thread, so that forked workers start warm (about a second each otherwise). One thread
        keeps the parent free of an OpenMP pool, which must not cross a fork."""
        import datasets.build, datasets.importers, htr.train, htr.evaluate, gan.train, gan.generate  # noqa: F401,E401
        import benchmark.metrics.registry  # noqa: F401
        import torch
        from htr.model import GatedCRNN, ctc_loss
        torch.set_num_threads(1)
        model = GatedCRNN(3, 16, 0.25)
        loss = ctc_loss(model(torch.zeros(2, 1, 16, 16)), torch.tensor([1, 2]), torch.tensor([1, 1]))
        loss.backward()

    # ---- data ----------------------------------------------------------------------------
    def build_standin(self, kind, out, n_train, n_val, n_test, height, width, seed, **options):
        from datasets.build import build_standin
        return Path(build_standin(kind, out, n_train, n_val, n_test, height, width, seed,
                                  show_progress=self.show_progress, **options))

    def import_dataset(self, fmt, root, out, height, width, options):
        from datasets.importers import import_dataset
        # Images are stored as imported; height/width let the importer count what preprocessing drops.
        return Path(import_dataset(fmt, root, out, height=height, width=width, **options))

    # ---- training ------------------------------------------------------------------------
    def train_htr(self, opts, resume):
        from htr.train import HtrTrainConfig, train
        cfg = HtrTrainConfig.from_json({**opts, "resume": resume, "device": self.device, "show_progress": self.show_progress})
        return self._torchrun("htr", cfg) if self.gpus > 1 else Path(train(cfg))

    def train_gan(self, opts, resume):
        from gan.train import GanTrainConfig, train
        from .metrics.generator import score_generator
        cfg = GanTrainConfig.from_json({**opts, "resume": resume, "device": self.device, "progress": self.show_progress})
        return self._torchrun("gan", cfg) if self.gpus > 1 else Path(train(cfg, scorer=score_generator))

    def _torchrun(self, kind: str, cfg) -> Path:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out.parent / f".{out.name}.{kind}-launch.json"
        atomic_write_json(cfg_path, cfg.to_json())
        cmd = torchrun_command(kind, cfg_path, self.gpus)
        self.log("  " + " ".join(cmd))
        proc = subprocess.run(cmd, env=dict(os.environ))
        if proc.returncode != 0:
            raise UserError(f"{kind} training under torchrun failed (exit {proc.returncode}); see the log above")
        return out

    def evaluate_htr(self, run, data_dir, out_tsv=None, text=None):
        """Test metrics of a recognizer; `text`: TextNormalization fields applied before scoring."""
        from htr.evaluate import evaluate
        from htr.scoring import TextNormalization
        normalization = TextNormalization.from_json(text, "text") if text else None
        return dict(evaluate(run, data_dir, out_tsv, device=self.device, normalization=normalization))

    def generate(self, run, n, out, words=None, seed=0):
        from gan.generate import generate
        return Path(generate(run, n, out, words=words, seed=seed, device=self.device,
                             show_progress=self.show_progress))

    def sample_grids(self, run, out_png, seed):
        """The paper's Figs. 5–6 material: fixed word × varying z above fixed z × varying word."""
        from gan.generate import write_sample_grids
        return Path(write_sample_grids(run, out_png, seed=seed, device=self.device))

    def diversity_words(self, real, k, m, seed):
        from benchmark.metrics.diversity import diversity_words
        return diversity_words(real, k, m, seed)

    def metric(self, name, real, fake, **opts):
        from benchmark.metrics.registry import compute
        if name in ("fid", "kid", "readability", "diversity"):
            opts = dict(opts, device=self.device)
        return dict(compute(name, real, fake, **opts))
