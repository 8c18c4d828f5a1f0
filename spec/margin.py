"""Margin (hinge) losses on real-valued scores: ``hinge``, ``squared_hinge`` and ``categorical_hinge``.

Targets
-------
``hinge`` / ``squared_hinge`` take one score per element and a class label per element: ``-1`` or
``1``, or ``0`` and ``1`` (``0`` is read as ``-1``). The label is converted element by element,
``t = 1`` where ``y > 0`` and ``t = -1`` elsewhere; every other value (soft labels, 2, -0.5) is
rejected. Keras' ``Hinge`` converts by batch instead (``2y - 1`` when every label of the call is 0 or
1, the labels unchanged otherwise): the same ``t`` on every accepted batch but one that mixes -1 and
0 (see the entries' peer notes).

``categorical_hinge`` takes scores ``(N, ..., C)`` with the classes on the LAST axis and one-hot
targets of the same shape (exactly one 1 per row); for inputs of rank > 2 the per-sample loss is
the mean over the non-batch, non-class positions.

Subgradients
------------
At the hinge's kink (``1 - t ŷ = 0``, resp. ``1 + max_wrong - ŷ_true = 0``) the hinge counts as
active: the gradient is that of ``1 - t ŷ`` (``tf.maximum``'s tie goes to its first argument, as in
``keras.losses.Hinge``; the torch twin clips with a closed interval). Tied wrong-class maxima share
the gradient equally (``torch.amax`` and ``tf.reduce_max`` both split it).
"""
from __future__ import annotations

import math

import numpy as np

from . import validation as v
from .cases import rng_for
from .core import Case, InvalidCase, LossSpec, Param, PeerNote, register
from .messages import VALIDATE_HINT, format_shape
from .multiclass import class_axis_missing
from .numerics import exact_elementwise_mean, mean_nonbatch, mp, spread_cotangent
from .performance import KERAS_EAGER, TORCH_CONTRACT, TORCH_VALIDATION, note

__all__ = ["HINGE", "SQUARED_HINGE", "CATEGORICAL_HINGE", "hinge_labels"]


# =========================================================================== messages and checks
def labels_not_signs(loss: str) -> str:
    return (f"{loss}: target must hold class labels -1 or 1 (or 0 and 1, where 0 means -1); got "
            f"non-integer values (a hinge loss takes hard labels){VALIDATE_HINT}")


def targets_not_one_hot(loss: str, lo: float, hi: float) -> str:
    return (f"{loss}: target must be one-hot rows (the last axis holds one 1 and zeros); got "
            f"row sums in [{lo:.6g}, {hi:.6g}] or non-integer values (integer class indices: "
            f"one-hot them first){VALIDATE_HINT}")


def too_few_classes(loss: str, shape) -> str:
    return (f"{loss}: the class axis (last) of prediction has size 1 (shape {format_shape(shape)}): "
            f"there is no wrong class to compare with. For a binary problem use hinge with one score")


def _size(shape) -> int:
    return 1 if any(d is None for d in shape) else math.prod(int(d) for d in shape)


def _reads_are_free(ops, x) -> bool:
    """Whether one more look at ``x``'s values costs no device synchronization (CPU tensors, eager CPU
    TensorFlow, NumPy). The label checks below need a second read after the one stacked read of the
    generic checks, so on an accelerator they are skipped (inside ``sync_value_checks`` too, which
    promises one read per call): there only the domain of the labels is checked."""
    return getattr(ops, "reads_are_free", lambda _x: True)(x)


def _check_sign_labels(loss, params, prediction, target, ops):
    """``check_values`` of hinge / squared_hinge: whole-number labels (the domain [-1, 1] is generic)."""
    if _size(ops.shape(target)) and _reads_are_free(ops, target) and not ops.all_integral(target):
        raise ValueError(labels_not_signs(loss))


def _check_class_axis(loss, params, shape):
    if len(shape) < 2:
        raise ValueError(class_axis_missing(loss, shape))
    if shape[-1] is not None and int(shape[-1]) < 2:
        raise ValueError(too_few_classes(loss, shape))


