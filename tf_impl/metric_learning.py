"""Metric-learning losses, TensorFlow twins of :mod:`spec.metric_learning`: ``circle``. Argument order
is Keras': ``(y_true, y_pred)``: integer labels ``(N,)`` and embeddings ``(N, D)``."""
from __future__ import annotations

import tensorflow as tf

from spec.metric_learning import NORM_EPS

from ._core import apply, traced_when_eager

__all__ = ["circle"]


def _floor_at_zero(x):
    """``max(x, 0)`` with the identity branch at 0 (the spec's subgradient; tf.maximum's too)."""
    return tf.where(x < 0.0, tf.zeros_like(x), x)


def _unit_rows(x):
    """``x / max(|x|, eps)`` per row (the torch twin's ``_unit_rows``)."""
    squared = tf.reduce_sum(x * x, axis=1, keepdims=True)
    above = squared > NORM_EPS * NORM_EPS
    norm = tf.sqrt(tf.where(above, squared, tf.ones_like(squared)))
    return tf.where(above, x / norm, x / NORM_EPS)


def _masked_logsumexp(z, mask):
    """Row-wise ``log Σ_{mask} e^z`` and whether the row has any entry (the torch twin's)."""
    minus_inf = tf.fill(tf.shape(z), tf.constant(float("-inf"), z.dtype))
    top = tf.stop_gradient(tf.reduce_max(tf.where(mask, z, minus_inf), axis=1))
    top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))
    e = tf.exp(tf.where(mask, z - top[:, None], minus_inf))
    total = tf.reduce_sum(e, axis=1)
    has = tf.reduce_any(mask, axis=1)
    return tf.math.log(tf.where(has, total, tf.ones_like(total))) + top, has


@traced_when_eager
def _circle_per_sample(x, y, *, gamma, margin, remove_diagonal, normalize):
    u = _unit_rows(x) if normalize else x
    distance = _floor_at_zero(1.0 - tf.matmul(u, u, transpose_b=True))
    same = tf.equal(y[:, None], y[None, :])
    positive = tf.logical_and(same, tf.logical_not(tf.eye(tf.shape(y)[0], dtype=tf.bool))) if remove_diagonal \
        else same
    z_pos = gamma * _floor_at_zero(margin + distance) * (distance - margin)
    # γ (c² - m²) where c + m >= 0, c = 1 - d: its derivative 2γc is exactly 0 at c = 0 (see the torch twin)
    closeness = 1.0 - distance
    z_neg = tf.where(closeness + margin >= 0.0, gamma * (closeness * closeness - margin * margin),
                     tf.zeros_like(closeness))
    lse_pos, has_pos = _masked_logsumexp(z_pos, positive)
    lse_neg, has_neg = _masked_logsumexp(z_neg, tf.logical_not(same))
    has = tf.logical_and(has_pos, has_neg)
    a = tf.where(has, lse_pos + lse_neg, tf.zeros_like(lse_pos))
    return tf.where(has, tf.math.softplus(a), tf.zeros_like(a))


def circle(y_true, y_pred, *, gamma=80.0, margin=0.4, remove_diagonal=True, normalize=True, sample_weight=None,
           reduction="mean", validate=True):
    r"""Circle loss of each sample against the other samples of the batch (see the torch twin).

    Same contract as the torch twin, with Keras' argument order. With ``normalize=False`` and unit-norm
    embeddings, equal to ``keras.losses.Circle(gamma, margin, remove_diagonal)`` with
    ``reduction="sum"`` or ``"none"``; Keras' mean divides by the samples with loss > 0, ours by N.
    """
    params = {"gamma": gamma, "margin": margin, "remove_diagonal": remove_diagonal, "normalize": normalize}
    return apply("circle", _circle_per_sample, y_true, y_pred, sample_weight, params, reduction, validate)
