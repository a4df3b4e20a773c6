"""CTC training of the gated recognizer with early stopping on validation CER (docs/DESIGN.md §6, §8).

Seeding follows datasets.seeding: the run seed initialises the network (and drives dropout),
classic augmentation draws from the named stream "augment", and the batch schedule is a pure
function of (seed, epoch, batch index) (htr.batches), so `resume` continues exactly where an
interrupted run stopped: on CPU a resumed run ends with the same weights and metrics as an
uninterrupted one.

The run directory (datasets.runs, the same for the GAN):
    config.json   the options and derived facts (alphabet, sizes, parameter count)
    log.jsonl     one JSON line per validation (epoch, step, train_loss, val_loss, val_cer, val_wer,
                  case-insensitive variants, best_cer, improved, lr, wall_s)
    best.pt       the checkpoint with the lowest validation CER so far
    last.pt       the full training state (weights, optimizer, random streams, position, early stopping)

Early stopping: a validation improves when its CER is lower than the best so far, or equal with
a lower validation CTC loss (see `is_improvement`); `patience` validations without improvement
stop the run.

Stall guard (`stall_steps`, 0 = off by default): from scratch, CTC sometimes settles on its blank
plateau (a near-constant output, validation CER ≈ 97 %) and never leaves it, whatever the data. At
the first validation `stall_steps` steps into a run, a run whose validation CER never went below
STALL_CER starts again from a new initialisation (seeded from the run seed and the attempt number)
with a fresh optimizer and early-stopping state and the whole step budget; the data order and the
step count go on, and log.jsonl records the restart as an event. At most MAX_RESTARTS times.

Under torchrun (WORLD_SIZE > 1) every rank trains on its share of each batch
(DDP), every rank validates on the whole validation set (identical decisions without extra
communication) and rank 0 alone writes files.
"""
from __future__ import annotations

import math
from pathlib import Path
import time

import numpy as np
import torch

from datasets.alphabet import is_rtl
from datasets.cpus import bf16_autocast, torch_threads
from datasets.distributed import Placement, placement
from datasets.errors import UserError
from datasets.format import load_dataset
from datasets.interrupts import StopRequest, deferred
from datasets.preprocess import default_width
from datasets.progress import progress
from datasets.runs import RunDir, run_inputs, run_lock
from datasets.seeding import RandomStreams, derive_seed, global_state, seed_initialisation, set_global_state
from datasets.torch_dataset import WordImageDataset, batch_from_indices

from .augment import augment_batch
from .batches import BatchPlan, assemble, real_subset
from .checkpoint import CHECKPOINT, check_labels_fit
from .config import MAX_RESTARTS, STALL_CER, HtrRecipe, HtrTrainConfig
from .decode import greedy_decode
from .model import GatedCRNN, count_parameters, ctc_loss
from .scoring import text_metrics

__all__ = ["BatchPlan", "HtrRecipe", "HtrTrainConfig", "Trainer", "cosine_lr", "initial_progress", "is_improvement",
           "train", "validate_model"]


def _load_sources(cfg: HtrTrainConfig):
    """Open the real, extra and validation sets at the canvas size; returns (sources, val, meta, h, w)."""
    train_ds = load_dataset(cfg.train)
    meta = train_ds.meta
    height = cfg.height or meta.height or 128
    width = cfg.width or (meta.width if cfg.height is None and meta.width else default_width(height))
    if height < 16:
        raise UserError(f"{cfg.train}: canvas height {height} is below 16; pass --height")
    alphabet = meta.alphabet
    show = cfg.show_progress
    sources = [WordImageDataset(train_ds, alphabet, height, width, show)]
    for path in cfg.extra:
        sources.append(WordImageDataset(_compatible(path, meta), alphabet, height, width, show))
    val = WordImageDataset(_compatible(cfg.val, meta), alphabet, height, width, show)
    return sources, val, meta, height, width


def _compatible(path: str, meta):
    """Open a dataset used beside the training set: same script direction, labels in its alphabet."""
    ds = load_dataset(path)
    if ds.meta.direction != meta.direction:
        raise UserError(f"{path}: script direction {ds.meta.direction} differs from the training set's {meta.direction}")
    check_labels_fit(meta.alphabet, ds.texts, str(path), "the training set",
                     hint="every training/validation set must fit the training set's alphabet")
    return ds


