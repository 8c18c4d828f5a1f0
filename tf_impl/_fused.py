"""Closed-form gradients (``tf.custom_gradient``): the fast path of the losses whose gradient has a
cheap closed form, the TensorFlow side of :mod:`torch_impl._fused`. An elementwise closed form
``value_and_grad(x) -> (ℓ, grad_fn)`` gives the loss and a function evaluating ``d(Σ ℓ)/dx`` only
when a gradient is asked; :func:`elementwise_closed_form` returns the per-sample loss (mean over
the non-batch axes) or the reduced ``c · Σ ℓ`` with that gradient."""
from __future__ import annotations

import tensorflow as tf

from ._core import mean_nonbatch

__all__ = ["elementwise_closed_form", "elementwise_cotangent", "total_scale"]


def elementwise_cotangent(g, like):
    """The per-sample cotangent ``g`` (N,) spread over ``like``'s elements: ``g_i / M``."""
    rank = like.shape.rank
    if rank == 1:
        return g
    m = tf.cast(tf.reduce_prod(tf.shape(like)[1:]), like.dtype)
    return tf.reshape(g / m, tf.concat([tf.shape(g), tf.ones([rank - 1], tf.int32)], 0))


def total_scale(x, mean: bool) -> float:
    """``c`` of the reduced elementwise loss ``c · Σ ℓ``: ``1/(N M)`` ("mean") or ``1/M`` ("sum"), M
    elements per sample (a static, non-empty shape: see ``LossCall``)."""
    size = x.shape.num_elements()
    return 1.0 / size if mean else float(x.shape[0]) / size


def elementwise_closed_form(x, value_and_grad, per_sample: bool, mean: bool = True):
    """``tf.custom_gradient`` over x of an elementwise closed form ``value_and_grad(x) -> (ℓ,
    grad_fn)`` (``grad_fn()``: d(Σ ℓ)/dx, evaluated only when a gradient is asked): the
    per-sample loss (mean over the non-batch axes) with the per-sample cotangent spread over the
    elements, or (``per_sample=False``) the reduced ``c · Σ ℓ`` with a scalar cotangent."""

    @tf.custom_gradient
    def f(x):
        loss, grad_fn = value_and_grad(x)
        if per_sample:
            return mean_nonbatch(loss), lambda g: elementwise_cotangent(g, x) * grad_fn()
        c = total_scale(x, mean)
        # the mean over every element (c = 1 / size) in one op; else the sum scaled
        total = tf.reduce_mean(loss) if mean else tf.reduce_sum(loss) * c
        return total, lambda g: (g * c) * grad_fn()

    return f(x)
