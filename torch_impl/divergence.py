"""Divergences, torch twins of :mod:`spec.divergence`: ``kl_divergence``. Argument order is torch's:
``(input, target)``, prediction first; the distribution on the LAST axis (NCHW: ``x.movedim(1, -1)``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spec.numerics import P_MIN

from ._core import apply, clip, const, host_min_at_least, mean_nonbatch, with_total
from ._fused import fused_function, fused_total, needs_fused_grad, run_fused, run_fused_total

__all__ = ["kl_divergence"]


def _kl_elementwise(x, y, *, log_prediction, log_target, epsilon):
    if epsilon > 0.0:  # Keras' clip of both distributions to [ε, 1], then p log(p/q)
        p = clip(torch.exp(y) if log_target else y, epsilon, 1.0)
        q = clip(torch.exp(x) if log_prediction else x, epsilon, 1.0)
        return p * torch.log(p / q)
    if log_prediction:  # torch's own kernel: xlogy(p, p) - p log q, or exp(log p) (log p - log q)
        return F.kl_div(x, y, reduction="none", log_target=log_target)
    q = clip(x, P_MIN)  # the library's clamp: log(max(q, 2**-126)), gradient 0 below
    if log_target:
        return torch.exp(y) * (y - torch.log(q))
    # y log(y / q) with 0 log 0 = 0: the log's argument is 1 where y = 0 (no inf, no NaN gradient)
    return y * torch.log(torch.where(y > 0, y, 1.0) / q)


def _kl_terms(x, y, need_grad, grad_scale):
    """The elementwise KL terms ``xlogy(y, r)`` of probability rows (``q = max(x, P_MIN)``, ``r = y /
    q``: ``y log r``, 0 where y = 0, 0 log 0 = 0) and, when asked, ``-grad_scale · r`` where ``x >=
    P_MIN`` (the clamp's subgradient: 1 on the bound) and 0 below (NaN propagates). The mask of the
    entries below ``P_MIN`` (a compare and a fill: the dearest two ops of the call at 256x10) is
    skipped on the CPU when the smallest entry is not below it (one reduction read on the host,
    where reading needs no synchronization); elsewhere it is always applied."""
    ratio = torch.div(y, torch.clamp_min(x, P_MIN))
    elementwise = torch.xlogy(y, ratio)
    if not need_grad:
        return elementwise, None
    if not host_min_at_least(x, P_MIN):
        ratio.masked_fill_(x < P_MIN, 0.0)
    return elementwise, ratio.mul_(const(-grad_scale, x))


def _kl_closed_form(x, y, mean_classes, need_grad):
    """The per-sample KL divergence of probability rows (no log inputs, no ε) and, when asked,
    d(Σ ℓ)/dx in the same pass (:func:`_kl_terms`): with ``s = 1 / (K · (C if mean_classes else
    1))`` (K rows per sample), ``ℓ = s Σ xlogy(y, r)`` and ``dℓ/dx = -s r``."""
    n = x.shape[0]
    scale = n / x.numel() if mean_classes else x.shape[-1] * n / x.numel()
    elementwise, grad = _kl_terms(x, y, need_grad, scale)
    loss = elementwise.reshape(n, -1).sum(dim=1)
    return (loss.mul_(const(scale, loss)) if scale != 1.0 else loss), grad


def _kl_elementwise_closed_form(x, y, mean_classes, need_grad):
    """The elementwise form of :func:`_kl_closed_form` for the reduced loss (the per-sample loss is
    the mean of these over a sample's elements): ``m · xlogy(y, r)`` and ``-m r``, ``m = 1`` for
    ``class_reduction="mean"``, C for "sum"; the total is one reduction over every element."""
    m = 1.0 if mean_classes else float(x.shape[-1])
    elementwise, grad = _kl_terms(x, y, need_grad, m)
    return (elementwise.mul_(const(m, x)) if m != 1.0 else elementwise), grad


KLDivergence = fused_function(_kl_closed_form, "KLDivergence", per_element_mean=False)
KLDivergenceTotal = fused_total(_kl_elementwise_closed_form, "KLDivergenceTotal")


def _closed_form_applies(x, y, log_prediction, log_target, epsilon) -> bool:
    return not (log_prediction or log_target or epsilon > 0.0) and x.dim() >= 2 and needs_fused_grad(x, y)


def _kl_divergence_total(x, y, mean, *, log_prediction, log_target, epsilon, class_reduction):
    y = y.to(x.dtype)
    if _closed_form_applies(x, y, log_prediction, log_target, epsilon):
        return run_fused_total(KLDivergenceTotal, x, mean, y, class_reduction == "mean")
    per_sample = _kl_divergence_per_sample(x, y, log_prediction=log_prediction, log_target=log_target,
                                           epsilon=epsilon, class_reduction=class_reduction)
    return per_sample.mean() if mean else per_sample.sum()


@with_total(_kl_divergence_total)
def _kl_divergence_per_sample(x, y, *, log_prediction, log_target, epsilon, class_reduction):
    y = y.to(x.dtype)
    if _closed_form_applies(x, y, log_prediction, log_target, epsilon):
        return run_fused(KLDivergence, x, y, class_reduction == "mean")
    elementwise = _kl_elementwise(x, y, log_prediction=log_prediction, log_target=log_target, epsilon=epsilon)
    rows = elementwise.sum(dim=-1) if class_reduction == "sum" else elementwise.mean(dim=-1)
    return mean_nonbatch(rows)


def kl_divergence(input, target, *, log_prediction=False, log_target=False, epsilon=0.0, class_reduction="sum",
                  sample_weight=None, reduction="mean", validate=True):
    """``torch.nn.KLDivLoss(reduction="batchmean", log_target=lt)`` on ``(N, C)`` inputs is this loss with
    ``log_prediction=True, log_target=lt``; its ``reduction="mean"`` is ``class_reduction="mean"``."""
    return apply("kl_divergence", _kl_divergence_per_sample, input, target, sample_weight,
                 {"log_prediction": log_prediction, "log_target": log_target, "epsilon": epsilon,
                  "class_reduction": class_reduction}, reduction, validate)
