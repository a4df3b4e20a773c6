"""How fast and how exact are exported models? (`python -m benchmark.perf.exports`)

Builds the recognizer and the generator of a profile (random weights and batch-norm statistics:
speed and agreement do not depend on training), exports both to ONNX and TorchScript as `htraug
htr export` / `gan export` do, and prints one JSON line per model and format: export seconds,
file size, the largest |exported − eager| output difference on a batch, and images/s of eager
PyTorch, onnxruntime and TorchScript at the given thread count.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _rate(fn, n: int, repeats: int) -> float:
    fn()                                              # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return n * repeats / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    import torch

    from benchmark.profiles import get_profile
    from datasets.export import ExportedModel, max_abs_diff, onnx_bytes, torchscript_bytes
    from gan.export import ExportGenerator, fold_spectral_norm
    from gan.networks import Generator, NetConfig, WordEncoder
    from htr.export import check_images
    from htr.model import GatedCRNN

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    p = get_profile(args.profile)
    h, w, b = p.height, p.width, args.batch

    rec = GatedCRNN(87, h, p.htr.width_mult).eval()
    x = check_images(h, w, b)
    eager_rec = lambda: rec(torch.from_numpy(x)).numpy()
    ref = [eager_rec()]
    gan = p.gan
    cfg = NetConfig(num_symbols=86, height=h, width=w, channel_mult=gan.channel_mult, cond=gan.cond,
                    attention=gan.attention, char_px=w / 12 if gan.cond in ("aligned", "spatial") else 0.0)
    phi, G = WordEncoder(cfg).eval(), Generator(cfg).eval()
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    phi2, G2 = WordEncoder(cfg), Generator(cfg)
    phi2.load_state_dict(phi.state_dict())
    G2.load_state_dict(G.state_dict())
    net = ExportGenerator(fold_spectral_norm(phi2), fold_spectral_norm(G2)).eval()
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 11, (b,), generator=g)
    tokens = torch.randint(1, 87, (b, int(lengths.max())), generator=g)
    tokens[torch.arange(tokens.shape[1])[None, :] >= lengths[:, None]] = 0
    z = torch.randn(b, cfg.z_dim, generator=g)
    eager_gen = lambda: G(z, phi(tokens, lengths)).numpy()
    gen_ref = [eager_gen()]

    models = {
        "recognizer": (rec, (torch.from_numpy(x[:2]),), ["images"], ["log_probs"],
                       {"images": {0: "batch"}, "log_probs": {1: "batch"}}, {"images": x}, ref, eager_rec),
        "generator": (net, (z[:2], tokens[:2], lengths[:2]), ["z", "tokens", "lengths"], ["images"],
                      {"z": {0: "batch"}, "tokens": {0: "batch", 1: "chars"}, "lengths": {0: "batch"},
                       "images": {0: "batch"}},
                      {"z": z.numpy(), "tokens": tokens.numpy(), "lengths": lengths.numpy()}, gen_ref, eager_gen),
    }
    desc = {"format": "htraug-export", "version": 1, "kind": "benchmark"}
    for name, (module, example, inputs, outputs, axes, feed, reference, eager) in models.items():
        desc["inputs"] = [{"name": n} for n in inputs]
        eager_rate = _rate(eager, b, args.repeats)
        for fmt in ("onnx", "torchscript"):
            t = time.perf_counter()
            data = (onnx_bytes(module, example, inputs, outputs, axes, desc) if fmt == "onnx"
                    else torchscript_bytes(module, example, desc))
            seconds = time.perf_counter() - t
            exported = ExportedModel(data, fmt, name, threads=args.threads)
            diff = max_abs_diff(reference, exported.run(feed))
            rate = _rate(lambda: exported.run(feed), b, args.repeats)
            print(json.dumps({"model": name, "profile": p.name, "canvas": [h, w], "format": fmt, "batch": b,
                              "threads": args.threads, "export_s": round(seconds, 2), "mb": round(len(data) / 1e6, 2),
                              "max_abs_diff": float(f"{diff:.3g}"), "eager_images_per_s": round(eager_rate, 1),
                              "exported_images_per_s": round(rate, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
