"""Regression losses, TensorFlow twins of :mod:`spec.regression`: ``mean_squared_error``,
``asymmetric_exponential``, ``mean_absolute_error``, ``huber``, ``log_cosh``, ``mean_absolute_percentage_error``,
``mean_squared_logarithmic_error``, ``poisson`` and ``cosine_similarity``. Argument order is Keras': ``(y_true, y_pred)``; targets are real.
"""
from __future__ import annotations

import math

import tensorflow as tf

from spec.api import elementwise_per_sample

from ._core import apply, mean_nonbatch, traced_when_eager, with_total
from ._fused import elementwise_closed_form

__all__ = ["mean_squared_error", "asymmetric_exponential", "mean_absolute_error", "huber", "log_cosh",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "poisson", "cosine_similarity"]


def _elementwise_total(elementwise: tf.Tensor, mean: bool) -> tf.Tensor:
    """``Σ_i ℓ_i`` (over N when ``mean``) of an elementwise loss whose per-sample value is the mean
    over the M non-batch elements (a static, non-empty shape: see ``LossCall``): the mean over
    every element, or the sum over M."""
    if mean:
        return tf.reduce_mean(elementwise)
    m = elementwise.shape.num_elements() // elementwise.shape[0]
    total = tf.reduce_sum(elementwise)
    return total / m if m != 1 else total


def _elementwise_loss(elementwise):
    """The per-sample form of an elementwise loss, with its reduced form (written once:
    :func:`spec.api.elementwise_per_sample`)."""
    return elementwise_per_sample(elementwise, mean_nonbatch=mean_nonbatch, elementwise_total=_elementwise_total)


_mean_squared_error_per_sample = _elementwise_loss(lambda x, y: tf.square(y - x))


def mean_squared_error(y_true, y_pred, *, sample_weight=None, reduction="mean", validate=True):
    r"""Mean squared error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j (y_{ij} - \hat y_{ij})^2

    Stability: plain squares. Same contract as the torch twin, with Keras' argument order; equal to
    ``keras.losses.MeanSquaredError()`` for ``reduction="mean"``.
    """
    return apply("mean_squared_error", _mean_squared_error_per_sample, y_true, y_pred, sample_weight, {},
                 reduction, validate)


# |expm1(ŷ - y)|: tf.abs backpropagates sign(0) = 0 at ŷ = y (the spec's subgradient)
_asymmetric_exponential_per_sample = _elementwise_loss(lambda x, y: tf.abs(tf.math.expm1(x - y)))


def asymmetric_exponential(y_true, y_pred, *, sample_weight=None, reduction="mean", validate=True):
    r"""Asymmetric exponential loss (the cost-sensitive problem, docs/problems.md): over-prediction costs ``e^{ŷ-y} - 1``,
    under-prediction at most 1.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \left|1 - e^{-(y_{ij} - \hat y_{ij})}\right|
               = \frac{1}{M}\sum_j \left|\mathrm{expm1}(\hat y_{ij} - y_{ij})\right|

    Stability: ``tf.math.expm1`` — no cancellation near ``y = ŷ`` and none of the cost-sensitive problem's
    ``exp(-log(exp(d)))`` intermediate overflow (NaN gradient for ``d > 88.7`` in float32).
    Gradient ``sign(ŷ - y) e^{ŷ - y} / M``, exactly 0 at ``y = ŷ``.
    """
    return apply("asymmetric_exponential", _asymmetric_exponential_per_sample, y_true, y_pred, sample_weight,
                 {}, reduction, validate)


# tf.abs backpropagates sign(0) = 0 at ŷ = y (the spec's subgradient)
_mean_absolute_error_per_sample = _elementwise_loss(lambda x, y: tf.abs(x - y))


def mean_absolute_error(y_true, y_pred, *, sample_weight=None, reduction="mean", validate=True):
    r"""Mean absolute error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \left|y_{ij} - \hat y_{ij}\right|

    Same contract as the torch twin, with Keras' argument order; equal to
    ``keras.losses.MeanAbsoluteError()`` for ``reduction="mean"``. Gradient ``sign(ŷ - y) / M``,
    exactly 0 at ``ŷ = y``.
    """
    return apply("mean_absolute_error", _mean_absolute_error_per_sample, y_true, y_pred, sample_weight, {},
                 reduction, validate)


