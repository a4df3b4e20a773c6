"""PyTorch views over packed datasets: (image, encoded label, label length) triples."""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from .alphabet import Alphabet, ctc_order
from .packed import PackedImages, load_packed
from .errors import UserError
from .preprocess import to_unit_range


class WordImageDataset(TorchDataset):
    """Word images as float tensors (1, H, W) in [-1, 1] (white = +1) with CTC targets.

    Images are returned as stored (RTL scripts left-padded); the recognizer flips RTL inputs
    inside its own input path (see `htr.model.orient_for_ctc`). Targets are encoded in the order
    the recognizer's frames meet the characters (`datasets.alphabet.ctc_order`: the logical
    order, except digit runs of RTL text); the stored labels are never changed.
    """

    def __init__(self, source, alphabet: Alphabet, height: int, width: int, show_progress: bool = True):
        packed = source if isinstance(source, PackedImages) else load_packed(source, height, width, show_progress)
        if len(packed) == 0:
            raise UserError(f"{source}: no image fits {height}x{width} after preprocessing ({packed.dropped} dropped)")
        self.packed = packed
        self.alphabet = alphabet
        self.direction = packed.direction
        self.targets = [torch.tensor(alphabet.encode(ctc_order(t, self.direction)), dtype=torch.long)
                        for t in packed.texts]

    def __len__(self) -> int:
        return len(self.packed)

    def __getitem__(self, i: int):
        img = torch.from_numpy(to_unit_range(self.packed.images[i]))
        return img.unsqueeze(0), self.targets[i], len(self.targets[i])


def collate_words(batch):
    """Stack images; concatenate targets (CTC's 1-D form) and return their lengths."""
    images = torch.stack([b[0] for b in batch])
    targets = torch.cat([b[1] for b in batch])
    lengths = torch.tensor([b[2] for b in batch], dtype=torch.long)
    return images, targets, lengths


def unit_batch(images_u8, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images (N, H, W) → the float32 model input (N, 1, H, W) in [-1, 1], on `device`.

    On an accelerator the uint8 bytes travel (a quarter of the float32 input; pinned, non-blocking)
    and are mapped there through the same table as `to_unit_range`, so the values are identical."""
    device = torch.device(device) if device is not None else None
    if device is None or device.type == "cpu":
        return torch.from_numpy(to_unit_range(images_u8)).unsqueeze(1)
    u8 = torch.from_numpy(np.ascontiguousarray(images_u8, dtype=np.uint8))
    if device.type == "cuda":
        u8 = u8.pin_memory()
    u8 = u8.to(device, non_blocking=True)
    return unit_range_table(device)[u8.long()].unsqueeze(1)


@functools.lru_cache(maxsize=8)
def unit_range_table(device: torch.device) -> torch.Tensor:
    """`to_unit_range`'s lookup table (256 float32 values) as a tensor on `device` (made once per
    device, not once per batch)."""
    return torch.from_numpy(to_unit_range(np.arange(256, dtype=np.uint8))).to(device)


def batch_from_indices(ds: WordImageDataset, indices, device: torch.device | str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fast batch assembly straight from the memory map (no per-item tensor work); images, targets
    and lengths on `device` (default: the CPU)."""
    idx = np.sort(np.asarray(indices))
    images = unit_batch(ds.packed.images[idx], device)
    targets = torch.cat([ds.targets[i] for i in idx])
    lengths = torch.tensor([len(ds.targets[i]) for i in idx], dtype=torch.long)
    if device is not None:
        targets, lengths = targets.to(device, non_blocking=True), lengths.to(device, non_blocking=True)
    return images, targets, lengths