def _check_one_hot(loss, params, prediction, target, ops):
    """``check_values`` of categorical_hinge: whole numbers in [0, 1] (generic domain) summing to 1 per row."""
    if not _size(ops.shape(target)) or not _reads_are_free(ops, target):
        return
    lo, hi = ops.row_sum_range(target)
    if not ops.all_integral(target) or lo != 1.0 or hi != 1.0:
        raise ValueError(targets_not_one_hot(loss, lo, hi))


def hinge_labels(target):
    """The labels ``t`` in {-1, 1} of the hinge losses: 1 where ``y > 0``, -1 elsewhere (0 and -1)."""
    return np.where(np.asarray(target, np.float64) > 0, 1.0, -1.0)


# =========================================================================== hinge
def _hinge_reference(prediction, target):
    return mean_nonbatch(np.maximum(0.0, 1.0 - hinge_labels(target) * prediction))


def _hinge_vjp(prediction, target, cotangent):
    # d/dŷ max(0, 1 - t ŷ) = -t where 1 - t ŷ >= 0 (active at the kink), 0 beyond the margin
    t = hinge_labels(target)
    active = (1.0 - t * prediction) >= 0.0
    return np.where(active, -t, 0.0) * spread_cotangent(cotangent, np.shape(prediction))


def _mp_label(y):
    return 1 if y > 0 else -1


def _hinge_exact(prediction, target):
    return exact_elementwise_mean(lambda x, y: max(mp.mpf(0), 1 - _mp_label(y) * x), prediction, target)


