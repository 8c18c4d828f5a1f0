"""Class-weight utilities: the NumPy reference, the validation driver and every error message.

Two functions, each with a torch twin (:mod:`torch_impl.class_weights`) and a TensorFlow twin
(:mod:`tf_impl.class_weights`) that accept tensors and raise the same ``ValueError`` texts,
because all three call the checks of this module.

``balanced_class_weights(labels, num_classes=None)``
    ``w_k = N / (K * count_k)`` for class indices ``labels`` of shape ``(N,)`` (or ``(N, 1)``),
    ``K = num_classes`` or ``max(labels) + 1``. This is scikit-learn's
    ``compute_class_weight("balanced", classes=np.arange(K), y=labels)``. **Absent classes**:
    a class of ``range(K)`` that does not occur in ``labels`` would get an infinite weight; like
    scikit-learn we raise a ``ValueError``, and ours names the absent classes. Weights are
    indexed by class id, so ``weights[labels]`` is a ``sample_weight`` and
    ``dict(enumerate(weights))`` is a Keras ``class_weight``.

``pos_weight_from_labels(y)``
    ``negatives_c / positives_c`` for each column ``c`` (last axis) of a 0/1 label array ``y`` of
    shape ``(N, ..., C)``, counted over every other axis; a 1-D ``y`` (one binary output) gives a
    scalar. The result is directly the ``pos_weight=`` of ``weighted_bce``: it makes the positive
    and negative terms of each column weigh the same in total (the hand-picked 27 of the sparse-multilabel problem is this
    ratio for its ~1/30 positive rate: 29). Columns with no positive (infinite weight) or no
    negative (weight 0, which ``weighted_bce`` rejects) raise a ``ValueError`` naming them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .messages import format_shape

BALANCED = "balanced_class_weights"
POS_WEIGHT = "pos_weight_from_labels"

_MAX_LISTED = 20


# --------------------------------------------------------------------------- messages
def _index_list(indices: Sequence[int]) -> str:
    indices = [int(i) for i in indices]
    if len(indices) <= _MAX_LISTED:
        return repr(indices)
    shown = ", ".join(str(i) for i in indices[:_MAX_LISTED])
    return f"[{shown}, ...] ({len(indices)} in all)"


def invalid_num_classes(value) -> str:
    return f"{BALANCED}: invalid `num_classes`={value!r}; expected None or an int >= 1"


def labels_shape(func: str, shape, expected: str) -> str:
    return f"{func}: labels must have shape {expected}; got {format_shape(shape)}"


def labels_empty(func: str) -> str:
    return f"{func}: labels are empty; expected at least one sample"


def labels_not_finite(func: str) -> str:
    return f"{func}: labels contain NaN or inf; expected finite values"


def labels_not_integral(func: str) -> str:
    return f"{func}: labels must be integer class indices; got non-integer values"


def labels_negative(func: str, vmin: float) -> str:
    return f"{func}: labels must be >= 0 (class indices); got minimum {vmin:g}"


def labels_too_large(func: str, vmax: float, num_classes: int) -> str:
    return (f"{func}: labels must be < num_classes={num_classes}; got maximum {vmax:g}")


def absent_classes(classes: Sequence[int], num_classes: int) -> str:
    return (f"{BALANCED}: classes {_index_list(classes)} of range({num_classes}) do not occur in "
            f"labels; their balanced weight N / (K * count) would be infinite (scikit-learn raises "
            f"too). Pass labels containing every class, or choose the weights of absent classes "
            f"yourself")


def labels_not_binary(func: str) -> str:
    return f"{func}: labels must be 0 or 1 (a multilabel indicator matrix); got other values"


def no_positive_columns(columns: Sequence[int], num_columns: int) -> str:
    return (f"{POS_WEIGHT}: columns {_index_list(columns)} (of {num_columns}) have no positive "
            f"label; negatives / positives is infinite there. Drop those labels or set their "
            f"pos_weight yourself")


def no_negative_columns(columns: Sequence[int], num_columns: int) -> str:
    return (f"{POS_WEIGHT}: columns {_index_list(columns)} (of {num_columns}) have no negative "
            f"label; negatives / positives is 0 there, and pos_weight must be > 0. Drop those "
            f"labels or set their pos_weight yourself")


# --------------------------------------------------------------------------- validation driver
class LabelOps(Protocol):
    """What the label checks need from a framework (the values are always read: these are
    data-preparation utilities, called eagerly)."""

    def shape(self, x) -> tuple: ...

    def is_floating(self, x) -> bool: ...

    def has_nonfinite(self, x) -> bool: ...

    def all_integral(self, x) -> bool: ...

    def all_binary(self, x) -> bool: ...

    def min_max(self, x) -> tuple[float, float]: ...


class NumpyLabelOps:
    def shape(self, x):
        return tuple(np.shape(x))

    def is_floating(self, x):
        return np.asarray(x).dtype.kind in "fc"

    def has_nonfinite(self, x):
        return not bool(np.isfinite(x).all())

    def all_integral(self, x):
        return bool(np.all(np.asarray(x) == np.round(x)))

    def all_binary(self, x):
        a = np.asarray(x)
        return bool(np.all((a == 0) | (a == 1)))

    def min_max(self, x):
        a = np.asarray(x)
        return float(a.min()), float(a.max())


def check_num_classes(num_classes) -> int | None:
    if num_classes is None:
        return None
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(invalid_num_classes(num_classes))
    if int(num_classes) < 1:
        raise ValueError(invalid_num_classes(num_classes))
    return int(num_classes)


def check_class_labels(labels, num_classes, ops: LabelOps) -> int:
    """Check class-index labels; return ``K`` (``num_classes`` or ``max + 1``).

    Order: shape → empty → finite → integral → range. ``num_classes`` is checked first (it is
    an argument error, independent of the data)."""
    num_classes = check_num_classes(num_classes)
    shape = ops.shape(labels)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise ValueError(labels_shape(BALANCED, shape, "(N,) or (N, 1) (class indices)"))
    if shape[0] == 0:
        raise ValueError(labels_empty(BALANCED))
    if ops.is_floating(labels):
        if ops.has_nonfinite(labels):
            raise ValueError(labels_not_finite(BALANCED))
        if not ops.all_integral(labels):
            raise ValueError(labels_not_integral(BALANCED))
    vmin, vmax = ops.min_max(labels)
    if vmin < 0:
        raise ValueError(labels_negative(BALANCED, vmin))
    if num_classes is not None and vmax >= num_classes:
        raise ValueError(labels_too_large(BALANCED, vmax, num_classes))
    return num_classes if num_classes is not None else int(vmax) + 1


def check_counts(counts) -> None:
    """Raise when a class of ``range(K)`` has count 0 (``counts``: host array of ``K`` counts)."""
    counts = np.asarray(counts)
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        raise ValueError(absent_classes(absent.tolist(), counts.size))


def check_binary_labels(y, ops: LabelOps) -> None:
    """Check a 0/1 label array of shape ``(N, ..., C)`` or ``(N,)``."""
    shape = ops.shape(y)
    if len(shape) < 1:
        raise ValueError(labels_shape(POS_WEIGHT, shape, "(N, C) or (N,) (0/1 labels, classes on the last axis)"))
    if any(int(d) == 0 for d in shape):
        raise ValueError(labels_empty(POS_WEIGHT))
    if ops.is_floating(y) and ops.has_nonfinite(y):
        raise ValueError(labels_not_finite(POS_WEIGHT))
    if not ops.all_binary(y):
        raise ValueError(labels_not_binary(POS_WEIGHT))


def check_positive_counts(positives, total) -> None:
    """Raise when a column has no positive or no negative (``positives``: host array (C,))."""
    positives = np.asarray(positives, np.float64).reshape(-1)
    none_pos = np.flatnonzero(positives == 0)
    if none_pos.size:
        raise ValueError(no_positive_columns(none_pos.tolist(), positives.size))
    none_neg = np.flatnonzero(positives == total)
    if none_neg.size:
        raise ValueError(no_negative_columns(none_neg.tolist(), positives.size))


def binary_rows(shape) -> int:
    """Number of labels per column (every axis but the last; a 1-D array is one column)."""
    return int(shape[0]) if len(shape) == 1 else int(np.prod(shape[:-1]))


# --------------------------------------------------------------------------- reference
_NP = NumpyLabelOps()


def balanced_class_weights(labels, num_classes=None) -> np.ndarray:
    """``w_k = N / (K count_k)``, float64 ``(K,)``; scikit-learn's ``"balanced"`` weights.

    >>> balanced_class_weights([0, 0, 0, 1]).tolist()
    [0.6666666666666666, 2.0]
    """
    labels = np.asarray(labels)
    k = check_class_labels(labels, num_classes, _NP)
    flat = labels.reshape(-1).astype(np.int64)
    counts = np.bincount(flat, minlength=k)
    check_counts(counts)
    return flat.size / (k * counts.astype(np.float64))


def pos_weight_from_labels(y):
    """``negatives / positives`` per column (last axis), float64 ``(C,)``; a float for 1-D ``y``.

    >>> pos_weight_from_labels([[1, 0], [0, 1], [0, 1], [0, 1]]).tolist()
    [3.0, 0.3333333333333333]
    """
    y = np.asarray(y)
    check_binary_labels(y, _NP)
    total = binary_rows(y.shape)
    cols = y.astype(np.float64).reshape(total, -1)
    positives = cols.sum(axis=0)
    check_positive_counts(positives, total)
    ratio = (total - positives) / positives
    return np.float64(ratio[0]) if y.ndim == 1 else ratio


__all__ = ["balanced_class_weights", "pos_weight_from_labels"]
