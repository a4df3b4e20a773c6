"""GAN training (paper §II-C): the loop. Each iteration trains D (`d_steps` times, each on new
batches), then R, then (G, φ) (gan/steps.py).

Every `eval_every` iterations: window-mean losses and ‖∇_R‖/‖∇_D‖, readability (CER/WER of R, and
of the judge recognizer when given) on a fixed set of generated words, FID (judge 'htr' features)
and GS through the scorer the caller injects (gan/evaluate.py); RUN/best.pt keeps the best
evaluation (FID, else the judge's CER, else R's CER); RUN/last.pt (full state, atomic) allows an
exact `resume`. The run directory and the resume rule are datasets.runs' (the same as the
recognizer's); RUN/log.jsonl gets one JSON line per evaluation, RUN/samples/ the sample grids.

Randomness follows datasets.seeding: the run seed initialises the networks; the data order and
word draws ("numpy"), the noise ("z") and the distortions before R ("augment") are named streams
seeded from (seed, rank, purpose); all of them are saved in last.pt, so a resumed CPU run
reproduces the uninterrupted one exactly.
Mixed precision (`--amp on|auto`): bf16 autocast of the step (auto: where bf16 is native, CUDA or
a CPU with AMX / AVX-512 BF16); CTC and the balancing statistics run in float32.
Multi-GPU: launched with torchrun (WORLD_SIZE > 1), φ, G, D and R are wrapped in DDP; each rank
draws its own batches; rank 0 evaluates and writes the run directory.
"""
from __future__ import annotations

from contextlib import closing
import math
from pathlib import Path
import sys
import time
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils._pytree import tree_map

from datasets.cpus import bf16_autocast, torch_threads
from datasets.distributed import Placement, placement, resolve_device
from datasets.errors import UserError
from datasets.interrupts import deferred
from datasets.progress import progress
from datasets.runs import RunDir, run_inputs, run_lock
from datasets.seeding import RandomStreams, derive_seed, global_state, set_global_state
from datasets.torch_dataset import batch_from_indices
from htr.augment import augment_batch, draw_distortions
from htr.ctc import padded_targets

from .checkpoint import CHECKPOINT, read_checkpoint
from .config import GanTrainConfig
from .augment import DiffAugment
from .options import parse_policy
from .evaluate import Evaluator
from .fast import FastGanStep, compile_step
from .generate import sample_z
from .networks import char_columns, count_parameters, encode_words
from .setup import build_networks, init_recognizer, load_reader, load_training_data
from .steps import LOSS_NAMES, d_step, g_step, r_step
from .words import ctc_targets, stored_prior

__all__ = ["GanTrainConfig", "GanTraining", "TrainingDiverged", "train", "d_step", "r_step", "g_step"]

SYNC_EVERY = 10     # iterations between host reads of the losses (NaN guard, progress bar, ADA)
COLLAPSE_LD = 0.1   # D's window-mean loss below this ...
COLLAPSE_EVALS = 2  # ... for this many evaluations in a row: a collapse warning in the log


class TrainingDiverged(UserError):
    """A loss or gradient became NaN/inf; the run directory keeps its last good checkpoint."""


