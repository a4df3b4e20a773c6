"""How well `gan imitate` writes like a writer: for writers of a held-out split, z is fitted to a
few of the writer's images, then the writer's *other* words are drawn with that z and with random
z; the judge recognizer's feature distance between each drawn word and the writer's real image of
it tells whether the fitted z carries the writer's style (imitated closer than random).

    python -m benchmark.probes.imitation --gan RUN --judge RUN --data DIR/test --writers 8 --refs 4 --json OUT

`--grid DIR` also writes DIR/<writer>.png: one held-out word per row, the writer's real image, the
word drawn with the fitted z, and with the random z.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    from benchmark.metrics.features import judge_features
    from datasets.files import atomic_write_json
    from datasets.format import load_dataset
    from gan.generate import load_gan, render, sample_z, to_u8
    from gan.imitate import fit_style, style_references
    from gan.samples import save_png, tile
    from htr.checkpoint import load_recognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gan", required=True, help="GAN run directory")
    ap.add_argument("--judge", required=True, help="judge recognizer run (features)")
    ap.add_argument("--data", required=True, help="dataset directory with writers (e.g. the test split)")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--refs", type=int, default=4, help="reference images per writer")
    ap.add_argument("--held", type=int, default=8, help="held-out images per writer at most")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--grid", metavar="DIR", help="write one PNG per writer here (real | imitated | random)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    gan = load_gan(args.gan)
    judge, _alphabet, _info = load_recognizer(args.judge)
    ds = load_dataset(args.data)
    by_writer: dict[str, list[int]] = {}
    for i, (rel, _) in enumerate(ds.entries):
        if rel in ds.meta.writers:                       # images without a writer cannot be imitated
            by_writer.setdefault(ds.meta.writers[rel], []).append(i)
    writers = [w for w in sorted(by_writer) if len(by_writer[w]) >= args.refs + 2][:args.writers]
    rows = []
    for k, writer in enumerate(writers):
        images, words = style_references(ds.root, writer, args.refs + args.held, gan)
        ref_img, ref_words = images[:args.refs], words[:args.refs]
        held_img, held_words = images[args.refs:], words[args.refs:]
        if not held_words:
            continue
        fit = fit_style(gan, ref_img, ref_words, steps=args.steps, seed=args.seed + k)
        rand = sample_z(1, gan.net_config.z_dim, torch.Generator().manual_seed(10_000 + args.seed + k))
        real_f = judge_features(judge, held_img)
        dist, drawn = {}, {}
        for name, z in (("imitated", fit.z), ("random", rand)):
            drawn[name] = to_u8(render(gan.phi, gan.G, gan.alphabet, held_words, z.expand(len(held_words), -1)))
            dist[name] = float(np.mean(np.linalg.norm(judge_features(judge, drawn[name]) - real_f, axis=1)))
        if args.grid:
            cells = np.stack([held_img, drawn["imitated"], drawn["random"]], axis=1).reshape(-1, *held_img.shape[1:])
            Path(args.grid).mkdir(parents=True, exist_ok=True)
            save_png(tile(cells, len(held_words), 3), Path(args.grid) / f"{writer}.png")
        rows.append({"writer": writer, "refs": len(ref_words), "held_out": len(held_words), "loss": fit.loss,
                     "random_z_loss": fit.random_loss, **{f"distance_{n}": v for n, v in dist.items()}})
        print(f"{writer}: feature distance imitated {dist['imitated']:.3f}, random {dist['random']:.3f} "
              f"(reconstruction {fit.loss:.3f} vs {fit.random_loss:.3f})", file=sys.stderr)
    if not rows:
        print("no writer with enough images", file=sys.stderr)
        return 2
    result = {"writers": len(rows), "distance_imitated": float(np.mean([r["distance_imitated"] for r in rows])),
              "distance_random": float(np.mean([r["distance_random"] for r in rows])),
              "closer_than_random": sum(r["distance_imitated"] < r["distance_random"] for r in rows), "rows": rows}
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    if args.json:
        atomic_write_json(Path(args.json), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