def _huber_elementwise(x, y, *, delta):
    # |d| <= δ: d²/2 (keras.losses.Huber's branch at |d| = δ); beyond: δ (|d| - δ/2), no cancellation. An
    # unselected d² may overflow: tf.where sends it a zero cotangent and Square's gradient 2 d · 0 is 0
    d = x - y
    a = tf.abs(d)
    delta = tf.constant(delta, x.dtype)
    return tf.where(a <= delta, 0.5 * tf.square(d), delta * (a - 0.5 * delta))


_huber_per_sample = traced_when_eager(_elementwise_loss(_huber_elementwise))


def huber(y_true, y_pred, *, delta=1.0, sample_weight=None, reduction="mean", validate=True):
    r"""Huber loss, averaged over every non-batch axis of a sample (``d = ŷ - y``).

    .. math::
        \ell_i = \frac{1}{M}\sum_j h_\delta(\hat y_{ij} - y_{ij}),\quad
        h_\delta(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\
        \delta\left(|d| - \tfrac12\delta\right) & |d| > \delta \end{cases}

    Same contract as the torch twin, with Keras' argument order; equal to
    ``keras.losses.Huber(delta=delta)`` for ``reduction="mean"``. Gradient ``clip(ŷ - y, -δ, δ) / M``
    (continuous).
    """
    return apply("huber", _huber_per_sample, y_true, y_pred, sample_weight, {"delta": delta}, reduction, validate)


#: beyond |d| = 40 the loss is log cosh(40) + (|d| - 40) to every dtype's rounding (the torch twin's
#: ``_LOG_COSH_LINEAR_FROM``)
_LOG_COSH_LINEAR_FROM = 40.0


def _log_cosh_closed_form(x, y):
    """The torch twin's closed form: ``log1p(t² / (2 + 2t)) + (|d| - c)``, ``c = min(|d|, 40)``, ``t =
    expm1(c)``, and the gradient function ``tanh(d)`` (``d = x - y``)."""
    d = x - y
    a = tf.abs(d)
    c = tf.minimum(a, _LOG_COSH_LINEAR_FROM)
    t = tf.math.expm1(c)
    loss = tf.math.log1p(tf.square(t) / ((t + 1.0) * 2.0)) + (a - c)
    return loss, lambda: tf.tanh(d)


def _log_cosh_total(x, y, mean):
    return elementwise_closed_form(x, lambda x: _log_cosh_closed_form(x, y), False, mean)


@traced_when_eager
@with_total(_log_cosh_total)
def _log_cosh_per_sample(x, y):
    return elementwise_closed_form(x, lambda x: _log_cosh_closed_form(x, y), True)


def log_cosh(y_true, y_pred, *, sample_weight=None, reduction="mean", validate=True):
    r"""Log-cosh loss, averaged over every non-batch axis of a sample (``d = ŷ - y``).

    .. math::
        \ell_i = \frac{1}{M}\sum_j \log\cosh(\hat y_{ij} - y_{ij})

    Same contract as the torch twin, with Keras' argument order; equal to ``keras.losses.LogCosh()``
    for ``reduction="mean"`` but near ``d = 0``, where Keras' ``d + softplus(-2d) - log 2`` cancels to
    the rounding of ``log 2`` and ours keeps every digit of ``d²/2``. Gradient ``tanh(ŷ - y) / M``.
    """
    return apply("log_cosh", _log_cosh_per_sample, y_true, y_pred, sample_weight, {}, reduction, validate)


def _mape_elementwise(x, y, *, epsilon):
    # the torch twin's formula; tf.abs backpropagates sign(0) = 0 at x = y (the spec's subgradient)
    return tf.abs(x - y) / tf.maximum(tf.abs(y), tf.constant(epsilon, y.dtype)) * 100.0


_mean_absolute_percentage_error_per_sample = traced_when_eager(_elementwise_loss(_mape_elementwise))


