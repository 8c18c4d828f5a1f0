"""Overlap losses for segmentation and imbalanced multilabel: soft Dice, soft Jaccard (IoU), soft F-beta, Tversky. (TensorFlow twins of :mod:`spec.overlap`).

Argument order is Keras': ``(y_true, y_pred)``, truth first. Every loss is the family form of
:mod:`spec.overlap`: ``ℓ = (a FP + b FN + e) / (t TP + a FP + b FN + e + s)`` on the soft counts
``TP = Σ p y``, ``FP = Σ p (1-y)``, ``FN = Σ (1-p) y``; ``D = 0`` (no smoothing, empty sample) gives
loss 1 with gradient 0.
"""
from __future__ import annotations

import tensorflow as tf

from ._core import apply, traced_when_eager, with_total
from .distributed import sync_sum

__all__ = ["soft_dice", "soft_jaccard", "tversky", "soft_fbeta"]


@tf.custom_gradient
def _sigmoid_pair(x):
    """``(σ(x), σ(-x))`` with the derivative ``σ(x) σ(-x)`` from both outputs (autograd of two
    sigmoids forms ``σ(x)(1 - σ(x))``, 0 wherever ``σ(x)`` rounds to 1): the torch twin's
    ``_SigmoidPair``."""
    p, q = tf.math.sigmoid(x), tf.math.sigmoid(-x)
    return (p, q), lambda g_p, g_q: (g_p - g_q) * (p * q)


def _probs(x: tf.Tensor, from_logits: bool):
    """``(p, 1 - p)``: ``(σ(x), σ(-x))`` for logits (no cancellation at p → 1, and a derivative
    that stays exact there), ``(x, 1 - x)`` for probabilities."""
    if from_logits:
        return _sigmoid_pair(x)
    return x, 1.0 - x


def _counts(x, y, from_logits):
    """Elementwise soft counts stacked as ``(3, *x.shape)``: ``p y``, ``p (1-y)``, ``(1-p) y``."""
    p, q = _probs(x, from_logits)
    return tf.stack([p * y, p * (1.0 - y), q * y])


def _pooled_counts(x, y, from_logits, sample_weight, per_class):
    """``(3, C)`` counts pooled over the batch (weighted) and every axis but the last (macro), or
    ``(3, 1)`` pooled over everything (micro, or a 1-D input)."""
    c = _counts(x, y, from_logits)
    rank = x.shape.rank
    if sample_weight is not None:
        c = c * tf.reshape(sample_weight, [1, -1] + [1] * (rank - 1))
    if per_class and rank > 1:
        return tf.reduce_sum(c, axis=list(range(1, rank)))
    return tf.reduce_sum(c, axis=list(range(1, rank + 1)))[:, None]


def _safe_denominator(k, m):
    """``(D == 0, D with its zeros replaced by 1)`` for ``D = K + M`` (NaN is not zero: it propagates)."""
    d = k + m
    zero = tf.equal(d, tf.zeros_like(d))
    return zero, tf.where(zero, tf.ones_like(d), d)


def _ratio_value(k, m):
    """``(ℓ, D_safe)``: ``ℓ = M / (K + M)``, 1 where ``K + M == 0``."""
    zero, d_safe = _safe_denominator(k, m)
    return tf.where(zero, tf.ones_like(d_safe), m / d_safe), d_safe


def _ratio_partials(k, m, has_pos, d_safe, g=1.0):
    """``g ∂ℓ/∂K = -g M/D²`` (0 where ``has_pos`` is False) and ``g ∂ℓ/∂M = g K/D²`` of
    ``ℓ = M / (K + M)``, in the cancellation-free form (the torch twin's)."""
    return (tf.where(has_pos, -g * (m / d_safe) / d_safe, tf.zeros_like(d_safe)),
            g * (k / d_safe) / d_safe)


