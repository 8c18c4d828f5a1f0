"""Divergences between distributions over classes: ``kl_divergence``.

Layout: prediction and target ``(N, ..., C)``, the distribution on the LAST axis (torch users whose
tensors are NCHW move it last: ``x.movedim(1, -1)``). The divergence of a row is its sum over the
classes (``class_reduction="mean"``: divided by C); the per-sample loss is the mean over the rows.

Both sides may be given as probabilities or log-probabilities (``log_prediction``, ``log_target``):
torch's ``KLDivLoss`` takes a log-probability input, Keras' ``KLDivergence`` probabilities. Rows are
not required to sum to 1 (neither peer asks it, nothing is renormalized).

Numerics: ``0 log 0 = 0`` (a zero target probability contributes nothing, and no NaN reaches the
gradient); a zero predicted probability uses the library's one clamp ``log(max(q, 2**-126))``
(:mod:`spec.numerics`). ``epsilon > 0`` is Keras' clip instead: both distributions clipped to
``[epsilon, 1]`` before the log (``keras.losses.KLDivergence`` is ``epsilon=1e-7``).
"""
from __future__ import annotations

import math

import numpy as np

from . import messages
from . import validation as v
from .cases import rng_for
from .core import Case, InvalidCase, LossSpec, Param, ParamError, PeerNote, register
from .multiclass import class_axis_missing
from .numerics import P_MIN, mean_nonbatch, mp, spread_cotangent
from .performance import KERAS_EAGER, note

__all__ = ["KL_DIVERGENCE"]

KERAS_EPSILON = 1e-7


# =========================================================================== params and checks
def _check_epsilon(value):
    eps = v.real(lo=0.0, hi=1.0, hi_open=True)(value)
    if 0.0 < eps < P_MIN:
        raise ParamError
    return eps


def _size(shape) -> int:
    return 1 if any(d is None for d in shape) else math.prod(int(d) for d in shape)


def _check_class_axis(loss, params, shape):
    if len(shape) < 2:
        raise ValueError(class_axis_missing(loss, shape))


def _target_domain(params):
    return (-math.inf, 0.0) if params.get("log_target") else (0.0, 1.0)


def _prediction_domain(params):
    return (-math.inf, 0.0) if params.get("log_prediction") else (0.0, 1.0)


def _prediction_hint(params) -> str:
    if params.get("log_prediction"):
        return "; with log_prediction=True the prediction is log-probabilities (log_softmax outputs)"
    return ("; the prediction is probabilities (pass log_prediction=True for log-probabilities such as "
            "log_softmax outputs, torch's KLDivLoss input)")


# =========================================================================== numerics
def _parts(prediction, target, log_prediction, log_target, epsilon):
    """``(value, d value / d prediction)`` per element, float64."""
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target, np.float64)
    if epsilon > 0.0:  # Keras: p' = clip(p, ε, 1), q' = clip(q, ε, 1), p' log(p'/q')
        p = np.clip(np.exp(y) if log_target else y, epsilon, 1.0)
        q_raw = np.exp(x) if log_prediction else x
        q = np.clip(q_raw, epsilon, 1.0)
        inside = (q_raw >= epsilon) & (q_raw <= 1.0)
        dq = np.where(inside, -p / q, 0.0) * (q_raw if log_prediction else 1.0)
        return p * np.log(p / q), dq
    p = np.exp(y) if log_target else y
    if log_prediction:
        log_q, dlog_q = x, 1.0
    else:
        kept = x >= P_MIN
        log_q = np.log(np.maximum(x, P_MIN))
        dlog_q = np.where(kept, 1.0 / np.maximum(x, P_MIN), 0.0)
    if log_target:
        value = p * (y - log_q)
    elif log_prediction:
        value = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - log_q), 0.0)
    else:  # one rounding in the ratio, then the log: y log(y / q) keeps its digits where y ≈ q
        value = p * np.log(np.where(p > 0, p, 1.0) / np.maximum(x, P_MIN))
    return value, -p * dlog_q


def _kl_reference(prediction, target, *, log_prediction, log_target, epsilon, class_reduction):
    value, _ = _parts(prediction, target, log_prediction, log_target, epsilon)
    rows = value.sum(axis=-1) if class_reduction == "sum" else value.mean(axis=-1)
    return mean_nonbatch(rows)