def hinge_cases(name: str) -> list[Case]:
    """Typical / extreme / edge cases of a binary hinge loss (≤ 40 elements each), labels in both forms.

    The kink ``t ŷ = 1`` is hit exactly (``ŷ = ±1``, exact in float32) by the grid and the margin case:
    those are ``smooth=False`` (their subgradient is the entry's convention, checked against the frameworks)."""
    rng = rng_for(name)

    def signs(shape):
        return np.where(rng.uniform(size=shape) < 0.4, 1.0, -1.0)

    def bits(shape):
        return (rng.uniform(size=shape) < 0.4).astype(np.float64)

    scores = np.array([-1e4, -89.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 89.0, 1e4])
    grid_x = np.repeat(scores[:, None], 2, axis=1)
    grid_y = np.tile(np.array([-1.0, 1.0]), (scores.size, 1))
    margin = np.array([[1.0, -1.0, 1.0 - 2.0 ** -20, -1.0 - 2.0 ** -20, 1.0 + 2.0 ** -20, 2.0 ** -20]])
    return [
        Case("typical-signs", "typical", {}, rng.normal(0.0, 1.5, size=(6, 3)), signs((6, 3)),
             rng.uniform(0.2, 2.0, size=6), note="labels -1 / 1"),
        Case("typical-bits-3d", "typical", {}, rng.normal(0.0, 1.5, size=(2, 3, 4)), bits((2, 3, 4)),
             note="labels 0 / 1 (0 means -1); the per-sample loss is the mean over every non-batch axis"),
        Case("extreme-grid", "extreme", {}, grid_x, grid_y, smooth=False,
             note="scores from -1e4 to 1e4 against both labels, through the kink t ŷ = 1 (ŷ = ±1)"),
        Case("extreme-weights", "extreme", {}, rng.normal(size=(3, 4)), signs((3, 4)), np.array([1e6, 1e-6, 0.0]),
             note="huge, tiny and zero sample weights"),
        Case("edge-margin", "edge", {}, margin, np.array([[1.0, -1.0, 1.0, -1.0, 1.0, 1.0]]), smooth=False,
             note="t ŷ = 1 exactly (the kink), and 2**-20 inside and outside the margin"),
        Case("edge-all-negative-bits", "edge", {}, rng.normal(size=(4, 3)), np.zeros((4, 3)),
             note="every label 0 (read as -1)"),
        Case("edge-batch1", "edge", {}, rng.normal(size=(1, 4)), signs((1, 4))),
        Case("edge-1d", "edge", {}, rng.normal(size=(5,)), signs((5,)), note="1-D input: each element is a sample"),
        Case("edge-minus-one-and-zero", "edge", {}, rng.normal(size=(2, 3)),
             np.array([[-1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]),
             note="-1 and 0 in one batch: both the negative class here; keras.losses.Hinge leaves such a batch "
                  "unconverted (t = 0 for the zeros: see the peer notes)"),
    ]


def _hinge_invalid(name):
    def build():
        p = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
        return [
            InvalidCase("target-below-minus-one", {}, p, np.array([[-2.0, 1.0, 0.0], [1.0, 0.0, 1.0]])),
        ]

    return build


_LABEL_PEER_NOTES = (
    PeerNote("keras.losses.{cls}", "labels mixing -1 and 0 in one call",
             "Keras converts by batch: 2y - 1 when every label of the call is 0 or 1, the labels unchanged "
             "otherwise, so a 0 next to a -1 stays 0 (t = 0: a constant term, gradient 0); ours reads every 0 "
             "as -1, element by element (the same t on every other batch)"),
    PeerNote("keras.losses.{cls}", "soft or out-of-range labels (0.5, 2, -3)",
             "Keras uses any real label as it is (t ŷ with t = 0.5 …); ours rejects them: a hinge loss takes "
             "hard labels -1/1 or 0/1"),
    PeerNote("keras.losses.{cls}", "float64 inputs; rank > 2 inputs",
             "equal in float32 (value and gradient, the kink included); Keras computes in its floatx (float32) "
             "unless built with dtype='float64', ours keeps float64; its reduction='none' keeps every axis but "
             "the last, ours one value per sample"),
)


def _label_notes(cls):
    return tuple(PeerNote(n.peer.format(cls=cls), n.where, n.spec_says) for n in _LABEL_PEER_NOTES)


_TORCH_NONE = (
    PeerNote("torch.nn (no binary hinge)", "every input",
             "torch.nn has no twin: HingeEmbeddingLoss(margin) is x for y = 1 and max(0, margin - x) for y = -1 (a "
             "distance loss, not max(0, 1 - t ŷ)); SoftMarginLoss is the logistic loss log(1 + e^{-t ŷ}) = "
             "weighted_bce(from_logits=True) with targets (t + 1) / 2 (pinned by the peer tests)"),
)

_HINGE_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg"), 2.1,
         "the peer is the hinge users write for -1/1 labels, clamp(1 - t ŷ, min=0) and a mean (3 elementwise "
         "ops, whose backward is one masked pass); ours converts 0/1 or -1/1 labels element by element (a "
         "compare and a where) and is one autograd.Function computing the gradient -t on m >= 0 (the spec's "
         "subgradient at the kink) in the forward: a multiply, 1 - ·, the clamp, a negation, a compare and a "
         "fill, ~7 passes against the peer's ~4 forward and backward together, and with validate=True the "
         "aminmax of the labels (1.97 at `cls`, 1.41 at `seg` float32, run of 2026-12-05; the squared hinge, "
         "whose gradient needs no mask, meets the target)", TORCH_CONTRACT),
)

HINGE = register(LossSpec(
    name="hinge",
    family="margin",
    summary="Hinge loss max(0, 1 - t ŷ), labels t = ±1 (or 0/1: 0 means -1), averaged over a sample.",
    formula=(r"\ell = \frac{1}{M}\sum_j \max\left(0,\ 1 - t_j \hat y_j\right),\quad "
             r"t_j = \begin{cases} 1 & y_j > 0 \\ -1 & y_j \in \{0, -1\} \end{cases}"),
    params=(),
    reference=_hinge_reference,
    reference_vjp=_hinge_vjp,
    exact=_hinge_exact,
    cases=lambda: hinge_cases("hinge"),
    invalid_cases=_hinge_invalid("hinge"),
    target_domain=(-1.0, 1.0),
    check_values=_check_sign_labels,
    grad_convention=("d/dŷ = -t / M where 1 - t ŷ >= 0, 0 beyond the margin. At the kink t ŷ = 1 the hinge is "
                     "active (-t / M): keras.losses.Hinge's maximum(1 - t ŷ, 0) sends a tie to its first "
                     "argument, and so do our twins (tf.maximum; a closed-interval clip in torch)."),
    stability="max(0, 1 - t ŷ) directly: exact but for the rounding of 1 - t ŷ; finite for every finite score.",
    performance_notes=_HINGE_PERFORMANCE,
    peer_notes=_label_notes("Hinge") + _TORCH_NONE,
    references=("Keras Hinge; C. Cortes, V. Vapnik, Support-Vector Networks (1995)",),
    trap=("Labels 0/1 and -1/1 are both accepted and mean the same classes; a 0 is never a third label "
          "(Keras leaves a batch mixing -1 and 0 unconverted). Soft labels (0.5) are rejected where values "
          "are read for free (CPU tensors, eager CPU Keras); on an accelerator only the range [-1, 1] is "
          "checked (one device read per call)."),
    torch_class="HingeLoss",
    keras_class="Hinge",
))


