"""GAN training (paper §II-C): one step trains D, then R, then (G, φ).

    D      one real batch and one generated batch (batches of one kind), adversarial loss.
    R      the real batch only, CTC (R never learns from generated images).
    (G, φ) a fresh generated batch x_fake = G(z, φ(s)), s ~ p_w. The two gradients w.r.t. the
           images, ∇_D = ∂L_adv(D(x_fake))/∂x_fake and ∇_R = ∂CTC(s, R(x_fake))/∂x_fake, are
           taken with torch.autograd.grad on a detached copy of x_fake (so D's and R's parameters
           receive nothing), ∇_R is balanced (gan/balance.py) and x_fake.backward(∇_D + ∇_R).

Every `eval_every` iterations: window-mean losses and ‖∇_R‖/‖∇_D‖, readability (CER/WER of R,
and of the judge recognizer when given) on a fixed set of generated words, FID (judge 'htr'
features) and GS through benchmark.metrics.registry when importable; RUN/best.pt keeps the best
evaluation (FID, else the judge's CER, else R's CER); RUN/last.pt (full state, atomic) allows an
exact `resume`. RUN/log.jsonl gets one JSON line per evaluation; RUN/samples/ the sample grids.

Randomness: `seed` seeds the network initialisation (torch), the data order and word draws
(one numpy Generator per rank) and the noise (one torch CPU Generator per rank); all of them are
saved in last.pt, so a resumed CPU run reproduces the uninterrupted one exactly.
Mixed precision: bf16 autocast on CUDA; CTC and the balancing statistics run in float32.
Multi-GPU: launched with torchrun (WORLD_SIZE > 1), φ, G, D and R are wrapped in DDP; each rank
draws its own batches; rank 0 evaluates and writes the run directory.
"""
from __future__ import annotations

from contextlib import nullcontext
import json
import math
import os
from pathlib import Path
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.utils import parametrize
from torch.nn.parallel import DistributedDataParallel as DDP

from benchmark.metrics.text import text_metrics
from datasets.errors import UserError
from datasets.format import atomic_write_json, load_dataset, rewind_jsonl
from datasets.packed import load_packed
from datasets.progress import progress
from datasets.torch_dataset import WordImageDataset, batch_from_indices

from .balance import balance_gradients
from .checkpoint import BEST, FORMAT, LAST, VERSION, read_checkpoint, save_atomic
from .config import STRUCTURAL, GanTrainConfig
from .generate import grids_for, render, sample_z, to_u8
from .losses import d_loss, g_loss
from .options import ALIGNED_CONDITIONING
from .networks import Discriminator, Generator, NetConfig, WordEncoder, build_recognizer, count_parameters, encode_words
from .samples import save_png
from .words import build_prior, ctc_frames_needed, ctc_targets, distinct_words, estimate_char_px, stored_prior

__all__ = ["GanTrainConfig", "TrainingDiverged", "train", "d_step", "r_step", "g_step"]

LOSS_NAMES = ("loss_d", "loss_r", "loss_g_adv", "loss_g_ctc", "grad_norm_d", "grad_norm_r")
GRID_WORDS, GRID_STYLES = 8, 4
GS_LANDMARKS = 64   # Geometry Score landmarks L0 (SPEC §7)
SYNC_EVERY = 10     # iterations between host reads of the losses (NaN guard, progress bar)


class TrainingDiverged(UserError):
    """A loss or gradient became NaN/inf; the run directory keeps its last good checkpoint."""


# ----------------------------------------------------------------------------------------------
# The three updates of one training step (module-level so tests can call them directly)
# ----------------------------------------------------------------------------------------------

