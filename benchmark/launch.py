"""Entry point that torchrun starts on every GPU: `python -m benchmark.launch htr|gan CONFIG.json`.

The study writes the trainer's config as JSON and builds the torchrun command
(`benchmark.backend.torchrun_command`); each rank rebuilds the same dataclass config and calls the
trainer, which reads RANK / LOCAL_RANK / WORLD_SIZE from the environment torchrun sets.
"""
from __future__ import annotations

import json
from pathlib import Path
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("htr", "gan"):
        print("usage: python -m benchmark.launch htr|gan CONFIG.json", file=sys.stderr)
        return 2
    kind, cfg_path = argv
    kw = json.loads(Path(cfg_path).read_text(encoding="utf-8"))
    if kind == "htr":
        from htr.train import HtrTrainConfig, train
        train(HtrTrainConfig.from_json(kw, where=cfg_path))
    else:
        from gan.train import GanTrainConfig, train

        from .metrics.generator import score_generator
        train(GanTrainConfig.from_json(kw, where=cfg_path), scorer=score_generator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
