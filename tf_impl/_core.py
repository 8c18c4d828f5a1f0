"""The TensorFlow half of the call contract: validation adapter, dtype rules, reduction.

Every call goes through a :class:`LossCall` (the configuration, checked once: at construction for
the Keras losses and regularizers, once per configuration for the functional forms through
:func:`apply`): shapes (always, at trace time under ``tf.function``) → data values eagerly when
``validate`` (eager CPU tensors read through NumPy) → cast to the compute dtype → the loss →
``sample_weight`` and ``reduction`` (the loss's reduced form for "mean"/"sum" without weights,
:func:`with_total`).

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
from spec.validation import CallPlans, CheckedCall
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

    def nonfinite_min_max_many(self, arrays):
        """:meth:`nonfinite_min_max` of every array of a call (integer arrays' extremes too). Eager
        tensors on the CPU are read through NumPy (``min``/``max`` propagate NaN; no TF op, each
        of which costs more in eager dispatch than the reduction itself); others by the stacked
        TF reduction of :meth:`min_max`."""
        out = []
        for x in arrays:
            dtype = x.dtype
            if not (dtype.is_floating or dtype.is_integer) or x.shape.num_elements() == 0:
                out.append((False, None, None))
                continue
            if "CPU" in x.device:
                a = x.numpy()
                if a.dtype.kind not in "fiu":  # bfloat16 (ml_dtypes)
                    a = a.astype(np.float32)
                lo, hi = float(a.min()), float(a.max())
            else:
                lo, hi = self.min_max(x)
            out.append((dtype.is_floating and not (math.isfinite(lo) and math.isfinite(hi)), lo, hi))
        return out

    def reads_are_free(self, x):
        """An eager CPU tensor's values are read through NumPy, waiting for no device."""
        return "CPU" in x.device

    def all_within(self, checks):
        """Every value of every tensor within its bounds (``lo <= v <= hi``; NaN never is): the
        extremes of :meth:`nonfinite_min_max_many`, NumPy for eager CPU tensors."""
        arrays = [x for x, _ in checks]
        for (_, (lo, hi)), (_, vmin, vmax) in zip(checks, self.nonfinite_min_max_many(arrays)):
            if vmin is not None and not (vmin >= lo and vmax <= hi):
                return False
        return True

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

    def min_max_excluding(self, x, value):
        rest = tf.boolean_mask(x, tf.not_equal(x, tf.cast(value, x.dtype)))
        return self.min_max(rest) if rest.shape.num_elements() else None


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


def with_total(total: Callable) -> Callable:
    """Give a per-sample function ``per_sample(x, y, **params) -> (N,)`` its reduced form
    ``total(x, y, mean, **params)``: ``Σ_i ℓ_i / N`` when ``mean``, else ``Σ_i ℓ_i``, a scalar,
    which :class:`LossCall` uses without sample weights for a non-empty input of static shape
    (the torch twin's :func:`torch_impl._core.with_total`)."""

    def attach(per_sample: Callable) -> Callable:
        per_sample.total = total
        return per_sample

    return attach


def traced_when_eager(per_sample: Callable) -> Callable:
    """Run an eager call of a per-sample loss of many small ops as one traced graph: the loss, its
    reduction and (under a ``GradientTape``) their gradient each become one function call instead
    of one eager op each (a soft Dice's 20 ops: 2.5 ms eagerly on one CPU thread, 0.9 ms traced).
    Traces are shared by every loss object of the entry, one per dtype, ranks, parameter set and
    reduction (``reduce_retracing``: shapes generalized after the second); inside a graph
    (``tf.function``, ``model.fit``, XLA) the ops are inlined as before. The values are the graph's
    (the parity tests run both)."""

    def reduced(x, y, sample_weight, reduction, kwargs):
        return reduce(per_sample(x, y, **kwargs), sample_weight, reduction)

    graphs: dict = {}  # one tf.function per rank of each input: generalized shapes keep their rank

    def eager_graph(x, y, sample_weight, reduction, kwargs):
        key = (x.shape.rank, None if y is None else y.shape.rank, sample_weight is None)
        graph = graphs.get(key)
        if graph is None:
            graph = graphs[key] = tf.function(reduced, reduce_retracing=True, autograph=False)
        return graph(x, y, sample_weight, reduction, kwargs)

    per_sample.eager_graph = eager_graph
    return per_sample


def _as_tensor(x):
    return x if isinstance(x, tf.Tensor) else as_tensor(x)


class LossCall(CheckedCall):
    """One loss configuration (entry, validated params, reduction, validate), worked out once (the
    torch twin's :class:`torch_impl._core.LossCall`): a call checks shapes (always; at trace time
    under ``tf.function``), data values (``validate``, eager), casts to the compute dtype and
    computes, through the loss's reduced form (:func:`with_total`) for "mean"/"sum" without
    sample weights. Array parameters become constants once per dtype (eagerly)."""

    __slots__ = ("_constants", "_eager_graph")

    def __init__(self, entry, per_sample: Callable, params: Mapping[str, Any], reduction: str, validate: bool):
        super().__init__(entry, per_sample, params, reduction, validate)
        self._constants: dict = {}
        # a per-sample loss marked by traced_when_eager (a batch statistic keeps its own path)
        self._eager_graph = None if self.batch_statistic else getattr(per_sample, "eager_graph", None)

    def kwargs(self, dtype: tf.DType, tensors: Mapping[str, Any] | None = None) -> dict:
        if not self.vectors and not tensors:
            return self.scalars
        out = dict(self.scalars)
        eager = tf.executing_eagerly()
        for key, value in self.vectors.items():
            const = self._constants.get((key, dtype)) if eager else None
            if const is None:
                const = tf.constant(value, dtype=dtype)
                if eager:  # a graph's constant belongs to that graph: cached only eagerly
                    self._constants[(key, dtype)] = const
            out[key] = const
        for key, value in (tensors or {}).items():
            out[key] = tf.cast(value, dtype)
        return out

    def __call__(self, y_true, y_pred, sample_weight, tensors=None) -> tf.Tensor:
        y_pred = _as_tensor(y_pred)
        y_true = None if y_true is None else _as_tensor(y_true)
        sample_weight = None if sample_weight is None else _as_tensor(sample_weight)
        self.check(y_pred, y_true, sample_weight, OPS, self.validate)
        dtype = tf.float64 if y_pred.dtype == tf.float64 else tf.float32
        x = y_pred if y_pred.dtype == dtype else tf.cast(y_pred, dtype)
        y = y_true
        if y_true is not None and y_true.dtype != dtype and not (self.class_targets and y_true.dtype.is_integer):
            y = tf.cast(y_true, dtype)
        kwargs = self.scalars if tensors is None and not self.vectors else self.kwargs(dtype, tensors)
        graph = self._eager_graph
        if graph is not None and tf.executing_eagerly():  # one traced call: per-sample loss and reduction
            return graph(x, y, sample_weight, self.reduction, kwargs)
        return self.finish(x, y, sample_weight, kwargs)

    # the tensor ops of :meth:`spec.validation.CheckedCall.finish`; the reduced form needs a
    # static, non-empty shape (``num_elements`` is None for an unknown one)
    reduce = staticmethod(reduce)
    num_elements = staticmethod(lambda x: x.shape.num_elements())
    cast = staticmethod(tf.cast)


#: the checked configuration of each functional call's plain parameters (checked once)
_PLANS = CallPlans(LossCall, tensor_types=(tf.Tensor, tf.Variable), split=split_params)

#: ``apply(name, per_sample, y_true, y_pred, sample_weight, params, reduction, validate)``: one
#: functional call under the contract (:meth:`spec.validation.CallPlans.apply`); parameters given
#: as tensors or variables are checked through their values on every call (placeholders of their
#: shape in graph mode)
apply = _PLANS.apply