class RealSampler:
    """Random batches of real-image indices: shuffled epochs without replacement."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        self.n, self.batch, self.rng = n, batch, rng
        self.perm = np.zeros(0, dtype=np.int64)
        self.pos = 0

    def next(self) -> np.ndarray:
        if self.n < self.batch:                       # tiny data sets: draw with replacement
            return self.rng.integers(0, self.n, self.batch)
        if self.pos + self.batch > len(self.perm):
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx

    def state(self) -> dict:
        return {"perm": torch.from_numpy(np.asarray(self.perm, dtype=np.int64)), "pos": self.pos}

    def load(self, state: dict) -> None:
        self.perm, self.pos = state["perm"].numpy().astype(np.int64), int(state["pos"])


class GanTraining:
    """State and loop of one training run (see the module docstring)."""

    def __init__(self, cfg: GanTrainConfig, where: Placement | None = None, scorer: Callable | None = None):
        where = where or Placement(0, 1, resolve_device(cfg.device))   # one process (tests, probes)
        self.cfg, self.where = cfg, where
        self.device, self.rank, self.world, self.is_main = where.device, where.rank, where.world, where.main
        self.amp = bf16_autocast(cfg.amp, self.device.type)   # what --amp resolved to on this device
        self.run_dir = RunDir(cfg.out, CHECKPOINT)
        self.run = self.run_dir.path
        last = self.run_dir.open(cfg.resume)
        self.inputs = run_inputs(cfg.to_json(), GanTrainConfig)   # recorded in config.json and last.pt
        if last is not None:
            stored = GanTrainConfig.from_json(last["train_config"], known_only=True).to_json()
            self.run_dir.check_resume(stored, cfg.to_json(), GanTrainConfig, last)
        self.data = load_training_data(cfg, show_progress=cfg.progress and self.is_main)
        self.nets = build_networks(cfg, self.data, self.device)
        self.streams = RandomStreams()
        self.rng = self.streams.numpy("numpy", [cfg.seed, self.rank, 1])
        self.streams.torch("z", derive_seed(cfg.seed, self.rank, 2))
        self.streams.torch("augment", derive_seed(cfg.seed, self.rank, 3))
        self.sampler = RealSampler(len(self.data.real), cfg.batch_size, self.rng)
        policy = parse_policy(cfg.diff_augment)
        self.d_augment = DiffAugment(policy, self.streams.torch("diffaug", derive_seed(cfg.seed, self.rank, 4)),
                                     cfg.augment_p, cfg.ada_target, cfg.ada_speed) if policy else None
        self.collapse_streak = 0          # consecutive evaluations with D's loss below COLLAPSE_LD
        if cfg.r_init and last is None:   # a resumed run has R's weights in last.pt
            init_recognizer(self.nets.R, cfg, self.data)
        self.readers = [load_reader(r, cfg, self.data, self.device) for r in cfg.readers or ()]
        self.evaluator = Evaluator(cfg, self.data, self.nets, self.device, self.amp, scorer, self.is_main)
        self.iteration, self.elapsed = 0, 0.0
        self.best = {"metric": None, "score": None, "iteration": None}
        self.window: list[list[float]] = []
        self.pending: list[torch.Tensor] = []   # loss rows still on the device (read every SYNC_EVERY)
        if last is not None:
            self._restore(last)
        self._wrap_ddp()
        self.fast = self._fast_step() if cfg.fast_step else None

    def _wrap_ddp(self) -> None:
        """Training-time views of the networks: DDP wrappers under torchrun, else the modules."""
        n = self.nets
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.t_phi, self.t_G = DDP(n.phi, device_ids=ids), DDP(n.G, device_ids=ids)
            self.t_D, self.t_R = DDP(n.D, device_ids=ids), DDP(n.R, device_ids=ids)
        else:
            self.t_phi, self.t_G, self.t_D, self.t_R = n.phi, n.G, n.D, n.R
        # Views used inside the training step (compiled when asked); the plain modules stay for
        # evaluation and saving. g_D / g_R serve the G step, which differentiates D and R w.r.t. the
        # images only, so they never go through DDP's gradient hooks.
        compiled = torch.compile if (self.cfg.compile and n.fast) else (lambda m: m)
        self.s_G, self.s_D, self.s_R = compiled(self.t_G), compiled(self.t_D), compiled(self.t_R)
        if self.world == 1:
            self.g_D, self.g_R = self.s_D, self.s_R
        else:
            self.g_D, self.g_R = compiled(n.D), compiled(n.R)

    def _fast_step(self):
        """The iteration as one function of tensors (gan/fast.py), compiled whole with --compile."""
        if self.world > 1:
            raise UserError("--fast trains on one device; under torchrun use the default step")
        step = FastGanStep(self.nets, self.cfg, self.readers, self.d_augment, self.autocast)
        self.real_width = max(len(t) for t in self.data.real.targets)   # static shapes: pad to the longest
        return compile_step(step) if self.cfg.compile else step

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    # -- one iteration -------------------------------------------------------------------------
    def _fake_inputs(self, paired: bool = False, padded: bool = False):
        """Words, targets and noise of a generated batch; `paired`: the second half repeats the
        first half's words (with other noise), for the mode-seeking term; `padded`: tokens and
        targets as (B, max_chars) rows (the fast step's static shapes; targets else concatenated)."""
        n = self.cfg.batch_size
        words = self.data.prior.sample(n // 2, self.rng) * 2 if paired else self.data.prior.sample(n, self.rng)
        tokens, lengths = encode_words(words, self.data.alphabet)
        targets = ctc_targets(words, self.data.alphabet, self.data.meta.direction)
        if padded:
            width = self.data.max_chars
            tokens = F.pad(tokens, (0, width - tokens.shape[1]))
            targets = padded_targets(targets, lengths, width)
        z = sample_z(self.cfg.batch_size, self.nets.net_cfg.z_dim, self.streams["z"])
        dev = self.device
        return tokens.to(dev), lengths, targets.to(dev), z.to(dev)

    def _word_columns(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B, W) bool: the canvas columns the aligned layout gives to each word's characters."""
        net = self.nets.net_cfg
        return char_columns(lengths.to(self.device), net.width, net.char_px, net.rtl)[1]

    def _alpha(self) -> float | None:
        """The balancing α of this iteration (the R-term schedule: none before `alpha_from`)."""
        return self.cfg.alpha if self.iteration >= self.cfg.alpha_from else None

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """The classic distortions of `htr.augment`, differentiable, drawn from this run's stream."""
        return augment_batch(x, self.streams["augment"])

    def _d_update(self) -> tuple:
        """One D update on a new real batch and a new generated batch; returns the real batch
        (images, targets, lengths), D's loss and E[sign(D(real))]."""
        cfg, n = self.cfg, self.nets
        x_real, targets, lengths = batch_from_indices(self.data.real, self.sampler.next(), self.device)
        if cfg.channels_last and n.fast:
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        tokens, flen, _, z = self._fake_inputs()
        with torch.no_grad(), self.autocast():
            x_fake = self.s_G(z, n.phi(tokens, flen)).float()
        loss_d, real_sign = d_step(self.s_D, n.opt_d, x_real, x_fake, cfg.loss, cfg.grad_clip_d, self.autocast,
                                   self.d_augment)
        return x_real, targets, lengths, loss_d, real_sign

    def step(self) -> torch.Tensor:
        """One training iteration; returns the tensor of LOSS_NAMES values."""
        if self.fast is not None:
            return self.fast(*self.fast_inputs())
        cfg, dev, n = self.cfg, self.device, self.nets
        losses, signs = [], []
        for _ in range(cfg.d_steps):     # each D update on a new real and a new generated batch
            x_real, targets, lengths, loss_d, real_sign = self._d_update()
            losses.append(loss_d)
            signs.append(real_sign)
        if cfg.d_steps > 1:             # the loss row reports the updates' means
            loss_d, real_sign = torch.stack(losses).mean(), torch.stack(signs).mean()
        loss_r = r_step(self.s_R, n.opt_r, x_real, targets, lengths, cfg.grad_clip_r, self.autocast, cfg.ctc_reduction)
        tokens, flen, ftargets, z = self._fake_inputs(paired=cfg.ms_weight > 0)
        r_augment = self._augment if cfg.r_augment else None
        alpha = self._alpha()
        g = g_step(self.t_phi, self.s_G, self.g_D, self.g_R, n.opt_g, tokens, flen, ftargets, z,
                   alpha, cfg.loss, self.autocast, self.readers, r_augment, self.d_augment, cfg.ms_weight,
                   cfg.ctc_reduction, self._word_columns(flen) if cfg.ms_region == "word" else None)
        ms = g.get("loss_ms", torch.zeros((), device=dev))
        return torch.stack([loss_d, loss_r, g["loss_g_adv"], g["loss_g_ctc"], g["grad_norm_d"], g["grad_norm_r"],
                            g["grad_norm_r_bal"], real_sign, ms]).float()

    def fast_inputs(self) -> tuple:
        """The arguments of one fast step, drawn from the same streams in the same order as `step`."""
        cfg, dev, aug = self.cfg, self.device, self.d_augment
        x_real, targets, lengths = batch_from_indices(self.data.real, self.sampler.next())
        real_targets = padded_targets(targets, lengths, self.real_width)
        if cfg.channels_last and self.nets.fast:
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        d_tokens, d_lengths, _, d_z = self._fake_inputs(padded=True)
        aug_real, aug_fake = (aug.draw(x_real.shape), aug.draw(x_real.shape)) if aug is not None else (None, None)
        tokens, flen, ftargets, z = self._fake_inputs(paired=cfg.ms_weight > 0, padded=True)
        b, _, h, w = x_real.shape
        distortions = draw_distortions(b, h, w, self.streams["augment"]) if cfg.r_augment else None
        aug_g = aug.draw(x_real.shape) if aug is not None else None
        alpha = self._alpha()
        columns = self._word_columns(flen) if cfg.ms_weight > 0 and cfg.ms_region == "word" else None
        host = (x_real, real_targets, lengths, d_lengths, flen, aug_real, aug_fake, aug_g, distortions)
        on_device = tree_map(lambda t: t if t is None else t.to(dev, non_blocking=True), host)
        x_real, real_targets, lengths, d_lengths, flen, aug_real, aug_fake, aug_g, distortions = on_device
        return (x_real, real_targets, lengths, d_tokens, d_lengths, d_z, tokens, flen, ftargets, z,
                alpha, aug_real, aug_fake, aug_g, distortions, columns)

    # -- loop ----------------------------------------------------------------------------------
    def _start_record(self) -> dict:
        d = self.data
        return {"event": "resume" if self.iteration else "start", "iteration": self.iteration,
                "device": str(self.device), "world_size": self.world, "amp": self.amp,
                "dataset": {k: v for k, v in d.info(self.cfg).items() if k != "alphabet"},
                "max_chars": d.max_chars, "frames": d.frames, **d.layout, "real_words_too_long_for_ctc": d.real_too_long,
                "prior": {"source": d.prior.source, "words": len(d.prior)},
                "parameters": self.parameter_counts()}

    def fit(self) -> Path:
        cfg = self.cfg
        if self.is_main:
            self.run_dir.write_config(cfg.to_json(), inputs=self.inputs)
            self.run_dir.rewind_log("iteration", self.iteration)  # drop what comes again
            self.run_dir.log(self._start_record())
            self._write_missing_samples()
        if self.iteration >= cfg.iterations:
            return self.run
        bar = progress(total=cfg.iterations, initial=self.iteration, desc="gan train", disable=not (cfg.progress and self.is_main))
        t0 = time.perf_counter()
        pending = self.pending
        # Under DDP every rank must stop at one iteration: SIGINT/SIGTERM are deferred in one process only.
        with deferred(self.world == 1) as stop, closing(bar):
            for it in range(self.iteration + 1, cfg.iterations + 1):
                if stop.requested:                     # last.pt where the state is whole, then stop
                    self.elapsed += time.perf_counter() - t0
                    self._save_interrupted()
                    raise stop.exception()
                pending.append(self.where.all_reduce_mean(self.step()))
                self.iteration = it
                bar.update(1)
                at_end = it == cfg.iterations or self._budget_spent(t0, it)
                evaluate = it % cfg.eval_every == 0 or at_end
                if it % SYNC_EVERY == 0 or evaluate or (self.is_main and it % cfg.sample_every == 0):
                    self._take_rows(pending, it)
                    m = self._window_means()
                    bar.set_postfix(D=f"{m['loss_d']:.3f}", R=f"{m['loss_r']:.2f}", G=f"{m['loss_g_adv']:.3f}",
                                    ctc=f"{m['loss_g_ctc']:.2f}", refresh=False)
                if evaluate:
                    self.elapsed += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self._evaluate_and_save()
                    self.elapsed += time.perf_counter() - t0
                    t0 = time.perf_counter()
                if self.is_main and (it % cfg.sample_every == 0 or at_end):
                    self.evaluator.write_samples(self.run, self.iteration)
                if at_end:
                    break
        if stop.requested:                 # the signal came after the last iteration: all is saved, stop
            raise stop.exception()
        return self.run

    def _write_missing_samples(self) -> None:
        """The sample grids of the checkpoint a run resumes from, when the run was killed between
        that last.pt and its grids (written after it): a resumed run has what an uninterrupted one has."""
        it, cfg = self.iteration, self.cfg
        if not it or not (it % cfg.sample_every == 0 or it >= cfg.iterations):
            return
        base = self.run / "samples" / f"iter_{it:06d}"
        if not all(base.with_name(f"{base.name}_{kind}.png").is_file() for kind in ("words", "styles")):
            self.evaluator.write_samples(self.run, it)

    def _save_interrupted(self) -> None:
        """last.pt between two iterations, with the loss window since the last evaluation, so that
        the resumed run logs what the uninterrupted one does."""
        ckpt = self._checkpoint("last", self._rank_states())
        ckpt["state"]["window"] = [list(map(float, r)) for r in self.window]
        ckpt["state"]["pending"] = [t.detach().cpu() for t in self.pending]
        self.run_dir.save(ckpt, self.run_dir.last)

    def _budget_spent(self, t0: float, it: int) -> bool:
        """True when `max_minutes` of training time are used (checked every SYNC_EVERY iterations,
        decided by rank 0 under DDP so every rank stops at the same iteration)."""
        if self.cfg.max_minutes is None or it % SYNC_EVERY:
            return False
        spent = self.elapsed + time.perf_counter() - t0 >= 60 * self.cfg.max_minutes
        if self.world > 1:
            flag = torch.tensor([float(spent)], device=self.device)
            dist.broadcast(flag, 0)
            spent = bool(flag.item())
        return spent

    def _kept(self) -> str:
        """Where the last good checkpoint is, for a divergence message."""
        if not self.run_dir.last.is_file():
            return "no checkpoint yet"
        try:
            saved = int(read_checkpoint(self.run_dir.last)["iteration"])
        except UserError:
            saved = "?"
        return f"{self.run_dir.last} (iteration {saved})"

    def _take_rows(self, pending: list[torch.Tensor], it: int) -> None:
        """Read the pending loss rows (one host sync) into the window; stop on NaN/inf."""
        rows = torch.stack(pending).tolist()
        first = it - len(rows) + 1
        pending.clear()
        for k, row in enumerate(rows):
            if not all(math.isfinite(v) for v in row):
                bad = ", ".join(n for n, v in zip(LOSS_NAMES, row) if not math.isfinite(v))
                raise TrainingDiverged(f"training diverged at iteration {first + k}: non-finite {bad}; stopped, "
                                       f"last good checkpoint: {self._kept()}")
        self.window.extend(rows)
        if self.d_augment is not None:     # ADA: steer p by D's overfitting signal on these batches
            sign = float(np.mean([row[LOSS_NAMES.index("d_real_sign")] for row in rows]))
            self.d_augment.adapt(sign, len(rows) * self.cfg.batch_size * self.cfg.d_steps * self.world)

    def _window_means(self) -> dict[str, float]:
        arr = np.asarray(self.window, dtype=np.float64)
        means = dict(zip(LOSS_NAMES, arr.mean(axis=0).tolist()))
        nd, nr, nrb = (arr[:, LOSS_NAMES.index(k)] for k in ("grad_norm_d", "grad_norm_r", "grad_norm_r_bal"))
        means["grad_ratio_r_d"] = float(np.mean(nr / np.maximum(nd, 1e-12)))
        means["d_share"] = float(np.mean(nd / np.maximum(nd + nrb, 1e-12)))   # D's share of G's image gradient
        if self.d_augment is not None:
            means["augment_p"] = self.d_augment.p
        return means

    # -- evaluation and checkpoints ------------------------------------------------------------
    def _evaluate_and_save(self) -> None:
        self._check_parameters_finite()
        states = self._rank_states()
        if self.is_main:
            record = {"event": "eval", "iteration": self.iteration, "train_seconds": round(self.elapsed, 2)}
            record.update({k: round(v, 6) for k, v in self._window_means().items()})
            record.update(self._collapse_check(record["loss_d"]))
            t = time.perf_counter()
            record.update(self.evaluator.evaluate(self.iteration))
            record["eval_seconds"] = round(time.perf_counter() - t, 2)
            metric, score = self.evaluator.selection_score(record)
            improved = score is not None and (self.best["metric"] != metric or self.best["score"] is None or score < self.best["score"])
            if improved:
                self.best = {"metric": metric, "score": float(score), "iteration": self.iteration}
                self.run_dir.save(self._checkpoint("best"), self.run_dir.best)
            record["best"] = dict(self.best)
            self.run_dir.log(record)   # before last.pt: a resume from an older checkpoint rewinds past it
            self.run_dir.save(self._checkpoint("last", states), self.run_dir.last)
        self.window = []
        if self.world > 1:
            dist.barrier()

    def _collapse_check(self, loss_d: float) -> dict:
        """A warning when D's window-mean loss stays below COLLAPSE_LD for COLLAPSE_EVALS evaluations
        in a row: D separates real from generated images and G learns little from it."""
        self.collapse_streak = self.collapse_streak + 1 if loss_d < COLLAPSE_LD else 0
        if self.collapse_streak < COLLAPSE_EVALS:
            return {}
        msg = (f"D's loss stayed below {COLLAPSE_LD} for {self.collapse_streak} evaluations (D wins outright; "
               "try --diff-augment)")
        print(f"htraug: warning: iteration {self.iteration}: {msg}", file=sys.stderr)
        return {"warning": msg}

    def _check_parameters_finite(self) -> None:
        """Never checkpoint NaN/inf weights: stop instead, keeping the previous last.pt."""
        for name, module in self.nets.named():
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise TrainingDiverged(f"training diverged by iteration {self.iteration}: non-finite weights in {name}; "
                                       f"stopped, last good checkpoint: {self._kept()}")

    def parameter_counts(self) -> dict[str, int]:
        return {name: count_parameters(m) for name, m in self.nets.named()}

    def _local_state(self) -> dict:
        return {**self.streams.state(), "sampler": self.sampler.state(), **global_state(self.device)}

    def _rank_states(self) -> list[dict]:
        """Random streams and data order of every rank (gathered on all ranks under DDP)."""
        local = self._local_state()
        if self.world == 1:
            return [local]
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, local)
        return gathered

    def _checkpoint(self, kind: str, rank_states: list[dict] | None = None) -> dict:
        n, d = self.nets, self.data
        ckpt = {
            "kind": kind, "iteration": self.iteration,
            "net_config": n.net_cfg.to_json(), "recognizer_config": n.R.config(),
            "train_config": self.cfg.to_json(), "dataset": d.info(self.cfg),
            "alphabet_fingerprint": d.alphabet.fingerprint, "max_chars": d.max_chars, "frames": d.frames,
            "prior": stored_prior(d.prior), "best": dict(self.best), "collapse_streak": self.collapse_streak,
            "models": {name: m.state_dict() for name, m in n.named()},
        }
        if kind == "last":
            ckpt["inputs"] = self.inputs
            ckpt["state"] = {"opt_g": n.opt_g.state_dict(), "opt_d": n.opt_d.state_dict(), "opt_r": n.opt_r.state_dict(),
                             "ranks": rank_states, "elapsed": self.elapsed,
                             "diffaug": self.d_augment.state() if self.d_augment is not None else None}
        return ckpt

    def _restore(self, ckpt: dict) -> None:
        n, cfg = self.nets, self.cfg
        if ckpt["alphabet_fingerprint"] != self.data.alphabet.fingerprint:
            raise UserError(f"{self.run}: checkpoint alphabet differs from {cfg.data}'s alphabet")
        for name, module in n.named():
            module.load_state_dict(ckpt["models"][name])
        st = ckpt["state"]
        n.opt_g.load_state_dict(st["opt_g"]), n.opt_d.load_state_dict(st["opt_d"]), n.opt_r.load_state_dict(st["opt_r"])
        self.iteration, self.elapsed, self.best = int(ckpt["iteration"]), float(st["elapsed"]), dict(ckpt["best"])
        self.collapse_streak = int(ckpt.get("collapse_streak", 0))
        self.window = [list(r) for r in st.get("window", [])]
        self.pending = [t.to(self.device) for t in st.get("pending", [])]
        if self.d_augment is not None and st.get("diffaug"):
            self.d_augment.load(st["diffaug"])
        ranks = st["ranks"]
        if len(ranks) == self.world:
            mine = ranks[self.rank]
            self.streams.load({k: mine[k] for k in ("numpy", "z", "augment", "diffaug") if k in mine})
            self.sampler.load(mine["sampler"])
            set_global_state(mine, self.device)
        else:  # another world size: fresh, iteration-dependent streams (not bitwise-reproducible)
            self.rng = self.streams.numpy("numpy", [cfg.seed, self.rank, 1, self.iteration])
            self.streams.torch("z", derive_seed(cfg.seed, self.rank, 2, self.iteration))
            self.streams.torch("augment", derive_seed(cfg.seed, self.rank, 3, self.iteration))
            if self.d_augment is not None:
                self.d_augment.generator = self.streams.torch("diffaug", derive_seed(cfg.seed, self.rank, 4, self.iteration))
            self.sampler = RealSampler(len(self.data.real), cfg.batch_size, self.rng)


def train(cfg: GanTrainConfig, scorer: Callable | None = None) -> Path:
    """Train (or resume) a GAN run; returns the run directory. `scorer` computes FID and GS at
    every evaluation (see gan/evaluate.py); without one a run reports readability only."""
    with placement(cfg.device) as where, torch_threads(cfg.threads), run_lock(cfg.out, where.main):
        return GanTraining(cfg, where, scorer).fit()
