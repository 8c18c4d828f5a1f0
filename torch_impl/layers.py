"""Layers (torch twins of :mod:`tf_impl.layers`): :class:`ThresholdActivation`."""
from __future__ import annotations

import torch
from torch import nn

from spec.regularizers import check_activation_threshold

from ._core import clip

__all__ = ["ThresholdActivation"]


class ThresholdActivation(nn.Module):
    r"""Clip activations to ``[0, threshold]`` (``threshold_activation_layer`` of the count-above-a-threshold problem, docs/problems.md).

    .. math:: f(x) = \min(\max(x, 0), t)

    The count-above-a-threshold problem applies a ReLU after the clip; on values in ``[0, t]`` it is the identity, so it is
    left out (its only trace would be a gradient of 0 instead of 1 at exactly ``x = 0``).

    Gradient convention (identical in :class:`tf_impl.layers.ThresholdActivation`): 1 on the
    closed interval ``[0, t]`` — inputs exactly at 0 or at ``t`` pass the gradient (the identity
    branch, as ``tf.clip_by_value`` does; written out with ``where``, since ``torch.clamp``'s gradient
    at a bound changed in torch 2.14) — and 0 outside. In float32 (and
    half precision) the bound ``t`` is rounded to the input's dtype.

    This caps magnitudes; it does not reduce how many activations exceed a threshold (the count-above-a-threshold problem's
    own caveat): for that, see :class:`torch_impl.CountPenalty` with ``temperature > 0``.

    Args:
        threshold: a finite float > 0 (``ValueError`` otherwise, same text as Keras).
    """

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = check_activation_threshold(threshold)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return clip(input, 0.0, self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold!r}"