# =========================================================================== squared_hinge
def _squared_hinge_reference(prediction, target):
    return mean_nonbatch(np.maximum(0.0, 1.0 - hinge_labels(target) * prediction) ** 2)


def _squared_hinge_vjp(prediction, target, cotangent):
    # d/dŷ max(0, 1 - t ŷ)² = -2 t max(0, 1 - t ŷ): continuous, 0 at the margin and beyond
    t = hinge_labels(target)
    return -2.0 * t * np.maximum(0.0, 1.0 - t * prediction) * spread_cotangent(cotangent, np.shape(prediction))


def _squared_hinge_exact(prediction, target):
    return exact_elementwise_mean(lambda x, y: max(mp.mpf(0), 1 - _mp_label(y) * x) ** 2, prediction, target)


def _squared_hinge_cases():
    # hinge's cases (the margin cases stay smooth=False: the loss is C¹ there, its second derivative jumps)
    return hinge_cases("squared_hinge")


_SQUARED_HINGE_PERFORMANCE = (
    note("torch", "torch eager", ("cls",), 1.2,
         "ours is one autograd.Function computing the gradient -2 t max(0, m) in the forward (the labels' "
         "conversion, 1 - t ŷ, the clamp, the square: ~5 passes against the peer's ~5 forward and backward "
         "together; 0.81 of the peer at `cls` with validate=False, run of 2026-12-05); with validate=True the "
         "labels are also read (1.03-1.13 at `cls` between runs)", TORCH_VALIDATION),
)

SQUARED_HINGE = register(LossSpec(
    name="squared_hinge",
    family="margin",
    summary="Squared hinge loss max(0, 1 - t ŷ)², labels as in hinge, averaged over a sample.",
    formula=(r"\ell = \frac{1}{M}\sum_j \max\left(0,\ 1 - t_j \hat y_j\right)^2,\quad "
             r"t_j = \begin{cases} 1 & y_j > 0 \\ -1 & y_j \in \{0, -1\} \end{cases}"),
    params=(),
    reference=_squared_hinge_reference,
    reference_vjp=_squared_hinge_vjp,
    exact=_squared_hinge_exact,
    cases=_squared_hinge_cases,
    invalid_cases=_hinge_invalid("squared_hinge"),
    target_domain=(-1.0, 1.0),
    check_values=_check_sign_labels,
    grad_convention=("C¹: d/dŷ = -2 t max(0, 1 - t ŷ) / M, continuous; exactly 0 at the margin t ŷ = 1 and "
                     "beyond (both twins and keras.losses.SquaredHinge)."),
    stability=("max(0, 1 - t ŷ)² directly; overflows only where the true value does (|ŷ| > 1.8e19 in float32 "
               "on the wrong side of the margin)."),
    performance_notes=_SQUARED_HINGE_PERFORMANCE,
    peer_notes=_label_notes("SquaredHinge") + (
        PeerNote("torch.nn (no squared hinge)", "every input",
                 "torch.nn has no twin (MultiMarginLoss(p=2) squares a sum over wrong classes of a multiclass "
                 "score, not max(0, 1 - t ŷ)² of one score)"),
    ),
    references=("Keras SquaredHinge; the L2-SVM loss (Y. Tang, Deep Learning using Linear Support Vector "
                "Machines, 2013)",),
    trap=("Labels 0/1 and -1/1 are both accepted and mean the same classes; a 0 is never a third label "
          "(Keras leaves a batch mixing -1 and 0 unconverted). Soft labels (0.5) are rejected where values "
          "are read for free (CPU tensors, eager CPU Keras); on an accelerator only the range [-1, 1] is "
          "checked (one device read per call)."),
    torch_class="SquaredHingeLoss",
    keras_class="SquaredHinge",
))


