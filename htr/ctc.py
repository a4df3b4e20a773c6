"""CTC loss from tensor operations only: static shapes, no host synchronisation, traceable whole
by `torch.compile(fullgraph=True)` (`F.ctc_loss` is not: its output shape depends on the data).

The same function as `htr.model.ctc_loss` (blank 0, every sample uses all T frames, infinite
losses zeroed, float32, reductions "char" and "sample"), written as the forward recursion of
Graves et al. (2006) in log space over the extended label sequence l' = (blank, l1, blank, l2,
…, blank) of length 2S + 1:

    α_0(0) = y_0(blank),  α_0(1) = y_0(l1)
    α_t(s) = y_t(l'_s) + logsumexp(α_{t−1}(s), α_{t−1}(s−1), α_{t−1}(s−2) if l'_s ≠ blank, l'_s ≠ l'_{s−2})
    loss   = −logsumexp(α_{T−1}(2|l|), α_{T−1}(2|l| − 1))

"Impossible" is a large finite negative number instead of −∞, so that gradients stay finite;
a sample whose loss reaches it (no alignment fits the frames) gets loss 0 and gradient 0, as
`zero_infinity=True` does. Gradients come from autograd; through R's log-softmax they equal
`F.ctc_loss`'s (that op's gradient w.r.t. its log-probability input assumes the softmax).
"""
from __future__ import annotations

import torch

from .config import CTC_REDUCTIONS

IMPOSSIBLE = -1e30     # log-probability of an impossible path (finite: keeps gradients finite)
INFINITE = 1e29        # a loss above this had no alignment (counted as infinite, then zeroed)


def padded_targets(targets: torch.Tensor, target_lengths: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """Concatenated 1-D targets → (B, S) zero-padded rows, S = `width` (default: the longest
    target; a fixed width gives every batch one shape). A host-side helper."""
    if targets.dim() == 1:
        rows = torch.split(targets, target_lengths.tolist())
        targets = torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True, padding_value=0)
    if width is None:
        return targets
    return torch.nn.functional.pad(targets, (0, width - targets.shape[1]))


def ctc_loss_dense(log_probs: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                   reduction: str = "char") -> torch.Tensor:
    """CTC of `log_probs` (T, B, C) against padded `targets` (B, S) with `target_lengths` (B,)."""
    if reduction not in CTC_REDUCTIONS:
        raise ValueError(f"CTC reduction must be one of {CTC_REDUCTIONS}, got {reduction!r}")
    lp = log_probs.float()
    T, B, _ = lp.shape
    S = targets.shape[1]
    L = 2 * S + 1
    ext = torch.zeros(B, L, dtype=torch.long, device=lp.device)
    ext[:, 1::2] = targets
    emit = lp.gather(2, ext[None].expand(T, -1, -1))                     # T × B × L
    # s − 2 is allowed where l'_s is a character differing from l'_{s−2}
    skip = torch.zeros(B, L, dtype=torch.bool, device=lp.device)
    skip[:, 3::2] = targets[:, 1:] != targets[:, :-1]
    impossible = torch.full((B, L), IMPOSSIBLE, device=lp.device)
    first = torch.arange(L, device=lp.device)[None, :] < 2
    alpha = torch.where(first, emit[0], impossible)
    pad1, pad2 = impossible[:, :1], impossible[:, :2]
    for t in range(1, T):
        prev1 = torch.cat([pad1, alpha[:, :-1]], dim=1)
        prev2 = torch.where(skip, torch.cat([pad2, alpha[:, :-2]], dim=1), impossible)
        alpha = torch.logsumexp(torch.stack([alpha, prev1, prev2]), dim=0) + emit[t]
        alpha = alpha.clamp(min=IMPOSSIBLE)
    ends = torch.stack([2 * target_lengths, (2 * target_lengths - 1).clamp(min=0)], dim=1).to(lp.device)
    final = alpha.gather(1, ends)
    final = torch.where(torch.stack([torch.ones_like(target_lengths, dtype=torch.bool),
                                     target_lengths > 0], dim=1).to(lp.device), final, torch.full_like(final, IMPOSSIBLE))
    loss = -torch.logsumexp(final, dim=1)
    loss = torch.where(loss < INFINITE, loss, torch.zeros_like(loss))
    if reduction == "sample":
        return loss.sum() / B
    return (loss / target_lengths.to(lp.device).clamp(min=1).float()).mean()
