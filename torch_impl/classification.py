"""Binary / multilabel classification losses, torch twins of :mod:`spec.classification`.

Argument order is torch's: ``(input, target)``, prediction first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, mean_nonbatch
from ._fused import fused_function, needs_fused_grad, run_fused


def _log_probs(x: torch.Tensor, from_logits: bool):
    """``(log p, log(1 - p))``: log-sigmoids for logits, the spec's clamp for probabilities."""
    if from_logits:
        return F.logsigmoid(x), F.logsigmoid(-x)
    # log(1 - p) as log1p(-p) (1 - p rounds tiny p away), the same clamp where 1 - p < P_MIN; the
    # masked branch sees p = 0, so its gradient is 0 there, never inf · 0
    keep = (1.0 - x) >= P_MIN
    log_1mp = torch.where(keep, torch.log1p(-torch.where(keep, x, torch.zeros_like(x))), LOG_P_MIN)
    return torch.log(torch.clamp(x, min=P_MIN)), log_1mp


def _softplus_pair(x):
    """``(softplus(x), softplus(-x)) = (-log σ(-x), -log σ(x))`` from one shared
    ``s = log1p(exp(-|x|))``: ``relu(x) + s`` and ``relu(-x) + s`` (``relu(-x) = relu(x) - x``
    exactly). Both are sums of non-negative terms: no cancellation anywhere."""
    s = torch.abs(x).neg_().exp_().log1p_()
    rx = torch.relu(x)
    sp_neg = (rx - x).add_(s)
    return rx.add_(s), sp_neg


def _wbce_logits(x, y, w, need_grad):
    """Per-sample weighted BCE of logits and, when asked, d(Σ ℓ_i)/dx (closed form):
    ``ℓ = w y softplus(-x) + (1-y) softplus(x)``, ``dℓ/dx = (1-y) σ(x) - w y σ(-x)``."""
    sp_pos, sp_neg = _softplus_pair(x)
    wy = y if (not isinstance(w, torch.Tensor) and w == 1.0) else y * w
    omy = 1.0 - y
    loss = sp_neg.mul_(wy).addcmul_(omy, sp_pos)
    del sp_pos
    grad = None
    if need_grad:
        grad = torch.sigmoid(x).mul_(omy).addcmul_(wy, torch.sigmoid(-x), value=-1.0)
    return mean_nonbatch(loss), grad


WeightedBCEWithLogits = fused_function(_wbce_logits, "WeightedBCEWithLogits")


def _weighted_bce_per_sample(x, y, *, pos_weight, from_logits):
    if from_logits and needs_fused_grad(x, y, pos_weight):
        return run_fused(WeightedBCEWithLogits, x, y, pos_weight)
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


# below this, 1 - p_t = y σ(-x) + (1-y) σ(x) is (or may be) underflowed: it is >= (1 - y_t) / 2
# with y_t the label on x's side, so that only happens for y_t == 1 exactly (a hard label) and
# |x| > 69, where log(1 - p_t) = log σ(-|x|) = -(|x| + s) exactly
_M_TINY = 2.0 ** -100


def _focal_logits(x, y, gamma, alpha, need_grad):
    """Per-sample focal loss of logits and, when asked, its closed-form elementwise gradient.

    ``m = 1 - p_t = (1-y) σ(x) + y σ(-x)`` (a sum of non-negative terms), ``dm/dx = (1-2y) σ(x)
    σ(-x)``, ``BCE = y softplus(-x) + (1-y) softplus(x)``, ``dBCE/dx = (1-y) σ(x) - y σ(-x)``,
    ``ℓ = α_t m^γ BCE``. Integer ``γ >= 1`` (the default 2): ``m^γ`` by multiplication and
    ``dℓ/dx = α_t m^(γ-1) (γ BCE dm/dx + m dBCE/dx)``: no log, no division, nothing that can
    overflow. Other ``γ``: ``m^γ = exp(γ log m)`` with ``log m`` directly where ``m >= 2**-100``
    and ``-(|x| + s)`` (the exact hard-label limit) below, ``dℓ/dx = α_t m^γ (γ BCE d log m/dx
    + dBCE/dx)``, ``d log m/dx = (1-2y) σ(x) σ(-x) / m`` (``(1-2y)`` in the underflowed limit,
    where σ(|x|) = 1): finite for every gamma >= 0 (no pow of an underflowed 0)."""
    sp_pos, sp_neg = _softplus_pair(x)
    sx, snx = torch.sigmoid(x), torch.sigmoid(-x)
    omy = 1.0 - y
    t1, t2 = sx * omy, y * snx  # (1-y) σ(x), y σ(-x)
    m = t1 + t2
    int_gamma = gamma >= 1.0 and float(gamma).is_integer()
    mod = tiny = None
    if gamma == 0.0:
        pass
    elif int_gamma:
        mod = m if gamma == 1.0 else (m * m if gamma == 2.0 else torch.pow(m, int(gamma)))
    else:
        tiny = m < _M_TINY
        log_m = torch.where(tiny, torch.maximum(sp_pos, sp_neg).neg_(), torch.log(m))
        mod = log_m.mul_(gamma).exp_()
    bce = sp_pos.mul_(omy).addcmul_(y, sp_neg)
    del sp_neg
    loss = bce if mod is None else bce * mod
    a_t = None
    if alpha is not None:
        a_t = (y * (2.0 * alpha - 1.0)).add_(1.0 - alpha)
        loss = loss.mul_(a_t) if loss is not bce else loss * a_t
    grad = None
    if need_grad:
        d_bce = t1.sub_(t2)
        if mod is None:
            grad = d_bce
        else:
            om2y = omy - y
            dm = sx.mul_(snx).mul_(om2y)  # dm/dx
            if int_gamma:
                grad = dm.mul_(bce).mul_(gamma).addcmul_(m, d_bce)
                if gamma > 1.0:
                    grad.mul_(m if gamma == 2.0 else torch.pow(m, int(gamma) - 1))
            else:
                d_log_m = torch.where(tiny, om2y, dm.div_(m))
                grad = d_log_m.mul_(bce).mul_(gamma).add_(d_bce).mul_(mod)
        if a_t is not None:
            grad = grad.mul_(a_t)
    return mean_nonbatch(loss), grad


BinaryFocalWithLogits = fused_function(_focal_logits, "BinaryFocalWithLogits")


def _binary_focal_per_sample(x, y, *, gamma, alpha, from_logits):
    if from_logits and needs_fused_grad(x, y, alpha):
        return run_fused(BinaryFocalWithLogits, x, y, gamma, alpha)
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
