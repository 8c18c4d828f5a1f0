"""Overlap losses for segmentation and imbalanced multilabel: soft Dice, soft Jaccard (IoU), soft F-beta, Tversky.

One form for the whole family
-----------------------------
With ``p = σ(x)`` (or ``p = x`` for ``from_logits=False``), ``q = 1 - p`` (``σ(-x)`` for logits, so
no cancellation at ``p → 1``) and the soft confusion counts

    TP = Σ p y,   FP = Σ p (1 - y),   FN = Σ q y,

every entry is ``ℓ = M / D`` with ``M = a·FP + b·FN + e`` and ``D = t·TP + M + s``:

============  =====  =====  =======  ====  ======
entry           a      b       t      e      s
============  =====  =====  =======  ====  ======
soft_dice       1      1       2      0    smooth
soft_jaccard    1      1       1      0    smooth
tversky         α      β       1      0    smooth
soft_fbeta      1      β²    1 + β²   ε      0
============  =====  =====  =======  ====  ======

This is the textbook ``1 - (overlap + s) / (size + s)`` rewritten without the subtraction: the
smoothing cancels in ``D - N`` (e.g. Dice: ``Σy + Σp - 2Σyp = FP + FN``), so a near-perfect
prediction has a loss with full relative precision (``1 - N/D`` would round it to 0), and float32
matches float64 to a few ulps. The sums run over every non-batch axis of one sample (a 1-D input
is one element per sample), or, for ``soft_fbeta`` with ``average="macro"``/``"micro"``, over the
batch too (weighted by ``sample_weight``).

The empty case (one convention for the family)
----------------------------------------------
``D = 0`` happens only when ``s = 0`` and ``e = 0`` and the sample (class) has no mass at all:
``Σy = Σp = 0`` (for Tversky also ``α = 0`` with ``Σy = 0``, or ``β = 0`` with ``Σp = 0``). Then
``M = 0`` too, and we define ``ℓ = 1`` with gradient 0. This is the continuous extension: for
``y = 0`` and any ``p > 0`` the
ratio is ``a·FP / a·FP = 1`` with gradient exactly 0, so the limit ``p → 0`` is ``ℓ = 1``, gradient
0 (not the "perfect prediction" value 0, which would make the loss jump from 1 to 0 when a
probability underflows; float32 ``σ(-88)`` is 0 in TensorFlow and 6e-39 in torch, and both give
the same answer only under this convention). NaN inputs still propagate (the test is ``D == 0``,
not ``D > 0``). With the default ``smooth = 1`` an empty mask gives ``ℓ = Σp / (Σp + 1)``: 0 for an
empty prediction, with the gradient ``1 / (Σp + 1)²`` pushing predictions down. (Tversky with
``β = 0``, ``smooth = 0`` and ``Σp → 0`` on a non-empty mask has no limit at all; the convention
still gives 1 there: use ``smooth > 0`` with ``β = 0``.)

Gradients: both frameworks give the ratio ``M / (K + M)``, ``K = t·TP + s``, the custom gradient
``(K dM - M dK) / D²`` (products only). Plain autodiff forms ``g/D - g (M/D)/D`` for ``dM``, whose
rounding error ``~1e-16/D`` is not small when ``D`` is (``smooth = 0``, an empty mask and tiny
probabilities: 3e-5 instead of the exact 0 at ``D = 6e-12``). Where the sample (class) has no
positive (``TP + FN = 0``), ``K`` does not depend on the prediction and its gradient is set to 0:
with subnormal sums (float32 ``D < 2**-126``, an empty mask with subnormal probabilities) ``1/D``
overflows and ``inf · 0`` would be NaN; both frameworks return the exact 0. With a positive,
``D >= min(t, b) Σ w y`` is not small (unless Tversky ``β = 0`` or the targets/weights are
themselves subnormal, which is below float32's accurate range in any formulation: ``p·y``
underflows).
"""
from __future__ import annotations

import numpy as np

from . import validation as v
from .cases import EXTREME_LOGITS, EXTREME_PROBS, rng_for
from .classification import _prediction_domain, _probability_hint
from .core import Case, Identity, InvalidCase, LossSpec, Param, PeerNote, register
from .numerics import mp, sigmoid
from .performance import KERAS_EAGER, SECOND_SIGMOID, TORCH_CONTRACT, TORCH_VALIDATION, note

FROM_LOGITS = Param(
    "from_logits", True, "a bool", v.boolean(),
    doc="True: the prediction is a logit and p = sigmoid(x) (stable path). False: the prediction "
        "is a probability in [0, 1] (exact 0 and 1 allowed; no clamp is needed, there is no log).")
SMOOTH = Param(
    "smooth", 1.0, "a finite float >= 0", v.real(lo=0.0),
    doc="Additive smoothing of numerator and denominator. It makes empty masks well defined "
        "(loss Σp/(Σp+s), 0 for an empty prediction); 0 gives the unsmoothed ratio, whose empty "
        "case is the family convention (loss 1, gradient 0).")


