"""The GAN's switch values, torch-free so that command lines and profiles can validate them
before any work starts."""

LOSSES = ("hinge", "gan", "lsgan")                 # adversarial losses (paper Table III)
CONDITIONING = ("cbn", "linear", "aligned")        # cbn: paper; linear: Table V; aligned: per-column (not in the paper)
D_NORMS = ("bn", "none")                           # D's normalisation: bn (SPEC §6) or spectral norm only
