"""The recognizer's batch schedule: which images form batch b of epoch e, as a pure function of
(seed, epoch, b), so that a resumed run meets exactly the batches an uninterrupted one would."""
from __future__ import annotations

import math

import numpy as np
import torch

from datasets.torch_dataset import WordImageDataset, batch_from_indices


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


def assemble(sources: list[WordImageDataset], rows: np.ndarray, rank: int = 0, world: int = 1,
             device: torch.device | None = None):
    """Images, concatenated targets and lengths of one batch (this rank's share under DDP), on
    `device` (default: the CPU; an accelerator receives uint8 images, see `unit_batch`)."""
    rows = rows[rank::world]
    images, targets, lengths = [], [], []
    for k, ds in enumerate(sources):
        idx = rows[rows[:, 0] == k, 1]
        if len(idx):
            x, t, n = batch_from_indices(ds, idx, device)
            images.append(x)
            targets.append(t)
            lengths.append(n)
    return torch.cat(images), torch.cat(targets), torch.cat(lengths)


def real_subset(n: int, max_train: int | None, subset_seed: int) -> np.ndarray:
    """Indices of the real images used: all, or the first N of a fixed permutation (nested sweep)."""
    if max_train is None or max_train >= n:
        return np.arange(n)
    perm = np.random.default_rng([subset_seed, 7919]).permutation(n)
    return np.sort(perm[:max_train])