def mean_absolute_percentage_error(y_true, y_pred, *, epsilon=1e-7, sample_weight=None, reduction="mean",
                                   validate=True):
    r"""Mean absolute percentage error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{100}{M}\sum_j \frac{\left|y_{ij} - \hat y_{ij}\right|}{\max(|y_{ij}|, \epsilon)}

    Same contract as the torch twin, with Keras' argument order; equal to
    ``keras.losses.MeanAbsolutePercentageError()`` for ``reduction="mean"`` (``epsilon=1e-7``). Gradient
    ``100 sign(ŷ - y) / (M max(|y|, ε))``, exactly 0 at ``ŷ = y``.
    """
    return apply("mean_absolute_percentage_error", _mean_absolute_percentage_error_per_sample, y_true, y_pred,
                 sample_weight, {"epsilon": epsilon}, reduction, validate)


def _log1p_distance(a, b):
    # the torch twin's form: |log1p(a) - log1p(b)| = log1p(|a - b| / (1 + min(a, b))), no cancellation
    return tf.math.log1p(tf.abs(a - b) / (tf.minimum(a, b) + 1.0))


def _msle_elementwise(x, y, *, epsilon):
    # never log(x + 1); tf.maximum(x, ε) sends the gradient to x at x = ε (the spec's subgradient); ε in the
    # compute dtype (Keras' is a float32 constant)
    eps = tf.constant(epsilon, x.dtype)
    return tf.square(_log1p_distance(tf.maximum(x, eps), tf.maximum(y, eps)))


_mean_squared_logarithmic_error_per_sample = traced_when_eager(_elementwise_loss(_msle_elementwise))


def mean_squared_logarithmic_error(y_true, y_pred, *, epsilon=1e-7, sample_weight=None, reduction="mean",
                                   validate=True):
    r"""Mean squared logarithmic error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \left(\log(1 + \max(\hat y_{ij}, \epsilon)) -
        \log(1 + \max(y_{ij}, \epsilon))\right)^2

    Same contract as the torch twin, with Keras' argument order; ``keras.losses.MeanSquaredLogarithmicError()``
    is ``epsilon=1e-7``, computed as ``log(x + 1)`` (ours: ``log1p``, every digit for small x). Gradient
    ``2 (log1p(ŷ) - log1p(max(y, ε))) / (M (1 + ŷ))`` for ``ŷ >= ε``, 0 below.
    """
    return apply("mean_squared_logarithmic_error", _mean_squared_logarithmic_error_per_sample, y_true, y_pred,
                 sample_weight, {"epsilon": epsilon}, reduction, validate)


_LOG_2PI = math.log(2.0 * math.pi)


def _poisson_elementwise(x, y, *, log_input, epsilon, full):
    # torch's kernel, term by term: exp(x) - y x or x - y log(x + ε); with full the Stirling term for y > 1,
    # whose logs see 1 elsewhere (no 0 · log 0); it does not depend on x
    if log_input:
        loss = tf.exp(x) - y * x
    else:
        loss = x - y * tf.math.log(x + tf.constant(epsilon, x.dtype))
    if not full:
        return loss
    big = y > 1.0
    safe = tf.where(big, y, tf.ones_like(y))
    return loss + tf.where(big, safe * tf.math.log(safe) - safe + 0.5 * (_LOG_2PI + tf.math.log(safe)),
                           tf.zeros_like(y))


_poisson_per_sample = _elementwise_loss(_poisson_elementwise)


def poisson(y_true, y_pred, *, log_input=True, epsilon=1e-7, full=False, sample_weight=None, reduction="mean",
            validate=True):
    r"""Poisson negative log-likelihood of counts, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \begin{cases} e^{x_{ij}} - y_{ij} x_{ij} & \text{log\_input} \\
        \hat y_{ij} - y_{ij} \log(\hat y_{ij} + \epsilon) & \text{otherwise} \end{cases}

    Same contract as the torch twin, with Keras' argument order; ``keras.losses.Poisson()`` is
    ``poisson(log_input=False)`` (``epsilon=1e-7``), ``torch.nn.PoissonNLLLoss()`` is the default
    ``log_input=True``. Gradient ``(e^x - y) / M`` or ``(1 - y / (ŷ + ε)) / M``.
    """
    return apply("poisson", _poisson_per_sample, y_true, y_pred, sample_weight,
                 {"log_input": log_input, "epsilon": epsilon, "full": full}, reduction, validate)


