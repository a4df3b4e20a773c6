"""What a study stage is: a unique path-safe name, the names of the stages it reads, a JSON-able
config and a function; its content hash (sha256 over its config and the hashes of its inputs), so
a change anywhere upstream re-runs everything downstream and nothing else; and the deterministic
slice of grid units a shard runs."""
from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import json
import os
from pathlib import Path
import re
from typing import Callable, Iterable

from datasets.errors import UserError

_NAME_RE = re.compile(r"^[A-Za-z0-9._+=-]+(/[A-Za-z0-9._+=-]+)*$")


@dataclass
class StageContext:
    """What a running stage sees: its work dir, its inputs' results, and whether to resume."""

    name: str
    study_dir: Path
    work: Path
    inputs: dict[str, dict]
    resume: bool
    log: Callable[[str], None] = print

    def rel(self, path) -> str:
        """A path relative to the study directory (results store relative paths)."""
        return os.path.relpath(Path(path), self.study_dir)

    def path(self, rel: str) -> Path:
        """Resolve a study-relative path stored in a result."""
        return self.study_dir / rel



@dataclass
class Stage:
    """One unit of work in the study graph."""

    name: str
    fn: Callable[[StageContext], dict]
    config: dict = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    unit: bool = False          # an independent grid unit (sharded), as opposed to a shared prerequisite
    cost: float = 1.0           # projected seconds, for ETAs and the paper profile's projection

    def __post_init__(self):
        if not _NAME_RE.match(self.name):
            raise ValueError(f"stage name {self.name!r} is not path-safe")


def canonical_json(obj) -> str:
    """Stable JSON for hashing: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stage_hash(config: dict, input_hashes: dict[str, str]) -> str:
    """sha256 over a stage's config and the (name → hash) map of its inputs."""
    payload = canonical_json({"config": config, "inputs": input_hashes})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def fingerprint_tree(root: Path) -> str:
    """A cheap fingerprint of a directory tree (relative path, size, mtime of every file)."""
    root = Path(root)
    h = hashlib.sha256()
    if root.is_file():
        st = root.stat()
        h.update(f"{root.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse `i/N` (0 ≤ i < N) into (i, N); None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise UserError(f"--shard {text!r}: expected i/N, e.g. 0/4")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 ≤ i < N and N ≥ 1")
    return i, n


def shard_units(units: Iterable[str], shard: tuple[int, int] | None) -> list[str]:
    """The deterministic slice of grid units for shard (i, N): sorted names, every N-th from i.

    Sorting makes the slice independent of planning order; the union over i = 0..N-1 is every
    unit exactly once.
    """
    ordered = sorted(set(units))
    if shard is None:
        return ordered
    i, n = shard
    return [u for k, u in enumerate(ordered) if k % n == i]
