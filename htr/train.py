"""CTC training of the gated recognizer with early stopping on validation CER (SPEC §6, §8).

One seed controls everything: model initialisation (torch), the order of the batches
(a numpy Generator seeded with (seed, epoch)), classic augmentation (a torch Generator), and the
global python/numpy/torch RNGs, whose states are saved too. The batch schedule is a pure
function of (seed, epoch, batch index), so `resume` continues exactly where an interrupted run
stopped: on CPU a resumed run ends with the same weights and metrics as an uninterrupted one.

Files in the run directory:
    config.json   the configuration and derived facts (alphabet, sizes, parameter count)
    log.jsonl     one JSON line per validation (epoch, step, train_loss, val_loss, val_cer, val_wer,
                  case-insensitive variants, best_cer, improved, wall_s)
    best.pt       the checkpoint with the lowest validation CER so far
    last.pt       the full training state (weights, optimizer, RNG states, position, early stopping)
Every file is written atomically (temporary file + os.replace).

Early stopping: a validation improves when its CER is lower than the best so far, or equal with
a lower validation CTC loss (see `is_improvement`); `patience` validations without improvement
stop the run. Under torchrun (WORLD_SIZE > 1) every rank trains on its share of each batch
(DDP), every rank validates on the whole validation set (identical decisions without extra
communication) and rank 0 alone writes files.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
import json
import math
import os
from pathlib import Path
import random
import time

import numpy as np
import torch

from benchmark.metrics.text import text_metrics
from datasets.errors import UserError
from datasets.format import atomic_write_json, load_dataset, rewind_jsonl
from datasets.progress import progress
from datasets.torch_dataset import WordImageDataset, batch_from_indices

from .augment import augment_batch
from .checkpoint import BEST, FORMAT, LAST, VERSION, check_labels_fit, read_checkpoint, save_atomic
from .decode import greedy_decode
from .model import GatedCRNN, count_parameters, ctc_loss

# Fields that define a run: resuming with different values is refused.
IDENTITY_FIELDS = ("train", "extra", "extra_ratio", "val", "seed", "batch_size", "lr", "optimizer",
                   "height", "width", "width_mult", "dropout", "augment", "max_train", "grad_clip", "eval_every",
                   "lr_factor", "lr_patience", "lr_schedule")


@dataclass
class HtrTrainConfig:
    """Options of `htraug htr train` (paper defaults: RMSprop, lr 1e-4, early stopping on val CER)."""

    train: str
    val: str
    out: str
    extra: list[str] = field(default_factory=list)   # synthetic (or other) datasets added to train
    extra_ratio: float | None = None   # None: concatenate; r in (0,1): share of every batch from extra
    seed: int = 0
    max_epochs: int = 50
    patience: int = 5                  # evaluations without CER improvement before stopping
    batch_size: int = 64
    lr: float = 1e-4
    optimizer: str = "rmsprop"         # rmsprop | adam
    lr_factor: float = 1.0             # multiply the lr by this after `lr_patience` bad validations (1: off)
    lr_patience: int = 2
    lr_schedule: str = "constant"      # constant (optionally reduce-on-plateau) | cosine (to 0 over max_epochs)
    height: int | None = None          # canvas; default: the training set's meta, else 128
    width: int | None = None           # default: meta width, else 4 × height
    width_mult: float = 1.0
    dropout: float = 0.0               # decoder dropout (0 = the plain network)
    augment: bool = False              # classic distortions (htr.augment) on every batch
    max_train: int | None = None       # use a fixed random subset of N real training images
    resume: bool = False
    device: str = "cpu"
    amp: bool = False                  # bf16 autocast on CUDA, or on CPUs with native bf16 (CTC stays fp32)
    compile: bool = False              # torch.compile the training forward (CUDA; fixed batch shapes)
    grad_clip: float = 5.0             # max gradient L2 norm (0: off)
    eval_every: int = 0                # validate every N steps (0: at the end of every epoch)
    save_every: int = 200              # also write last.pt every N steps
    max_steps: int | None = None       # stop after N optimizer steps in total (an "interruption")
    max_minutes: float | None = None   # stop (after a final validation) when this much time is spent
    threads: int | None = None         # torch CPU threads during training (None: torch's default)
    subset_seed: int = 0               # seed of the --max-train subset (nested subsets for a sweep)
    show_progress: bool = True

    def __post_init__(self):
        # Paths may arrive as pathlib.Path (the study): store strings so the config is JSON.
        self.train, self.val, self.out = str(self.train), str(self.val), str(self.out)
        self.extra = [str(e) for e in (self.extra or [])]

    def validate(self) -> None:
        """One-line errors for impossible option values."""
        if self.optimizer not in ("rmsprop", "adam"):
            raise UserError(f"--optimizer must be rmsprop or adam, got {self.optimizer!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise UserError(f"--lr-schedule must be constant or cosine, got {self.lr_schedule!r}")
        if self.lr_schedule == "cosine" and self.lr_factor < 1:
            raise UserError("--lr-schedule cosine and --lr-factor < 1 exclude each other (choose one way to lower the lr)")
        if self.extra_ratio is not None:
            if not 0.0 < self.extra_ratio < 1.0:
                raise UserError(f"--extra-ratio must lie strictly between 0 and 1, got {self.extra_ratio}")
            if not self.extra:
                raise UserError("--extra-ratio needs at least one --extra dataset")
        for name in ("max_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be ≥ 1")
        if self.patience < 1 or self.lr_patience < 1:
            raise UserError("--patience and --lr-patience must be ≥ 1")
        if not 0 < self.lr_factor <= 1:
            raise UserError(f"--lr-factor must lie in (0, 1], got {self.lr_factor}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"--dropout {self.dropout}: must lie in [0, 1)")
        if self.lr <= 0 or self.width_mult <= 0:
            raise UserError("--lr and --width-mult must be > 0")
        if self.max_train is not None and self.max_train < 1:
            raise UserError("--max-train must be ≥ 1")
        if self.extra_ratio is not None and round(self.batch_size * self.extra_ratio) in (0, self.batch_size):
            raise UserError(f"--extra-ratio {self.extra_ratio} leaves no real or no synthetic image in a batch of {self.batch_size}")
        if self.height is not None and self.height < 16:
            raise UserError(f"--height must be ≥ 16 (two 4-high down-sampling convolutions), got {self.height}")


@dataclass
class _Dist:
    """Distributed context: world size 1 unless launched by torchrun (WORLD_SIZE > 1)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    initialised: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str) -> _Dist:
    """Initialise torch.distributed when WORLD_SIZE > 1 (torchrun); plain single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but CUDA is not available")
    if world <= 1:
        return _Dist(device=torch.device(device))
    import torch.distributed as dist
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    initialised = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        initialised = True
    return _Dist(dist.get_rank(), dist.get_world_size(), dev, initialised)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch global RNGs from the one run seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Global RNG states as plain values (checkpoint-safe with weights_only loading)."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore the states saved by `rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": np.array(n["key"], dtype=np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class BatchPlan:
    """The batch schedule: which (source, index) pairs form batch b of epoch e, for a seed.

    Source 0 is the real training set (optionally a fixed subset), sources 1.. are the extra sets.
    Concatenation mode shuffles all images together; ratio mode fills every batch with
    `n_extra` images from a separately shuffled, cycled stream of the extra sets.
    """

    def __init__(self, real_indices: np.ndarray, extra_sizes: list[int], batch_size: int,
                 extra_ratio: float | None, seed: int):
        self.real = np.asarray(real_indices, dtype=np.int64)
        self.extra = [(k + 1, np.arange(n, dtype=np.int64)) for k, n in enumerate(extra_sizes)]
        self.batch_size = batch_size
        self.ratio = extra_ratio
        self.seed = seed
        self.n_extra = round(batch_size * extra_ratio) if extra_ratio is not None else 0

    def _pool(self, with_real: bool) -> np.ndarray:
        parts = [np.stack([np.zeros_like(self.real), self.real], 1)] if with_real else []
        parts += [np.stack([np.full_like(idx, k), idx], 1) for k, idx in self.extra]
        return np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)

    def num_batches(self) -> int:
        if self.ratio is None:
            n = len(self.real) + sum(len(i) for _, i in self.extra)
            return max(1, n // self.batch_size) if n >= self.batch_size else 1
        return max(1, math.ceil(len(self.real) / (self.batch_size - self.n_extra)))

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """All batches of `epoch` as arrays of (source, index) rows."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.ratio is None:
            pool = self._pool(with_real=True)
            pool = pool[rng.permutation(len(pool))]
            nb = self.num_batches()
            if len(pool) < self.batch_size:
                return [pool]
            # Drop the incomplete tail (it is reshuffled into the next epochs).
            return [pool[b * self.batch_size:(b + 1) * self.batch_size] for b in range(nb)]
        n_real = self.batch_size - self.n_extra
        real = self.real[rng.permutation(len(self.real))]
        extra_pool = self._pool(with_real=False)
        nb = self.num_batches()
        need = nb * self.n_extra
        reps = math.ceil(need / len(extra_pool))
        stream = np.concatenate([extra_pool[rng.permutation(len(extra_pool))] for _ in range(reps)])
        batches = []
        for b in range(nb):
            r = real[b * n_real:(b + 1) * n_real]
            rows = np.stack([np.zeros_like(r), r], 1)
            batches.append(np.concatenate([rows, stream[b * self.n_extra:(b + 1) * self.n_extra]]))
        return batches


