"""Overlap losses for segmentation and imbalanced multilabel: soft Dice, soft Jaccard (IoU), soft F-beta, Tversky. (torch twins of :mod:`spec.overlap`).

Argument order is torch's: ``(input, target)``, prediction first. Every loss is the family form
of :mod:`spec.overlap`: ``ℓ = (a FP + b FN + e) / (t TP + a FP + b FN + e + s)`` on the soft counts
``TP = Σ p y``, ``FP = Σ p (1-y)``, ``FN = Σ (1-p) y``; ``D = 0`` (no smoothing, empty sample) gives
loss 1 with gradient 0.
"""
from __future__ import annotations

import torch

from ._core import apply, const, one_minus, reduce, with_total
from ._fused import fused_function, fused_total, needs_fused_grad, run_fused, run_fused_total
from .distributed import sync_sum

__all__ = ["soft_dice", "soft_jaccard", "tversky", "soft_fbeta"]


class _SigmoidPair(torch.autograd.Function):
    """``(σ(x), σ(-x))`` with the derivative ``σ(x) σ(-x)`` (of the first; minus it for the second)
    from both outputs. Autograd of two ``torch.sigmoid`` calls forms ``σ(x)(1 - σ(x))``, which is 0
    wherever ``σ(x)`` rounds to 1 (``x > 37`` in float64): the gradient reaching ``σ(-x)`` there is
    lost. Twice differentiable (the backward is made of differentiable ops of the saved outputs)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.sigmoid(x), torch.sigmoid(-x)

    @staticmethod
    def setup_context(ctx, inputs, outputs):
        ctx.save_for_backward(*outputs)

    @staticmethod
    def backward(ctx, g_p, g_q):
        p, q = ctx.saved_tensors
        return (g_p - g_q) * (p * q)


def _probs(x: torch.Tensor, from_logits: bool):
    """``(p, 1 - p)``: ``(σ(x), σ(-x))`` for logits (no cancellation at p → 1, and a derivative
    that stays exact there), ``(x, 1 - x)`` for probabilities."""
    if from_logits:
        return _SigmoidPair.apply(x)
    return x, 1.0 - x


def _counts(x, y, from_logits):
    """Elementwise soft counts stacked as ``(3, *x.shape)``: ``p y``, ``p (1-y)``, ``(1-p) y``."""
    p, q = _probs(x, from_logits)
    return torch.stack([p * y, p * (1.0 - y), q * y])


def _per_sample_counts(x, y, from_logits):
    """``(3, N)``: counts summed over every non-batch axis (a 1-D input: one element per sample).
    Each product is summed on its own and only the ``(N,)`` sums are stacked: no ``(3, *x.shape)``
    copy of the three full-size products (and no ``FP = Σp - TP`` cancellation either)."""
    if x.dim() == 1:
        return _counts(x, y, from_logits)
    p, q = _probs(x, from_logits)

    def total(t):
        return t.flatten(1).sum(dim=1)

    return torch.stack([total(p * y), total(p * (1.0 - y)), total(q * y)])


def _pooled_counts(x, y, from_logits, sample_weight, per_class):
    """``(3, C)`` counts pooled over the batch (weighted) and every axis but the last (macro), or
    ``(3, 1)`` pooled over everything (micro, or a 1-D input)."""
    c = _counts(x, y, from_logits)
    if sample_weight is not None:
        c = c * sample_weight.reshape((1, x.shape[0]) + (1,) * (x.dim() - 1))
    if per_class and x.dim() > 1:
        return c.sum(dim=tuple(range(1, c.dim() - 1)))
    return c.flatten(1).sum(dim=1, keepdim=True)


def _safe_denominator(k, m):
    """``(D == 0, D with its zeros replaced by 1)`` for ``D = K + M`` (NaN is not zero: it propagates)."""
    d = k + m
    zero = d == 0
    return zero, torch.where(zero, torch.ones_like(d), d)


def _ratio_value(k, m):
    """``(ℓ, D_safe)``: ``ℓ = M / (K + M)``, 1 where ``K + M == 0``."""
    zero, d_safe = _safe_denominator(k, m)
    return torch.where(zero, torch.ones_like(d_safe), m / d_safe), d_safe


def _ratio_partials(k, m, has_pos, d_safe, g=1.0):
    """``g ∂ℓ/∂K = -g M/D²`` (0 where ``has_pos`` is False: ``K`` does not depend on the prediction)
    and ``g ∂ℓ/∂M = g K/D²`` of ``ℓ = M / (K + M)``, in the cancellation-free form (``D = 0``: 0)."""
    return (torch.where(has_pos, -g * (m / d_safe) / d_safe, torch.zeros_like(d_safe)),
            g * (k / d_safe) / d_safe)


class _OverlapRatio(torch.autograd.Function):
    """``M / (K + M)`` with the cancellation-free gradient ``(K dM - M dK) / D²``.

    Plain autodiff of ``M / (K + M)`` forms ``g/D - g (M/D)/D`` for ``dM``: a difference of two
    nearly equal terms whose rounding error ``~1e-16/D`` is not small when ``D`` is (no smoothing,
    empty mask, tiny probabilities: 3e-5 instead of 0 at ``D = 6e-12``). ``D == 0`` (then
    ``K = M = 0``): value 1, gradient 0. ``has_pos`` (``TP + FN > 0``, i.e. some ``w y > 0``) says
    whether ``K = t TP + s`` depends on the prediction at all; where it does not, its gradient is
    0, so an empty sample with subnormal sums (``1/D`` overflows) gives 0, not ``inf · 0 = NaN``.
    The backward uses differentiable ops of the inputs, so higher-order derivatives work.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(k, m, has_pos):
        return _ratio_value(k, m)[0]

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        k, m, has_pos = ctx.saved_tensors
        _, d_safe = _safe_denominator(k, m)
        return *_ratio_partials(k, m, has_pos, d_safe, g), None


