"""Binary / multilabel classification losses, TensorFlow twins of :mod:`spec.classification`.

Argument order is Keras': ``(y_true, y_pred)``, truth first.
"""
from __future__ import annotations

import tensorflow as tf

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, mean_nonbatch


def _log_probs(x: tf.Tensor, from_logits: bool):
    """``(log p, log(1 - p))``: log-sigmoids for logits, the spec's clamp for probabilities."""
    if from_logits:
        return tf.math.log_sigmoid(x), tf.math.log_sigmoid(-x)
    p_min = tf.constant(P_MIN, x.dtype)
    # log(1 - p) as log1p(-p) (1 - p rounds tiny p away), the same clamp where 1 - p < P_MIN; the
    # masked branch sees p = 0, so its gradient is 0 there, never inf · 0
    keep = (1.0 - x) >= p_min
    log_1mp = tf.where(keep, tf.math.log1p(-tf.where(keep, x, tf.zeros_like(x))), tf.constant(LOG_P_MIN, x.dtype))
    return tf.math.log(tf.maximum(x, p_min)), log_1mp


def logaddexp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``log(e^a + e^b)`` with the gradient ``softmax(a, b)`` everywhere, ties included.

    The shift ``hi = max(a, b)`` is a constant for autodiff (``stop_gradient``): the form
    ``max + log1p(exp(-|a-b|))`` would send the whole gradient to one side at ``a == b``.
    ``-inf`` on one side is exact (that side gets gradient 0).
    """
    hi = tf.stop_gradient(tf.maximum(a, b))
    return hi + tf.math.log(tf.exp(a - hi) + tf.exp(b - hi))


def _weighted_bce_per_sample(x, y, *, pos_weight, from_logits):
    log_p, log_1mp = _log_probs(x, from_logits)
    return mean_nonbatch(-(pos_weight * y * log_p + (1.0 - y) * log_1mp))


def weighted_bce(y_true, y_pred, *, pos_weight=1.0, from_logits=True, sample_weight=None,
                 reduction="mean", validate=True):
    r"""Binary cross-entropy with a weight on the positive term.

    .. math::
        \ell_i = -\frac{1}{M}\sum_j \left[w_j\, y_{ij} \log\sigma(x_{ij})
                 + (1-y_{ij})\log(1-\sigma(x_{ij}))\right]

    Stability: ``tf.math.log_sigmoid`` (softplus form), never ``log(sigmoid(x))``; probabilities
    (``from_logits=False``) use ``log(max(q, 2**-126))``. Same contract as the torch twin, with
    Keras' argument order.
    """
    return apply("weighted_bce", _weighted_bce_per_sample, y_true, y_pred, sample_weight,
                 {"pos_weight": pos_weight, "from_logits": from_logits}, reduction, validate)


def _binary_focal_per_sample(x, y, *, gamma, alpha, from_logits):
    log_p, log_1mp = _log_probs(x, from_logits)
    # (1-p_t)**gamma as exp(gamma log(1-p_t)): finite gradients for every gamma >= 0
    log_m = logaddexp(tf.math.log(y) + log_1mp, tf.math.log1p(-y) + log_p)
    bce = -(y * log_p + (1.0 - y) * log_1mp)
    loss = tf.exp(gamma * log_m) * bce
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return mean_nonbatch(loss)


def binary_focal(y_true, y_pred, *, gamma=2.0, alpha=None, from_logits=True, sample_weight=None,
                 reduction="mean", validate=True):
    r"""Focal loss (Lin et al. 2017), torchvision semantics for ``alpha`` and soft targets.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \alpha_t (1-p_t)^\gamma\, \mathrm{BCE}(x_{ij}, y_{ij})

    Stability: ``(1-p_t)^γ`` is ``exp(γ log(1-p_t))`` with ``log(1-p_t)`` a log-sum-exp of
    log-sigmoids: finite gradients at saturated logits for every ``gamma >= 0``, where
    ``keras.losses.BinaryFocalCrossentropy`` returns NaN for ``0 < gamma < 1``.
    """
    return apply("binary_focal", _binary_focal_per_sample, y_true, y_pred, sample_weight,
                 {"gamma": gamma, "alpha": alpha, "from_logits": from_logits}, reduction, validate)