RESTART_STREAM = 7          # derive_seed purpose of a stall restart's initialisation


def _make_optimizer(cfg: HtrTrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.RMSprop(model.parameters(), lr=cfg.lr)


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Half-cosine decay from `base_lr` at step 0 to 0 at `total_steps` (a pure function of the step)."""
    frac = min(1.0, step / max(1, total_steps))
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * frac))


@torch.no_grad()
def validate_model(model: GatedCRNN, val: WordImageDataset, batch_size: int, device) -> dict:
    """Greedy-decoding ED/WER of `model` on the validation set, plus its mean CTC loss (`loss`)."""
    was_training = model.training
    model.eval()
    hyps: list[str] = []
    loss_sum = 0.0
    try:
        for start in range(0, len(val), max(batch_size, 64)):
            idx = np.arange(start, min(len(val), start + max(batch_size, 64)))
            images, targets, lengths = batch_from_indices(val, idx, device)
            log_probs = model(images)
            loss_sum += float(ctc_loss(log_probs, targets, lengths)) * len(idx)
            hyps.extend(greedy_decode(log_probs, val.alphabet, val.direction))
    finally:
        model.train(was_training)
    m = text_metrics(list(val.packed.texts), hyps)
    m["loss"] = loss_sum / len(val)
    return m


def train(cfg: HtrTrainConfig) -> Path:
    """Train (or resume) a recognizer; returns the run directory (with best.pt and last.pt)."""
    with placement(cfg.device) as where, torch_threads(cfg.threads), run_lock(cfg.out, where.main):
        trainer = Trainer(cfg, where)
        if not trainer.state["finished"]:
            trainer.run()
        return trainer.out


def is_improvement(metrics: dict, state: dict) -> bool:
    """Lower validation CER than the best so far; at equal CER, a lower validation CTC loss.

    The tie-break matters early on, when a CTC model still emits only blanks (CER 100 %
    for several validations while its loss falls): those validations are not "bad".
    """
    best = state["best_cer"]
    if best is None or metrics["cer"] < best - 1e-9:
        return True
    if metrics["cer"] > best + 1e-9:
        return False
    loss, best_loss = metrics.get("loss"), state.get("best_loss")
    return loss is not None and best_loss is not None and loss < best_loss - 1e-6


def initial_progress() -> dict:
    """Training position and early-stopping state (saved in last.pt as plain values)."""
    return {"epoch": 0, "batch": 0, "step": 0, "best_cer": None, "best_loss": None, "best_epoch": None, "best_step": None,
            "bad_evals": 0, "lr_decays": 0, "loss_sum": 0.0, "loss_n": 0, "wall_s": 0.0, "finished": False, "stop_reason": None,
            "attempt": 0, "attempt_start": 0}


class Trainer:
    """One training run: data, model, optimizer, schedule and the run directory's files."""

    def __init__(self, cfg: HtrTrainConfig, where: Placement):
        self.cfg, self.dist = cfg, where
        self.run_dir = RunDir(cfg.out, CHECKPOINT)
        self.out = self.run_dir.path
        last = self.run_dir.open(cfg.resume)
        self.inputs = (self.run_dir.check_resume(last["config"], cfg.to_json(), HtrTrainConfig, last) if last is not None
                       else run_inputs(cfg.to_json(), HtrTrainConfig))

        self.sources, self.val, self.meta, self.height, self.width = _load_sources(cfg)
        self.alphabet = self.meta.alphabet
        self.real_idx = real_subset(len(self.sources[0]), cfg.max_train, cfg.subset_seed)
        self.plan = BatchPlan(self.real_idx, [len(s) for s in self.sources[1:]], cfg.batch_size,
                              cfg.extra_ratio, cfg.seed)

        self.bf16 = bf16_autocast(cfg.amp, where.device.type)   # what --amp resolved to on this device
        if where.device.type == "cuda":
            torch.backends.cudnn.benchmark = True    # one canvas size: the fastest kernels are found once
        seed_initialisation(cfg.seed)
        self.model = self._new_model()
        self.optimizer = _make_optimizer(cfg, self.model)
        self.streams = RandomStreams()
        self.aug_gen = self.streams.torch("augment", cfg.seed * 1_000_003 + 17)
        self.state = initial_progress()
        self.loss_pending = 0.0            # device-side loss sum not yet in state["loss_sum"]
        if last is not None:
            self._restore(last)
        if where.main and not self.state["finished"]:
            self.run_dir.rewind_log("step", self.state["step"])   # what comes again is logged again
        self.net = self.model
        if where.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            ids = [where.device.index] if where.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile and where.device.type == "cuda":
            self.net = torch.compile(self.net)
        self.loss_acc = torch.full((), self.loss_pending, dtype=torch.float64,
                                   device=where.device)          # summed on the device: no sync per step
        self.t_start = time.monotonic()
        self.bar = None

    def _new_model(self) -> GatedCRNN:
        """The recognizer, initialised from torch's global generator."""
        return GatedCRNN(self.alphabet.num_classes, self.height, self.cfg.width_mult,
                         rtl=is_rtl(self.meta.direction), dropout=self.cfg.dropout).to(self.dist.device)

    # --- state -------------------------------------------------------------------------------
    def _restore(self, ckpt: dict) -> None:
        """Continue from last.pt: weights, optimizer, random streams, position and early stopping."""
        if ckpt.get("alphabet_fingerprint") != self.alphabet.fingerprint:
            raise UserError(f"{self.run_dir.last}: was trained on alphabet {ckpt.get('alphabet_fingerprint')}, "
                            f"the training set has {self.alphabet.fingerprint}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["state"]["optimizer"])
        set_global_state(ckpt["state"]["rng"], self.dist.device)
        self.streams.load(ckpt["state"]["streams"])
        progress_state = dict(ckpt["state"]["progress"])
        self.loss_pending = float(progress_state.pop("loss_pending", 0.0))
        self.state.update(progress_state)

    def wall(self) -> float:
        """Training seconds so far, across resumed sessions."""
        return self.state["wall_s"] + time.monotonic() - self.t_start

    def checkpoint(self, with_state: bool) -> dict:
        """The checkpoint dict: weights and metadata, plus the training state for last.pt."""
        s = self.state
        obj = {"model": self.model.state_dict(),
               "model_config": self.model.config(), "alphabet": self.alphabet.to_json(),
               "alphabet_fingerprint": self.alphabet.fingerprint, "direction": self.meta.direction,
               "language": self.meta.language, "width": self.width, "epoch": s["epoch"], "step": s["step"],
               "val_cer": s["best_cer"], "config": self.cfg.to_json()}
        if with_state:
            obj["inputs"] = self.inputs
            obj["state"] = {"optimizer": self.optimizer.state_dict(), "rng": global_state(self.dist.device),
                            "streams": self.streams.state(),
                            "progress": {**s, "wall_s": self.wall(), "loss_pending": float(self.loss_acc)}}
        return obj

    def save_last(self) -> None:
        if self.dist.main:
            self.run_dir.save(self.checkpoint(True), self.run_dir.last)

    def write_config(self) -> None:
        """RUN/config.json: the options and what they resolved to."""
        if not self.dist.main:
            return
        m, src = self.model, self.sources
        self.run_dir.write_config(
            self.cfg.to_json(), alphabet=self.alphabet.to_json(),
            alphabet_fingerprint=self.alphabet.fingerprint, direction=self.meta.direction,
            language=self.meta.language, height=self.height, width=self.width,
            width_mult=self.cfg.width_mult, parameters=count_parameters(m), frames=m.num_frames(self.width),
            real_train_images=int(len(self.real_idx)), extra_images=[len(s) for s in src[1:]],
            val_images=len(self.val), dropped={"train": src[0].packed.dropped, "val": self.val.packed.dropped},
            world_size=self.dist.world, torch=torch.__version__, bf16_autocast=self.bf16, inputs=self.inputs)

    # --- one step / one validation ------------------------------------------------------------
    def step(self, rows: np.ndarray) -> torch.Tensor:
        """One optimizer step on the batch `rows`; returns the detached CTC loss (mean over ranks)."""
        dev = self.dist.device
        images, targets, lengths = assemble(self.sources, rows, self.dist.rank, self.dist.world, dev)
        if self.cfg.augment:
            images = augment_batch(images, self.aug_gen)      # drawn on the CPU, applied on `dev`
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            log_probs = self.net(images)
        loss = ctc_loss(log_probs, targets, lengths)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.lr_schedule == "cosine":
            lr = cosine_lr(self.cfg.lr, self.attempt_steps(), self.plan.num_batches() * self.cfg.max_epochs)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return self.dist.all_reduce_mean(loss.detach())   # logged as the mean over ranks

    def flush_loss(self) -> None:
        """Move the device-side loss sum into the (plain-number) state: one sync per call."""
        self.state["loss_sum"] += float(self.loss_acc)
        self.loss_acc.zero_()

    def maybe_decay_lr(self) -> None:
        """Reduce-on-plateau: after every `lr_patience` validations without improvement."""
        s, cfg = self.state, self.cfg
        if cfg.lr_factor < 1 and s["bad_evals"] and s["bad_evals"] % cfg.lr_patience == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= cfg.lr_factor
            s["lr_decays"] += 1

    def attempt_steps(self) -> int:
        """Optimizer steps since the run (or its last stall restart) began: what the budgets count."""
        return self.state["step"] - self.state["attempt_start"]

    def stalled(self) -> bool:
        """`stall_steps` or more steps into an attempt that may still restart: has it never left the
        plateau? (Its best CER only falls, so only the first validation past the mark can say yes.)"""
        cfg, s = self.cfg, self.state
        return (bool(cfg.stall_steps) and self.attempt_steps() >= cfg.stall_steps and s["attempt"] < MAX_RESTARTS
                and s["best_cer"] is not None and s["best_cer"] >= STALL_CER)

    def restart(self) -> None:
        """Start again from a new initialisation: fresh weights, optimizer, early stopping and step
        budget; the data order and the step count go on."""
        s = self.state
        event = {"event": "restart", "epoch": s["epoch"], "step": s["step"], "attempt": s["attempt"] + 1,
                 "reason": f"validation CER {s['best_cer']:.1f} % ≥ {STALL_CER:g} % after {self.attempt_steps()} steps"}
        seed_initialisation(derive_seed(self.cfg.seed, s["attempt"] + 1, RESTART_STREAM))
        self.model.load_state_dict(self._new_model().state_dict())
        self.optimizer = _make_optimizer(self.cfg, self.model)
        s.update(attempt=s["attempt"] + 1, attempt_start=s["step"], best_cer=None, best_loss=None,
                 best_epoch=None, best_step=None, bad_evals=0, lr_decays=0)
        if self.dist.main:
            self.run_dir.log(event)
        if self.bar is not None:
            self.bar.total = self.total_steps()
            self.bar.refresh()

    def total_steps(self) -> int:
        """The run's planned optimizer steps (the progress bar's total)."""
        total = self.plan.num_batches() * self.cfg.max_epochs
        if self.cfg.max_steps is not None:
            total = min(total, self.state["attempt_start"] + self.cfg.max_steps)
        return total

    def validate(self, may_restart: bool = True) -> bool:
        """Validate, log, keep the best checkpoint, restart a stalled run (`stall_steps`); returns
        True when early stopping triggers."""
        s = self.state
        self.flush_loss()
        m = validate_model(self.model, self.val, self.cfg.batch_size, self.dist.device)
        improved = is_improvement(m, s)
        if improved:
            s.update(best_cer=m["cer"], best_loss=m.get("loss"), best_epoch=s["epoch"], best_step=s["step"], bad_evals=0)
        else:
            s["bad_evals"] += 1
            self.maybe_decay_lr()
        entry = {"epoch": s["epoch"], "step": s["step"],
                 "train_loss": s["loss_sum"] / s["loss_n"] if s["loss_n"] else None,
                 "val_loss": m.get("loss"), "val_cer": m["cer"], "val_wer": m["wer"], "val_cer_ci": m["cer_ci"], "val_wer_ci": m["wer_ci"],
                 "best_cer": s["best_cer"], "improved": improved, "lr": self.optimizer.param_groups[0]["lr"],
                 "wall_s": round(self.wall(), 3)}
        s["loss_sum"], s["loss_n"] = 0.0, 0
        if self.dist.main:
            if improved:
                self.run_dir.save(self.checkpoint(False), self.run_dir.best)
            self.run_dir.log(entry)
        if self.bar is not None:
            self.bar.set_postfix(loss=_fmt(entry["train_loss"]), cer=_fmt(m["cer"]), best=_fmt(s["best_cer"]))
        if may_restart and self.stalled():
            self.restart()
        return s["bad_evals"] >= self.cfg.patience

    # --- the loop -----------------------------------------------------------------------------
    def _limit_reached(self) -> str | None:
        cfg, s = self.cfg, self.state
        if cfg.max_minutes is not None and self.wall() >= 60 * cfg.max_minutes:
            return "time_budget"
        if cfg.max_steps is not None and self.attempt_steps() >= cfg.max_steps:
            return "max_steps"
        return None

    def _stop_if_asked(self, stop: StopRequest | None) -> None:
        """On SIGINT/SIGTERM (noticed between steps, where the state is whole): write last.pt, stop."""
        if stop is not None and stop.requested:
            self.save_last()
            raise stop.exception()

    def _periodic_save(self) -> None:
        """last.pt every `save_every` steps, wherever the step falls (mid-epoch or at its end)."""
        if self.cfg.save_every and self.state["step"] % self.cfg.save_every == 0:
            self.save_last()

    def run_epoch(self, stop: StopRequest | None = None) -> str | None:
        """Train from the saved position to the end of the current epoch; returns a stop reason."""
        cfg, s = self.cfg, self.state
        batches = self.plan.epoch(s["epoch"])
        while s["batch"] < len(batches):
            self._stop_if_asked(stop)
            if cfg.max_steps is not None and self.attempt_steps() >= cfg.max_steps:
                return "max_steps"
            self.loss_acc += self.step(batches[s["batch"]])
            s["loss_n"] += 1
            s["batch"] += 1
            s["step"] += 1
            self.bar.update(1)
            if s["step"] % 20 == 0:
                self.flush_loss()
                self.bar.set_postfix(loss=_fmt(s["loss_sum"] / s["loss_n"]), best=_fmt(s["best_cer"]))
            if s["batch"] == len(batches):
                break                      # the epoch-end validation follows
            if cfg.eval_every and s["step"] % cfg.eval_every == 0 and self.validate():
                return "early_stopping"
            reason = self._limit_reached()
            if reason:
                return reason
            self._periodic_save()
        s["epoch"] += 1
        s["batch"] = 0
        if (not cfg.eval_every or s["step"] % cfg.eval_every == 0 or s["epoch"] == cfg.max_epochs) and self.validate():
            return "early_stopping"
        reason = self._limit_reached()
        if reason is None and s["epoch"] < cfg.max_epochs:
            self._periodic_save()          # after the epoch-end validation, which a resume must not repeat
        return reason

    def run(self) -> None:
        """Train until early stopping, max_epochs, a time budget or max_steps; write last.pt."""
        self.write_config()
        total = self.total_steps()
        self.bar = progress(total=total, desc=f"htr train {self.out.name}",
                            disable=not (self.cfg.show_progress and self.dist.main),
                            initial=min(self.state["step"], total))
        self.model.train()
        stop = None
        try:
            with deferred(self.dist.world == 1) as asked:    # under DDP every rank must stop at one step
                while stop is None and self.state["epoch"] < self.cfg.max_epochs:
                    self._stop_if_asked(asked)
                    stop = self.run_epoch(asked)
            stop = stop or "max_epochs"
            if stop == "time_budget" and self.state["batch"] > 0:
                self.validate(may_restart=False)      # the partial epoch gets a final validation
            if stop != "max_steps":
                self.state["finished"], self.state["stop_reason"] = True, stop
            self.save_last()
            if asked.requested:            # the signal came during the last steps: the run is saved, stop
                raise asked.exception()
        finally:
            self.bar.close()


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