def _ratio(counts, a, b, t, e, s):
    """``ℓ = M / (K + M)``, ``K = t TP + s``, ``M = a FP + b FN + e``; ``K + M == 0`` → 1, gradient 0."""
    tp, fp, fn = counts.unbind(0)
    has_pos = (tp + fn).detach() > 0
    return _OverlapRatio.apply(t * tp + s, a * fp + b * fn + e, has_pos)


def _affine(t, scale, shift):
    """``scale · t + shift`` for Python-number coefficients (as cached 0-d operands), with no op for
    a unit scale or a zero shift (the same values)."""
    if scale != 1.0:
        t = t * const(scale, t)
    return t + const(shift, t) if shift else t


def _overlap_closed_form(x, y, coefficients, from_logits, need_grad):
    """Per-sample ``ℓ = M / (K + M)`` (``K = t TP + s``, ``M = a FP + b FN + e``) and, when asked,
    its closed-form elementwise gradient, in one pass over the data.

    With the per-sample ``∂ℓ/∂K = -M/D²`` (0 where ``TP + FN = 0``: ``K`` does not depend on the
    prediction) and ``∂ℓ/∂M = K/D²`` (as :class:`_OverlapRatio`; ``D = 0`` → 0), the chain rule
    through ``TP = Σ p y``, ``FP = Σ p (1-y)``, ``FN = Σ (1-p) y`` gives

    ``∂ℓ/∂x_j = p'_j (c_0 (1 - y_j) + c_1 y_j)``,  ``c_0 = a ∂ℓ/∂M``,  ``c_1 = t ∂ℓ/∂K - b ∂ℓ/∂M``,

    ``p' = σ(x) σ(-x)`` for logits, 1 for probabilities: one elementwise pass, one saved buffer
    (autograd of the counts keeps four: ``p``, ``1 - p``, ``y``, ``1 - y``). The two terms are
    written apart, not as ``c_0 + (c_1 - c_0) y``, so a hard label gets its coefficient exactly
    (no cancellation when ``c_0`` and ``c_1`` are far apart, e.g. Tversky with a small beta).
    Unit and zero coefficients cost no op (the same values)."""
    a, b, t, e, s = coefficients
    n = x.shape[0]
    x2, y2 = x.reshape(n, -1), y.reshape(n, -1)
    # three input-sized buffers, reused in place (a fresh CPU allocation of this size costs more
    # in page faults than the multiplication that fills it)
    if from_logits:
        p, q = torch.sigmoid(x2), x2.neg().sigmoid_()  # fresh buffers: written in place below
    else:
        p, q = x2, 1.0 - x2  # p is the caller's tensor: never written
    one, zero_ = const(1.0, x), const(0.0, x)
    buf = p * y2
    tp = buf.sum(dim=1)
    fn = torch.mul(q, y2, out=buf).sum(dim=1)
    omy = one_minus(y2, out=buf)  # 1 - y
    if need_grad and from_logits:
        q.mul_(p)  # p' = σ(x) σ(-x)
    fp = torch.mul(p, omy, out=p if from_logits else q).sum(dim=1)
    k = _affine(tp, t, s)
    m = _affine(fp, a, 0.0)
    m = (m.add_(fn) if b == 1.0 else m.add_(fn, alpha=b)) if m is not fp else (
        fp + fn if b == 1.0 else torch.add(fp, fn, alpha=b))
    if e:
        m = m.add_(const(e, m))
    d = k + m
    zero = d == zero_
    d_safe = torch.where(zero, one, d)
    ratio = m / d_safe
    loss = torch.where(zero, one, ratio)
    if not need_grad:
        return loss, None
    # ∂ℓ/∂K = -(M/D)/D where TP + FN > 0 (else 0), ∂ℓ/∂M = (K/D)/D: _ratio_partials' values
    dk = torch.where((tp + fn) > zero_, ratio.div_(d_safe).neg_(), zero_)
    dm = k.div(d_safe).div_(d_safe)
    c0 = dm if a == 1.0 else dm * const(a, dm)
    c1 = (dk if t == 1.0 else dk.mul_(const(t, dk)))
    c1 = c1.sub_(dm) if b == 1.0 else c1.sub_(dm, alpha=b)
    grad = omy.mul_(c0.unsqueeze(1)).addcmul_(y2, c1.unsqueeze(1))
    if from_logits:
        grad.mul_(q)
    return loss, grad.reshape(x.shape)