@tf.custom_gradient
def _overlap_ratio(k, m, has_pos):
    """``M / (K + M)`` with the cancellation-free gradient ``(K dM - M dK) / D²``.

    Plain autodiff of ``M / (K + M)`` forms ``g/D - g (M/D)/D`` for ``dM``: a difference of two
    nearly equal terms whose rounding error ``~1e-16/D`` is not small when ``D`` is (no smoothing,
    empty mask, tiny probabilities). ``D == 0`` (then ``K = M = 0``): value 1, gradient 0.
    ``has_pos`` (``TP + FN > 0``) says whether ``K = t TP + s`` depends on the prediction at all;
    where it does not, its gradient is 0 (no ``inf · 0 = NaN`` when ``1/D`` overflows).
    """
    value, d_safe = _ratio_value(k, m)
    return value, lambda g: (*_ratio_partials(k, m, has_pos, d_safe, g), None)


def _ratio(counts, a, b, t, e, s):
    """``ℓ = M / (K + M)``, ``K = t TP + s``, ``M = a FP + b FN + e``; ``K + M == 0`` → 1, gradient 0."""
    tp, fp, fn = tf.unstack(counts, num=3, axis=0)
    has_pos = tf.stop_gradient(tp + fn) > 0
    return _overlap_ratio(t * tp + s, a * fp + b * fn + e, has_pos)


def _affine(t, scale, shift):
    """``scale · t + shift`` for Python-number coefficients, with no op for a unit scale or a zero
    shift (the same values)."""
    if scale != 1.0:
        t = t * scale
    return t + shift if shift else t


def _overlap_closed_form(x, y, from_logits, a, b, t, e, s, per_sample=True, mean=True):
    """Per-sample ``ℓ = M / (K + M)`` (``K = t TP + s``, ``M = a FP + b FN + e``) with the
    closed-form gradient of the torch twin (``tf.custom_gradient`` on the prediction):
    ``∂ℓ/∂x_j = p'_j (c_0 (1 - y_j) + c_1 y_j)``, ``c_0 = a ∂ℓ/∂M``, ``c_1 = t ∂ℓ/∂K - b ∂ℓ/∂M``,
    ``∂ℓ/∂K = -M/D²`` (0 where ``TP + FN = 0``), ``∂ℓ/∂M = K/D²`` (``D = 0`` → 0), ``p' = σ(x) σ(-x)``
    for logits and 1 for probabilities, then times the per-sample cotangent (the torch order of
    operations, so both frameworks round alike); or (``per_sample=False``) the reduced ``Σ_i ℓ_i``
    (over N when ``mean``) with a scalar cotangent. Unit and zero coefficients cost no op. The
    target gets no gradient."""
    n = tf.shape(x)[0]
    y2 = tf.reshape(y, [n, -1])

    @tf.custom_gradient
    def f(x):
        x2 = tf.reshape(x, [n, -1])
        p, q = (tf.math.sigmoid(x2), tf.math.sigmoid(-x2)) if from_logits else (x2, 1.0 - x2)
        omy = 1.0 - y2
        tp = tf.reduce_sum(p * y2, axis=1)
        fn = tf.reduce_sum(q * y2, axis=1)
        fp = tf.reduce_sum(p * omy, axis=1)
        k = _affine(tp, t, s)
        m = _affine(fp, a, 0.0) + (fn if b == 1.0 else fn * b)
        if e:
            m = m + e
        d = k + m
        zero = tf.equal(d, 0.0)
        one = tf.constant(1.0, d.dtype)
        d_safe = tf.where(zero, one, d)
        ratio = m / d_safe
        value = tf.where(zero, one, ratio)
        c = 1.0
        if not per_sample:
            c = 1.0 / x.shape[0] if mean else 1.0
            value = tf.reduce_sum(value) * c if c != 1.0 else tf.reduce_sum(value)

        def grad(g):
            dk = tf.where(tp + fn > 0, -(ratio / d_safe), tf.constant(0.0, d.dtype))
            dm = k / d_safe / d_safe
            c0 = dm if a == 1.0 else dm * a
            c1 = (dk if t == 1.0 else dk * t) - (dm if b == 1.0 else dm * b)
            gx = omy * c0[:, None] + y2 * c1[:, None]
            if from_logits:
                gx = gx * (q * p)
            gx = gx * g[:, None] if per_sample else gx * (g * c if c != 1.0 else g)
            return tf.reshape(gx, tf.shape(x))

        return value, grad

    return f(x)


