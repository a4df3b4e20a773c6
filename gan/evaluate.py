"""The GAN run's periodic evaluation: readability of a fixed set of generated words by R (and by
the judge when given), FID and GS through the scorer the caller injects, the checkpoint
selection score, and the sample grids.

The scorer is `scorer(real_u8, fake_u8, *, judge, fid_n, gs_n, gs_reps, seed, device) -> dict`
(`benchmark.metrics.generator.score_generator` from the command line and the study); a run
without one reports readability only.
"""
from __future__ import annotations

from pathlib import Path
import sys
from typing import Callable

import numpy as np
import torch

from datasets.seeding import derive_seed
from htr.evaluate import recognize
from htr.scoring import text_metrics

from .config import GanTrainConfig
from .generate import grids_for, render, sample_z, to_u8
from .samples import save_png
from .setup import Networks, TrainingData, load_judge, reference_images
from .words import distinct_words

GRID_WORDS, GRID_STYLES = 8, 4
SELECTION_ORDER = ("fid", "cer_judge", "cer_R")   # best.pt: the first of these a run reports


class Evaluator:
    """Fixed evaluation material (words, noise, grid words, reference images, judge) and scores."""

    def __init__(self, cfg: GanTrainConfig, data: TrainingData, nets: Networks, device: torch.device, amp: bool,
                 scorer: Callable | None, is_main: bool):
        self.cfg, self.data, self.nets, self.device, self.amp, self.scorer = cfg, data, nets, device, amp, scorer
        prior = data.prior
        self.eval_words = prior.sample(cfg.eval_words, np.random.default_rng([cfg.seed, 101]))
        self.eval_z = sample_z(cfg.eval_words, nets.net_cfg.z_dim, torch.Generator().manual_seed(derive_seed(cfg.seed, 102)))
        self.grid_words = distinct_words(prior, GRID_WORDS, np.random.default_rng([cfg.seed, 2]))
        self.judge, self.reference = None, None
        if is_main:
            if cfg.judge:
                self.judge = load_judge(cfg, data, device, self.eval_words)
            self.reference = reference_images(cfg, data)

    def _render(self, words: list[str], z: torch.Tensor) -> torch.Tensor:
        return render(self.nets.phi, self.nets.G, self.data.alphabet, words, z, 256, self.device, self.amp)

    @torch.no_grad()
    def evaluate(self, iteration: int) -> dict:
        """Readability by R (and the judge), FID and GS of the current generator."""
        images = self._render(self.eval_words, self.eval_z)
        alphabet = self.data.alphabet
        m = text_metrics(self.eval_words, recognize(self.nets.R, alphabet, images, 256, self.device))
        out = {"cer_R": round(m["cer"], 3), "wer_R": round(m["wer"], 3)}
        if self.judge is not None:
            model, judge_alphabet = self.judge
            m = text_metrics(self.eval_words, recognize(model, judge_alphabet, images, 256, self.device))
            out.update(cer_judge=round(m["cer"], 3), wer_judge=round(m["wer"], 3))
        out.update(self._distribution_metrics(iteration))
        return out

    def _distribution_metrics(self, iteration: int) -> dict:
        """FID (judge 'htr' features) and GS through the injected scorer."""
        cfg, real = self.cfg, self.reference
        if real is None:
            return {}
        if self.scorer is None:
            return {"fid": None, "gs": None, "metrics_note": "no FID/GS scorer was given to this run"}
        n = max(cfg.fid_n, cfg.gs_n)
        words = self.data.prior.sample(n, np.random.default_rng([cfg.seed, 104]))
        z = sample_z(n, self.nets.net_cfg.z_dim, torch.Generator().manual_seed(derive_seed(cfg.seed, 105)))
        fake = to_u8(self._render(words, z))
        try:
            return self.scorer(real, fake, judge=cfg.judge, fid_n=min(cfg.fid_n, len(real)), gs_n=min(cfg.gs_n, len(real)),
                               gs_reps=cfg.gs_reps, seed=cfg.seed, device=str(self.device))
        except Exception as exc:  # a metric failure must not end a long training run
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            print(f"htraug: warning: iteration {iteration}: distribution metrics failed ({msg})", file=sys.stderr)
            return {"metrics_error": msg}

    @staticmethod
    def selection_score(record: dict) -> tuple[str | None, float | None]:
        """(metric, score) that ranks this evaluation for best.pt: lower is better."""
        for key in SELECTION_ORDER:
            if record.get(key) is not None:
                return key, record[key]
        return None, None

    def write_samples(self, run: Path, iteration: int) -> None:
        """RUN/samples/iter_XXXXXX_{words,styles}.png: fixed word × varying z, and the transpose."""
        words_grid, styles_grid = grids_for(self.nets.phi, self.nets.G, self.data.alphabet, self.grid_words, GRID_STYLES,
                                            self.cfg.seed, self.device, label=self.data.meta.direction == "ltr", amp=self.amp)
        base = run / "samples" / f"iter_{iteration:06d}"
        save_png(words_grid, base.with_name(base.name + "_words.png"))
        save_png(styles_grid, base.with_name(base.name + "_styles.png"))
        from datasets.runs import add_images   # --tensorboard DIR: the grids beside the log's scalars
        add_images(getattr(self.cfg, "tensorboard", None), iteration, {"samples/words": words_grid, "samples/styles": styles_grid})