# =========================================================================== shared math
def _probs(prediction, from_logits):
    """``(p, q = 1 - p, dp/dx)`` in float64; ``q = σ(-x)`` for logits (no cancellation)."""
    x = np.asarray(prediction, np.float64)
    if from_logits:
        p, q = sigmoid(x), sigmoid(-x)
        return p, q, p * q
    return x, 1.0 - x, np.ones_like(x)


def _ratio(tp, fp, fn, coef):
    """``(ℓ = M/D, 1 - ℓ, D with 0 → 1, D == 0)``; ``1 - ℓ = (t TP + s)/D`` without cancellation."""
    a, b, t, e, s = coef
    k = t * tp + s
    m = a * fp + b * fn + e
    d = k + m
    zero = d == 0
    d_safe = np.where(zero, 1.0, d)
    loss = np.where(zero, 1.0, m / d_safe)
    keep = np.where(zero, 0.0, k / d_safe)
    return loss, keep, d_safe, zero


def _ratio_grad(y, loss, keep, d_safe, zero, coef):
    """``dℓ/dp`` elementwise (``loss``, ``keep``, ``d_safe``, ``zero`` broadcast against ``y``):
    ``(keep · (a (1-y) - b y) - ℓ t y) / D``, 0 where ``D == 0``."""
    a, b, t, _, _ = coef
    g = (keep * (a * (1.0 - y) - b * y) - loss * t * y) / d_safe
    return np.where(zero, 0.0, g)


def _rows(a, n):
    """``(N, M)`` view: every non-batch axis flattened (a 1-D input is one element per sample)."""
    return np.reshape(a, (n, -1))


def _per_sample_reference(prediction, target, coef, from_logits):
    p, q, _ = _probs(prediction, from_logits)
    y = np.asarray(target, np.float64)
    n = p.shape[0]
    tp = _rows(p * y, n).sum(axis=1)
    fp = _rows(p * (1.0 - y), n).sum(axis=1)
    fn = _rows(q * y, n).sum(axis=1)
    return _ratio(tp, fp, fn, coef)[0]


def _per_sample_vjp(prediction, target, cotangent, coef, from_logits):
    p, q, dp = _probs(prediction, from_logits)
    y = np.asarray(target, np.float64)
    n = p.shape[0]
    tp = _rows(p * y, n).sum(axis=1)
    fp = _rows(p * (1.0 - y), n).sum(axis=1)
    fn = _rows(q * y, n).sum(axis=1)
    loss, keep, d_safe, zero = _ratio(tp, fp, fn, coef)
    expand = (n,) + (1,) * (p.ndim - 1)
    cot = np.broadcast_to(np.asarray(cotangent, np.float64), (n,)).reshape(expand)
    g = _ratio_grad(y, loss.reshape(expand), keep.reshape(expand), d_safe.reshape(expand),
                    zero.reshape(expand), coef)
    return g * dp * cot


def _mp_probs(x, from_logits):
    if from_logits:
        return 1 / (1 + mp.exp(-x)), 1 / (1 + mp.exp(x))
    return x, 1 - x


def _mp_ratio(tp, fp, fn, coef):
    a, b, t, e, s = (mp.mpf(c) for c in coef)
    m = a * fp + b * fn + e
    d = t * tp + s + m
    return mp.mpf(1) if d == 0 else m / d


def _per_sample_exact(prediction, target, coef, from_logits):
    pred = np.asarray(prediction, dtype=object)
    tgt = np.asarray(target, np.float64)
    n = pred.shape[0]
    out = []
    for i in range(n):
        tp = fp = fn = mp.mpf(0)
        for x, yv in zip(np.reshape(pred[i], -1), np.reshape(tgt[i], -1)):
            p, q = _mp_probs(mp.mpf(x), from_logits)
            y = mp.mpf(float(yv))
            tp += p * y
            fp += p * (1 - y)
            fn += q * y
        out.append(_mp_ratio(tp, fp, fn, coef))
    return out


# ------------------------------------------------------------------ batch statistics
def _weights(sample_weight, n):
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)


def _pool(z, w, per_class):
    """Σ over the batch (weighted) and every axis but the class axis (the last one; a 1-D input
    has one class) → ``(C,)``; ``per_class=False`` pools everything → ``(1,)``."""
    z = z * w.reshape((-1,) + (1,) * (z.ndim - 1))
    c = z.shape[-1] if (per_class and z.ndim > 1) else 1
    return z.reshape(-1, c).sum(axis=0)


def _pooled_stats(prediction, target, sample_weight, per_class, from_logits):
    p, q, dp = _probs(prediction, from_logits)
    y = np.asarray(target, np.float64)
    w = _weights(sample_weight, p.shape[0])
    tp = _pool(p * y, w, per_class)
    fp = _pool(p * (1.0 - y), w, per_class)
    fn = _pool(q * y, w, per_class)
    return p, y, dp, w, tp, fp, fn


