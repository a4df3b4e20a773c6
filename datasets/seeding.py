"""The seeding policy of both trainers (docs/DESIGN.md §10).

One run seed controls everything. It seeds torch's global generator right before the networks
are built (their initialisation, and dropout during training); every other random draw comes
from a named stream (`RandomStreams`: torch or numpy generators, each seeded from the run seed
and its purpose) or is a pure function of (seed, position), like an epoch's batch order. last.pt
saves the global generator (CPU and CUDA) and every named stream, so a resumed run continues
exactly where the interrupted one stopped.
"""
from __future__ import annotations

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 63-bit integer seed derived from (seed, rank, purpose, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_initialisation(seed: int) -> None:
    """Seed torch's global generator, which initialises the networks and drives dropout."""
    torch.manual_seed(seed)


def global_state(device: torch.device | None = None) -> dict:
    """torch's global generator state (and the CUDA one of `device`), checkpoint-safe."""
    state = {"torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device).cpu()
    return state


def set_global_state(state: dict, device: torch.device | None = None) -> None:
    """Restore what `global_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


class RandomStreams:
    """Named random streams (torch CPU generators and numpy generators), saved and restored together."""

    def __init__(self):
        self._streams: dict[str, torch.Generator | np.random.Generator] = {}

    def torch(self, name: str, seed: int) -> torch.Generator:
        """Create (or replace) the torch stream `name`."""
        self._streams[name] = torch.Generator().manual_seed(int(seed))
        return self._streams[name]

    def numpy(self, name: str, seed) -> np.random.Generator:
        """Create (or replace) the numpy stream `name` (seed: an int or a sequence of ints)."""
        self._streams[name] = np.random.default_rng(seed)
        return self._streams[name]

    def __getitem__(self, name: str):
        return self._streams[name]

    def state(self) -> dict:
        """Every stream's state as checkpoint-safe values."""
        return {name: (g.get_state() if isinstance(g, torch.Generator) else g.bit_generator.state)
                for name, g in self._streams.items()}

    def load(self, state: dict) -> None:
        """Restore the streams saved by `state` (streams it does not name keep their seeds)."""
        for name, value in state.items():
            g = self._streams.get(name)
            if isinstance(g, torch.Generator):
                g.set_state(value)
            elif g is not None:
                g.bit_generator.state = value
