"""The GAN's switch values, torch-free so that command lines and profiles can validate them
before any work starts."""

LOSSES = ("hinge", "gan", "lsgan")                 # adversarial losses (paper Table III)
CONDITIONING = ("cbn", "linear", "aligned", "spatial")   # cbn: paper; linear: Table V; aligned: per-column,
                                                         # spatial: per-pixel (both not in the paper)
ALIGNED_CONDITIONING = ("aligned", "spatial")            # φ lays the characters out along the width
D_NORMS = ("bn", "none")                           # D's normalisation: bn (docs/DESIGN.md §6.2) or spectral norm only
TRANSFORMS = ("translation", "cutout", "ink", "brightness")   # DiffAugment's transforms (gan/augment.py)
MS_REGIONS = ("image", "word")                     # where the mode-seeking term compares two images of one word


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' → ('translation', 'cutout'); '' or 'none' → () (order kept, repeats dropped)."""
    names = [t.strip() for t in text.split(",") if t.strip() and t.strip() != "none"]
    return tuple(dict.fromkeys(names))
