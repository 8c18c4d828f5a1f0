"""Binary / multilabel classification losses, torch twins of :mod:`spec.classification`.

Argument order is torch's: ``(input, target)``, prediction first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, clip, const, mean_nonbatch, one_minus, reduce, with_total
from ._fused import fused_function, fused_total, needs_fused_grad, run_fused, run_fused_total


def _log_probs(x: torch.Tensor, from_logits: bool):
    """``(log p, log(1 - p))``: log-sigmoids for logits, the spec's clamp for probabilities."""
    if from_logits:
        return F.logsigmoid(x), F.logsigmoid(-x)
    # log(1 - p) as log1p(-p) (1 - p rounds tiny p away), the same clamp where 1 - p < P_MIN; the
    # masked branch sees p = 0, so its gradient is 0 there, never inf · 0
    keep = (1.0 - x) >= P_MIN
    log_1mp = torch.where(keep, torch.log1p(-torch.where(keep, x, torch.zeros_like(x))), LOG_P_MIN)
    return torch.log(clip(x, P_MIN)), log_1mp


def _softplus_pair(x):
    """``(softplus(x), softplus(-x)) = (-log σ(-x), -log σ(x))`` from one shared
    ``s = log1p(exp(-|x|))``: ``relu(x) + s`` and ``relu(-x) + s`` (``relu(-x) = relu(x) - x``
    exactly). Both are sums of non-negative terms: no cancellation anywhere."""
    s = torch.abs(x).neg_().exp_().log1p_()
    rx = torch.relu(x)
    sp_neg = (rx - x).add_(s)
    return rx.add_(s), sp_neg


def _bce_unit_weight(x, y, need_grad):
    """Elementwise BCE of logits with ``pos_weight = 1`` (the default) and, when asked, its
    gradient, in twelve elementwise ops: with ``e = exp(-|x|)``, ``L = log1p(e)`` and ``d = H(x) -
    y`` (``H = (sign(x) + 1) / 2`` the step, ½ at 0: exact, and ``1 - y`` / ``-y`` where it matters)

    ``ℓ = L + x d``  (``= y softplus(-x) + (1-y) softplus(x)``: a sum of non-negative terms,
    ``L`` for the side the label agrees with, ``|x| y`` or ``x (1-y)`` for the other),
    ``dℓ/dx = d - sign(x) σ(-|x|)``  (``= (1-y) σ(x) - y σ(-x)``: ``1 - y - σ(-x)`` for x > 0,
    ``σ(x) - y`` for x < 0, ½ - y at 0; a hard label gets ``-σ(-x)`` / ``σ(x)`` exactly)."""
    na = torch.abs(x).neg_()
    sgn = torch.sign(x)
    d = torch.add(sgn, const(1.0, x)).mul_(const(0.5, x)).sub_(y)
    loss = torch.exp(na).log1p_().addcmul_(x, d)
    if not need_grad:
        return loss, None
    return loss, d.addcmul_(sgn, na.sigmoid_(), value=-1.0)


def _wbce_logits(x, y, w, need_grad):
    """Elementwise weighted BCE of logits and, when asked, d(Σ ℓ)/dx (closed form):
    ``ℓ = w y softplus(-x) + (1-y) softplus(x)``, ``dℓ/dx = (1-y) σ(x) - w y σ(-x)``; a scalar
    ``w = 1`` (the default) takes :func:`_bce_unit_weight` (the same math in fewer ops)."""
    if not isinstance(w, torch.Tensor) and w == 1.0:
        return _bce_unit_weight(x, y, need_grad)
    sp_pos, sp_neg = _softplus_pair(x)
    wy = y * w
    omy = 1.0 - y
    loss = sp_neg.mul_(wy).addcmul_(omy, sp_pos)
    del sp_pos
    grad = None
    if need_grad:
        grad = torch.sigmoid(x).mul_(omy).addcmul_(wy, torch.sigmoid(-x), value=-1.0)
    return loss, grad


WeightedBCEWithLogits = fused_function(_wbce_logits, "WeightedBCEWithLogits")
WeightedBCEWithLogitsTotal = fused_total(_wbce_logits, "WeightedBCEWithLogitsTotal")


def _weighted_bce_total(x, y, mean, *, pos_weight, from_logits):
    if from_logits and needs_fused_grad(x, y, pos_weight):
        return run_fused_total(WeightedBCEWithLogitsTotal, x, mean, y, pos_weight)
    return reduce(_weighted_bce_per_sample(x, y, pos_weight=pos_weight, from_logits=from_logits), None,
                  "mean" if mean else "sum")


