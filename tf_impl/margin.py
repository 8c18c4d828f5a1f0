"""Margin (hinge) losses, TensorFlow twins of :mod:`spec.margin`: ``hinge``, ``squared_hinge`` and
``categorical_hinge``. Argument order is Keras': ``(y_true, y_pred)``, truth first.

Labels of ``hinge`` / ``squared_hinge``: -1/1 or 0/1 (0 means -1), converted element by element
(``keras.losses.Hinge`` converts by batch: see the spec entry's peer notes).
``categorical_hinge``: classes on the LAST axis, one-hot targets of the same shape.
"""
from __future__ import annotations

import tensorflow as tf

from ._core import apply, mean_nonbatch, traced_when_eager
from .regression import _elementwise_loss

__all__ = ["hinge", "squared_hinge", "categorical_hinge"]


def _signs(y: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """t = 1 where y > 0, -1 elsewhere (0 and -1), in ``like``'s dtype (one comparison, one select)."""
    return tf.where(y > 0, tf.constant(1.0, like.dtype), tf.constant(-1.0, like.dtype))


def _margin_gap(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``max(0, 1 - t ŷ)``: tf.maximum sends a tie to its first argument (active at the kink, as
    keras.losses.Hinge)."""
    return tf.maximum(1.0 - _signs(y, x) * x, 0.0)


_hinge_per_sample = traced_when_eager(_elementwise_loss(_margin_gap))


def hinge(y_true, y_pred, *, sample_weight=None, reduction="mean", validate=True):
    """Equal to ``keras.losses.Hinge()`` for ``reduction="mean"`` (labels converted element by element)."""
    return apply("hinge", _hinge_per_sample, y_true, y_pred, sample_weight, {}, reduction, validate)


_squared_hinge_per_sample = traced_when_eager(_elementwise_loss(lambda x, y: tf.square(_margin_gap(x, y))))


def squared_hinge(y_true, y_pred, *, sample_weight=None, reduction="mean", validate=True):
    """Equal to ``keras.losses.SquaredHinge()`` for ``reduction="mean"`` (labels converted element by element)."""
    return apply("squared_hinge", _squared_hinge_per_sample, y_true, y_pred, sample_weight, {}, reduction, validate)


@traced_when_eager
def _categorical_hinge_per_sample(x, y, *, zero_competitor):
    pos = tf.reduce_sum(y * x, axis=-1)
    if zero_competitor:  # keras.losses.CategoricalHinge: the true class's (1 - 1) ŷ = 0 competes
        competitors = (1.0 - y) * x
    else:
        competitors = tf.where(y > 0, tf.constant(float("-inf"), x.dtype), x)
    # tf.reduce_max splits the gradient equally among tied maxima (torch.amax does too)
    neg = tf.reduce_max(competitors, axis=-1)
    return mean_nonbatch(tf.maximum(neg - pos + 1.0, 0.0))


def categorical_hinge(y_true, y_pred, *, zero_competitor=False, sample_weight=None, reduction="mean",
                      validate=True):
    """Classes on the LAST axis, one-hot targets; ``zero_competitor=True`` equals
    ``keras.losses.CategoricalHinge()`` for ``reduction="mean"``."""
    return apply("categorical_hinge", _categorical_hinge_per_sample, y_true, y_pred, sample_weight,
                 {"zero_competitor": zero_competitor}, reduction, validate)