# =========================================================================== categorical_hinge
def _categorical_hinge_parts(prediction, target, zero_competitor):
    """``(wrong, neg, gap)`` per row: the scores with the true class masked to -inf, the largest competing
    score ``neg`` (with ``zero_competitor``: at least 0) and ``gap = (neg - pos) + 1`` (Keras' order)."""
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target, np.float64)
    wrong = np.where(y > 0, -np.inf, x)
    neg = wrong.max(axis=-1)
    if zero_competitor:
        neg = np.maximum(neg, 0.0)
    pos = (y * x).sum(axis=-1)
    return wrong, neg, (neg - pos) + 1.0


def _categorical_hinge_reference(prediction, target, *, zero_competitor):
    _, _, gap = _categorical_hinge_parts(prediction, target, zero_competitor)
    return mean_nonbatch(np.maximum(gap, 0.0))


def _categorical_hinge_vjp(prediction, target, cotangent, *, zero_competitor):
    # active rows (gap >= 0): -1 on the true class, +1 shared equally by the competitors at the max (the
    # wrong classes tied there, and with zero_competitor the constant 0 when neg = 0, whose share is lost)
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target, np.float64)
    wrong, neg, gap = _categorical_hinge_parts(x, y, zero_competitor)
    ties = wrong == neg[..., None]
    count = ties.sum(axis=-1) + (zero_competitor & (neg == 0.0))
    row_grad = np.where((gap >= 0.0)[..., None], ties / count[..., None] - y, 0.0)
    return row_grad * spread_cotangent(cotangent, x.shape[:-1])[..., None]


def _categorical_hinge_exact(prediction, target, *, zero_competitor):
    pred = np.asarray(prediction, dtype=object)  # mpf elements (the finite differences' steps) or floats
    tgt = np.asarray(target, np.float64)
    c = pred.shape[-1]
    out = []
    for i in range(pred.shape[0]):
        xs, ys = pred[i].reshape(-1, c), tgt[i].reshape(-1, c)
        rows = []
        for x_row, y_row in zip(xs, ys):
            competitors = [mp.mpf(v) for v, y in zip(x_row, y_row) if y == 0] + (
                [mp.mpf(0)] if zero_competitor else [])
            pos = mp.fsum(mp.mpf(float(y)) * mp.mpf(v) for v, y in zip(x_row, y_row))
            rows.append(max(mp.mpf(0), 1 + max(competitors) - pos))
        out.append(mp.fsum(rows) / len(rows))
    return out


