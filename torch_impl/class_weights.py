"""Class-weight utilities on torch tensors, twins of :mod:`spec.class_weights`.

Both functions read the labels' values (they are data-preparation utilities, not graph ops):
the checks and error texts are the spec's, the counting runs on the labels' device.
"""
from __future__ import annotations

import torch

from spec import class_weights as _cw

from ._core import as_tensor


class _TorchLabelOps:
    def shape(self, x):
        return tuple(int(d) for d in x.shape)

    def is_floating(self, x):
        return x.is_floating_point()

    def has_nonfinite(self, x):
        return not bool(torch.isfinite(x).all())

    def all_integral(self, x):
        return bool((x == torch.round(x)).all())

    def all_binary(self, x):
        return bool(((x == 0) | (x == 1)).all())

    def min_max(self, x):
        lo, hi = torch.aminmax(x)
        return float(lo), float(hi)


_OPS = _TorchLabelOps()


def _labels(x) -> torch.Tensor:
    x = as_tensor(x).detach()
    return x.to(torch.uint8) if x.dtype == torch.bool else x


def _result_dtype(labels: torch.Tensor, dtype) -> torch.dtype:
    if isinstance(dtype, str):
        return getattr(torch, dtype)
    if dtype is not None:
        return dtype
    return torch.float64 if labels.dtype == torch.float64 else torch.float32


def balanced_class_weights(labels, num_classes=None, *, dtype=None) -> torch.Tensor:
    r"""scikit-learn's ``"balanced"`` class weights of integer class labels.

    .. math::
        w_k = \frac{N}{K\, n_k},\qquad n_k = \#\{i : y_i = k\},\ k = 0, \dots, K-1

    Args:
        labels: class indices, shape ``(N,)`` or ``(N, 1)`` (ints, bools or integral floats).
        num_classes: ``K``; default ``max(labels) + 1``.
        dtype: result dtype (a ``torch.dtype`` or its name); default float64 for float64 labels, else float32.

    Returns:
        ``(K,)`` tensor on the labels' device; ``weights[labels]`` is a ``sample_weight``.

    Raises:
        ValueError: a class of ``range(K)`` is absent (its weight would be infinite; the message
            names the classes), or labels are not class indices (the spec's messages).
    """
    labels = _labels(labels)
    k = _cw.check_class_labels(labels, num_classes, _OPS)
    flat = labels.reshape(-1).to(torch.int64)
    counts = torch.bincount(flat, minlength=k)
    _cw.check_counts(counts.cpu().numpy())
    weights = flat.numel() / (k * counts.to(torch.float64))
    return weights.to(_result_dtype(labels, dtype))


def pos_weight_from_labels(y, *, dtype=None) -> torch.Tensor:
    r"""``pos_weight`` for :func:`~torch_impl.classification.weighted_bce`: negatives / positives
    per column (last axis) of a 0/1 label array.

    .. math::
        w_c = \frac{\sum_i (1 - y_{ic})}{\sum_i y_{ic}}

    Counts are taken over every axis but the last, in float64 (exact up to 2**53 labels).

    Args:
        y: 0/1 labels, shape ``(N, ..., C)``; a 1-D ``(N,)`` array is one binary output.
        dtype: result dtype (a ``torch.dtype`` or its name); default float64 for float64 labels, else float32.

    Returns:
        ``(C,)`` tensor (0-d for 1-D ``y``) on the labels' device, usable as
        ``get_loss("weighted_bce", pos_weight=...)``.

    Raises:
        ValueError: a column has no positive or no negative label (named in the message), or the
            labels are not 0/1.
    """
    y = _labels(y)
    _cw.check_binary_labels(y, _OPS)
    total = _cw.binary_rows(tuple(y.shape))
    positives = y.to(torch.float64).reshape(total, -1).sum(dim=0)
    _cw.check_positive_counts(positives.cpu().numpy(), total)
    ratio = (total - positives) / positives
    ratio = ratio.to(_result_dtype(y, dtype))
    return ratio[0] if y.dim() == 1 else ratio


__all__ = ["balanced_class_weights", "pos_weight_from_labels"]
