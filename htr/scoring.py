"""Corpus-level text metrics (docs/DESIGN.md §7): character edit distance % and word error rate %.

The recognizer scores itself with these (validation, evaluation); the metrics registry
re-exports them (`benchmark.metrics.text`)."""
from __future__ import annotations

import editdistance


def text_metrics(refs: list[str], hyps: list[str]) -> dict:
    """ED (CER) % = Σ Levenshtein(ref, hyp) / Σ len(ref) × 100; WER % = share of word images
    whose hypothesis is not exactly the reference. Case-sensitive, with `_ci` variants beside."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    out = {"n": len(refs)}
    for suffix, fold in (("", lambda s: s), ("_ci", str.casefold)):
        errors = chars = wrong = 0
        for r, h in zip(refs, hyps):
            r, h = fold(r), fold(h)
            errors += editdistance.eval(r, h)
            chars += len(r)
            wrong += r != h
        out[f"cer{suffix}"] = 100.0 * errors / chars if chars else 0.0
        out[f"wer{suffix}"] = 100.0 * wrong / len(refs) if refs else 0.0
        out[f"char_errors{suffix}"] = errors
    out["chars"] = sum(len(r) for r in refs)
    return out


def format_text_metrics(m: dict, unit: str = "images") -> str:
    """Three lines for a terminal: sample count, then ED/WER case-sensitive and case-insensitive."""
    return "\n".join([f"{unit}: {m['n']}  reference characters: {m['chars']}",
                      f"ED  {m['cer']:6.2f}%   WER  {m['wer']:6.2f}%   (case-sensitive)",
                      f"ED  {m['cer_ci']:6.2f}%   WER  {m['wer_ci']:6.2f}%   (case-insensitive)"])