def _categorical_hinge_cases():
    name = "categorical_hinge"
    c = 4
    out = []
    for tag, params in (("default", {}), ("zero", {"zero_competitor": True})):
        rng = rng_for(name + tag)

        def hot(shape):
            return np.eye(c)[rng.integers(0, c, size=shape)]

        extreme = np.array([[v, 1.5, -v / 2, 0.25] for v in (-1e4, -89.0, -20.0, 20.0, 89.0, 1e4)])
        out += [
            Case(f"{tag}-typical", "typical", params, rng.normal(0.0, 1.5, size=(6, c)), hot(6),
                 rng.uniform(0.2, 2.0, size=6)),
            Case(f"{tag}-extreme-grid", "extreme", params, extreme, np.eye(c)[np.arange(extreme.shape[0]) % c],
                 note="scores up to ±1e4 against every class (unique row maxima, no row on the margin)"),
            Case(f"{tag}-edge-wrong-scores-negative", "edge", params,
                 np.array([[-1.0, -2.0, 0.5, -3.0], [-0.25, 0.125, -4.0, -0.5], [-2.0, -1.5, -1.0, 0.75]]),
                 np.eye(c)[[2, 1, 3]],
                 note="every wrong score < 0: the true hinge is 0 where 1 + max_wrong < ŷ_true; with "
                      "zero_competitor (keras.losses.CategoricalHinge) the competitor is 0 and the loss 1 - ŷ_true"),
        ]
        if not params:
            out += [
                Case(f"{tag}-typical-3d", "typical", params, rng.normal(0.0, 1.5, size=(2, 3, c)), hot((2, 3)),
                     note="per-position rows (e.g. pixels): the per-sample loss is their mean"),
                Case(f"{tag}-extreme-weights", "extreme", params, rng.normal(size=(3, c)), hot(3),
                     np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"),
                Case(f"{tag}-edge-ties", "edge", params,
                     np.array([[2.0, 2.0, 0.5, -1.0], [0.0, 3.0, 3.0, 3.0]]), np.eye(c)[[3, 0]], smooth=False,
                     note="wrong classes tied at the max: each gets 1/k of the gradient (torch.amax, tf.reduce_max)"),
                Case(f"{tag}-edge-margin", "edge", params,
                     np.array([[1.0, 0.0, -1.0, -2.0], [0.5, 1.5, 0.25, -0.5]]), np.eye(c)[[0, 1]], smooth=False,
                     note="1 + max_wrong - ŷ_true = 0 exactly: the hinge is active (gradient -1 and +1)"),
                Case(f"{tag}-edge-batch1", "edge", params, rng.normal(size=(1, c)), hot(1)),
                Case(f"{tag}-edge-two-classes", "edge", params, rng.normal(0.0, 1.5, size=(5, 2)),
                     np.eye(2)[rng.integers(0, 2, size=5)],
                     note="C = 2: max(0, 1 + ŷ_wrong - ŷ_true), 2 × torch.nn.MultiMarginLoss"),
            ]
        else:
            out.append(Case(f"{tag}-edge-zero-tie", "edge", params,
                            np.array([[0.0, -1.0, 0.5, -2.0], [-1.0, 0.25, -0.5, -3.0]]), np.eye(c)[[2, 1]],
                            smooth=False,
                            note="the largest wrong score is 0: tied with the constant 0, it gets half the "
                                 "gradient (Keras' reduce_max over (1 - y) ŷ, whose true-class entry is 0)"))
    return out


def _categorical_hinge_invalid():
    p = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    return [
        InvalidCase("zero-competitor-not-bool", {"zero_competitor": 1}),
        InvalidCase("no-class-axis", {}, np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 0.0])),
        InvalidCase("one-class", {}, np.array([[0.5], [-1.0]]), np.array([[1.0], [1.0]])),
        InvalidCase("target-sign-labels", {}, p, np.array([[-1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])),
        InvalidCase("target-shape-class-indices", {}, p, np.array([2.0, 0.0])),
    ]


ZERO_COMPETITOR = Param(
    "zero_competitor", False, "a bool", v.boolean(),
    doc="False: the true multiclass hinge, the true score against the largest wrong-class score. True: a "
        "constant score 0 competes too, neg = max(0, max_wrong ŷ): keras.losses.CategoricalHinge's max((1 - y) "
        "ŷ), whose true-class entry (1 - 1) ŷ is 0.")

_CATEGORICAL_HINGE_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg"), 2.3,
         "the peer is what users write, max over the wrong classes (x - 1e30 y) minus the true score, clamped "
         "(~7 ops); ours is the same count (a where with -inf in place of the 1e30 shift, which is exact for "
         "any score) but for the library's clip (a compare and a where) and the cast of the targets, so the "
         "difference is the contract and, with validate=True, an aminmax pass per array (31.3 against 25.0 ms "
         "at `seg` float32)", TORCH_CONTRACT),
    note("keras", "keras eager*", ("cls", "seg"), 2.8,
         "the fastest peer is the plain tf max over the wrong classes (~7 ops; keras.losses.CategoricalHinge is "
         "zero_competitor=True, a different loss); ours is the same ops with a where of -inf in place of the "
         "1e30 shift; the cls validate=True row (2.6, against 1.2 with validate=False) is the min and max "
         "passes over the two arrays", KERAS_EAGER),
)