OverlapWithCounts = fused_function(_overlap_closed_form, "OverlapWithCounts", per_element_mean=False)
OverlapWithCountsTotal = fused_total(_overlap_closed_form, "OverlapWithCountsTotal", per_element_mean=False)


def _overlap_per_sample(x, y, from_logits, a, b, t, e, s):
    """The per-sample family form: the closed-form Function when only the prediction needs a
    gradient (outside ``torch.func`` transforms), else autograd through the counts and
    :class:`_OverlapRatio` (twice differentiable; a target requiring grad gets its gradient)."""
    if needs_fused_grad(x, y):
        return run_fused(OverlapWithCounts, x, y, (a, b, t, e, s), from_logits)
    return _ratio(_per_sample_counts(x, y, from_logits), a, b, t, e, s)


def _overlap_total(x, y, mean, from_logits, a, b, t, e, s):
    """The reduced family form (``Σ_i ℓ_i``, over N when ``mean``): the closed-form Function's
    reduced twin where :func:`_overlap_per_sample` takes the Function, else its reduction."""
    if needs_fused_grad(x, y):
        return run_fused_total(OverlapWithCountsTotal, x, mean, y, (a, b, t, e, s), from_logits)
    return reduce(_ratio(_per_sample_counts(x, y, from_logits), a, b, t, e, s), None, "mean" if mean else "sum")


def _soft_dice_total(x, y, mean, *, smooth, from_logits):
    return _overlap_total(x, y, mean, from_logits, 1.0, 1.0, 2.0, 0.0, smooth)


@with_total(_soft_dice_total)
def _soft_dice_per_sample(x, y, *, smooth, from_logits):
    return _overlap_per_sample(x, y, from_logits, 1.0, 1.0, 2.0, 0.0, smooth)


def soft_dice(input, target, *, smooth=1.0, from_logits=True, sample_weight=None, reduction="mean",
              validate=True):
    r"""Soft Dice loss, one value per sample (sums over every non-batch axis).

    .. math::
        \ell_i = 1 - \frac{2\sum_j y_{ij} p_{ij} + s}{\sum_j y_{ij} + \sum_j p_{ij} + s}
               = \frac{FP_i + FN_i}{2\,TP_i + FP_i + FN_i + s},\quad p = \sigma(x)

    Stability: the right-hand form has no ``1 - ratio`` cancellation (near-perfect masks keep full
    precision) and ``1 - p`` is ``σ(-x)``. Empty masks: ``Σp / (Σp + s)`` for ``smooth > 0``; with
    ``smooth = 0`` and ``Σy = Σp = 0`` the loss is 1 with gradient 0 (the spec's convention).

    Args:
        input: logits (or probabilities with ``from_logits=False``), shape ``(N, ...)``.
        target: masks in [0, 1] (soft allowed), same shape.
        smooth: finite ``>= 0``.
        sample_weight: ``(N,)`` non-negative weights.
        reduction: ``"mean"`` (Σ w ℓ / N), ``"sum"`` or ``"none"``.
        validate: check data values (NaN, ranges); shapes are always checked.
    """
    return apply("soft_dice", _soft_dice_per_sample, input, target, sample_weight,
                 {"smooth": smooth, "from_logits": from_logits}, reduction, validate)


def _soft_jaccard_total(x, y, mean, *, smooth, from_logits):
    return _overlap_total(x, y, mean, from_logits, 1.0, 1.0, 1.0, 0.0, smooth)


@with_total(_soft_jaccard_total)
def _soft_jaccard_per_sample(x, y, *, smooth, from_logits):
    return _overlap_per_sample(x, y, from_logits, 1.0, 1.0, 1.0, 0.0, smooth)


