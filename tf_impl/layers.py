"""Registered, serializable Keras layers (TensorFlow twins of :mod:`torch_impl.layers`):
:class:`ThresholdActivation`."""
from __future__ import annotations

import keras
import tensorflow as tf

from spec.regularizers import check_activation_threshold

from .losses import PACKAGE

__all__ = ["ThresholdActivation"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class ThresholdActivation(keras.layers.Layer):
    r"""Clip activations to ``[0, threshold]`` (``threshold_activation_layer`` of the count-above-a-threshold problem, docs/problems.md, as a
    registered layer instead of a ``Lambda``, so models that use it save and load).

    .. math:: f(x) = \min(\max(x, 0), t)

    The count-above-a-threshold problem applies a ReLU after the clip; on values in ``[0, t]`` it is the identity, so it is
    left out (its only trace would be a gradient of 0 instead of 1 at exactly ``x = 0``).

    Gradient convention (identical in :class:`torch_impl.layers.ThresholdActivation`): 1 on the
    closed interval ``[0, t]`` — inputs exactly at 0 or at ``t`` pass the gradient (the identity
    branch, as ``tf.clip_by_value`` and ``torch.clamp`` both do) — and 0 outside. ``t`` is
    rounded to the layer's compute dtype.

    This caps magnitudes; it does not reduce how many activations exceed a threshold (the count-above-a-threshold problem's
    own caveat): for that, see :class:`tf_impl.CountPenalty` with ``temperature > 0``.

    Args:
        threshold: a finite float > 0 (``ValueError`` otherwise, same text as torch).
    """

    def __init__(self, threshold, **kwargs):
        super().__init__(**kwargs)
        self.threshold = check_activation_threshold(threshold)
        self.supports_masking = True

    def call(self, inputs):
        return tf.clip_by_value(inputs, tf.constant(0.0, inputs.dtype), tf.constant(self.threshold, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}
