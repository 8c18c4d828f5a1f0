"""Binary / multilabel classification losses, torch twins of :mod:`spec.classification`.

Argument order is torch's: ``(input, target)``, prediction first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, mean_nonbatch


def _log_probs(x: torch.Tensor, from_logits: bool):
    """``(log p, log(1 - p))``: log-sigmoids for logits, the spec's clamp for probabilities."""
    if from_logits:
        return F.logsigmoid(x), F.logsigmoid(-x)
    # log(1 - p) as log1p(-p) (1 - p rounds tiny p away), the same clamp where 1 - p < P_MIN; the
    # masked branch sees p = 0, so its gradient is 0 there, never inf · 0
    keep = (1.0 - x) >= P_MIN
    log_1mp = torch.where(keep, torch.log1p(-torch.where(keep, x, torch.zeros_like(x))), LOG_P_MIN)
    return torch.log(torch.clamp(x, min=P_MIN)), log_1mp


def _weighted_bce_per_sample(x, y, *, pos_weight, from_logits):
    log_p, log_1mp = _log_probs(x, from_logits)
    return mean_nonbatch(-(pos_weight * y * log_p + (1.0 - y) * log_1mp))


def weighted_bce(input, target, *, pos_weight=1.0, from_logits=True, sample_weight=None,
                 reduction="mean", validate=True):
    r"""Binary cross-entropy with a weight on the positive term.

    .. math::
        \ell_i = -\frac{1}{M}\sum_j \left[w_j\, y_{ij} \log\sigma(x_{ij})
                 + (1-y_{ij})\log(1-\sigma(x_{ij}))\right]

    Stability: ``log σ(x)`` is ``F.logsigmoid`` (a softplus form), never ``log(sigmoid(x))``;
    probabilities (``from_logits=False``) use ``log(max(q, 2**-126))``.

    Args:
        input: logits (or probabilities), shape ``(N, ...)``.
        target: labels in [0, 1] (soft labels allowed), same shape.
        pos_weight: positive float, or one per class (last axis); may be a tensor requiring grad.
        sample_weight: ``(N,)`` non-negative weights.
        reduction: ``"mean"`` (Σ w ℓ / N), ``"sum"`` or ``"none"`` (w ℓ per sample).
        validate: check data values (NaN, label range); shapes are always checked.
    """
    return apply("weighted_bce", _weighted_bce_per_sample, input, target, sample_weight,
                 {"pos_weight": pos_weight, "from_logits": from_logits}, reduction, validate)


def _binary_focal_per_sample(x, y, *, gamma, alpha, from_logits):
    log_p, log_1mp = _log_probs(x, from_logits)
    # log(1 - p_t) = log(y (1-p) + (1-y) p), in log space so that (1-p_t)**gamma = exp(gamma log(1-p_t))
    # has a finite derivative for every gamma >= 0 (no pow of an underflowed 0)
    log_m = torch.logaddexp(torch.log(y) + log_1mp, torch.log1p(-y) + log_p)
    bce = -(y * log_p + (1.0 - y) * log_1mp)
    loss = torch.exp(gamma * log_m) * bce
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return mean_nonbatch(loss)


def binary_focal(input, target, *, gamma=2.0, alpha=None, from_logits=True, sample_weight=None,
                 reduction="mean", validate=True):
    r"""Focal loss (Lin et al. 2017), torchvision semantics for ``alpha`` and soft targets.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \alpha_t (1-p_t)^\gamma\, \mathrm{BCE}(x_{ij}, y_{ij}),\quad
        1-p_t = y(1-p) + (1-y)p

    Stability: ``(1-p_t)^γ = exp(γ · logaddexp(log y + log σ(-x), log(1-y) + log σ(x)))``, so the
    gradient is finite at saturated logits for every ``gamma >= 0`` (also ``0 < gamma < 1``,
    where ``(1-p_t)**gamma`` gives NaN). ``gamma=0, alpha=None`` equals :func:`weighted_bce`.
    """
    return apply("binary_focal", _binary_focal_per_sample, input, target, sample_weight,
                 {"gamma": gamma, "alpha": alpha, "from_logits": from_logits}, reduction, validate)