def assemble(sources: list[WordImageDataset], rows: np.ndarray, rank: int = 0, world: int = 1):
    """Images, concatenated targets and lengths of one batch (this rank's share under DDP)."""
    rows = rows[rank::world]
    images, targets, lengths = [], [], []
    for k, ds in enumerate(sources):
        idx = rows[rows[:, 0] == k, 1]
        if len(idx):
            x, t, n = batch_from_indices(ds, idx)
            images.append(x)
            targets.append(t)
            lengths.append(n)
    return torch.cat(images), torch.cat(targets), torch.cat(lengths)


def _load_sources(cfg: HtrTrainConfig):
    """Open the real, extra and validation sets at the canvas size; returns (sources, val, meta, h, w)."""
    train_ds = load_dataset(cfg.train)
    meta = train_ds.meta
    height = cfg.height or meta.height or 128
    width = cfg.width or (meta.width if cfg.height is None and meta.width else 4 * height)
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


def _real_subset(n: int, cfg: HtrTrainConfig) -> np.ndarray:
    """Indices of the real images used: all, or the first N of a fixed permutation (nested sweep)."""
    if cfg.max_train is None or cfg.max_train >= n:
        return np.arange(n)
    perm = np.random.default_rng([cfg.subset_seed, 7919]).permutation(n)
    return np.sort(perm[:cfg.max_train])