CATEGORICAL_HINGE = register(LossSpec(
    name="categorical_hinge",
    family="margin",
    summary="Multiclass hinge max(0, 1 + max_{c≠y} ŷ_c - ŷ_y), one-hot targets, classes last.",
    formula=(r"\ell = \frac{1}{R}\sum_r \max\left(0,\ 1 + n_r - \hat y_{r,y_r}\right),\quad "
             r"n_r = \max_{c \ne y_r} \hat y_{rc}\ \left(\text{zero\_competitor: } \max\left(0, \max_{c \ne y_r} "
             r"\hat y_{rc}\right)\right)"),
    params=(ZERO_COMPETITOR,),
    reference=_categorical_hinge_reference,
    reference_vjp=_categorical_hinge_vjp,
    exact=_categorical_hinge_exact,
    cases=_categorical_hinge_cases,
    invalid_cases=_categorical_hinge_invalid,
    target_domain=(0.0, 1.0),
    check_shapes=_check_class_axis,
    check_values=_check_one_hot,
    grad_convention=("Per active row (1 + n - ŷ_true >= 0, the margin itself included, as Keras' maximum): -1/R "
                     "on the true class and +1/R shared equally by the competitors at the max n (k wrong classes "
                     "tied there get 1/(kR) each, as torch.amax and tf.reduce_max split it; with zero_competitor "
                     "and n = 0 the constant 0 is one of them and its share is dropped). Inactive rows: 0."),
    stability=("Scores are compared, never exponentiated: exact but for the rounding of (n - ŷ_true) + 1; "
               "finite for every finite score."),
    performance_notes=_CATEGORICAL_HINGE_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.CategoricalHinge", "rows whose wrong-class scores are all < 0",
                 "Keras computes neg = max((1 - y) ŷ), where the true class contributes (1 - 1) ŷ = 0: its "
                 "competitor is max(0, max_wrong), so a row with 1 + max_wrong < ŷ_true < 1 costs 1 - ŷ_true > 0 "
                 "instead of 0. zero_competitor=True reproduces it (value and gradient, the 0 tie included); the "
                 "default is the true multiclass hinge"),
        PeerNote("keras.losses.CategoricalHinge", "targets that are not one-hot rows (-1/1 labels, soft rows)",
                 "Keras computes Σ y ŷ and max((1 - y) ŷ) with any real y; ours rejects them (where values are "
                 "read for free: CPU tensors, eager CPU Keras; on an accelerator only the range [0, 1] is checked)"),
        PeerNote("keras.losses.CategoricalHinge", "float64 inputs; rank > 2 inputs",
                 "equal in float32; Keras computes in its floatx (float32) unless built with dtype='float64', ours "
                 "keeps float64; its reduction='none' keeps every axis but the last, ours one value per sample"),
        PeerNote("torch.nn.MultiMarginLoss(p=1, margin=1)", "C > 2",
                 "a different loss (Weston-Watkins): Σ_{c≠y} max(0, margin - ŷ_y + ŷ_c) / C, a sum over every wrong "
                 "class, with class-index targets; no parameter of ours gives it. For C = 2 it is "
                 "categorical_hinge / 2 (one wrong class); pinned by the peer tests"),
        PeerNote("torch.nn.MultiLabelMarginLoss, torch.nn.HingeEmbeddingLoss", "every input",
                 "no twin: MultiLabelMarginLoss sums the hinge over (target, non-target) pairs of a multi-label "
                 "row (index targets padded by -1), HingeEmbeddingLoss is a distance loss"),
    ),
    references=("K. Crammer, Y. Singer, On the Algorithmic Implementation of Multiclass Kernel-based Vector "
                "Machines (JMLR 2001); Keras CategoricalHinge",),
    trap=("keras.losses.CategoricalHinge is not the Crammer-Singer hinge when every wrong score is negative (its "
          "competitor is at least 0): use zero_competitor=True to reproduce it; torch's MultiMarginLoss sums over "
          "the wrong classes instead of taking their max."),
    torch_class="CategoricalHingeLoss",
    keras_class="CategoricalHinge",
))