def _kl_vjp(prediction, target, cotangent, *, log_prediction, log_target, epsilon, class_reduction):
    x = np.asarray(prediction, np.float64)
    _, grad = _parts(x, target, log_prediction, log_target, epsilon)
    if class_reduction == "mean":
        grad = grad / x.shape[-1]
    return grad * spread_cotangent(cotangent, x.shape[:-1])[..., None]


def _mp_element(x, y, log_prediction, log_target, epsilon):
    y = mp.mpf(float(y))
    if epsilon > 0.0:
        eps = mp.mpf(epsilon)
        p = min(max(mp.exp(y) if log_target else y, eps), mp.mpf(1))
        q = min(max(mp.exp(x) if log_prediction else x, eps), mp.mpf(1))
        return p * mp.log(p / q)
    p = mp.exp(y) if log_target else y
    if p == 0:
        return mp.mpf(0)
    log_q = x if log_prediction else mp.log(max(x, mp.ldexp(1, -126)))
    return p * ((y if log_target else mp.log(p)) - log_q)


def _kl_exact(prediction, target, *, log_prediction, log_target, epsilon, class_reduction):
    pred = np.asarray(prediction, dtype=object)  # mpf elements (the finite differences' steps) or floats
    tgt = np.asarray(target, np.float64)
    c = pred.shape[-1]
    out = []
    for i in range(pred.shape[0]):
        xs, ys = pred[i].reshape(-1, c), tgt[i].reshape(-1, c)
        rows = [mp.fsum(_mp_element(mp.mpf(x), y, log_prediction, log_target, epsilon) for x, y in zip(xr, yr))
                for xr, yr in zip(xs, ys)]
        if class_reduction == "mean":
            rows = [r / c for r in rows]
        out.append(mp.fsum(rows) / len(rows))
    return out


# =========================================================================== cases
def _kl_cases():
    name = "kl_divergence"
    c = 4
    rng = rng_for(name)

    def rows(shape, concentration=1.0):
        return rng.dirichlet(np.full(c, concentration), size=shape)

    zeros_q = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [1e-12, 1.0 - 1e-12, 0.0, 0.0],
                        [1e-40, 0.25, 0.25, 0.5], [0.25, 0.25, 0.25, 0.25]])
    zeros_y = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.5, 0.0], [0.5, 0.5, 0.0, 0.0],
                        [0.5, 0.0, 0.25, 0.25], [0.0, 0.0, 0.0, 1.0]])
    q, y = rows(6), rows(6)
    keras = {"epsilon": KERAS_EPSILON}
    log_in = {"log_prediction": True}
    log_both = {"log_prediction": True, "log_target": True}
    tiny_q = np.array([[1e-9, 0.5, 0.5 - 1e-9, 0.0], [0.9, 0.1, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    tiny_y = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.5, 0.5], [1e-9, 0.0, 1.0 - 1e-9, 0.0]])
    far = np.array([[-1e4, -20.0, -0.5, -1e-3], [-88.0, -89.0, -1.0, -0.25], [0.0, -30.0, -2.0, -3.0]])
    return [
        Case("typical", "typical", {}, q, y, rng.uniform(0.2, 2.0, size=6)),
        Case("typical-3d", "typical", {}, rows((2, 3)), rows((2, 3)),
             note="per-position rows (e.g. pixels): the per-sample loss is their mean"),
        Case("extreme-zeros", "extreme", {}, zeros_q, zeros_y,
             note="zero target probabilities (0 log 0 = 0) and zero / tiny predicted ones (log(max(q, 2**-126)): "
                  "a finite value where the true divergence is infinite, gradient 0 below the clamp)"),
        Case("extreme-weights", "extreme", {}, rows(3), rows(3), np.array([1e6, 1e-6, 0.0]),
             note="huge, tiny and zero sample weights"),
        Case("edge-equal", "edge", {}, y[:3], y[:3].copy(), note="q = p: divergence 0, gradient -p/q = -1"),
        Case("edge-one-hot-targets", "edge", {}, rows(4), np.eye(c)[rng.integers(0, c, size=4)],
             note="one-hot p: the divergence is -log q_true (the cross-entropy)"),
        Case("edge-batch1", "edge", {}, rows(1), rows(1)),
        Case("keras-typical", "typical", keras, rows(5), rows(5, 0.3),
             note="Keras' clip: zero targets count as 1e-7 (ε log(ε/q) < 0 each)"),
        Case("keras-extreme-tiny", "extreme", keras, tiny_q, tiny_y,
             note="probabilities below ε = 1e-7 on both sides, clipped to ε (gradient 0 there)"),
        Case("log-typical", "typical", log_in, np.log(rows(6)), rows(6), rng.uniform(0.2, 2.0, size=6),
             note="log-probabilities in (torch's KLDivLoss input)"),
        Case("log-typical-3d", "typical", log_in, np.log(rows((2, 3))), rows((2, 3))),
        Case("log-extreme-far", "extreme", log_in, far, zeros_y[:3],
             note="log q down to -1e4 (q = 0 in any float): finite, gradient -p"),
        Case("log-both-typical", "typical", log_both, np.log(rows(6)), np.log(rows(6))),
        Case("log-both-extreme-far", "extreme", log_both, far, far[::-1].copy(),
             note="log p down to -1e4: p = 0, its terms vanish"),
        Case("log-target-typical", "typical", {"log_target": True}, rows(4), np.log(rows(4))),
        Case("log-class-mean-typical", "typical", {"log_prediction": True, "class_reduction": "mean"},
             np.log(rows(5)), rows(5), note="each row's divergence divided by C: torch's reduction='mean'"),
    ]