def _make_optimizer(cfg: HtrTrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.RMSprop(model.parameters(), lr=cfg.lr)


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Half-cosine decay from `base_lr` at step 0 to 0 at `total_steps` (a pure function of the step)."""
    frac = min(1.0, step / max(1, total_steps))
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * frac))


def _check_resume_config(out: Path, cfg: HtrTrainConfig) -> None:
    """Refuse to resume a run directory with a different run-defining configuration."""
    path = out / "config.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8")).get("config", {})
    new = asdict(cfg)
    diff = [k for k in IDENTITY_FIELDS if k in old and old[k] != new[k]]
    if diff:
        changes = ", ".join(f"{k}: {old[k]!r} → {new[k]!r}" for k in diff)
        raise UserError(f"{out}: cannot resume with a different configuration ({changes})")


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
            images, targets, lengths = batch_from_indices(val, idx)
            log_probs = model(images.to(device))
            loss_sum += float(ctc_loss(log_probs, targets.to(device), lengths.to(device))) * len(idx)
            hyps.extend(greedy_decode(log_probs, val.alphabet, val.direction))
    finally:
        model.train(was_training)
    m = text_metrics(list(val.packed.texts), hyps)
    m["loss"] = loss_sum / len(val)
    return m


def train(cfg: HtrTrainConfig) -> Path:
    """Train (or resume) a recognizer; returns the run directory (with best.pt and last.pt)."""
    cfg.validate()
    dist = _setup_distributed(cfg.device)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        trainer = Trainer(cfg, dist)
        if not trainer.state["finished"]:
            trainer.run()
        return trainer.out
    finally:
        torch.set_num_threads(threads_before)
        if dist.initialised:
            import torch.distributed as tdist
            tdist.destroy_process_group()


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
            "bad_evals": 0, "lr_decays": 0, "loss_sum": 0.0, "loss_n": 0, "wall_s": 0.0, "finished": False, "stop_reason": None}


class Trainer:
    """One training run: data, model, optimizer, schedule and the run directory's files."""

    def __init__(self, cfg: HtrTrainConfig, dist: _Dist):
        self.cfg, self.dist = cfg, dist
        self.out = Path(cfg.out)
        self.last_path, self.best_path, self.log_path = self.out / LAST, self.out / BEST, self.out / "log.jsonl"
        if self.last_path.exists() and not cfg.resume:
            raise UserError(f"{self.out}: already holds a training run (pass --resume to continue it, or choose another --out)")
        resuming = cfg.resume and self.last_path.exists()
        if resuming:
            _check_resume_config(self.out, cfg)

        self.sources, self.val, self.meta, self.height, self.width = _load_sources(cfg)
        self.alphabet = self.meta.alphabet
        self.real_idx = _real_subset(len(self.sources[0]), cfg)
        self.plan = BatchPlan(self.real_idx, [len(s) for s in self.sources[1:]], cfg.batch_size,
                              cfg.extra_ratio, cfg.seed)

        seed_everything(cfg.seed)
        self.model = GatedCRNN(self.alphabet.num_classes, self.height, cfg.width_mult,
                               rtl=self.meta.direction == "rtl", dropout=cfg.dropout).to(dist.device)
        self.optimizer = _make_optimizer(cfg, self.model)
        self.aug_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 17)
        self.state = initial_progress()
        self.loss_pending = 0.0            # device-side loss sum not yet in state["loss_sum"]
        if resuming:
            self._restore()
        elif dist.main:
            rewind_jsonl(self.log_path, "step", 0)   # a run cut off before its first checkpoint
        self.net = self.model
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            ids = [dist.device.index] if dist.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile and dist.device.type == "cuda":
            self.net = torch.compile(self.net)
        self.loss_acc = torch.full((), self.loss_pending, dtype=torch.float64,
                                   device=dist.device)          # summed on the device: no sync per step
        self.t_start = time.monotonic()
        self.bar = None

    # --- state -------------------------------------------------------------------------------
    def _restore(self) -> None:
        """Load last.pt: weights, optimizer, RNG states, position and early-stopping state."""
        ckpt = read_checkpoint(self.last_path, "cpu")
        if ckpt.get("alphabet_fingerprint") != self.alphabet.fingerprint:
            raise UserError(f"{self.last_path}: was trained on alphabet {ckpt.get('alphabet_fingerprint')}, "
                            f"the training set has {self.alphabet.fingerprint}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["state"]["optimizer"])
        set_rng_state(ckpt["state"]["rng"])
        self.aug_gen.set_state(ckpt["state"]["aug_rng"])
        progress_state = dict(ckpt["state"]["progress"])
        self.loss_pending = float(progress_state.pop("loss_pending", 0.0))
        self.state.update(progress_state)
        if self.dist.main and not self.state["finished"]:
            rewind_jsonl(self.log_path, "step", self.state["step"])

    def wall(self) -> float:
        """Training seconds so far, across resumed sessions."""
        return self.state["wall_s"] + time.monotonic() - self.t_start

    def checkpoint(self, with_state: bool) -> dict:
        """The checkpoint dict: weights and metadata, plus the training state for last.pt."""
        s = self.state
        obj = {"format": FORMAT, "version": VERSION, "model": self.model.state_dict(),
               "model_config": self.model.config(), "alphabet": self.alphabet.to_json(),
               "alphabet_fingerprint": self.alphabet.fingerprint, "direction": self.meta.direction,
               "language": self.meta.language, "width": self.width, "epoch": s["epoch"], "step": s["step"],
               "val_cer": s["best_cer"], "config": asdict(self.cfg)}
        if with_state:
            obj["state"] = {"optimizer": self.optimizer.state_dict(), "rng": rng_state(),
                            "aug_rng": self.aug_gen.get_state(), "progress": {**s, "wall_s": self.wall(),
                                                                  "loss_pending": float(self.loss_acc)}}
        return obj

    def save_last(self) -> None:
        if self.dist.main:
            save_atomic(self.checkpoint(True), self.last_path)

    def write_config(self) -> None:
        """RUN/config.json: the options and what they resolved to."""
        if not self.dist.main:
            return
        m, src = self.model, self.sources
        atomic_write_json(self.out / "config.json", {
            "config": asdict(self.cfg), "alphabet": self.alphabet.to_json(),
            "alphabet_fingerprint": self.alphabet.fingerprint, "direction": self.meta.direction,
            "language": self.meta.language, "height": self.height, "width": self.width,
            "width_mult": self.cfg.width_mult, "parameters": count_parameters(m), "frames": m.num_frames(self.width),
            "real_train_images": int(len(self.real_idx)), "extra_images": [len(s) for s in src[1:]],
            "val_images": len(self.val), "dropped": {"train": src[0].packed.dropped, "val": self.val.packed.dropped},
            "world_size": self.dist.world, "torch": torch.__version__,
        })

    # --- one step / one validation ------------------------------------------------------------
    def step(self, rows: np.ndarray) -> torch.Tensor:
        """One optimizer step on the batch `rows`; returns the detached CTC loss (mean over ranks)."""
        images, targets, lengths = assemble(self.sources, rows, self.dist.rank, self.dist.world)
        if self.cfg.augment:
            images = augment_batch(images, self.aug_gen)
        dev = self.dist.device
        images, targets, lengths = (t.to(dev, non_blocking=True) for t in (images, targets, lengths))
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=self.cfg.amp):
            log_probs = self.net(images)
        loss = ctc_loss(log_probs, targets, lengths)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.lr_schedule == "cosine":
            lr = cosine_lr(self.cfg.lr, self.state["step"], self.plan.num_batches() * self.cfg.max_epochs)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        value = loss.detach()
        if self.dist.world > 1:            # log the mean over ranks
            import torch.distributed as tdist
            tdist.all_reduce(value)
            value = value / self.dist.world
        return value

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

    def validate(self) -> bool:
        """Validate, log, keep the best checkpoint; returns True when early stopping triggers."""
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
                save_atomic(self.checkpoint(False), self.best_path)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        if self.bar is not None:
            self.bar.set_postfix(loss=_fmt(entry["train_loss"]), cer=_fmt(m["cer"]), best=_fmt(s["best_cer"]))
        return s["bad_evals"] >= self.cfg.patience

    # --- the loop -----------------------------------------------------------------------------
    def _limit_reached(self) -> str | None:
        cfg, s = self.cfg, self.state
        if cfg.max_minutes is not None and self.wall() >= 60 * cfg.max_minutes:
            return "time_budget"
        if cfg.max_steps is not None and s["step"] >= cfg.max_steps:
            return "max_steps"
        return None

    def run_epoch(self) -> str | None:
        """Train from the saved position to the end of the current epoch; returns a stop reason."""
        cfg, s = self.cfg, self.state
        batches = self.plan.epoch(s["epoch"])
        while s["batch"] < len(batches):
            if cfg.max_steps is not None and s["step"] >= cfg.max_steps:
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
            stop = self._limit_reached()
            if stop:
                return stop
            if cfg.save_every and s["step"] % cfg.save_every == 0:
                self.save_last()
        s["epoch"] += 1
        s["batch"] = 0
        if (not cfg.eval_every or s["step"] % cfg.eval_every == 0 or s["epoch"] == cfg.max_epochs) and self.validate():
            return "early_stopping"
        return self._limit_reached()

    def run(self) -> None:
        """Train until early stopping, max_epochs, a time budget or max_steps; write last.pt."""
        self.write_config()
        total = self.plan.num_batches() * self.cfg.max_epochs
        if self.cfg.max_steps is not None:
            total = min(total, self.cfg.max_steps)
        self.bar = progress(total=total, desc=f"htr train {self.out.name}",
                            disable=not (self.cfg.show_progress and self.dist.main),
                            initial=min(self.state["step"], total))
        self.model.train()
        stop = None
        try:
            while stop is None and self.state["epoch"] < self.cfg.max_epochs:
                stop = self.run_epoch()
            stop = stop or "max_epochs"
            if stop == "time_budget" and self.state["batch"] > 0:
                self.validate()            # the partial epoch gets a final validation
            if stop != "max_steps":
                self.state["finished"], self.state["stop_reason"] = True, stop
            self.save_last()
        finally:
            self.bar.close()


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
