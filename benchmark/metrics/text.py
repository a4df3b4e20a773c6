"""Corpus-level text metrics (ED, image WER, line WER) and their normalisation options: the
recognizer's own scoring, `htr.scoring`, in the registry."""
from htr.scoring import NO_NORMALIZATION, TextNormalization, format_text_metrics, text_metrics, words_of

__all__ = ["NO_NORMALIZATION", "TextNormalization", "format_text_metrics", "text_metrics", "words_of"]