def _overlap_per_sample(x, y, from_logits, a, b, t, e, s):
    return _overlap_closed_form(x, y, from_logits, a, b, t, e, s)


def _overlap_total(x, y, mean, from_logits, a, b, t, e, s):
    return _overlap_closed_form(x, y, from_logits, a, b, t, e, s, per_sample=False, mean=mean)


def _soft_dice_total(x, y, mean, *, smooth, from_logits):
    return _overlap_total(x, y, mean, from_logits, 1.0, 1.0, 2.0, 0.0, smooth)


@traced_when_eager
@with_total(_soft_dice_total)
def _soft_dice_per_sample(x, y, *, smooth, from_logits):
    return _overlap_per_sample(x, y, from_logits, 1.0, 1.0, 2.0, 0.0, smooth)


def soft_dice(y_true, y_pred, *, smooth=1.0, from_logits=True, sample_weight=None, reduction="mean",
              validate=True):
    r"""Soft Dice loss, one value per sample (sums over every non-batch axis).

    .. math::
        \ell_i = 1 - \frac{2\sum_j y_{ij} p_{ij} + s}{\sum_j y_{ij} + \sum_j p_{ij} + s}
               = \frac{FP_i + FN_i}{2\,TP_i + FP_i + FN_i + s},\quad p = \sigma(x)

    Stability: the right-hand form has no ``1 - ratio`` cancellation (near-perfect masks keep full
    precision) and ``1 - p`` is ``σ(-x)``. Empty masks: ``Σp / (Σp + s)`` for ``smooth > 0``; with
    ``smooth = 0`` and ``Σy = Σp = 0`` the loss is 1 with gradient 0 (the spec's convention). Same
    contract as the torch twin, with Keras' argument order.
    """
    return apply("soft_dice", _soft_dice_per_sample, y_true, y_pred, sample_weight,
                 {"smooth": smooth, "from_logits": from_logits}, reduction, validate)


def _soft_jaccard_total(x, y, mean, *, smooth, from_logits):
    return _overlap_total(x, y, mean, from_logits, 1.0, 1.0, 1.0, 0.0, smooth)


@traced_when_eager
@with_total(_soft_jaccard_total)
def _soft_jaccard_per_sample(x, y, *, smooth, from_logits):
    return _overlap_per_sample(x, y, from_logits, 1.0, 1.0, 1.0, 0.0, smooth)


def soft_jaccard(y_true, y_pred, *, smooth=1.0, from_logits=True, sample_weight=None, reduction="mean",
                 validate=True):
    r"""Soft Jaccard (IoU) loss, one value per sample.

    .. math::
        \ell_i = 1 - \frac{\sum_j y_{ij} p_{ij} + s}{\sum_j y_{ij} + \sum_j p_{ij} - \sum_j y_{ij} p_{ij} + s}
               = \frac{FP_i + FN_i}{TP_i + FP_i + FN_i + s}

    Stability: cancellation-free ratio form, ``1 - p = σ(-x)``; smoothing makes empty masks (the
    0/0 of an unsmoothed IoU) well defined; ``smooth = 0`` empty samples give loss 1, gradient 0.
    """
    return apply("soft_jaccard", _soft_jaccard_per_sample, y_true, y_pred, sample_weight,
                 {"smooth": smooth, "from_logits": from_logits}, reduction, validate)


def _tversky_total(x, y, mean, *, alpha, beta, smooth, from_logits):
    return _overlap_total(x, y, mean, from_logits, alpha, beta, 1.0, 0.0, smooth)


