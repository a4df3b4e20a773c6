"""Shared test fixtures: a single-threaded torch, a tiny drawn word-image dataset and a fake study backend."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datasets.alphabet import Alphabet


@pytest.fixture
def one_thread():
    """Single-threaded torch: on a shared 2-core machine two spinning OpenMP threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- tiny drawn word-image datasets for the GAN tests (no fonts needed) -----------------------------

TINY_ALPHABET = Alphabet("abcdelmnorst", "tiny")
TINY_WORDS = ["le", "des", "mot", "tres", "bal", "cane", "sort", "nerd"]


def write_tiny_dataset(out: Path, n: int = 24, height: int = 16, width: int = 64, language: str = "xx",
                       direction: str = "ltr", alphabet: Alphabet = TINY_ALPHABET, seed: int = 0) -> Path:
    """A dataset directory of `n` noisy stroke images labelled with short words."""
    from datasets.files import StagingDir
    from datasets.format import DatasetMeta, DatasetWriter

    rng = np.random.default_rng(seed)
    meta = DatasetMeta(name="tiny", language=language, direction=direction, alphabet=alphabet,
                       height=height, width=width, split="train")
    with StagingDir(out) as tmp:
        writer = DatasetWriter(tmp, meta)
        for i in range(n):
            word = TINY_WORDS[i % len(TINY_WORDS)]
            img = np.full((height, int(rng.integers(width // 3, width))), 255, np.uint8)
            for _ in range(3 * len(word)):
                x, y = int(rng.integers(0, img.shape[1])), int(rng.integers(2, height - 2))
                img[y - 1:y + 2, max(0, x - 2):x + 2] = int(rng.integers(0, 80))
            writer.add(img, word)
        writer.close()
    return Path(out)


@pytest.fixture(scope="session")
def tiny_alphabet() -> Alphabet:
    """The alphabet of the tiny datasets (frozen, so one instance serves every test)."""
    return TINY_ALPHABET


@pytest.fixture
def tiny_words() -> list[str]:
    """The words the tiny datasets cycle through, in order (a fresh list per test)."""
    return list(TINY_WORDS)


@pytest.fixture(scope="session")
def make_tiny():
    """The factory `make_tiny(out, n=24, ...)`: writes a tiny dataset directory, returns its path."""
    return write_tiny_dataset


# --- a lightweight, deterministic stand-in for the study's backend (no torch, milliseconds per call) ---
#
# Numbers depend only on the options a stage passes (never on absolute paths), so two studies in
# different directories produce identical results. `interrupt_after` raises KeyboardInterrupt in
# the middle of the N-th training call (after writing a partial run dir), like a killed job.

def _h(*parts) -> float:
    """A deterministic number in [0, 1) from JSON-able parts."""
    d = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(d[:8], "big") / 2 ** 64


def _png(path: Path, seed: float, h: int = 16, w: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(seed * 1e6))
    Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8), mode="L").save(path)


def _dataset(root: Path, n: int, name: str, language: str, direction: str, split: str, seed: float) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    words = [f"w{int(_h(seed, i) * 50)}" for i in range(n)]
    (root / "images").mkdir(exist_ok=True)
    lines = []
    for i, w in enumerate(words[: min(n, 4)]):
        _png(root / "images" / f"{i:07d}.png", _h(seed, "img", i))
    for i, w in enumerate(words):
        lines.append(f"images/{i:07d}.png\t{w}\n")
    (root / "labels.tsv").write_text("".join(lines), encoding="utf-8")
    stats = {"images": n, "words": len(set(words)), "characters": len({c for w in words for c in w})}
    meta = {"kind": "dataset", "name": name, "language": language, "direction": direction, "alphabet": "0123456789w",
            "split": split, "stats": stats}
    (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return stats


def _strip_paths(opts: dict) -> dict:
    """The options that define a run, minus absolute paths (kept as their last two parts)."""
    out = {}
    for k, v in opts.items():
        if k in ("out", "resume"):
            continue
        if isinstance(v, str) and "/" in v:
            v = "/".join(Path(v).parts[-2:])
        if isinstance(v, list):
            v = ["/".join(Path(x).parts[-2:]) if isinstance(x, str) and "/" in x else x for x in v]
        out[k] = v
    return out


class FakeBackend:
    """Implements benchmark.backend.StudyBackend with files and hashed numbers."""

    def __init__(self, interrupt_after: int | None = None):
        self.interrupt_after = interrupt_after
        self.train_calls: list[tuple[str, str, bool]] = []   # (kind, out dir name chain, resume)
        self.calls: list[str] = []

    def _count_train(self, kind: str, opts: dict, resume: bool) -> None:
        self.train_calls.append((kind, "/".join(Path(opts["out"]).parts[-4:]), resume))
        if self.interrupt_after is not None and len(self.train_calls) == self.interrupt_after:
            self.interrupt_after = None
            raise KeyboardInterrupt

    def build_standin(self, kind, out, n_train, n_val, n_test, height, width, seed, **options):
        self.calls.append(f"build:{kind}")
        out = Path(out)
        lang, direction = ("fr", "ltr") if kind == "rimes-like" else ("ar", "rtl")
        stats = {s: _dataset(out / s, n, kind, lang, direction, s, _h(kind, seed, s))
                 for s, n in (("train", n_train), ("val", n_val), ("test", n_test))}
        _png(out / "samples.png", _h(kind, "samples"))
        meta = {"kind": "collection", "name": kind, "language": lang, "direction": direction,
                "splits": ["train", "val", "test"], "stats": {"all": {"images": n_train + n_val + n_test}, **stats}}
        (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        return out

    def import_dataset(self, fmt, root, out, height, width, options):
        return self.build_standin("rimes-like", out, 20, 5, 5, height, width, 0)

    def train_htr(self, opts, resume):
        out = Path(opts["out"])
        key = _strip_paths(opts)
        out.mkdir(parents=True, exist_ok=True)
        (out / "partial").write_text("checkpoint")
        self._count_train("htr", opts, resume)
        base = 20 + 40 * _h("htr", key)
        with open(out / "log.jsonl", "w") as f:
            for e in range(1, opts["max_epochs"] + 1):
                f.write(json.dumps({"epoch": e, "step": e * 3, "train_loss": 10 / e, "val_cer": base + 30 / e}) + "\n")
        (out / "opts.json").write_text(json.dumps(key, sort_keys=True))
        (out / "best.pt").write_text("model")
        return out

    def evaluate_htr(self, run, data_dir, out_tsv=None):
        key = json.loads((Path(run) / "opts.json").read_text())
        cer = 10 + 60 * _h("cer", key)
        return {"cer": cer, "wer": min(100.0, 2 * cer), "cer_ci": cer * 0.9, "wer_ci": min(100.0, 1.8 * cer), "n": 48}

    def train_gan(self, opts, resume):
        out = Path(opts["out"])
        key = _strip_paths(opts)
        out.mkdir(parents=True, exist_ok=True)
        self._count_train("gan", opts, resume)
        with open(out / "log.jsonl", "w") as f:
            for it in range(opts["eval_every"], opts["iterations"] + 1, opts["eval_every"]):
                f.write(json.dumps({"iteration": it, "loss_d": 1.0 / it, "loss_g_adv": 0.5, "fid": 100 * _h("fid", key, it),
                                    "gs": 0.01 * _h("gs", key, it), "cer_judge": 50.0}) + "\n")
        _png(out / "samples" / "iter_000030.png", _h("gan-samples", key))
        (out / "opts.json").write_text(json.dumps(key, sort_keys=True))
        (out / "best.pt").write_text("gan")
        return out

    def generate(self, run, n, out, words=None, seed=0):
        key = json.loads((Path(run) / "opts.json").read_text())
        _dataset(Path(out), n, "gen", "fr", "ltr", "synthetic", _h("gen", key, seed))
        (Path(out) / "gen.json").write_text(json.dumps({"gan": key, "seed": seed}))
        return Path(out)

    def sample_grids(self, run, out_png, seed):
        _png(Path(out_png), _h("grid", seed, (Path(run) / "opts.json").read_text()))
        return Path(out_png)

    def diversity_words(self, real, k, m, seed):
        return [f"w{i}" for i in range(k)]

    def metric(self, name, real, fake, **opts):
        key = (Path(fake) / "gen.json").read_text()
        v = _h(name, key, {k: v for k, v in opts.items() if k != "judge"})
        scale = {"fid": 200.0, "gs": 0.05, "kid": 0.2, "readability": 100.0, "diversity": 1.0}[name]
        if name == "readability":
            return {"cer": v * scale, "wer": min(100.0, 1.5 * v * scale)}
        return {name: v * scale}


@pytest.fixture(scope="session")
def fake_backend() -> type[FakeBackend]:
    """The FakeBackend class: `fake_backend(interrupt_after=None)` is a new backend; subclass it to
    record or break a step."""
    return FakeBackend