def _pooled_reference(prediction, target, sample_weight, coef, per_class, from_logits):
    _, _, _, _, tp, fp, fn = _pooled_stats(prediction, target, sample_weight, per_class, from_logits)
    return float(np.mean(_ratio(tp, fp, fn, coef)[0]))


def _pooled_vjp(prediction, target, cotangent, sample_weight, coef, per_class, from_logits):
    p, y, dp, w, tp, fp, fn = _pooled_stats(prediction, target, sample_weight, per_class, from_logits)
    loss, keep, d_safe, zero = _ratio(tp, fp, fn, coef)
    c = loss.size
    if c == 1:  # micro, or a 1-D input: scalars broadcast over every element
        loss, keep, d_safe, zero = loss[0], keep[0], d_safe[0], zero[0]
    g = _ratio_grad(y, loss, keep, d_safe, zero, coef)
    wb = w.reshape((-1,) + (1,) * (p.ndim - 1))
    return float(np.asarray(cotangent, np.float64)) * g * dp * wb / c


def _pooled_exact(prediction, target, sample_weight, coef, per_class, from_logits):
    pred = np.asarray(prediction, dtype=object)
    tgt = np.asarray(target, np.float64)
    n = pred.shape[0]
    w = _weights(sample_weight, n)
    c = pred.shape[-1] if (per_class and pred.ndim > 1) else 1
    stats = [[mp.mpf(0)] * 3 for _ in range(c)]
    for i in range(n):
        wi = mp.mpf(float(w[i]))
        flat_p = np.reshape(pred[i], -1)
        flat_y = np.reshape(tgt[i], -1)
        for k, (x, yv) in enumerate(zip(flat_p, flat_y)):
            p, q = _mp_probs(mp.mpf(x), from_logits)
            y = mp.mpf(float(yv))
            st = stats[k % c]
            st[0] += wi * p * y
            st[1] += wi * p * (1 - y)
            st[2] += wi * q * y
    return [mp.fsum(_mp_ratio(tp, fp, fn, coef) for tp, fp, fn in stats) / c]


