"""Diversity of a generator's handwriting: how much images of one word vary with z, against how
much real images of that word vary between writers (docs/DESIGN.md §7.5). 1 = as varied as real
writers, 0 = every z draws the same image (style collapse).

Estimator. Real side: per word, at most `m` images by distinct writers (one image per writer,
chosen with the seed; where a dataset records no writers every image counts as its own writer).
Generated side: per word, at most `m` images (the generator's K words × M values of z). The words
are those both sides hold with at least two images, the `k` most written first (ties by word).
For each word the mean pairwise distance between its images is taken; the mean over words on the
generated side divided by the same mean on the real side is the diversity. Distances: Euclidean
between the judge recognizer's pooled encoder features (`diversity_features`, the headline
`diversity` when a judge is given), and root-mean-square pixel difference of the preprocessed
images in [-1, 1] (`diversity_pixels`).
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from datasets.errors import UserError


def _labelled(source, words, writers, height, width, where: str):
    """(uint8 images (N, H, W), words, writers or None) of a dataset directory or an array."""
    if isinstance(source, np.ndarray):
        if words is None or len(words) != len(source):
            raise UserError(f"{where}: an image array needs its words (one per image)")
        return source, list(words), list(writers) if writers is not None else None
    from datasets.format import load_dataset
    from datasets.packed import load_packed

    ds = load_dataset(Path(source))
    height, width = height or ds.meta.height, width or ds.meta.width
    if not height or not width:
        raise UserError(f"{source}: meta.json has no height/width; give the image size")
    packed = load_packed(ds, int(height), int(width), show_progress=False)
    known = ds.meta.writers
    writers = [known[p] for p in packed.paths] if known and all(p in known for p in packed.paths) else None
    return np.asarray(packed.images), list(packed.texts), writers


def writer_groups(words: list[str], writers: list[str] | None, m: int, seed: int) -> dict[str, list[int]]:
    """Word → indices of at most `m` images by distinct writers (every image its own writer
    when `writers` is None), in a seeded order."""
    order = np.random.default_rng([seed, 613]).permutation(len(words))
    groups: dict[str, list[int]] = {}
    seen: dict[str, set] = {}
    for i in order:
        w = words[i]
        who = writers[i] if writers is not None else i
        if who in seen.setdefault(w, set()) or len(groups.setdefault(w, [])) >= m:
            continue
        seen[w].add(who)
        groups[w].append(int(i))
    return {w: sorted(idx) for w, idx in groups.items() if len(idx) >= 2}


def diversity_words(real, k: int, m: int = 8, seed: int = 0, height=None, width=None) -> list[str]:
    """The `k` words of a real dataset written by the most distinct writers (ties by word): the
    words a generator is asked to draw for `diversity`."""
    _, words, writers = _labelled(real, None, None, height, width, str(real))
    groups = writer_groups(words, writers, m, seed)
    return sorted(groups, key=lambda w: (-len(groups[w]), w))[:k]


def _mean_pair_distance(vectors: np.ndarray, groups: dict[str, list[int]], chosen: list[str]) -> tuple[float, int]:
    """Mean over words of the mean pairwise Euclidean distance of each word's vectors; pair count."""
    per_word, pairs = [], 0
    for w in chosen:
        d = [float(np.linalg.norm(vectors[a] - vectors[b])) for a, b in combinations(groups[w], 2)]
        per_word.append(np.mean(d))
        pairs += len(d)
    return float(np.mean(per_word)), pairs


def diversity(real, fake, judge=None, k: int = 32, m: int = 8, seed: int = 0, batch_size: int = 64,
              device: str = "cpu", height: int | None = None, width: int | None = None,
              real_words=None, real_writers=None, fake_words=None) -> dict:
    """Diversity of `fake` against `real` (dataset directories, or uint8 arrays with their words
    and, for `real`, writers); see the module docstring for the estimator."""
    if k < 1 or m < 2:
        raise UserError(f"diversity needs k ≥ 1 words and m ≥ 2 images per word, got k={k}, m={m}")
    model = None
    if judge is not None:
        from htr.checkpoint import as_recognizer, canvas_of

        model, _alphabet, info = as_recognizer(judge, device)
        height, width = canvas_of(model, info)
    r_img, r_words, r_writers = _labelled(real, real_words, real_writers, height, width, "real")
    f_img, f_words, _ = _labelled(fake, fake_words, None, height, width, "fake")
    if r_img.shape[1:] != f_img.shape[1:]:
        raise UserError(f"real images are {r_img.shape[1]}x{r_img.shape[2]} but generated ones {f_img.shape[1]}x{f_img.shape[2]}")
    real_groups = writer_groups(r_words, r_writers, m, seed)
    fake_groups = writer_groups(f_words, None, m, seed)
    chosen = sorted((w for w in real_groups if w in fake_groups), key=lambda w: (-len(real_groups[w]), w))[:k]
    if not chosen:
        raise UserError("diversity: no word has ≥ 2 real images by different writers and ≥ 2 generated images")
    out = {"diversity_words": len(chosen), "diversity_m": m,
           "real_images_per_word": float(np.mean([len(real_groups[w]) for w in chosen])),
           "fake_images_per_word": float(np.mean([len(fake_groups[w]) for w in chosen]))}
    scale = np.sqrt(r_img.shape[1] * r_img.shape[2])
    spaces = {"pixels": lambda imgs: _unit(imgs) / scale}
    if model is not None:
        from .features import judge_features

        spaces["features"] = lambda imgs: judge_features(model, imgs, batch_size, device)
    real_used, r_groups = _used(real_groups, chosen)
    fake_used, f_groups = _used(fake_groups, chosen)
    for name, embed in spaces.items():
        real_d, real_pairs = _mean_pair_distance(embed(r_img[real_used]), r_groups, chosen)
        fake_d, fake_pairs = _mean_pair_distance(embed(f_img[fake_used]), f_groups, chosen)
        out[f"diversity_{name}"] = fake_d / real_d if real_d > 0 else float("nan")
        out.update({f"{name}_real_distance": real_d, f"{name}_fake_distance": fake_d})
    out["real_pairs"], out["fake_pairs"] = real_pairs, fake_pairs
    out["diversity"] = out.get("diversity_features", out["diversity_pixels"])
    return out


def _used(groups: dict[str, list[int]], chosen: list[str]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """The image indices the chosen words use, and the groups renumbered into that subset."""
    used = sorted({i for w in chosen for i in groups[w]})
    position = {i: k for k, i in enumerate(used)}
    return np.asarray(used, dtype=np.int64), {w: [position[i] for i in groups[w]] for w in chosen}


def _unit(images: np.ndarray) -> np.ndarray:
    from datasets.preprocess import to_unit_range

    return to_unit_range(images).reshape(len(images), -1).astype(np.float64)
