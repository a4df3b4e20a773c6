"""Where torch.compile would split the GAN step: graphs and graph breaks of each piece under
`torch._dynamo.explain` (G, D, R, φ, the CTC loss, one optimizer step per Adam flavour), at
the quick size, with autograd tracing on. Prints one line per piece (and the first break reason).

    python -m benchmark.probes.graph_breaks [--cond spatial] [--batch 8]
"""
from __future__ import annotations

import argparse
import sys


def _explain(fn, *args) -> tuple[int, int, str]:
    """(graphs, breaks, fullgraph) of fn(*args) under dynamo: `explain`'s counts, and whether
    `torch.compile(fullgraph=True)` traces it ("yes", or the first line of its refusal)."""
    import torch
    import torch._dynamo as dynamo

    report = dynamo.explain(fn)(*args)
    dynamo.reset()
    try:
        torch.compile(fn, fullgraph=True, backend="eager")(*args)
        fullgraph = "yes"
    except Exception as exc:   # the refusal is the measurement
        fullgraph = "no: " + " ".join(str(exc).split())[:110]
    dynamo.reset()
    return report.graph_count, report.graph_break_count, fullgraph


def _optimizer_step(make_opt):
    """A function doing forward, autograd.grad, backward with that gradient and an optimizer step."""
    import torch

    lin = torch.nn.Linear(4, 4)
    opt = make_opt(lin.parameters())

    def step(x):
        y = lin(x)
        (g,) = torch.autograd.grad(y.pow(2).mean(), y, retain_graph=True)
        y.backward(2 * g)
        opt.step()
        opt.zero_grad(set_to_none=False)
    return step


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch._dynamo as dynamo
    import torch.nn.functional as F

    from gan.networks import Discriminator, Generator, NetConfig, WordEncoder, build_recognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cond", default="spatial", help="G's conditioning (default spatial, the quick profile's)")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dynamo.config.trace_autograd_ops = True
    cfg = NetConfig(num_symbols=60, height=32, width=128, channel_mult=0.25, attention=True, cond=args.cond,
                    d_norm="none", char_px=10.4)
    phi, G, D, R = WordEncoder(cfg), Generator(cfg), Discriminator(cfg), build_recognizer(61, 32, 0.5)
    b = args.batch
    tokens, lengths = torch.randint(1, 60, (b, 12)), torch.randint(1, 12, (b,))
    codes = phi(tokens, lengths)
    z = torch.randn(b, cfg.z_dim)
    x = G(z, codes).detach()
    log_probs = torch.randn(32, b, 61).log_softmax(2)
    targets, target_lengths = torch.randint(1, 61, (b, 5)), torch.randint(1, 6, (b,))

    def ctc(lp):
        return F.ctc_loss(lp, targets, torch.full((b,), 32), target_lengths, zero_infinity=True)

    rows = [("G", G, z, codes), ("D", D, x), ("phi (packed BiLSTM)", phi, tokens, lengths), ("R", R, x)]
    results = [(name, *_explain(fn, *a)) for name, fn, *a in rows]
    dynamo.config.allow_rnn = True
    results.append(("R with allow_rnn", *_explain(R, x)))
    results.append(("F.ctc_loss", *_explain(ctc, log_probs)))
    for name, make in (("Adam", lambda p: torch.optim.Adam(p, lr=1e-3)),
                       ("Adam foreach", lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
                       ("Adam capturable", lambda p: torch.optim.Adam(p, lr=torch.tensor(1e-3), foreach=True,
                                                                      capturable=True)),
                       ("Adam fused", lambda p: torch.optim.Adam(p, lr=1e-3, fused=True))):
        results.append((f"step with {name}", *_explain(_optimizer_step(make), torch.randn(8, 4))))
    print(f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}")
    for name, graphs, breaks, fullgraph in results:
        print(f"{name:26s} graphs {graphs}  breaks {breaks}  fullgraph {fullgraph}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
