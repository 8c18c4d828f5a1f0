"""Margin (hinge) losses, torch twins of :mod:`spec.margin`: ``hinge``, ``squared_hinge`` and
``categorical_hinge``. Argument order is torch's: ``(input, target)``, prediction first.

Labels of ``hinge`` / ``squared_hinge``: -1/1 or 0/1 (0 means -1), converted element by element.
``categorical_hinge``: classes on the LAST axis, one-hot targets of the same shape.
"""
from __future__ import annotations

import torch

from ._core import apply, clip, const, mean_nonbatch, one_minus
from ._fused import closed_form_loss, fused_function, fused_total
from .regression import _elementwise_loss

__all__ = ["hinge", "squared_hinge", "categorical_hinge"]


def _signs(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """t = 1 where y > 0, -1 elsewhere (0 and -1), in ``like``'s dtype (one comparison, one select)."""
    one = const(1.0, like)
    if isinstance(one, float):  # compiling: the numbers themselves
        return torch.where(y > 0, 1.0, -1.0).to(like.dtype)
    return torch.where(y > 0, one, const(-1.0, like))


def _margin_gap(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max(0, 1 - t ŷ)``: the closed-interval clip passes the gradient at 1 - t ŷ = 0 (active at the
    kink, as keras.losses.Hinge's maximum)."""
    return clip(one_minus(_signs(y, x) * x), 0.0)


def _hinge_closed_form(x, y, need_grad):
    """Elementwise ``max(0, m)``, ``m = 1 - t ŷ``, and when asked its gradient ``-t`` where ``m >= 0``
    (the clip's closed interval: active at the kink, as keras.losses.Hinge's maximum), 0 below; NaN
    propagates."""
    t = _signs(y, x)
    m = torch.mul(t, x)
    m = one_minus(m, out=m)
    loss = torch.clamp_min(m, 0.0)
    if not need_grad:
        return loss, None
    return loss, t.neg_().masked_fill_(m < 0.0, 0.0)


def _squared_hinge_closed_form(x, y, need_grad):
    """Elementwise ``max(0, m)²`` and when asked its gradient ``-2 t max(0, m)``."""
    t = _signs(y, x)
    gap = torch.mul(t, x)
    gap = one_minus(gap, out=gap).clamp_min_(0.0)
    loss = torch.square(gap)
    if not need_grad:
        return loss, None
    return loss, gap.mul_(t).mul_(const(-2.0, x))


Hinge = fused_function(_hinge_closed_form, "Hinge")
HingeTotal = fused_total(_hinge_closed_form, "HingeTotal")
SquaredHinge = fused_function(_squared_hinge_closed_form, "SquaredHinge")
SquaredHingeTotal = fused_total(_squared_hinge_closed_form, "SquaredHingeTotal")


_hinge_per_sample = closed_form_loss(Hinge, HingeTotal, _elementwise_loss(_margin_gap))


def hinge(input, target, *, sample_weight=None, reduction="mean", validate=True):
    """torch.nn has no binary hinge loss; Keras' is ``keras.losses.Hinge``."""
    return apply("hinge", _hinge_per_sample, input, target, sample_weight, {}, reduction, validate)


_squared_hinge_per_sample = closed_form_loss(SquaredHinge, SquaredHingeTotal,
                                             _elementwise_loss(lambda x, y: torch.square(_margin_gap(x, y))))


def squared_hinge(input, target, *, sample_weight=None, reduction="mean", validate=True):
    """torch.nn has no squared hinge loss; Keras' is ``keras.losses.SquaredHinge``."""
    return apply("squared_hinge", _squared_hinge_per_sample, input, target, sample_weight, {}, reduction, validate)


def _categorical_hinge_per_sample(x, y, *, zero_competitor):
    y = y.to(x.dtype)  # integer one-hot targets join the compute dtype
    pos = (y * x).sum(dim=-1)
    if zero_competitor:  # keras.losses.CategoricalHinge: the true class's (1 - 1) ŷ = 0 competes
        competitors = one_minus(y) * x
    else:
        competitors = torch.where(y > 0, float("-inf"), x)
    # torch.amax splits the gradient equally among tied maxima (tf.reduce_max does too)
    neg = torch.amax(competitors, dim=-1)
    return mean_nonbatch(clip((neg - pos) + const(1.0, x), 0.0))


def categorical_hinge(input, target, *, zero_competitor=False, sample_weight=None, reduction="mean", validate=True):
    """Classes on the LAST axis (NCHW scores: ``x.movedim(1, -1)``), one-hot targets. ``torch.nn.MultiMarginLoss``
    is a different loss (a sum over the wrong classes, / C); for C = 2 it is this loss / 2."""
    return apply("categorical_hinge", _categorical_hinge_per_sample, input, target, sample_weight,
                 {"zero_competitor": zero_competitor}, reduction, validate)