# =========================================================================== cases
def _overlap_cases(name, params, tag, *, from_logits, batch=False):
    """Typical, extreme and edge cases (≤ 40 elements each) of an overlap loss."""
    rng = rng_for(name + tag)

    def pred(shape):
        if from_logits:
            return rng.normal(0.0, 3.0, size=shape)
        return rng.uniform(0.02, 0.98, size=shape)

    def hard(shape, frac=0.4):
        return (rng.uniform(size=shape) < frac).astype(np.float64)

    # segmentation-like (N, C=1, H, W) masks: a rectangle per image, logits that roughly agree
    mask = np.zeros((2, 1, 4, 4))
    mask[0, 0, 1:3, 0:3] = 1.0
    r, c = rng.integers(0, 2, size=2)
    mask[1, 0, r:r + 2, c + 1:c + 3] = 1.0
    seg_logits = 3.0 * (2.0 * mask - 1.0) + rng.normal(0.0, 1.5, size=mask.shape)
    seg_pred = seg_logits if from_logits else sigmoid(seg_logits)

    # confident predictions, right and wrong: every row has a positive and a negative
    y_sat = hard((4, 6), 0.5)
    y_sat[:, 0], y_sat[:, 1] = 1.0, 0.0
    sign = 2.0 * y_sat - 1.0
    if from_logits:
        sat = np.stack([89.0 * sign[0], 1e4 * sign[1], -40.0 * sign[2],
                        88.0 * np.where(rng.uniform(size=6) < 0.5, 1.0, -1.0)])
    else:
        sat = np.stack([y_sat[0], 1.0 - y_sat[1], np.where(y_sat[2] > 0, 1.0 - 1e-12, 1e-12),
                        np.where(y_sat[3] > 0, 1e-7, 1.0 - 1e-7)])

    values = np.asarray(EXTREME_LOGITS if from_logits else EXTREME_PROBS, np.float64)
    grid_x = np.repeat(values[:, None], 3, axis=1)
    grid_y = np.tile(np.array([0.0, 0.5, 1.0]), (len(values), 1))

    if from_logits:
        empty = np.stack([rng.normal(0.0, 3.0, 6), np.full(6, -1e4), np.full(6, -88.0),
                          np.array([-1e4, -20.0, -5.0, -1e4, -40.0, -89.0])])
        full = np.stack([rng.normal(0.0, 3.0, 6), np.full(6, 1e4), np.full(6, -1e4),
                         np.array([89.0, -89.0, 40.0, -40.0, 0.0, 20.0])])
        one_d = np.concatenate([rng.normal(0.0, 3.0, 3), [-1e4, 1e4, 0.0]])
    else:
        empty = np.stack([rng.uniform(0.02, 0.98, 6), np.zeros(6), np.full(6, 1e-12),
                          np.array([0.0, 0.5, 1.0, 0.0, 0.0, 1e-7])])
        full = np.stack([rng.uniform(0.02, 0.98, 6), np.ones(6), np.zeros(6),
                         np.array([1.0, 0.0, 0.5, 1.0 - 1e-7, 1e-7, 0.25])])
        one_d = np.concatenate([rng.uniform(0.02, 0.98, 3), [0.0, 1.0, 0.5]])

    # probabilities at the bottom of float32 (subnormal, flushed to 0 by TensorFlow on CPU): an
    # empty row and a row mixing a subnormal negative with positives
    if from_logits:
        tiny = np.array([[-100.0, -103.0, -1e4], [-100.0, 2.0, 5.0]])
    else:
        tiny = np.array([[2.0 ** -149, 2.0 ** -140, 0.0], [1e-40, 0.5, 1.0]])
    tiny_y = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])

    no_pos = hard((6, 4), 0.5)
    no_pos[:, 2] = 0.0
    no_pos[0, [0, 1, 3]] = 1.0

    cases = [
        Case(f"{tag}-typical-hard", "typical", params, pred((6, 5)), hard((6, 5)),
             rng.uniform(0.2, 2.0, size=6)),
        Case(f"{tag}-typical-soft", "typical", params, pred((3, 8)), rng.uniform(size=(3, 8))),
        Case(f"{tag}-typical-seg-4d", "typical", params, seg_pred, mask,
             note="segmentation-like (N, 1, H, W) masks"),
        Case(f"{tag}-extreme-grid", "extreme", params, grid_x, grid_y,
             note="every extreme prediction against targets 0, 0.5, 1"),
        Case(f"{tag}-extreme-saturated", "extreme", params, sat, y_sat,
             note="confident right (loss ~1e-39 or exactly 0) and confident wrong rows"),
        Case(f"{tag}-extreme-weights", "extreme", params, pred((3, 5)), hard((3, 5), 0.5),
             np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"),
        Case(f"{tag}-edge-batch1", "edge", params, pred((1, 8)), hard((1, 8), 0.5)),
        Case(f"{tag}-edge-empty-mask", "edge", params, empty, np.zeros((4, 6)),
             note="all-zero targets; rows with p exactly 0 (D = 0 when smooth = 0: the convention)"),
        Case(f"{tag}-edge-all-one", "edge", params, full, np.ones((4, 6))),
        Case(f"{tag}-edge-1d", "edge", params, one_d, np.array([1.0, 0.0, 0.5, 0.0, 1.0, 0.0]),
             note="1-D input: each element is a sample (one class)"),
        Case(f"{tag}-edge-zero-weights", "edge", params, pred((4, 5)), hard((4, 5), 0.5),
             np.array([0.0, 1.5, 0.0, 1.0])),
        Case(f"{tag}-edge-subnormal", "edge", params, tiny, tiny_y,
             note="float32 subnormal probabilities on an empty row: loss 1 / gradient 0 without "
                  "inf·0 = NaN (found by the property test)"),
        Case(f"{tag}-edge-class-no-positive", "edge", params, pred((6, 4)), no_pos,
             rng.uniform(0.5, 1.5, size=6), note="class 2 has no positive in the whole batch"),
    ]
    if batch:
        cases.append(Case(f"{tag}-edge-all-zero-weights", "edge", params, pred((3, 4)), hard((3, 4), 0.5),
                          np.zeros(3), note="every statistic is 0: loss 1, gradient 0"))
    return cases


def _common_invalid(extra=()):
    p = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    probs_bad = np.array([[0.5, 1.5, 0.2], [0.1, 0.0, -0.1]])
    return [
        InvalidCase("from-logits-not-bool", {"from_logits": 1}),
        InvalidCase("probabilities-out-of-range", {"from_logits": False}, probs_bad, t),
        InvalidCase("soft-target-above-one", {}, p, t + 0.25),
        *extra,
    ]


def _smooth_invalid():
    return [
        InvalidCase("smooth-negative", {"smooth": -1.0}),
        InvalidCase("smooth-nan", {"smooth": float("nan")}),
        InvalidCase("smooth-inf", {"smooth": float("inf")}),
        InvalidCase("smooth-bool", {"smooth": True}),
        InvalidCase("smooth-string", {"smooth": "auto"}),
    ]


EMPTY_TRAP = ("Empty masks (Σy = 0) are defined: with smooth > 0 the loss is Σp/(Σp+s) with a finite "
              "gradient; with smooth = 0 and Σy = Σp = 0 the family convention gives loss 1 and "
              "gradient 0 (the continuous extension), identical in torch and Keras.")
GRAD_CONVENTION = (
    "Smooth everywhere D > 0: dℓ/dp = ((1-ℓ)(a(1-y) - b y) - ℓ t y)/D (times σ(x)σ(-x) for logits), "
    "with 1-ℓ = (t TP + s)/D. Where D = 0 (no smoothing and an empty sample/class: Σy = Σp = 0, or "
    "Tversky α = 0 with Σy = 0) the loss is 1 and the gradient is exactly 0 (both frameworks select "
    "with where(D == 0, ...) on a safe denominator, so no NaN and no 1/0).")
STABILITY = (
    "ℓ = (a FP + b FN + e)/(t TP + a FP + b FN + e + s): the 1 - ratio subtraction is done "
    "symbolically, so near-perfect predictions keep full relative precision; 1 - p is σ(-x) for "
    "logits; no log, no clamp, no hidden epsilon. The ratio M/(K+M), K = t TP + s, has a custom "
    "gradient (K dM - M dK)/D² in both frameworks: plain autodiff forms g/D - g(M/D)/D, whose "
    "rounding error ~1e-16/D is large when D is small (smooth = 0, empty mask, tiny probabilities).")
DICE_PEERS = (
    PeerNote("keras.losses.Dice / keras.losses.dice", "every input",
             "probabilities only, axis=None pools the whole batch into one ratio (ours: one per "
             "sample, sample-weighted), and a hidden 1e-7 in the denominator only: an empty target "
             "with an empty prediction gives 1 - 0/1e-7 = 1 and a prediction p > 0 on an empty "
             "target has gradient 0; equal to ours (from_logits=False, smooth=0) up to that 1e-7 "
             "when axis covers the non-batch axes"),
    PeerNote("segmentation_models_pytorch DiceLoss(mode='binary')", "every batch; empty masks",
             "it pools each class (axis 1) over the batch and the pixels, clamps the denominator at "
             "eps, and multiplies the loss of a class with no positive pixel in the batch by 0, so a "
             "batch of empty masks gives loss 0 and no gradient; ours is one ratio per sample, and an "
             "empty mask with smooth > 0 still pushes the predictions down (loss Σp/(Σp+s))"),
)


# =========================================================================== soft_dice
def _dice_coef(smooth):
    return (1.0, 1.0, 2.0, 0.0, smooth)


_SOFT_DICE_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg", "large"), 2.4, SECOND_SIGMOID, TORCH_CONTRACT),
    note("keras", "keras eager*", ("cls", "seg", "large"), 1.9, SECOND_SIGMOID, KERAS_EAGER),
)

