"""The TensorFlow half of the call contract: validation adapter, dtype rules, reduction.

Every functional loss goes through :func:`apply`: validate (shapes always, at trace time under
``tf.function``; data values eagerly when ``validate``) → cast to the compute dtype → per-sample
loss → ``sample_weight`` and ``reduction``.

dtype rule (same as the torch side): float64 predictions are computed and returned in float64;
every other dtype (float32, bfloat16, float16, ints) in float32, so mixed-precision policies
compute the loss in float32. Keras' default cast of losses to ``floatx`` is not applied.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

import spec as _spec
from spec.validation import check_inputs
from spec.validation import split_params as _split_params


_EPS = {tf.bfloat16: 2.0 ** -7, tf.float16: 2.0 ** -10, tf.float32: 2.0 ** -23, tf.float64: 2.0 ** -52}


class TFOps:
    """The :class:`spec.validation.ArrayOps` adapter for TensorFlow tensors."""

    def shape(self, x):
        return tuple(None if d is None else int(d) for d in x.shape)

    def can_read_values(self):
        return tf.executing_eagerly()

    def has_nonfinite(self, x):
        return not bool(tf.reduce_all(tf.math.is_finite(x))) if x.dtype.is_floating else False

    def min_max(self, x):
        lo, hi = tf.stack([tf.reduce_min(x), tf.reduce_max(x)]).numpy()  # one host sync
        return float(lo), float(hi)

    def nonfinite_min_max(self, x):
        """NaN/inf test and the extremes from one stacked min/max reduction and one host sync
        (NaN propagates through TF's min/max, ±inf shows in the extremes); eager only, as every
        data check. ``None`` extremes for integer or empty tensors."""
        if not x.dtype.is_floating or x.shape.num_elements() == 0:
            return False, None, None
        lo, hi = self.min_max(x)
        return not (math.isfinite(lo) and math.isfinite(hi)), lo, hi

    def row_sum_range(self, x):
        s = tf.reduce_sum(tf.cast(x, tf.float64 if x.dtype == tf.float64 else tf.float32), axis=-1)
        lo, hi = tf.stack([tf.reduce_min(s), tf.reduce_max(s)]).numpy()  # one host sync
        return float(lo), float(hi)

    def eps(self, x):
        return _EPS.get(x.dtype.base_dtype, 0.0)

    def all_integral(self, x):
        if not x.dtype.is_floating:
            return True
        return bool(tf.reduce_all(tf.equal(x, tf.round(x))))


OPS = TFOps()


def compute_dtype(x: tf.Tensor) -> tf.DType:
    return tf.float64 if x.dtype == tf.float64 else tf.float32


def as_tensor(x) -> tf.Tensor:
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return tf.convert_to_tensor(x)
    return tf.convert_to_tensor(np.asarray(x))


def split_params(params: Mapping[str, Any]) -> tuple[dict, dict]:
    """Validate the plain view of tensor/variable params, compute with them (gradients flow).
    In graph mode their values are unknown: placeholders of the right shape are validated."""
    def to_numpy(v):
        if tf.executing_eagerly():
            return v.numpy()
        return 1.0 if v.shape.rank == 0 else np.ones(v.shape, np.float64)

    return _split_params(params, lambda v: isinstance(v, (tf.Tensor, tf.Variable)), to_numpy)


def params_as_tensors(params: Mapping[str, Any], dtype: tf.DType) -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = tf.constant(value, dtype=dtype)
        elif isinstance(value, (tf.Tensor, tf.Variable)):
            value = tf.cast(value, dtype)
        out[key] = value
    return out


def reduce(per_sample: tf.Tensor, sample_weight: tf.Tensor | None, reduction: str) -> tf.Tensor:
    if sample_weight is not None:
        per_sample = per_sample * tf.cast(sample_weight, per_sample.dtype)
    if reduction == "none":
        return per_sample
    total = tf.reduce_sum(per_sample)
    if reduction == "sum":
        return total
    return total / tf.cast(tf.shape(per_sample)[0], per_sample.dtype)


def mean_nonbatch(elementwise: tf.Tensor) -> tf.Tensor:
    """Per-sample mean over every non-batch axis (a 1-D input is one element per sample)."""
    rank = elementwise.shape.rank
    return elementwise if rank == 1 else tf.reduce_mean(elementwise, axis=list(range(1, rank)))


def apply(name: str, per_sample: Callable, y_true, y_pred, sample_weight, params: Mapping[str, Any],
          reduction: str, validate: bool, *, checked: bool = False) -> tf.Tensor:
    """Run one loss call under the contract. ``checked``: params/reduction already validated."""
    entry = _spec.get(name)
    y_pred = as_tensor(y_pred)
    y_true = None if y_true is None else as_tensor(y_true)
    sample_weight = None if sample_weight is None else as_tensor(sample_weight)
    plain, tensors = split_params(params)
    if not checked:
        plain, reduction, validate = entry.validate_config(dict(plain, reduction=reduction, validate=validate))
    check_inputs(entry, plain, y_pred, y_true, sample_weight, OPS, validate)
    dtype = compute_dtype(y_pred)
    x = tf.cast(y_pred, dtype)
    # class-index targets (entries with a target_shape rule) stay integers; every other target,
    # integer one-hot labels included, joins the compute dtype
    keep = entry.target_shape is not None and y_true is not None and y_true.dtype.is_integer
    y = None if y_true is None else (y_true if keep else tf.cast(y_true, dtype))
    kwargs = params_as_tensors({**plain, **tensors}, dtype)
    if entry.is_batch_statistic(plain):
        w = None if sample_weight is None else tf.cast(sample_weight, dtype)
        return per_sample(x, y, sample_weight=w, **kwargs)
    return reduce(per_sample(x, y, **kwargs), sample_weight, reduction)