def _kl_invalid():
    q = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    y = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    return [
        InvalidCase("epsilon-negative", {"epsilon": -1e-7}),
        InvalidCase("epsilon-one", {"epsilon": 1.0}),
        InvalidCase("epsilon-subnormal", {"epsilon": 1e-45}),
        InvalidCase("log-prediction-not-bool", {"log_prediction": 1}),
        InvalidCase("class-reduction-unknown", {"class_reduction": "batchmean"}),
        InvalidCase("no-class-axis", {}, q[0], y[0]),
        InvalidCase("target-above-one", {}, q, y * 2.0),
        InvalidCase("target-log-probabilities-positive", {"log_target": True}, q, np.log(y + 1e-3) + 1.0),
        InvalidCase("prediction-log-probabilities-as-probabilities", {}, np.log(q), y),
        InvalidCase("prediction-probabilities-above-zero-as-log", {"log_prediction": True}, q, y),
    ]


# =========================================================================== the entry
LOG_PREDICTION = Param(
    "log_prediction", False, "a bool", v.boolean(),
    doc="False: the prediction is probabilities q in [0, 1] (Keras). True: log-probabilities log q <= 0, e.g. "
        "log_softmax outputs (torch's KLDivLoss input).")
LOG_TARGET = Param(
    "log_target", False, "a bool", v.boolean(),
    doc="False: the target is probabilities p in [0, 1]. True: log-probabilities log p <= 0 (torch's "
        "KLDivLoss(log_target=True)).")
EPSILON = Param(
    "epsilon", 0.0, "0.0, or a float in [2**-126, 1)", _check_epsilon,
    doc="0: the true divergence (0 log 0 = 0, log(max(q, 2**-126))). > 0: Keras' clip, both distributions "
        "clipped to [epsilon, 1] before p log(p/q); keras.losses.KLDivergence is epsilon=1e-7.")
CLASS_REDUCTION = Param(
    "class_reduction", "sum", "one of 'sum', 'mean'", v.choice("sum", "mean"),
    doc="'sum': a row's divergence is its sum over the classes (Keras, torch's reduction='batchmean'). 'mean': "
        "divided by C, so the 'mean' reduction averages every element (torch's reduction='mean').")

_KL_DIVERGENCE_PERFORMANCE = (
    note("keras", "keras eager*", ("cls", "seg"), 2.8,
         "the fastest peer is the plain tf xlogy(p, p) - p log q and a mean (~6 ops; keras.losses.KLDivergence "
         "clips both distributions to [1e-7, 1], a different loss); ours is ~7 elementwise ops (r = p / "
         "max(q, 2**-126), xlogy(p, r): p log(p / q), which does not cancel for q near p as the peer's difference "
         "of two logs does), the class sum, the per-sample mean and the reduction (the bfloat16 rows, 2.4-2.6, are the "
         "ones far over)", KERAS_EAGER),
)