SOFT_DICE = register(LossSpec(
    name="soft_dice",
    family="overlap",
    summary="Soft Dice loss per sample (segmentation, imbalanced masks): 1 - soft Dice coefficient.",
    formula=(r"\ell = 1 - \frac{2\sum_j y_j p_j + s}{\sum_j y_j + \sum_j p_j + s}"
             r" = \frac{FP + FN}{2\,TP + FP + FN + s},\quad p = \sigma(x)"),
    params=(SMOOTH, FROM_LOGITS),
    reference=lambda prediction, target, *, smooth, from_logits: _per_sample_reference(
        prediction, target, _dice_coef(smooth), from_logits),
    reference_vjp=lambda prediction, target, cotangent, *, smooth, from_logits: _per_sample_vjp(
        prediction, target, cotangent, _dice_coef(smooth), from_logits),
    exact=lambda prediction, target, *, smooth, from_logits: _per_sample_exact(
        prediction, target, _dice_coef(smooth), from_logits),
    cases=lambda: [c for tag, params in [
        ("default", {}),
        ("smooth0", {"smooth": 0.0}),
        ("probs", {"from_logits": False}),
        ("probs-smooth0", {"smooth": 0.0, "from_logits": False}),
    ] for c in _overlap_cases("soft_dice", params, tag, from_logits=params.get("from_logits", True))],
    invalid_cases=lambda: _common_invalid(_smooth_invalid()),
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    grad_convention=GRAD_CONVENTION,
    stability=STABILITY,
    performance_notes=_SOFT_DICE_PERFORMANCE,
    peer_notes=DICE_PEERS,
    references=("Milletari et al., V-Net, 3DV 2016 (soft Dice)",
                "segmentation overlap losses (docs/problems.md): Airbus ship segmentation, masks collapse to all-zero"),
    trap=EMPTY_TRAP,
    torch_class="SoftDiceLoss",
    keras_class="SoftDice",
))


# =========================================================================== soft_jaccard
def _jaccard_coef(smooth):
    return (1.0, 1.0, 1.0, 0.0, smooth)


_SOFT_JACCARD_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg", "large"), 2.3, SECOND_SIGMOID, TORCH_CONTRACT),
)

