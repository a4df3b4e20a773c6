"""The paper's published tables (reports/paper/*.json) and the labels the report gives rows,
sources and ablation tables; shared by the tables, the plots and the report assembly."""
from __future__ import annotations

import json
from pathlib import Path

PAPER_DIR = Path(__file__).parent / "paper"
PAPER_LABEL = "paper (RIMES/OpenHaRT, other data)"
ROW_LABELS = {"real": "real only", "real+synthetic": "real + synthetic", "real+classic": "real + classic aug.",
              "real+synthetic+classic": "real + synthetic + classic aug.", "synthetic": "synthetic only",
              "synthetic+classic": "synthetic only + classic aug."}
ABLATION_TABLES = {"alpha": ("table2", "Table II: gradient balancing α"),
                   "loss": ("table3", "Table III: adversarial loss"),
                   "attention": ("table4", "Table IV: self-attention"),
                   "conditioning": ("table5", "Table V: conditioning through CBN or the first linear layer (aligned: per-column CBN, spatial: per-pixel CBN; not in the paper)")}


def load_paper() -> dict[str, dict]:
    """The paper's published tables (reports/paper/table1..6.json)."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(PAPER_DIR.glob("table*.json"))}

