"""`htraug bench`: the perf harness."""
from __future__ import annotations


def register(sub) -> None:
    from .harness import add_arguments, command

    p = sub.add_parser("bench", help="measure the hot paths (naive vs optimised, one run) and write JSON",
                       description="Perf harness: GAN iterations/s, HTR train/infer images/s, generation, "
                                   "feature extraction, Fréchet distance, Geometry Score, data build/load.")
    add_arguments(p)
    p.set_defaults(func=command)