KL_DIVERGENCE = register(LossSpec(
    name="kl_divergence",
    family="divergence",
    summary="KL(p ‖ q) = Σ_c p_c log(p_c / q_c) over the last axis, from probabilities or log-probabilities.",
    formula=(r"\ell = \frac{1}{R}\sum_r \sum_{c=1}^{C} p_{rc} \left(\log p_{rc} - \log q_{rc}\right),\quad "
             r"0 \log 0 = 0,\ \log q = \log\max(q, 2^{-126});\ \epsilon > 0:\ p, q \to \mathrm{clip}(\cdot, "
             r"\epsilon, 1)"),
    params=(LOG_PREDICTION, LOG_TARGET, EPSILON, CLASS_REDUCTION),
    reference=_kl_reference,
    reference_vjp=_kl_vjp,
    exact=_kl_exact,
    cases=_kl_cases,
    invalid_cases=_kl_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_prediction_hint,
    target_domain=None,  # [0, 1], or (-inf, 0] with log_target: target_domain_of
    target_domain_of=_target_domain,
    target_text="probabilities in [0, 1] (log-probabilities <= 0 with log_target=True)",
    check_shapes=_check_class_axis,
    grad_convention=("d/dq_c = -p_c / q_c per row (/ R, / C with class_reduction='mean'); through the clamp "
                     "log(max(q, 2**-126)): 0 below 2**-126 (ties take the identity branch). log_prediction: "
                     "d/d log q_c = -p_c. epsilon > 0: -p'_c / q'_c on the closed interval epsilon <= q <= 1 (as "
                     "tf.clip_by_value and our torch clip), 0 outside. The target gets no gradient."),
    stability=("0 log 0 = 0 without a NaN in the gradient (the log's argument is 1 where p = 0); probabilities "
               "use p log(p / max(q, 2**-126)) (one rounding in the ratio: no cancellation of log p - log q "
               "where p ≈ q); log-probabilities take F.kl_div's xlogy(p, p) - p log q, and exp(log p) (log p - "
               "log q) for log targets. Finite for every valid input."),
    performance_notes=_KL_DIVERGENCE_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.KLDivergence", "zero or tiny probabilities (< 1e-7) on either side",
                 "Keras clips p and q to [1e-7, 1]: a zero target probability contributes 1e-7 log(1e-7 / q) "
                 "(negative: the loss of a one-hot p equal to q is about -1.6e-6 · (C - 1), not 0) and q < 1e-7 "
                 "caps the value with gradient 0. epsilon=1e-7 reproduces it; the default is the true "
                 "divergence (0 log 0 = 0, q clamped only at 2**-126)"),
        PeerNote("keras.losses.KLDivergence", "float64 inputs; rank > 2 inputs",
                 "equal in float32 (epsilon=1e-7); Keras computes in its floatx (float32) unless built with "
                 "dtype='float64', ours keeps float64; its reduction='none' keeps every axis but the last, ours "
                 "one value per sample"),
        PeerNote("torch.nn.KLDivLoss(reduction='batchmean', log_target=)", "rank > 2 inputs",
                 "takes log q (log_prediction=True, log_target= the same); equal on (N, C) inputs. Its "
                 "'batchmean' divides the sum over every element by N, so on (N, ..., C) it is R times ours (R "
                 "positions per sample: ours averages the rows of a sample); its class axis may be anywhere, "
                 "ours is the last"),
        PeerNote("torch.nn.KLDivLoss(reduction='mean')", "every input",
                 "the mean over every element, = ours with class_reduction='mean' (reduction 'mean'); torch "
                 "warns that it is not the divergence and that a future release makes 'mean' behave as "
                 "'batchmean' (then: class_reduction='sum'). reduction='sum' = ours 'sum' on (N, C) (R times ours "
                 "beyond); reduction='none' is elementwise, ours one value per sample"),
        PeerNote("torch.nn.KLDivLoss", "a probability (not log) input",
                 "torch computes p (log p - input) whatever the input is: passing probabilities gives a wrong, "
                 "possibly negative loss without an error; ours rejects a prediction > 0 with "
                 "log_prediction=True and a negative one without it"),
    ),
    references=("S. Kullback, R. A. Leibler, On Information and Sufficiency (1951); Keras KLDivergence, torch "
                "KLDivLoss; G. Hinton et al., Distilling the Knowledge in a Neural Network (2015)",),
    trap=("torch's KLDivLoss wants log q and its default reduction='mean' divides by C too (use 'batchmean'); "
          "Keras' KLDivergence clips both sides to [1e-7, 1], so zero target probabilities still count."),
    torch_class="KLDivergenceLoss",
    keras_class="KLDivergence",
))