def _clip(params, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def d_step(D, opt, x_real, x_fake, loss: str, clip: float, autocast=nullcontext) -> torch.Tensor:
    """One discriminator update on a real batch and a generated batch (separate forwards)."""
    opt.zero_grad(set_to_none=True)
    # Spectral-norm weights are computed once (one power iteration) for both forwards.
    with autocast(), parametrize.cached():
        real_scores, fake_scores = D(x_real), D(x_fake)
    value = d_loss(loss, real_scores, fake_scores)
    value.backward()
    _clip(D.parameters(), clip)
    opt.step()
    return value.detach()


def r_step(R, opt, x_real, targets, target_lengths, clip: float, autocast=nullcontext) -> torch.Tensor:
    """One recognizer update: CTC on real images only."""
    from htr.model import ctc_loss

    opt.zero_grad(set_to_none=True)
    with autocast():
        log_probs = R(x_real)
    value = ctc_loss(log_probs, targets, target_lengths)
    value.backward()
    _clip(R.parameters(), clip)
    opt.step()
    return value.detach()


def g_step(phi, G, D, R, opt, tokens, lengths, targets, z, alpha: float | None, loss: str,
           autocast=nullcontext, readers=(), augment=None) -> dict[str, torch.Tensor]:
    """One (G, φ) update from the balanced image gradients of D and R.

    `D` and `R` are only differentiated w.r.t. the generated images (never their parameters).
    The R term is the mean CTC of R and the frozen `readers`, on `augment(x)` when given (a
    differentiable distortion of the generated batch)."""
    from htr.model import ctc_loss

    opt.zero_grad(set_to_none=True)
    with autocast():
        x_fake = G(z, phi(tokens, lengths))
    x = x_fake.detach().float().requires_grad_(True)
    with autocast():
        adv = g_loss(loss, D(x))
    (grad_d,) = torch.autograd.grad(adv, x)
    x_read = augment(x) if augment is not None else x
    target_lengths = lengths.to(x.device)
    ctcs = []
    for reader in (R, *readers):
        with autocast():
            log_probs = reader(x_read)
        ctcs.append(ctc_loss(log_probs, targets, target_lengths))
    ctc = torch.stack(ctcs).mean()
    (grad_r,) = torch.autograd.grad(ctc, x)
    total = grad_d.float() + balance_gradients(grad_d, grad_r, alpha)
    x_fake.backward(total.to(x_fake.dtype))
    opt.step()
    return {"loss_g_adv": adv.detach(), "loss_g_ctc": ctc.detach(),
            "grad_norm_d": grad_d.float().norm(), "grad_norm_r": grad_r.float().norm()}


# ----------------------------------------------------------------------------------------------
# Set-up helpers
# ----------------------------------------------------------------------------------------------

def _seed_int(*parts: int) -> int:
    """A 63-bit integer seed derived from (seed, rank, purpose, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _init_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _pick_device(name: str, local_rank: int, world: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r} (use cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available")
        if world > 1:
            device = torch.device("cuda", local_rank)
        elif device.index is None:         # "cuda" → the current device, with its index
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


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


def _registry():
    """benchmark.metrics.registry, or None while it is not available."""
    try:
        from benchmark.metrics import registry
        return registry
    except ImportError:
        return None


# ----------------------------------------------------------------------------------------------
# The training run
# ----------------------------------------------------------------------------------------------

class GanTraining:
    """State and loop of one training run (see the module docstring)."""

    def __init__(self, cfg: GanTrainConfig):
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        self.rank, self.world, local_rank = _init_distributed()
        self.device = _pick_device(cfg.device, local_rank, self.world)
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.run = Path(cfg.out)
        self.is_main = self.rank == 0
        resume_ckpt = self._check_run_dir()
        self._load_data()
        self._build()
        if cfg.r_init and resume_ckpt is None:   # a resumed run has R's weights in last.pt
            self._init_recognizer(cfg.r_init)
        self.readers = [self._load_reader(r) for r in cfg.readers or ()]
        self._fixed_material()
        self.iteration, self.elapsed = 0, 0.0
        self.best = {"metric": None, "score": None, "iteration": None}
        if resume_ckpt is not None:
            self._restore(resume_ckpt)
        self._wrap_ddp()
        self.window: list[list[float]] = []

    # -- set-up --------------------------------------------------------------------------------
    def _check_run_dir(self) -> dict | None:
        last = self.run / LAST
        if last.is_file():
            if not self.cfg.resume:
                raise UserError(f"{self.run}: holds a GAN run already (pass --resume to continue it, or choose another --out)")
            ckpt = read_checkpoint(last, "cpu")
            stored = GanTrainConfig.from_json(ckpt["train_config"]).to_json()
            now = self.cfg.to_json()
            for key in STRUCTURAL:
                a, b = stored.get(key), now.get(key)
                if key == "data":
                    a, b = str(Path(a).resolve()), str(Path(b).resolve())
                if a != b:
                    raise UserError(f"{self.run}: cannot resume with {key}={now.get(key)!r}; the run was started with {stored.get(key)!r}")
            return ckpt
        if self.run.exists() and any(self.run.iterdir()) and not self.cfg.resume:
            raise UserError(f"{self.run}: already exists and is not empty (choose another --out)")
        return None

    def _load_data(self) -> None:
        cfg = self.cfg
        ds = load_dataset(cfg.data)
        self.meta, self.alphabet = ds.meta, ds.meta.alphabet
        self.real = WordImageDataset(ds, self.alphabet, cfg.height, cfg.width, show_progress=cfg.progress and self.is_main)
        if len(self.real) < 2:
            raise UserError(f"{cfg.data}: needs at least 2 images that fit {cfg.height}x{cfg.width}, found {len(self.real)}")
        texts = list(self.real.packed.texts)
        from htr.model import GatedCRNN
        self.frames = GatedCRNN.num_frames(cfg.width)
        self.max_chars = int(cfg.max_chars or max(len(t) for t in texts))
        self.layout = {}
        if cfg.cond in ALIGNED_CONDITIONING:
            # aligned/spatial codes place character i at [i·char_px, (i+1)·char_px): longer words would be cut
            char_px = round(estimate_char_px(self.real.packed.images, texts, self.meta.direction), 4)
            self.layout = {"char_px": char_px, "rtl": self.meta.direction == "rtl"}
            self.max_chars = min(self.max_chars, max(1, int(cfg.width // char_px)))
        self.real_too_long = sum(ctc_frames_needed(t) > self.frames for t in texts)
        self.prior = build_prior(self.meta.language, self.alphabet, self.max_chars, self.frames, texts)
        self.dataset_info = {"name": self.meta.name, "language": self.meta.language, "direction": self.meta.direction,
                             "alphabet": self.alphabet.to_json(), "height": cfg.height, "width": cfg.width,
                             "path": str(Path(cfg.data).resolve()), "images": len(self.real),
                             "dropped": int(self.real.packed.dropped)}

    def _build(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.net_cfg = NetConfig(num_symbols=len(self.alphabet.symbols), height=cfg.height, width=cfg.width,
                                 channel_mult=cfg.channel_mult, attention=cfg.attention, cond=cfg.cond,
                                 d_norm=cfg.d_norm, **self.layout)
        self.phi = WordEncoder(self.net_cfg).to(self.device)
        self.G = Generator(self.net_cfg).to(self.device)
        self.D = Discriminator(self.net_cfg).to(self.device)
        self.R = build_recognizer(self.alphabet.num_classes, cfg.height, cfg.htr_width_mult,
                                  rtl=self.meta.direction == "rtl").to(self.device)
        self.fast = self.device.type == "cuda"   # fused Adam, channels-last and compile: CUDA only
        if cfg.channels_last and self.fast:
            for module in (self.G, self.D, self.R):
                module.to(memory_format=torch.channels_last)
        # fused: one kernel per update instead of one per tensor
        adam = lambda params: torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, fused=self.fast)
        self.opt_g = adam(list(self.phi.parameters()) + list(self.G.parameters()))
        self.opt_d = adam(self.D.parameters())
        self.opt_r = adam(self.R.parameters())
        self.rng = np.random.default_rng([cfg.seed, self.rank, 1])
        self.zgen = torch.Generator().manual_seed(_seed_int(cfg.seed, self.rank, 2))
        self.augment_gen = torch.Generator().manual_seed(_seed_int(cfg.seed, self.rank, 3))
        self.sampler = RealSampler(len(self.real), cfg.batch_size, self.rng)

    def _init_recognizer(self, source: str) -> None:
        """Load R's starting weights from a recognizer checkpoint, refusing any mismatch."""
        from htr.checkpoint import read_checkpoint as read_htr, resolve

        path = resolve(source)
        ckpt = read_htr(path, "cpu")
        mc = ckpt["model_config"]
        self._check_recognizer(f"--r-init {path}", ckpt.get("alphabet_fingerprint"), mc, same_width=True)
        self.R.load_state_dict(ckpt["model"])

    def _load_reader(self, source: str):
        """A frozen extra reader for G's R term: trained on this alphabet, height and direction."""
        from htr.checkpoint import load_recognizer

        model, alphabet, info = load_recognizer(source, self.device)
        self._check_recognizer(f"--readers {info['path']}", alphabet.fingerprint, info["model_config"], same_width=False)
        for p in model.parameters():
            p.requires_grad_(False)
        return model.eval()

    def _check_recognizer(self, where: str, fingerprint, model_config: dict, same_width: bool) -> None:
        cfg = self.cfg
        checks = [("alphabet", fingerprint, self.alphabet.fingerprint),
                  ("height", model_config.get("height"), cfg.height),
                  ("script direction", "rtl" if model_config.get("rtl") else "ltr", self.meta.direction)]
        if same_width:
            checks.append(("width multiplier", float(model_config.get("width_mult", 0)), float(cfg.htr_width_mult)))
        for what, theirs, ours in checks:
            if theirs != ours:
                raise UserError(f"{where}: {what} {theirs!r} differs from this run's {ours!r}")

    def _fixed_material(self) -> None:
        """Evaluation words/noise, sample-grid words, FID/GS reference images, the judge."""
        cfg = self.cfg
        self.eval_words = self.prior.sample(cfg.eval_words, np.random.default_rng([cfg.seed, 101]))
        self.eval_z = sample_z(cfg.eval_words, self.net_cfg.z_dim, torch.Generator().manual_seed(_seed_int(cfg.seed, 102)))
        self.grid_words = distinct_words(self.prior, GRID_WORDS, np.random.default_rng([cfg.seed, 2]))
        self.judge, self.reference = None, None
        if not self.is_main:
            return
        if cfg.judge:
            from htr.checkpoint import check_labels_fit, load_recognizer
            model, alphabet, info = load_recognizer(cfg.judge, self.device)
            if model.height != cfg.height:
                raise UserError(f"judge {cfg.judge}: trained at height {model.height}, the GAN generates height {cfg.height}")
            if bool(model.rtl) != (self.meta.direction == "rtl"):
                raise UserError(f"judge {cfg.judge}: script direction differs from {cfg.data}")
            check_labels_fit(alphabet, self.eval_words, f"judge {cfg.judge}", "the judge")
            self.judge = (model, alphabet)
        n_ref = max(cfg.fid_n, cfg.gs_n)
        if n_ref > 0:
            packed = self.real.packed if not cfg.val else load_packed(cfg.val, cfg.height, cfg.width, cfg.progress)
            n = min(n_ref, len(packed))
            idx = np.sort(np.random.default_rng([cfg.seed, 103]).choice(len(packed), n, replace=False))
            self.reference = np.asarray(packed.images[idx])

    def _wrap_ddp(self) -> None:
        """Training-time views of the networks: DDP wrappers under torchrun, else the modules."""
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.t_phi, self.t_G = DDP(self.phi, device_ids=ids), DDP(self.G, device_ids=ids)
            self.t_D, self.t_R = DDP(self.D, device_ids=ids), DDP(self.R, device_ids=ids)
        else:
            self.t_phi, self.t_G, self.t_D, self.t_R = self.phi, self.G, self.D, self.R
        # Views used inside the training step (compiled when asked); the plain modules stay for
        # evaluation and saving. g_D / g_R serve the G step, which differentiates D and R w.r.t. the
        # images only, so they never go through DDP's gradient hooks.
        compiled = torch.compile if (self.cfg.compile and self.fast) else (lambda m: m)
        self.s_G, self.s_D, self.s_R = compiled(self.t_G), compiled(self.t_D), compiled(self.t_R)
        if self.world == 1:
            self.g_D, self.g_R = self.s_D, self.s_R
        else:
            self.g_D, self.g_R = compiled(self.D), compiled(self.R)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    # -- one iteration -------------------------------------------------------------------------
    def _fake_inputs(self):
        words = self.prior.sample(self.cfg.batch_size, self.rng)
        tokens, lengths = encode_words(words, self.alphabet)
        targets = ctc_targets(words, self.alphabet, self.meta.direction)
        z = sample_z(self.cfg.batch_size, self.net_cfg.z_dim, self.zgen)
        dev = self.device
        return tokens.to(dev), lengths, targets.to(dev), z.to(dev)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """The classic distortions of `htr.augment`, differentiable, drawn from this run's stream."""
        from htr.augment import augment_batch
        return augment_batch(x, self.augment_gen)

    def step(self) -> torch.Tensor:
        """One training iteration; returns the tensor of LOSS_NAMES values."""
        cfg, dev = self.cfg, self.device
        x_real, targets, lengths = batch_from_indices(self.real, self.sampler.next())
        x_real, targets, lengths = x_real.to(dev, non_blocking=True), targets.to(dev), lengths.to(dev)
        if cfg.channels_last and self.fast:
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        tokens, flen, _, z = self._fake_inputs()
        with torch.no_grad(), self.autocast():
            x_fake = self.s_G(z, self.phi(tokens, flen)).float()
        loss_d = d_step(self.s_D, self.opt_d, x_real, x_fake, cfg.loss, cfg.grad_clip_d, self.autocast)
        loss_r = r_step(self.s_R, self.opt_r, x_real, targets, lengths, cfg.grad_clip_r, self.autocast)
        tokens, flen, ftargets, z = self._fake_inputs()
        augment = self._augment if cfg.r_augment else None
        g = g_step(self.t_phi, self.s_G, self.g_D, self.g_R, self.opt_g, tokens, flen, ftargets, z,
                   cfg.alpha, cfg.loss, self.autocast, self.readers, augment)
        return torch.stack([loss_d, loss_r, g["loss_g_adv"], g["loss_g_ctc"], g["grad_norm_d"], g["grad_norm_r"]]).float()

    # -- loop ----------------------------------------------------------------------------------
    def fit(self) -> Path:
        cfg = self.cfg
        if self.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run / "config.json", cfg.to_json())
            rewind_jsonl(self.run / "log.jsonl", "iteration", self.iteration)  # drop what comes again
            self._log({"event": "resume" if self.iteration else "start", "iteration": self.iteration,
                       "device": str(self.device), "world_size": self.world, "amp": self.amp,
                       "dataset": {k: v for k, v in self.dataset_info.items() if k != "alphabet"},
                       "max_chars": self.max_chars, "frames": self.frames, **self.layout, "real_words_too_long_for_ctc": self.real_too_long,
                       "prior": {"source": self.prior.source, "words": len(self.prior)},
                       "parameters": self.parameter_counts()})
        if self.iteration >= cfg.iterations:
            return self.run
        bar = progress(total=cfg.iterations, initial=self.iteration, desc="gan train", disable=not (cfg.progress and self.is_main))
        t0 = time.perf_counter()
        pending: list[torch.Tensor] = []   # loss rows still on the device (read every SYNC_EVERY)
        try:
            for it in range(self.iteration + 1, cfg.iterations + 1):
                values = self.step()
                if self.world > 1:
                    dist.all_reduce(values)
                    values /= self.world
                pending.append(values)
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
                    self._write_samples()
                if at_end:
                    break
        finally:
            bar.close()
        return self.run

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

    def _take_rows(self, pending: list[torch.Tensor], it: int) -> None:
        """Read the pending loss rows (one host sync) into the window; stop on NaN/inf."""
        rows = torch.stack(pending).tolist()
        first = it - len(rows) + 1
        pending.clear()
        for k, row in enumerate(rows):
            if not all(math.isfinite(v) for v in row):
                bad = ", ".join(n for n, v in zip(LOSS_NAMES, row) if not math.isfinite(v))
                kept = f"{self.run / LAST} (iteration {self._saved_iteration()})" if (self.run / LAST).is_file() else "no checkpoint yet"
                raise TrainingDiverged(f"training diverged at iteration {first + k}: non-finite {bad}; stopped, last good checkpoint: {kept}")
        self.window.extend(rows)

    def _window_means(self) -> dict[str, float]:
        arr = np.asarray(self.window, dtype=np.float64)
        means = dict(zip(LOSS_NAMES, arr.mean(axis=0).tolist()))
        means["grad_ratio_r_d"] = float(np.mean(arr[:, 5] / np.maximum(arr[:, 4], 1e-12)))
        return means

    def _saved_iteration(self) -> int | str:
        try:
            return int(read_checkpoint(self.run / LAST)["iteration"])
        except UserError:
            return "?"

    # -- evaluation, checkpoints, samples ------------------------------------------------------
    def _evaluate_and_save(self) -> None:
        self._check_parameters_finite()
        states = self._rank_states()
        if self.is_main:
            record = {"event": "eval", "iteration": self.iteration, "train_seconds": round(self.elapsed, 2)}
            record.update({k: round(v, 6) for k, v in self._window_means().items()})
            t = time.perf_counter()
            record.update(self.evaluate())
            record["eval_seconds"] = round(time.perf_counter() - t, 2)
            metric, score = self._selection_score(record)
            improved = score is not None and (self.best["metric"] != metric or self.best["score"] is None or score < self.best["score"])
            if improved:
                self.best = {"metric": metric, "score": float(score), "iteration": self.iteration}
                save_atomic(self._checkpoint("best"), self.run / BEST)
            record["best"] = dict(self.best)
            self._log(record)   # before last.pt: a resume from an older checkpoint rewinds past it
            save_atomic(self._checkpoint("last", states), self.run / LAST)
        self.window = []
        if self.world > 1:
            dist.barrier()

    def _check_parameters_finite(self) -> None:
        """Never checkpoint NaN/inf weights: stop instead, keeping the previous last.pt."""
        for name, module in (("phi", self.phi), ("G", self.G), ("D", self.D), ("R", self.R)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                kept = f"{self.run / LAST} (iteration {self._saved_iteration()})" if (self.run / LAST).is_file() else "no checkpoint yet"
                raise TrainingDiverged(f"training diverged by iteration {self.iteration}: non-finite weights in {name}; "
                                       f"stopped, last good checkpoint: {kept}")

    @staticmethod
    def _selection_score(record: dict) -> tuple[str | None, float | None]:
        for key in ("fid", "cer_judge", "cer_R"):
            if record.get(key) is not None:
                return key, record[key]
        return None, None

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Readability by R (and the judge), FID and GS of the current generator."""
        from htr.evaluate import recognize

        out = {}
        images = render(self.phi, self.G, self.alphabet, self.eval_words, self.eval_z, 256, self.device, self.amp)
        m = text_metrics(self.eval_words, recognize(self.R, self.alphabet, images, 256, self.device))
        out.update(cer_R=round(m["cer"], 3), wer_R=round(m["wer"], 3))
        if self.judge is not None:
            model, alphabet = self.judge
            m = text_metrics(self.eval_words, recognize(model, alphabet, images, 256, self.device))
            out.update(cer_judge=round(m["cer"], 3), wer_judge=round(m["wer"], 3))
        out.update(self._distribution_metrics())
        return out

    def _distribution_metrics(self) -> dict:
        """FID (judge 'htr' features) and GS via the metrics registry, when possible."""
        cfg = self.cfg
        if self.reference is None:
            return {}
        registry = _registry()
        if registry is None:
            return {"fid": None, "gs": None, "metrics_note": "benchmark.metrics.registry not available"}
        n = max(cfg.fid_n, cfg.gs_n)
        words = self.prior.sample(n, np.random.default_rng([cfg.seed, 104]))
        z = sample_z(n, self.net_cfg.z_dim, torch.Generator().manual_seed(_seed_int(cfg.seed, 105)))
        fake = to_u8(render(self.phi, self.G, self.alphabet, words, z, 256, self.device, self.amp))
        real = self.reference
        out: dict = {}
        try:
            if cfg.fid_n > 0 and cfg.judge:
                k = min(cfg.fid_n, len(real))
                res = registry.compute("fid", real[:k], fake[:k], features="htr", judge=cfg.judge, n=k, seed=cfg.seed,
                                       device=str(self.device))
                out.update(fid=float(res.get("fid", res.get("value"))), fid_n=k, fid_features="htr")
            elif cfg.fid_n > 0:
                out.update(fid=None, metrics_note="FID needs --judge (htr features)")
            if cfg.gs_n > 0:
                k = min(cfg.gs_n, len(real))
                landmarks = min(GS_LANDMARKS, k)      # fewer only for tiny (smoke) sample sizes
                res = registry.compute("gs", real[:k], fake[:k], n=k, reps=cfg.gs_reps, seed=cfg.seed, landmarks=landmarks)
                out.update(gs=float(res.get("gs", res.get("value"))), gs_n=k, gs_landmarks=landmarks)
        except Exception as exc:  # a metric failure must not end a long training run
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            print(f"htraug: warning: iteration {self.iteration}: distribution metrics failed ({msg})", file=sys.stderr)
            out["metrics_error"] = msg
        return out

    def _write_samples(self) -> None:
        words_grid, styles_grid = grids_for(self.phi, self.G, self.alphabet, self.grid_words, GRID_STYLES, self.cfg.seed,
                                            self.device, label=self.meta.direction == "ltr", amp=self.amp)
        base = self.run / "samples" / f"iter_{self.iteration:06d}"
        save_png(words_grid, base.with_name(base.name + "_words.png"))
        save_png(styles_grid, base.with_name(base.name + "_styles.png"))

    def _log(self, record: dict) -> None:
        with open(self.run / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def parameter_counts(self) -> dict[str, int]:
        return {name: count_parameters(m) for name, m in (("phi", self.phi), ("G", self.G), ("D", self.D), ("R", self.R))}

    # -- checkpoint state ----------------------------------------------------------------------
    def _local_state(self) -> dict:
        state = {"numpy": self.rng.bit_generator.state, "z": self.zgen.get_state(), "sampler": self.sampler.state(),
                 "torch": torch.get_rng_state(), "augment": self.augment_gen.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device).cpu()
        return state

    def _rank_states(self) -> list[dict]:
        """RNG and data-order states of every rank (gathered on all ranks under DDP)."""
        local = self._local_state()
        if self.world == 1:
            return [local]
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, local)
        return gathered

    def _checkpoint(self, kind: str, rank_states: list[dict] | None = None) -> dict:
        ckpt = {
            "format": FORMAT, "version": VERSION, "kind": kind, "iteration": self.iteration,
            "net_config": self.net_cfg.to_json(), "recognizer_config": self.R.config(),
            "train_config": self.cfg.to_json(), "dataset": self.dataset_info,
            "alphabet_fingerprint": self.alphabet.fingerprint, "max_chars": self.max_chars, "frames": self.frames,
            "prior": stored_prior(self.prior), "best": dict(self.best),
            "models": {"phi": self.phi.state_dict(), "G": self.G.state_dict(), "D": self.D.state_dict(), "R": self.R.state_dict()},
        }
        if kind == "last":
            ckpt["state"] = {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "opt_r": self.opt_r.state_dict(),
                             "ranks": rank_states, "elapsed": self.elapsed}
        return ckpt

    def _restore(self, ckpt: dict) -> None:
        if ckpt["alphabet_fingerprint"] != self.alphabet.fingerprint:
            raise UserError(f"{self.run}: checkpoint alphabet differs from {self.cfg.data}'s alphabet")
        for name, module in (("phi", self.phi), ("G", self.G), ("D", self.D), ("R", self.R)):
            module.load_state_dict(ckpt["models"][name])
        st = ckpt["state"]
        self.opt_g.load_state_dict(st["opt_g"]), self.opt_d.load_state_dict(st["opt_d"]), self.opt_r.load_state_dict(st["opt_r"])
        self.iteration, self.elapsed, self.best = int(ckpt["iteration"]), float(st["elapsed"]), dict(ckpt["best"])
        ranks = st["ranks"]
        if len(ranks) == self.world:
            mine = ranks[self.rank]
            self.rng.bit_generator.state = mine["numpy"]
            self.zgen.set_state(mine["z"])
            if "augment" in mine:
                self.augment_gen.set_state(mine["augment"])
            self.sampler.load(mine["sampler"])
            torch.set_rng_state(mine["torch"])
            if self.device.type == "cuda" and "cuda" in mine:
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        else:  # another world size: fresh, iteration-dependent streams (not bitwise-reproducible)
            self.rng = np.random.default_rng([self.cfg.seed, self.rank, 1, self.iteration])
            self.zgen = torch.Generator().manual_seed(_seed_int(self.cfg.seed, self.rank, 2, self.iteration))
            self.augment_gen = torch.Generator().manual_seed(_seed_int(self.cfg.seed, self.rank, 3, self.iteration))
            self.sampler = RealSampler(len(self.real), self.cfg.batch_size, self.rng)


def train(cfg: GanTrainConfig) -> Path:
    """Train (or resume) a GAN run; returns the run directory."""
    started_group = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    try:
        return GanTraining(cfg).fit()
    finally:
        if started_group and dist.is_initialized():
            dist.destroy_process_group()
