"""Sequence losses, torch twins of :mod:`spec.sequence`: ``ctc``. Argument order is torch's:
``(input, target)``: logits ``(N, T, C)`` and integer label rows ``(N, L)`` padded with the blank."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._core import apply

__all__ = ["ctc"]


def label_rows(target: torch.Tensor, blank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's non-blank entries moved to its front in order (a stable sort of "is padding"), and
    their count: the padded ``targets`` and ``target_lengths`` of ``F.ctc_loss``."""
    target = target.long()
    padding = target == blank
    order = torch.argsort(padding.to(torch.uint8), dim=1, stable=True)
    return torch.gather(target, 1, order), (~padding).sum(dim=1)


def feasible(labels: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Whether ``steps`` suffice for each row: one per label and a blank between equal neighbours."""
    inside = torch.arange(1, labels.shape[1], device=labels.device)[None, :] < lengths[:, None]
    repeats = ((labels[:, 1:] == labels[:, :-1]) & inside).sum(dim=1)
    return lengths + repeats <= steps


def _ctc_per_sample(x, y, *, blank, zero_infinity, divide_by_target_length):
    labels, lengths = label_rows(y, blank)
    n, steps = x.shape[0], x.shape[1]
    # float64 inside: the log-probabilities (about -|x|) absorb the recursion's small differences in
    # float32 (posteriors off by eps32 · |x|: 1e-3 at |x| = 1e4); the result is cast back
    log_probs = F.log_softmax(x.to(torch.float64), dim=-1).transpose(0, 1)  # (T, N, C), torch's layout
    input_lengths = torch.full((n,), steps, dtype=torch.long, device=x.device)
    # the kernel's zero_infinity=True: no NaN gradient from an infeasible row, whose value is set below
    nll = F.ctc_loss(log_probs, labels, input_lengths, lengths, blank=blank, reduction="none", zero_infinity=True)
    if 2 * labels.shape[1] - 1 <= steps:
        loss = nll  # every row feasible from the shapes alone: L labels need at most 2L - 1 steps
    else:
        fill = torch.zeros_like(nll) if zero_infinity else torch.full_like(nll, float("inf"))
        loss = torch.where(feasible(labels, lengths, steps), nll, fill)
    if divide_by_target_length:
        loss = loss / lengths.clamp(min=1).to(loss.dtype)
    return loss.to(x.dtype)


def ctc(input, target, *, blank=0, zero_infinity=False, divide_by_target_length=False, sample_weight=None,
        reduction="mean", validate=True):
    r"""Connectionist temporal classification loss of logits against label sequences.

    .. math::
        \ell_i = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_i)} \prod_t \operatorname{softmax}(x_{i,t})_{\pi_t}

    ``F.ctc_loss`` on ``log_softmax(input)`` in torch's layout (time first), every sample using all
    ``T`` steps and the labels of a row being its non-blank entries in order. An infeasible sample
    (labels needing more than ``T`` steps) has loss +inf, or 0 with ``zero_infinity``; gradient 0.
    ``torch.nn.CTCLoss(blank, reduction='mean')`` on ``(log_softmax(input).transpose(0, 1), target,
    T, lengths)`` is ours with ``divide_by_target_length=True``; its ``'sum'``/``'none'`` without.

    Args:
        input: logits ``(N, T, C)``. target: integer labels ``(N, L)`` in ``[0, C)``, padded with ``blank``.
        blank, zero_infinity, divide_by_target_length: see the spec entry ``ctc``.
        sample_weight, reduction, validate: the common contract (``"mean"``: Σ w ℓ / N).
    """
    params = {"blank": blank, "zero_infinity": zero_infinity, "divide_by_target_length": divide_by_target_length}
    return apply("ctc", _ctc_per_sample, input, target, sample_weight, params, reduction, validate)