SOFT_JACCARD = register(LossSpec(
    name="soft_jaccard",
    family="overlap",
    summary="Soft Jaccard (IoU) loss per sample: 1 - soft intersection over union, smoothed.",
    formula=(r"\ell = 1 - \frac{\sum_j y_j p_j + s}{\sum_j y_j + \sum_j p_j - \sum_j y_j p_j + s}"
             r" = \frac{FP + FN}{TP + FP + FN + s},\quad p = \sigma(x)"),
    params=(SMOOTH, FROM_LOGITS),
    reference=lambda prediction, target, *, smooth, from_logits: _per_sample_reference(
        prediction, target, _jaccard_coef(smooth), from_logits),
    reference_vjp=lambda prediction, target, cotangent, *, smooth, from_logits: _per_sample_vjp(
        prediction, target, cotangent, _jaccard_coef(smooth), from_logits),
    exact=lambda prediction, target, *, smooth, from_logits: _per_sample_exact(
        prediction, target, _jaccard_coef(smooth), from_logits),
    cases=lambda: [c for tag, params in [
        ("default", {}),
        ("smooth0", {"smooth": 0.0}),
        ("probs-smooth0.5", {"smooth": 0.5, "from_logits": False}),
    ] for c in _overlap_cases("soft_jaccard", params, tag, from_logits=params.get("from_logits", True))],
    invalid_cases=lambda: _common_invalid(_smooth_invalid()),
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    grad_convention=GRAD_CONVENTION,
    stability=STABILITY,
    performance_notes=_SOFT_JACCARD_PERFORMANCE,
    peer_notes=(
        PeerNote("iouloss of the segmentation problem (Keras)", "empty masks (Σy = 0) with a prediction that underflows",
                 "no smoothing: intersection/(sum - intersection) is 0/0 = NaN and poisons training; "
                 "ours is defined (smooth = 1 by default; smooth = 0 follows the family convention)"),
        PeerNote("segmentation_models_pytorch JaccardLoss", "every batch; empty masks",
                 "same aggregation as its DiceLoss: per class pooled over the batch, denominator "
                 "clamped at eps, classes without positives zeroed; ours is one ratio per sample"),
    ),
    references=("Rahman & Wang, Optimizing Intersection-Over-Union in Deep Neural Networks, ISVC 2016",
                "segmentation overlap losses (docs/problems.md): iouloss of the Airbus ship segmentation notebook"),
    trap=("The segmentation problem's iouloss has no smoothing: an empty mask with an underflowed prediction is 0/0 "
          "= NaN. Ours: smooth = 1 by default, and the smooth = 0 empty case is loss 1, gradient 0."),
    torch_class="SoftJaccardLoss",
    keras_class="SoftJaccard",
))


# =========================================================================== tversky
def _tversky_coef(alpha, beta, smooth):
    return (alpha, beta, 1.0, 0.0, smooth)


_TVERSKY_PERFORMANCE = (
)

TVERSKY = register(LossSpec(
    name="tversky",
    family="overlap",
    summary="Tversky loss per sample (Salehi et al. 2017): α weights false positives, β false negatives.",
    formula=(r"\ell = 1 - \frac{TP + s}{TP + \alpha\,FP + \beta\,FN + s}"
             r" = \frac{\alpha\,FP + \beta\,FN}{TP + \alpha\,FP + \beta\,FN + s},\ "
             r"TP = \sum_j p_j y_j,\ FP = \sum_j p_j (1-y_j),\ FN = \sum_j (1-p_j) y_j"),
    params=(
        Param("alpha", 0.5, "a finite float >= 0", v.real(lo=0.0),
              doc="Weight of false positives (Σ p (1-y)); raise it for precision."),
        Param("beta", 0.5, "a finite float >= 0", v.real(lo=0.0),
              doc="Weight of false negatives (Σ (1-p) y); raise it for recall on rare positives. "
                  "alpha = beta = 0 is degenerate (loss 0 whenever TP + smooth > 0); beta = 0 wants "
                  "smooth > 0 (an all-zero prediction on a non-empty mask is 0/0 otherwise)."),
        SMOOTH,
        FROM_LOGITS,
    ),
    reference=lambda prediction, target, *, alpha, beta, smooth, from_logits: _per_sample_reference(
        prediction, target, _tversky_coef(alpha, beta, smooth), from_logits),
    reference_vjp=lambda prediction, target, cotangent, *, alpha, beta, smooth, from_logits: _per_sample_vjp(
        prediction, target, cotangent, _tversky_coef(alpha, beta, smooth), from_logits),
    exact=lambda prediction, target, *, alpha, beta, smooth, from_logits: _per_sample_exact(
        prediction, target, _tversky_coef(alpha, beta, smooth), from_logits),
    cases=lambda: [c for tag, params in [
        ("default", {}),
        ("a0.3-b0.7", {"alpha": 0.3, "beta": 0.7}),
        ("a0.7-b0.3-smooth0", {"alpha": 0.7, "beta": 0.3, "smooth": 0.0}),
        ("a0-b1-smooth0", {"alpha": 0.0, "beta": 1.0, "smooth": 0.0}),
        ("probs-a0.2-b0.8", {"alpha": 0.2, "beta": 0.8, "from_logits": False}),
    ] for c in _overlap_cases("tversky", params, tag, from_logits=params.get("from_logits", True))],
    invalid_cases=lambda: _common_invalid(_smooth_invalid() + [
        InvalidCase("alpha-negative", {"alpha": -0.1}),
        InvalidCase("beta-negative", {"beta": -1.0}),
        InvalidCase("alpha-nan", {"alpha": float("nan")}),
        InvalidCase("beta-inf", {"beta": float("inf")}),
        InvalidCase("alpha-string", {"alpha": "0.5"}),
    ]),
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    grad_convention=GRAD_CONVENTION,
    stability=STABILITY,
    identities=(
        Identity({"alpha": 0.5, "beta": 0.5, "smooth": 1.0}, "soft_dice", {"smooth": 2.0},
                 "α = β = ½: (½FP + ½FN)/(TP + ½FP + ½FN + s) = (FP + FN)/(2TP + FP + FN + 2s), "
                 "i.e. tversky(½, ½, smooth=s) = soft_dice(smooth=2s)"),
        Identity({"alpha": 0.5, "beta": 0.5, "smooth": 0.25, "from_logits": False}, "soft_dice",
                 {"smooth": 0.5, "from_logits": False}, "the same on probabilities"),
        Identity({"alpha": 1.0, "beta": 1.0, "smooth": 1.0}, "soft_jaccard", {"smooth": 1.0},
                 "α = β = 1 is the soft Jaccard loss with the same smoothing"),
    ),
    performance_notes=_TVERSKY_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.Tversky / keras.losses.tversky (Keras 3)", "alpha != beta",
                 "its source computes fp = Σ(1 - y_pred) y_true (that is FN) and fn = Σ y_pred (1 - y_true) "
                 "(that is FP), then TP/(TP + α fp + β fn + 1e-7): α weights false NEGATIVES, contrary "
                 "to its docstring and to Salehi et al.; ours follows the paper (α on FP). It also takes "
                 "probabilities only and pools the whole batch (axis=None)."),
    ),
    references=("Salehi, Erdogmus, Gholipour, Tversky loss function for image segmentation using 3D "
                "fully convolutional deep networks, MLMI 2017",),
    trap=("α and β are easy to swap (Keras 3's tversky puts α on false negatives). Ours: α·FP + β·FN "
          "as in the paper; α = β = ½ with smooth s equals soft_dice with smooth 2s (declared identity)."),
    torch_class="TverskyLoss",
    keras_class="Tversky",
))