def _unit_vectors(a, axis, epsilon, scaled_norm=True):
    """``a / max(‖a‖, ε)`` along ``axis``, the torch twin's form: with ``scaled_norm`` each vector divided by its
    largest |element| (held constant: the unit vector does not depend on the scale; 1 for a zero vector) before
    the norm, so that no square overflows or underflows; without it (float64 holding float32 values, whose
    squares float64 keeps exactly in range) the vector itself. ``a / ε`` where ``‖a‖ < ε``; the unselected
    branch sees a sum of squares of 1."""
    scale = None
    if scaled_norm:
        scale = tf.reduce_max(tf.abs(tf.stop_gradient(a)), axis=axis, keepdims=True)
        scale = tf.where(scale > 0.0, scale, tf.ones_like(scale))
        scaled = a / scale
    else:
        scaled = a
    squares = tf.reduce_sum(tf.square(scaled), axis=axis, keepdims=True)
    eps = tf.constant(epsilon, a.dtype)
    norm = tf.sqrt(tf.stop_gradient(squares))
    above = (norm if scale is None else scale * norm) >= eps  # ‖a‖ >= ε: the normalizing branch (ties too)
    # a division by the correctly rounded sqrt, not tf.math.rsqrt: TensorFlow's float32 CPU rsqrt is a few
    # ulps off (rsqrt(1) != 1), so a vector parallel to its target got cos = 1 - 3e-7 and, divided by a small
    # norm, a gradient of 2.4e-4 where the true one is 0 (found by the property test)
    return tf.where(above, scaled / tf.sqrt(tf.where(above, squares, tf.ones_like(squares))), a / eps)


@traced_when_eager
def _cosine_per_sample(x, y, *, axis, epsilon):
    # -cos along axis, the mean over the other non-batch axes; float32 in float64, as the torch twin: near
    # parallel vectors the gradient m - (n·m) n is a difference of nearly equal unit vectors, which float32
    # leaves off by ~eps32 / ‖ŷ‖ (4.6% of the gradient of a vector of norm 1e-5: found by the property test)
    # (there, as in the torch twin's closed form, no scaling: float64 squares of float32 values stay in range)
    axis = axis % x.shape.rank
    dtype = x.dtype
    scaled_norm = dtype == tf.float64
    if not scaled_norm:
        x, y = tf.cast(x, tf.float64), tf.cast(y, tf.float64)
    cos = tf.reduce_sum(_unit_vectors(x, axis, epsilon, scaled_norm) * _unit_vectors(y, axis, epsilon, scaled_norm),
                        axis=axis)
    return tf.cast(mean_nonbatch(-cos), dtype)


def cosine_similarity(y_true, y_pred, *, axis=-1, epsilon=1e-7, sample_weight=None, reduction="mean",
                      validate=True):
    r"""Negative cosine similarity along ``axis``, averaged over the other non-batch axes of a sample.

    .. math::
        \ell_i = -\frac{1}{K}\sum_k \frac{\hat y_{ik} \cdot y_{ik}}{\max(\lVert \hat y_{ik}\rVert, \epsilon)\,
        \max(\lVert y_{ik}\rVert, \epsilon)}

    Same contract as the torch twin, with Keras' argument order; equal to ``keras.losses.CosineSimilarity(axis)``
    for ``reduction="mean"`` (``epsilon=1e-7``) but for float32 vectors of norm past 1.8e19, where Keras' Σ x²
    overflows and gives 0 (ours scales each vector by its largest |element| first).
    """
    return apply("cosine_similarity", _cosine_per_sample, y_true, y_pred, sample_weight,
                 {"axis": axis, "epsilon": epsilon}, reduction, validate)