@with_total(_weighted_bce_total)
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
    """Elementwise focal loss of logits and, when asked, its closed-form gradient.

    ``m = 1 - p_t = (1-y) σ(x) + y σ(-x)`` (a sum of non-negative terms), ``dm/dx = (1-2y) σ(x)
    σ(-x)``, ``BCE = -((1-y) log σ(-x) + y log σ(x))`` (``F.logsigmoid``: exact for every x, a sum
    of non-negative terms), ``dBCE/dx = (1-y) σ(x) - y σ(-x)``, ``ℓ = α_t m^γ BCE``. Integer
    ``γ >= 1`` (the default 2): ``m^γ`` by multiplication and ``dℓ/dx = α_t m^(γ-1) (γ BCE dm/dx
    + m dBCE/dx)``: no log, no division, nothing that can overflow. Other ``γ``: ``m^γ = exp(γ log
    m)`` with ``log m`` directly where ``m >= 2**-100`` and ``min(log σ(x), log σ(-x))`` (the exact
    hard-label limit ``-(|x| + s)``) below, ``dℓ/dx = α_t m^γ (γ BCE d log m/dx + dBCE/dx)``,
    ``d log m/dx = (1-2y) σ(x) σ(-x) / m`` (``(1-2y)`` in the underflowed limit, where σ(|x|) = 1):
    finite for every gamma >= 0 (no pow of an underflowed 0). ``-BCE`` is carried (``nbce``): the
    signs fold into the products."""
    nx = torch.neg(x)
    sx, snx = torch.sigmoid(x), torch.sigmoid(nx)
    lsp, lsn = F.logsigmoid(x), F.logsigmoid(nx)
    del nx  # (each buffer is released once read for the last time: the peak is the buffers alive at once)
    omy = one_minus(y)
    t1 = sx * omy  # (1-y) σ(x)
    m = torch.addcmul(t1, y, snx)  # + y σ(-x)
    int_gamma = gamma >= 1.0 and float(gamma).is_integer()
    mod = tiny = None
    if gamma == 0.0:
        pass
    elif int_gamma:
        mod = m if gamma == 1.0 else (m * m if gamma == 2.0 else torch.pow(m, int(gamma)))
    else:
        tiny = m < _M_TINY
        log_m = torch.where(tiny, torch.minimum(lsp, lsn), torch.log(m))
        mod = log_m.mul_(gamma).exp_()
    nbce = lsn.mul_(omy).addcmul_(y, lsp)  # -BCE
    del lsp
    if mod is None:
        loss = torch.neg(nbce)
    elif int_gamma and gamma != 1.0:  # m^γ is a buffer of its own, not needed after this
        loss = mod.mul_(nbce).neg_()
    else:
        loss = torch.mul(mod, nbce).neg_()
    a_t = None
    if alpha is not None:
        a_t = torch.mul(y, const(2.0 * alpha - 1.0, x)).add_(const(1.0 - alpha, x))
        loss.mul_(a_t)
    if not need_grad:
        return loss, None
    d_bce = t1.addcmul_(y, snx, value=-1.0)  # (1-y) σ(x) - y σ(-x)
    if mod is None:
        grad = d_bce
    else:
        om2y = omy.sub_(y)  # 1 - 2y
        dm = sx.mul_(snx).mul_(om2y)  # dm/dx
        if int_gamma:
            grad = d_bce.mul_(m).addcmul_(nbce, dm, value=-gamma)
            if gamma > 1.0:
                grad.mul_(m if gamma == 2.0 else torch.pow(m, int(gamma) - 1))
        else:
            d_log_m = torch.where(tiny, om2y, dm.div_(m))
            grad = d_log_m.mul_(nbce).mul_(-gamma).add_(d_bce).mul_(mod)
    if a_t is not None:
        grad.mul_(a_t)
    return loss, grad


BinaryFocalWithLogits = fused_function(_focal_logits, "BinaryFocalWithLogits")
BinaryFocalWithLogitsTotal = fused_total(_focal_logits, "BinaryFocalWithLogitsTotal")


def _binary_focal_total(x, y, mean, *, gamma, alpha, from_logits):
    if from_logits and needs_fused_grad(x, y, alpha):
        return run_fused_total(BinaryFocalWithLogitsTotal, x, mean, y, gamma, alpha)
    return reduce(_binary_focal_per_sample(x, y, gamma=gamma, alpha=alpha, from_logits=from_logits), None,
                  "mean" if mean else "sum")


@with_total(_binary_focal_total)
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