# =========================================================================== soft_fbeta
AVERAGES = ("samples", "macro", "micro")


def _fbeta_coef(beta, epsilon):
    b2 = beta * beta
    return (1.0, b2, 1.0 + b2, epsilon, 0.0)


def _fbeta_reference(prediction, target, sample_weight=None, *, beta, epsilon, average, from_logits, sync):
    coef = _fbeta_coef(beta, epsilon)
    if average == "samples":
        return _per_sample_reference(prediction, target, coef, from_logits)
    return _pooled_reference(prediction, target, sample_weight, coef, average == "macro", from_logits)


def _fbeta_vjp(prediction, target, cotangent, sample_weight=None, *, beta, epsilon, average, from_logits,
               sync):
    coef = _fbeta_coef(beta, epsilon)
    if average == "samples":
        return _per_sample_vjp(prediction, target, cotangent, coef, from_logits)
    return _pooled_vjp(prediction, target, cotangent, sample_weight, coef, average == "macro", from_logits)


def _fbeta_exact(prediction, target, sample_weight=None, *, beta, epsilon, average, from_logits, sync):
    coef = _fbeta_coef(beta, epsilon)
    if average == "samples":
        return _per_sample_exact(prediction, target, coef, from_logits)
    return _pooled_exact(prediction, target, sample_weight, coef, average == "macro", from_logits)


def _fbeta_cases():
    out = []
    for tag, params in [
        ("default", {}),
        ("b2-eps0", {"beta": 2.0, "epsilon": 0.0}),
        ("macro", {"average": "macro"}),
        ("micro", {"average": "micro"}),
        ("macro-b0.5-eps0-sync", {"average": "macro", "beta": 0.5, "epsilon": 0.0, "sync": True}),
        ("micro-probs-b2", {"average": "micro", "beta": 2.0, "from_logits": False}),
        ("macro-probs-eps0", {"average": "macro", "epsilon": 0.0, "from_logits": False}),
    ]:
        batch = params.get("average", "samples") != "samples"
        out += _overlap_cases("soft_fbeta", params, tag, from_logits=params.get("from_logits", True),
                              batch=batch)
    return out


def _fbeta_invalid():
    p = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    return _common_invalid([
        InvalidCase("beta-zero", {"beta": 0.0}),
        InvalidCase("beta-negative", {"beta": -2.0}),
        InvalidCase("beta-inf", {"beta": float("inf")}),
        InvalidCase("epsilon-negative", {"epsilon": -1e-7}),
        InvalidCase("epsilon-nan", {"epsilon": float("nan")}),
        InvalidCase("average-weighted", {"average": "weighted"}),
        InvalidCase("average-none", {"average": None}),
        InvalidCase("sync-not-bool", {"sync": "yes"}),
        InvalidCase("macro-reduction-sum", {"average": "macro", "reduction": "sum"}),
        InvalidCase("micro-reduction-none", {"average": "micro", "reduction": "none"}),
        InvalidCase("macro-sample-weight-negative", {"average": "macro"}, p, t, np.array([1.0, -0.5])),
        InvalidCase("micro-shape-mismatch", {"average": "micro"}, p, t[:, :2]),
    ])


