"""Corpus-level text metrics (ED, WER): the recognizer's own scoring, `htr.scoring`, in the registry."""
from htr.scoring import format_text_metrics, text_metrics

__all__ = ["format_text_metrics", "text_metrics"]