@traced_when_eager
@with_total(_tversky_total)
def _tversky_per_sample(x, y, *, alpha, beta, smooth, from_logits):
    return _overlap_per_sample(x, y, from_logits, alpha, beta, 1.0, 0.0, smooth)


def tversky(y_true, y_pred, *, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, sample_weight=None,
            reduction="mean", validate=True):
    r"""Tversky loss (Salehi et al. 2017), one value per sample: ``alpha`` weights false
    positives, ``beta`` false negatives (``keras.losses.Tversky`` does the opposite).

    .. math::
        \ell_i = 1 - \frac{TP_i + s}{TP_i + \alpha FP_i + \beta FN_i + s}
               = \frac{\alpha FP_i + \beta FN_i}{TP_i + \alpha FP_i + \beta FN_i + s}

    Stability: cancellation-free ratio form, ``1 - p = σ(-x)``. ``alpha = beta = 0.5`` with
    smoothing ``s`` equals :func:`soft_dice` with ``2 s``; ``alpha = beta = 1`` is :func:`soft_jaccard`.
    """
    return apply("tversky", _tversky_per_sample, y_true, y_pred, sample_weight,
                 {"alpha": alpha, "beta": beta, "smooth": smooth, "from_logits": from_logits},
                 reduction, validate)


def _soft_fbeta_total(x, y, mean, *, beta, epsilon, average, from_logits, sync):
    b2 = beta * beta  # only "samples" is reduced (macro/micro are batch statistics)
    return _overlap_total(x, y, mean, from_logits, 1.0, b2, 1.0 + b2, epsilon, 0.0)


@traced_when_eager
@with_total(_soft_fbeta_total)
def _soft_fbeta_per_sample(x, y, *, beta, epsilon, average, from_logits, sync, sample_weight=None):
    b2 = beta * beta
    if average == "samples":  # per-sample: no cross-replica statistic, ``sync`` has no effect
        return _overlap_per_sample(x, y, from_logits, 1.0, b2, 1.0 + b2, epsilon, 0.0)
    counts = _pooled_counts(x, y, from_logits, sample_weight, average == "macro")
    if sync:
        counts = sync_sum(counts)  # all-reduce TP, FP, FN over replicas before the ratio
    return tf.reduce_mean(_ratio(counts, 1.0, b2, 1.0 + b2, epsilon, 0.0))


def soft_fbeta(y_true, y_pred, *, beta=1.0, epsilon=1e-7, average="samples", from_logits=True, sync=False,
               sample_weight=None, reduction="mean", validate=True):
    r"""Soft F-beta loss on probability sums: per sample, or one batch statistic (macro/micro).

    .. math::
        \ell = 1 - \frac{(1+\beta^2) TP}{(1+\beta^2) TP + \beta^2 FN + FP + \epsilon}
             = \frac{\beta^2 FN + FP + \epsilon}{(1+\beta^2) TP + \beta^2 FN + FP + \epsilon}

    ``average="samples"``: TP, FP, FN of each sample over its non-batch axes (every reduction).
    ``"macro"``: per class (last axis) pooled over the batch and the other axes, the mean of the
    class losses; ``"micro"``: all pooled. macro/micro give one value per batch (reduction
    ``"mean"`` only); ``sample_weight`` multiplies each sample's contribution to TP, FP, FN, and
    ``sync=True`` sums them over ``tf.distribute`` replicas before the ratio.

    Stability: β² multiplies FN (recall), no clamp of F (it would zero gradients), ``ε`` only in
    the ratio, cancellation-free form, ``1 - p = σ(-x)``.
    """
    return apply("soft_fbeta", _soft_fbeta_per_sample, y_true, y_pred, sample_weight,
                 {"beta": beta, "epsilon": epsilon, "average": average, "from_logits": from_logits,
                  "sync": sync}, reduction, validate)