_SOFT_FBETA_PERFORMANCE = (
)

SOFT_FBETA = register(LossSpec(
    name="soft_fbeta",
    family="overlap",
    summary=("Soft F-beta loss (1 - F_β on probability sums) per sample, or as one batch statistic "
             "per class (macro) or pooled (micro); β > 1 favours recall."),
    formula=(r"\ell = 1 - \frac{(1+\beta^2)\,TP}{(1+\beta^2)\,TP + \beta^2 FN + FP + \epsilon}"
             r" = \frac{\beta^2 FN + FP + \epsilon}{(1+\beta^2)\,TP + \beta^2 FN + FP + \epsilon},\ "
             r"TP = \sum p y,\ FP = \sum p(1-y),\ FN = \sum (1-p) y"),
    params=(
        Param("beta", 1.0, "a finite float > 0", v.real(lo=0.0, lo_open=True),
              doc="Recall is β times as important as precision (F_β of van Rijsbergen)."),
        Param("epsilon", 1e-7, "a finite float >= 0", v.real(lo=0.0),
              doc="Added to numerator and denominator of the loss ratio (only there: no clamp of F). "
                  "0 is allowed: the empty case then follows the family convention (loss 1, gradient 0)."),
        Param("average", "samples", "one of 'samples', 'macro', 'micro'", v.choice(*AVERAGES),
              doc="'samples': one F per sample over all its non-batch axes (a per-sample loss, every "
                  "reduction). 'macro': one F per class (last axis) pooled over the batch and the other "
                  "axes, then the mean over classes. 'micro': everything pooled. macro/micro are batch "
                  "statistics: one value per batch, reduction 'mean' only, sample_weight multiplies each "
                  "sample's contribution to TP, FP and FN."),
        FROM_LOGITS,
        Param("sync", False, "a bool", v.boolean(),
              doc="macro/micro: sum TP, FP, FN over data-parallel replicas (torch.distributed / "
                  "tf.distribute, with gradients) before forming the ratio, so the loss equals the "
                  "single-process loss on the global batch. No effect for average='samples' (a "
                  "per-sample loss needs no cross-replica statistic) or outside distributed runs."),
    ),
    reference=_fbeta_reference,
    reference_vjp=_fbeta_vjp,
    exact=_fbeta_exact,
    cases=_fbeta_cases,
    invalid_cases=_fbeta_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    batch_statistic=lambda params: params.get("average", "samples") != "samples",
    grad_convention=GRAD_CONVENTION + (
        " macro: a class with no positive in the whole batch has TP = FN = 0, so its F is 0 and its "
        "loss term is exactly 1 with gradient 0 (its false positives are not penalized by F_β); the "
        "mean over classes still counts it."),
    stability=STABILITY + " No clamp of F to [ε, 1-ε] (a clamp zeroes the gradient where it binds).",
    identities=(
        Identity({"beta": 1.0, "average": "samples", "epsilon": 0.0}, "soft_dice", {"smooth": 0.0},
                 "F_1 is the Dice coefficient: (FN + FP)/(2TP + FN + FP) on both sides"),
        Identity({"beta": 2.0, "average": "samples", "epsilon": 0.0}, "tversky",
                 {"alpha": 0.2, "beta": 0.8, "smooth": 0.0},
                 "dividing by 1 + β²: F_β loss = Tversky with α = 1/(1+β²), β_T = β²/(1+β²), smooth 0"),
    ),
    performance_notes=_SOFT_FBETA_PERFORMANCE,
    peer_notes=(
        PeerNote("soft F-beta of the segmentation problem (torch)", "beta != 1",
                 "it names Σ(1-p) y 'FP' and Σ p (1-y) 'FN', so β² multiplies the false positives: it "
                 "computes F_{1/β}, not F_β; it then clamps F to [ε, 1-ε], which zeroes the gradient of "
                 "every sample whose F reaches the clamp. Ours: β² FN, no clamp."),
        PeerNote("keras.metrics.FBetaScore / torchmetrics FBetaScore", "every input",
                 "metrics of thresholded predictions (no gradient). On hard 0/1 probabilities "
                 "(from_logits=False, epsilon=0) our loss is 1 - their F_β for the same average, except "
                 "for classes with no positive and no prediction, where each library has its own "
                 "zero_division value (ours: F = 0, loss 1)"),
    ),
    references=("van Rijsbergen, Information Retrieval (1979), F_β",
                "segmentation overlap losses (docs/problems.md): How to use F-score as error function to train neural networks?"),
    trap=("The segmentation problem's torch soft F-beta swaps FP and FN (it computes F_{1/β}) and clamps F to [ε, 1-ε], "
          "which zeroes gradients. Ours: β² weights FN, ε only in the ratio, no clamp."),
    torch_class="SoftFBetaLoss",
    keras_class="SoftFBeta",
))

__all__ = ["SOFT_DICE", "SOFT_JACCARD", "TVERSKY", "SOFT_FBETA", "AVERAGES"]
