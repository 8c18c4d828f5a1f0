"""Divergences, TensorFlow twins of :mod:`spec.divergence`: ``kl_divergence``. Argument order is Keras':
``(y_true, y_pred)``, truth first; the distribution on the LAST axis.
"""
from __future__ import annotations

import tensorflow as tf

from spec.numerics import P_MIN

from ._core import apply, mean_nonbatch, traced_when_eager

__all__ = ["kl_divergence"]


def _kl_elementwise(x, y, *, log_prediction, log_target, epsilon):
    if epsilon > 0.0:  # keras.losses.KLDivergence's clip of both distributions to [ε, 1], then p log(p/q)
        p = tf.clip_by_value(tf.exp(y) if log_target else y, epsilon, 1.0)
        q = tf.clip_by_value(tf.exp(x) if log_prediction else x, epsilon, 1.0)
        return p * tf.math.log(p / q)
    if log_prediction:  # the torch twin's F.kl_div: xlogy(p, p) - p log q, or exp(log p) (log p - log q)
        return tf.exp(y) * (y - x) if log_target else tf.math.xlogy(y, y) - y * x
    q = tf.maximum(x, tf.constant(P_MIN, x.dtype))  # log(max(q, 2**-126)); tf.maximum's tie: identity branch
    if log_target:
        return tf.exp(y) * (y - tf.math.log(q))
    # y log(y / q) with 0 log 0 = 0: the log's argument is 1 where y = 0 (no inf, no NaN gradient)
    return y * tf.math.log(tf.where(y > 0, y, tf.ones_like(y)) / q)


@traced_when_eager
def _kl_divergence_per_sample(x, y, *, log_prediction, log_target, epsilon, class_reduction):
    elementwise = _kl_elementwise(x, y, log_prediction=log_prediction, log_target=log_target, epsilon=epsilon)
    rows = tf.reduce_sum(elementwise, axis=-1) if class_reduction == "sum" else tf.reduce_mean(elementwise, axis=-1)
    return mean_nonbatch(rows)


def kl_divergence(y_true, y_pred, *, log_prediction=False, log_target=False, epsilon=0.0, class_reduction="sum",
                  sample_weight=None, reduction="mean", validate=True):
    """``keras.losses.KLDivergence()`` is this loss with ``epsilon=1e-7`` (``reduction="mean"``); the default
    is the true divergence (0 log 0 = 0, no clip of the target)."""
    return apply("kl_divergence", _kl_divergence_per_sample, y_true, y_pred, sample_weight,
                 {"log_prediction": log_prediction, "log_target": log_target, "epsilon": epsilon,
                  "class_reduction": class_reduction}, reduction, validate)