def soft_jaccard(input, target, *, smooth=1.0, from_logits=True, sample_weight=None, reduction="mean",
                 validate=True):
    r"""Soft Jaccard (IoU) loss, one value per sample.

    .. math::
        \ell_i = 1 - \frac{\sum_j y_{ij} p_{ij} + s}{\sum_j y_{ij} + \sum_j p_{ij} - \sum_j y_{ij} p_{ij} + s}
               = \frac{FP_i + FN_i}{TP_i + FP_i + FN_i + s}

    Stability: cancellation-free ratio form, ``1 - p = σ(-x)``; smoothing makes empty masks (the
    0/0 of an unsmoothed IoU) well defined; ``smooth = 0`` empty samples give loss 1, gradient 0.
    """
    return apply("soft_jaccard", _soft_jaccard_per_sample, input, target, sample_weight,
                 {"smooth": smooth, "from_logits": from_logits}, reduction, validate)


def _tversky_total(x, y, mean, *, alpha, beta, smooth, from_logits):
    return _overlap_total(x, y, mean, from_logits, alpha, beta, 1.0, 0.0, smooth)


@with_total(_tversky_total)
def _tversky_per_sample(x, y, *, alpha, beta, smooth, from_logits):
    return _overlap_per_sample(x, y, from_logits, alpha, beta, 1.0, 0.0, smooth)


def tversky(input, target, *, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, sample_weight=None,
            reduction="mean", validate=True):
    r"""Tversky loss (Salehi et al. 2017), one value per sample: ``alpha`` weights false
    positives, ``beta`` false negatives.

    .. math::
        \ell_i = 1 - \frac{TP_i + s}{TP_i + \alpha FP_i + \beta FN_i + s}
               = \frac{\alpha FP_i + \beta FN_i}{TP_i + \alpha FP_i + \beta FN_i + s}

    Stability: cancellation-free ratio form, ``1 - p = σ(-x)``. ``alpha = beta = 0.5`` with
    smoothing ``s`` equals :func:`soft_dice` with ``2 s``; ``alpha = beta = 1`` is :func:`soft_jaccard`.
    """
    return apply("tversky", _tversky_per_sample, input, target, sample_weight,
                 {"alpha": alpha, "beta": beta, "smooth": smooth, "from_logits": from_logits},
                 reduction, validate)


def _soft_fbeta_total(x, y, mean, *, beta, epsilon, average, from_logits, sync):
    b2 = beta * beta  # only "samples" is reduced (macro/micro are batch statistics)
    return _overlap_total(x, y, mean, from_logits, 1.0, b2, 1.0 + b2, epsilon, 0.0)


@with_total(_soft_fbeta_total)
def _soft_fbeta_per_sample(x, y, *, beta, epsilon, average, from_logits, sync, sample_weight=None):
    b2 = beta * beta
    if average == "samples":  # per-sample: no cross-replica statistic, ``sync`` has no effect
        return _overlap_per_sample(x, y, from_logits, 1.0, b2, 1.0 + b2, epsilon, 0.0)
    counts = _pooled_counts(x, y, from_logits, sample_weight, average == "macro")
    if sync:
        counts = sync_sum(counts)  # all-reduce TP, FP, FN (with gradients) before the ratio
    return _ratio(counts, 1.0, b2, 1.0 + b2, epsilon, 0.0).mean()


def soft_fbeta(input, target, *, beta=1.0, epsilon=1e-7, average="samples", from_logits=True, sync=False,
               sample_weight=None, reduction="mean", validate=True):
    r"""Soft F-beta loss on probability sums: per sample, or one batch statistic (macro/micro).

    .. math::
        \ell = 1 - \frac{(1+\beta^2) TP}{(1+\beta^2) TP + \beta^2 FN + FP + \epsilon}
             = \frac{\beta^2 FN + FP + \epsilon}{(1+\beta^2) TP + \beta^2 FN + FP + \epsilon}

    ``average="samples"``: TP, FP, FN of each sample over its non-batch axes (every reduction).
    ``"macro"``: per class (last axis) pooled over the batch and the other axes, the mean of the
    class losses; ``"micro"``: all pooled. macro/micro give one value per batch (reduction
    ``"mean"`` only); ``sample_weight`` multiplies each sample's contribution to TP, FP, FN, and
    ``sync=True`` sums them over DDP ranks (with gradients) before the ratio.

    Stability: β² multiplies FN (recall), no clamp of F (it would zero gradients), ``ε`` only in
    the ratio, cancellation-free form, ``1 - p = σ(-x)``.
    """
    return apply("soft_fbeta", _soft_fbeta_per_sample, input, target, sample_weight,
                 {"beta": beta, "epsilon": epsilon, "average": average, "from_logits": from_logits,
                  "sync": sync}, reduction, validate)
