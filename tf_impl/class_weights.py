"""Class-weight utilities on TensorFlow tensors, twins of :mod:`spec.class_weights`.

Both functions read the labels' values, so they run eagerly (data preparation, before ``fit``):
the checks and error texts are the spec's, the counting uses TensorFlow ops.

>>> import numpy as np
>>> y = np.array([0, 0, 0, 1])
>>> w = balanced_class_weights(y)
>>> class_weight = dict(enumerate(w.numpy().tolist()))  # model.fit(..., class_weight=class_weight)
"""
from __future__ import annotations

import tensorflow as tf

from spec import class_weights as _cw

from ._core import as_tensor


class _TFLabelOps:
    def shape(self, x):
        return tuple(int(d) for d in x.shape)

    def is_floating(self, x):
        return x.dtype.is_floating

    def has_nonfinite(self, x):
        return not bool(tf.reduce_all(tf.math.is_finite(x)))

    def all_integral(self, x):
        return bool(tf.reduce_all(tf.equal(x, tf.round(x))))

    def all_binary(self, x):
        return bool(tf.reduce_all(tf.logical_or(tf.equal(x, 0), tf.equal(x, 1))))

    def min_max(self, x):
        return float(tf.reduce_min(x)), float(tf.reduce_max(x))


_OPS = _TFLabelOps()


def _labels(x) -> tf.Tensor:
    x = as_tensor(x)
    return tf.cast(x, tf.int32) if x.dtype == tf.bool else x


def _result_dtype(labels: tf.Tensor, dtype) -> tf.DType:
    if dtype is not None:
        return tf.as_dtype(dtype)
    return tf.float64 if labels.dtype == tf.float64 else tf.float32


def balanced_class_weights(labels, num_classes=None, *, dtype=None) -> tf.Tensor:
    r"""scikit-learn's ``"balanced"`` class weights of integer class labels.

    .. math::
        w_k = \frac{N}{K\, n_k},\qquad n_k = \#\{i : y_i = k\},\ k = 0, \dots, K-1

    Args:
        labels: class indices, shape ``(N,)`` or ``(N, 1)`` (ints, bools or integral floats).
        num_classes: ``K``; default ``max(labels) + 1``.
        dtype: result dtype (a ``tf.DType`` or its name); default float64 for float64 labels, else float32.

    Returns:
        ``(K,)`` tensor; ``tf.gather(weights, labels)`` is a ``sample_weight`` and
        ``dict(enumerate(weights.numpy().tolist()))`` a Keras ``class_weight``.

    Raises:
        ValueError: a class of ``range(K)`` is absent (its weight would be infinite; the message
            names the classes), or labels are not class indices (the spec's messages).
    """
    labels = _labels(labels)
    k = _cw.check_class_labels(labels, num_classes, _OPS)
    flat = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    counts = tf.math.bincount(flat, minlength=k, maxlength=k, dtype=tf.int64)
    _cw.check_counts(counts.numpy())
    n = tf.cast(tf.size(flat), tf.float64)
    weights = n / (k * tf.cast(counts, tf.float64))
    return tf.cast(weights, _result_dtype(labels, dtype))


def pos_weight_from_labels(y, *, dtype=None) -> tf.Tensor:
    r"""``pos_weight`` for :func:`~tf_impl.classification.weighted_bce`: negatives / positives
    per column (last axis) of a 0/1 label array.

    .. math::
        w_c = \frac{\sum_i (1 - y_{ic})}{\sum_i y_{ic}}

    Counts are taken over every axis but the last, in float64 (exact up to 2**53 labels).

    Args:
        y: 0/1 labels, shape ``(N, ..., C)``; a 1-D ``(N,)`` array is one binary output.
        dtype: result dtype (a ``tf.DType`` or its name); default float64 for float64 labels, else float32.

    Returns:
        ``(C,)`` tensor (0-d for 1-D ``y``), usable as ``get_loss("weighted_bce", pos_weight=...)``.

    Raises:
        ValueError: a column has no positive or no negative label (named in the message), or the
            labels are not 0/1.
    """
    y = _labels(y)
    _cw.check_binary_labels(y, _OPS)
    total = _cw.binary_rows(tuple(int(d) for d in y.shape))
    positives = tf.reduce_sum(tf.reshape(tf.cast(y, tf.float64), [total, -1]), axis=0)
    _cw.check_positive_counts(positives.numpy(), total)
    ratio = tf.cast((total - positives) / positives, _result_dtype(y, dtype))
    return ratio[0] if y.shape.rank == 1 else ratio


__all__ = ["balanced_class_weights", "pos_weight_from_labels"]
