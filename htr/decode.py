"""CTC decoding: greedy best path (collapse repeats, drop blanks), optionally snapped to a lexicon."""
from __future__ import annotations

import editdistance
import torch

from datasets.alphabet import Alphabet, ctc_order


def greedy_indices(log_probs: torch.Tensor) -> list[list[int]]:
    """Best-path decoding of (T, B, C) log-probabilities → per-sample class sequences.

    Takes the arg-max class per frame, collapses consecutive repeats and removes blanks (0).
    """
    best = log_probs.argmax(dim=-1).t().cpu()               # (B, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != 0
    return [row[mask].tolist() for row, mask in zip(best, keep)]


def greedy_decode(log_probs: torch.Tensor, alphabet: Alphabet, direction: str = "ltr") -> list[str]:
    """Best-path transcriptions of a (T, B, C) batch of log-probabilities, in logical order.

    For RTL models the frames follow `datasets.alphabet.ctc_order` (digit runs, drawn left to
    right inside RTL text, come out reversed); the same mapping turns them back.
    """
    return [ctc_order(alphabet.decode(seq), direction) for seq in greedy_indices(log_probs)]


def snap_to_lexicon(hypotheses: list[str], lexicon: list[str]) -> list[str]:
    """Replace each hypothesis by the lexicon word at the smallest edit distance (ties: first).

    A cheap lexicon-constrained decoding for word images; an empty lexicon leaves them unchanged.
    """
    if not lexicon:
        return list(hypotheses)
    words = list(dict.fromkeys(lexicon))
    out = []
    for h in hypotheses:
        best, best_d = h, None
        for w in words:
            d = editdistance.eval(h, w)
            if best_d is None or d < best_d:
                best, best_d = w, d
                if d == 0:
                    break
        out.append(best)
    return out
