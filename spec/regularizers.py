"""Single-input penalties and count-penalised losses: ``count_penalty``, ``mse_count_penalty``,
``cce_count_penalty``, ``kl_sparsity``; and the validation of the ``ThresholdActivation`` layer.

Seeds: 000 (how to minimize element counts above a threshold: a count added to MSE / to a softmax
cross-entropy, and a clip-to-[0, t] activation layer) and 004 (sparse autoencoder: KL divergence
between a target firing rate and the batch-mean activation of each coding unit).

The count and its relaxation (one rule for the three count entries)
-------------------------------------------------------------------
``count(x) = Σ_j c(x_j)`` with ``c(x) = 1[x > t]`` for ``temperature = 0`` (the count-above-a-threshold problem, docs/problems.md; strict
``>``, so ``x = t`` is not counted) and ``c(x) = σ((x - t) / τ)`` for ``temperature = τ > 0``.
The hard count is piecewise constant: its gradient is 0 everywhere it exists. Added to a loss, it
changes the reported value and never the weights — as a training objective it does nothing (the
count-above-a-threshold problem presents it as a way to *minimize* the count). Both frameworks return an exact-zero gradient
for it (the output stays on the autodiff graph: ``cast(x > t) + 0·sign(x)``, ``sign' = 0``) and
``temperature > 0`` gives the sigmoid relaxation, which does move the weights (``τ → 0`` recovers
the hard count). Comparisons are made in the compute dtype: in float32 the threshold is rounded
to float32 first, as every framework does with a Python float (the reference on float32 inputs
compares with the float64 threshold: the two agree for every threshold whose float32 rounding is
not above it, e.g. 0.25, 0.5, 0.9).
"""
from __future__ import annotations

import numpy as np

from . import messages
from . import validation as v
from .cases import EXTREME_LOGITS, rng_for, softmax_head_inputs
from .core import REQUIRED, Case, Identity, InvalidCase, LossSpec, Param, ParamError, PeerNote, register
from .multiclass import (
    _check_class_axis,
    _check_dense_values,
    _dce,
    _exact_rows,
    _log_q,
    _mp_log_q,
    _prob_grid,
    _row_cotangent,
    _softmax_rows,
    _tie_free_grid,
)
from .multiclass import _prediction_domain as _softmax_domain
from .multiclass import _probability_hint as _softmax_hint
from .numerics import mean_nonbatch, mp, sigmoid, spread_cotangent
from .performance import COMPILED_CALL, COUNT_ON_GRAPH, KERAS_EAGER, TORCH_CONTRACT, note

# =========================================================================== messages / layer
ACTIVATION_THRESHOLD_DOMAIN = "a finite float > 0"


def check_activation_threshold(value, layer: str = "ThresholdActivation") -> float:
    """The ``ThresholdActivation`` layers' check (torch and Keras): a finite ``threshold > 0``,
    returned as a Python float; otherwise ``ValueError`` with the shared text."""
    try:
        return v.real(lo=0.0, lo_open=True)(value)
    except ParamError:
        raise ValueError(messages.invalid_param(layer, "threshold", value, ACTIVATION_THRESHOLD_DOMAIN)) from None


def _activation_hint(params) -> str:
    return ("; kl_sparsity takes activations in [0, 1] (e.g. after a sigmoid): their batch mean is "
            "a firing rate")


# =========================================================================== parameters
THRESHOLD = Param(
    "threshold", REQUIRED, "a finite float", v.real(), required=True,
    doc="Elements strictly above it are counted. Required: there is no sensible default.")
FACTOR = Param(
    "factor", 1.0, "a finite float >= 0", v.real(lo=0.0),
    doc="Weight of the count (regularization_factor in the count-above-a-threshold problem).")
TEMPERATURE = Param(
    "temperature", 0.0, "a finite float >= 0", v.real(lo=0.0),
    doc="0: the hard count 1[x > t] (the count-above-a-threshold problem), whose gradient is exactly 0: it cannot train "
        "anything. > 0: the sigmoid relaxation σ((x - t)/temperature), which can (smaller is closer "
        "to the count).")
COUNT_PARAMS = (THRESHOLD, FACTOR, TEMPERATURE)


# =========================================================================== shared math
def _sum_nonbatch(e):
    """Per-sample sum over every non-batch axis (a 1-D input is one element per sample)."""
    e = np.asarray(e, np.float64)
    return e if e.ndim == 1 else e.reshape(e.shape[0], -1).sum(axis=1)


def _count_elem(x, threshold, temperature):
    """``(c(x), c'(x))`` elementwise, float64."""
    x = np.asarray(x, np.float64)
    if temperature == 0.0:
        return (x > threshold).astype(np.float64), np.zeros_like(x)
    z = (x - threshold) / temperature
    return sigmoid(z), sigmoid(z) * sigmoid(-z) / temperature


def _mp_count(x, threshold, temperature):
    if temperature == 0.0:
        return mp.mpf(1) if x > mp.mpf(threshold) else mp.mpf(0)
    return 1 / (1 + mp.exp(-(x - mp.mpf(threshold)) / mp.mpf(temperature)))


def _spread_sum_cotangent(cotangent, shape):
    """The cotangent of :func:`_sum_nonbatch`: each element gets ``c_i``."""
    return np.asarray(cotangent, np.float64).reshape((shape[0],) + (1,) * (len(shape) - 1))


COUNT_GRAD = ("temperature = 0: the count is piecewise constant and its gradient is exactly 0 "
              "everywhere (x = t included), in both frameworks. temperature = τ > 0: "
              "d c/dx = σ(z) σ(-z) / τ, z = (x - t)/τ, smooth.")
COUNT_TRAP = ("The count-above-a-threshold problem's count cast(y_pred > threshold) has zero gradient everywhere: added to a "
              "loss it changes the reported value but never the weights, so as a training objective "
              "it does nothing. temperature > 0 gives the sigmoid relaxation, which does.")
COUNT_STABILITY = ("σ((x - t)/τ) by the frameworks' stable sigmoid (exp(log σ) in the reference): "
                   "no overflow for any finite x and τ; the hard count is an exact comparison.")
COUNT_PEER = PeerNote(
    "count of the count-above-a-threshold problem (tf.greater + cast)", "every input",
    "equal values for temperature = 0 (for 2-D inputs; it sums over the last axis only, ours over "
    "every non-batch axis); its gradient is None in TensorFlow, exactly 0 here")


# =========================================================================== count_penalty
def _count_reference(prediction, target, *, threshold, factor, temperature):
    c, _ = _count_elem(prediction, threshold, temperature)
    return factor * _sum_nonbatch(c)


def _count_vjp(prediction, target, cotangent, *, threshold, factor, temperature):
    _, dc = _count_elem(prediction, threshold, temperature)
    return factor * dc * _spread_sum_cotangent(cotangent, np.shape(prediction))


def _count_exact(prediction, target, *, threshold, factor, temperature):
    pred = np.asarray(prediction, dtype=object)
    rows = pred.reshape(pred.shape[0], -1) if pred.ndim > 1 else pred.reshape(-1, 1)
    return [mp.mpf(factor) * mp.fsum(_mp_count(mp.mpf(x), threshold, temperature) for x in row)
            for row in rows]


def _threshold_cases(name, params, tag, *, scale=1.5):
    """Cases of an unbounded input counted against ``params["threshold"]`` (≤ 40 elements each)."""
    rng = rng_for(name + tag)
    t = params["threshold"]
    smooth_at_t = params.get("temperature", 0.0) > 0.0
    values = np.asarray(EXTREME_LOGITS, np.float64)
    at_t = np.array([[t, t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)],
                     [t - 1e-8, t + 1e-8, t, t + 1.0]])
    return [
        Case(f"{tag}-typical", "typical", params, t + rng.normal(0.0, scale, size=(6, 5)), None),
        Case(f"{tag}-typical-3d", "typical", params, t + rng.normal(0.0, scale, size=(2, 3, 4)), None,
             note="the count runs over every non-batch axis"),
        Case(f"{tag}-extreme-grid", "extreme", params, np.stack([values, values + t, -values]), None,
             smooth=smooth_at_t, note="±1e4, the float32 exp edge ±88/89, around the threshold (t itself included)"),
        Case(f"{tag}-edge-at-threshold", "edge", params, at_t, None, smooth=smooth_at_t,
             note="x = t exactly (not counted: strict >) and its float64 neighbours, which float32 "
                  "rounds to t"),
        Case(f"{tag}-edge-batch1", "edge", params, t + rng.normal(0.0, scale, size=(1, 5)), None),
        Case(f"{tag}-edge-1d", "edge", params, t + rng.normal(0.0, scale, size=(5,)), None,
             note="1-D input: each element is a sample"),
        Case(f"{tag}-edge-none-above", "edge", params, t - rng.uniform(0.5, 3.0, size=(3, 4)), None),
        Case(f"{tag}-edge-all-above", "edge", params, t + rng.uniform(0.5, 3.0, size=(3, 4)), None),
    ]


def _single_input_common_invalid(params, good, *, domain_bad=None):
    """Invalid calls of a single-input entry (the common two-input ones do not apply)."""
    nan_p = np.array(good, copy=True)
    nan_p.reshape(-1)[0] = np.nan
    inf_p = np.array(good, copy=True)
    inf_p.reshape(-1)[-1] = np.inf
    out = [
        InvalidCase("reduction-sum", dict(params, reduction="sum")),
        InvalidCase("reduction-none", dict(params, reduction="none")),
        InvalidCase("reduction-unknown", dict(params, reduction="avg")),
        InvalidCase("validate-not-bool", dict(params, validate="yes")),
        InvalidCase("param-unknown", dict(params, weights=1.0)),
        InvalidCase("no-batch-axis", params, np.float64(0.5) * np.ones(())),
        InvalidCase("prediction-nan", params, nan_p),
        InvalidCase("prediction-inf", params, inf_p),
    ]
    if domain_bad is not None:
        out.append(InvalidCase("prediction-out-of-range", params, domain_bad))
    return out


def _count_param_invalid(base):
    return [
        InvalidCase("threshold-missing", {k: v for k, v in base.items() if k != "threshold"}),
        InvalidCase("threshold-nan", dict(base, threshold=float("nan"))),
        InvalidCase("threshold-string", dict(base, threshold="0.5")),
        InvalidCase("threshold-bool", dict(base, threshold=True)),
        InvalidCase("factor-negative", dict(base, factor=-0.1)),
        InvalidCase("factor-inf", dict(base, factor=float("inf"))),
        InvalidCase("temperature-negative", dict(base, temperature=-1.0)),
        InvalidCase("temperature-nan", dict(base, temperature=float("nan"))),
    ]


XLA_CALL = (
    "under XLA the loss is one fused loop, but a call into the compiled function from eager TensorFlow keeps "
    "a fixed cost (~0.3-0.5 ms on this CPU: argument conversion, the executable lookup, the output "
    "allocation) against a forward-only peer that is three memory-bound passes (a compare, a cast and a sum: "
    "1.3 ms at `seg`)")


_COUNT_PENALTY_PERFORMANCE = (
    note("torch", "torch compile*", ("cls",), 0.7, COUNT_ON_GRAPH, COMPILED_CALL + " (0.63 at `cls` forward, "
         "run of 2026-12-05)"),
    note("keras", "keras jit", ("seg",), 0.8, COUNT_ON_GRAPH, XLA_CALL + " (0.77 at `seg` forward: 0.99 against "
         "the eager peer's 1.29 ms, run of 2026-12-05)"),
)


COUNT_PENALTY = register(LossSpec(
    name="count_penalty",
    family="regularizers",
    performance_notes=_COUNT_PENALTY_PERFORMANCE,
    summary=("factor × mean over samples of the number of elements above a threshold (hard, "
             "gradient 0), or of its sigmoid relaxation (temperature > 0); a single-input penalty."),
    formula=(r"P = \frac{\mathrm{factor}}{N}\sum_i \sum_j c(x_{ij}),\quad c(x) = \mathbb{1}[x > t]"
             r"\ (\tau = 0),\quad c(x) = \sigma\!\left(\frac{x - t}{\tau}\right)\ (\tau > 0)"),
    params=COUNT_PARAMS,
    reference=_count_reference,
    reference_vjp=_count_vjp,
    exact=_count_exact,
    cases=lambda: [c for tag, params in [
        ("t0.5", {"threshold": 0.5}),
        ("t0.5-f0.1-T0.25", {"threshold": 0.5, "factor": 0.1, "temperature": 0.25}),
        ("t-1-f2-T2", {"threshold": -1.0, "factor": 2.0, "temperature": 2.0}),
    ] for c in _threshold_cases("count_penalty", params, tag)],
    invalid_cases=lambda: _count_param_invalid({"threshold": 0.5}) + _single_input_common_invalid(
        {"threshold": 0.5}, np.array([[0.1, 0.7], [1.2, -0.3]])),
    target_domain=None,
    single_input=True,
    grad_convention=COUNT_GRAD,
    stability=COUNT_STABILITY,
    peer_notes=(COUNT_PEER,),
    references=("count above a threshold (docs/problems.md): How do I minimize element counts above a threshold with Keras?",),
    trap=COUNT_TRAP,
    torch_class="CountPenalty",
    keras_class="CountPenalty",
))


# =========================================================================== mse_count_penalty
def _mse_count_reference(prediction, target, *, threshold, factor, temperature):
    x = np.asarray(prediction, np.float64)
    c, _ = _count_elem(x, threshold, temperature)
    return mean_nonbatch((np.asarray(target, np.float64) - x) ** 2) + factor * _sum_nonbatch(c)


def _mse_count_vjp(prediction, target, cotangent, *, threshold, factor, temperature):
    x = np.asarray(prediction, np.float64)
    _, dc = _count_elem(x, threshold, temperature)
    shape = np.shape(x)
    return (2.0 * (x - np.asarray(target, np.float64)) * spread_cotangent(cotangent, shape)
            + factor * dc * _spread_sum_cotangent(cotangent, shape))


def _mse_count_exact(prediction, target, *, threshold, factor, temperature):
    pred = np.asarray(prediction, dtype=object)
    tgt = np.asarray(target, np.float64)
    n = pred.shape[0]
    out = []
    for xs, ys in zip(pred.reshape(n, -1), tgt.reshape(n, -1)):
        xs = [mp.mpf(x) for x in xs]
        mse = mp.fsum((mp.mpf(float(y)) - x) ** 2 for x, y in zip(xs, ys)) / len(xs)
        out.append(mse + mp.mpf(factor) * mp.fsum(_mp_count(x, threshold, temperature) for x in xs))
    return out


def _mse_count_cases():
    out = []
    for tag, params in [
        ("t0.5", {"threshold": 0.5}),
        ("t0.5-f0.1-T0.25", {"threshold": 0.5, "factor": 0.1, "temperature": 0.25}),
        ("t2-f0", {"threshold": 2.0, "factor": 0.0}),
    ]:
        rng = rng_for("mse_count_penalty-targets" + tag)
        for case in _threshold_cases("mse_count_penalty", params, tag):
            x = case.prediction
            # real targets near the predictions (large errors of the extreme grid stay finite in float32)
            y = np.round(np.clip(x, -1e4, 1e4) + rng.normal(0.0, 1.0, size=x.shape), 3)
            w = rng.uniform(0.2, 2.0, size=x.shape[0]) if case.kind == "typical" and x.ndim == 2 else None
            out.append(Case(case.id, case.kind, params, x, y, w, smooth=case.smooth, note=case.note))
    return out


_MSE_COUNT_PENALTY_PERFORMANCE = (
    note("keras", "keras jit", ("seg",), 0.75, COUNT_ON_GRAPH, XLA_CALL + " and a squared error (0.69 at `seg` "
         "forward: 1.82 against the eager peer's 2.62 ms, run of 2026-12-05)"),
)

MSE_COUNT_PENALTY = register(LossSpec(
    name="mse_count_penalty",
    nonfinite_propagates=('prediction', 'target'),
    family="regularizers",
    summary=("Mean squared error plus factor × the number of predictions above a threshold per "
             "sample (CountBasedRegularizationLoss of the count-above-a-threshold problem), hard or sigmoid-relaxed."),
    formula=(r"\ell = \frac{1}{M}\sum_j (y_j - \hat y_j)^2 + \mathrm{factor}\sum_j c(\hat y_j),\quad "
             r"c(x) = \mathbb{1}[x > t]\ (\tau = 0),\ \sigma((x - t)/\tau)\ (\tau > 0)"),
    params=COUNT_PARAMS,
    reference=_mse_count_reference,
    reference_vjp=_mse_count_vjp,
    exact=_mse_count_exact,
    cases=_mse_count_cases,
    invalid_cases=lambda: _count_param_invalid({"threshold": 0.5}),
    target_domain=None,
    grad_convention="MSE: 2(ŷ - y)/M. Count: " + COUNT_GRAD,
    stability="Plain squares; " + COUNT_STABILITY,
    identities=(
        Identity({"threshold": 0.5, "factor": 0.0}, "mean_squared_error", {},
                 "factor = 0 leaves the mean squared error"),
        Identity({"threshold": 0.5, "factor": 0.0, "temperature": 1.0}, "mean_squared_error", {},
                 "also with the relaxation"),
    ),
    performance_notes=_MSE_COUNT_PENALTY_PERFORMANCE,
    peer_notes=(
        PeerNote("CountBasedRegularizationLoss of the count problem (Keras)", "every input",
                 "it adds factor × the batch mean of the counts to every sample's MSE, so its "
                 "reduction='mean' value equals ours (2-D inputs); with sample weights or "
                 "reduction='sum' it adds the batch count to each sample, ours adds each sample's "
                 "own count"),
        COUNT_PEER,
    ),
    references=("count above a threshold (docs/problems.md): first recipe, CountBasedRegularizationLoss",),
    trap=COUNT_TRAP,
    torch_class="MSECountPenaltyLoss",
    keras_class="MSECountPenalty",
))


# =========================================================================== cce_count_penalty
def _cce_count_parts(x, from_logits):
    """``(log q, p)``: the log-probabilities and the probabilities that are counted."""
    log_q, _ = _log_q(x, from_logits)
    return log_q, (np.exp(log_q) if from_logits else x)


def _cce_count_reference(prediction, target, *, threshold, factor, temperature, from_logits):
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target, np.float64)
    log_q, p = _cce_count_parts(x, from_logits)
    c, _ = _count_elem(p, threshold, temperature)
    return mean_nonbatch(-(y * log_q).sum(axis=-1) + factor * c.sum(axis=-1))


def _cce_count_vjp(prediction, target, cotangent, *, threshold, factor, temperature, from_logits):
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target, np.float64)
    _, p = _cce_count_parts(x, from_logits)
    _, dc = _count_elem(p, threshold, temperature)
    s = factor * dc  # d(count term)/dp
    if from_logits:  # through the softmax: J^T s = p ⊙ (s - Σ_c p_c s_c)
        s = p * (s - (p * s).sum(axis=-1, keepdims=True))
    return (_dce(x, y, from_logits) + s) * _row_cotangent(cotangent, x.shape)


def _cce_count_exact(prediction, target, *, threshold, factor, temperature, from_logits):
    def row_loss(xs, ys):
        log_q = _mp_log_q(xs, from_logits)
        probs = [mp.exp(lq) for lq in log_q] if from_logits else xs
        ce = -mp.fsum(mp.mpf(float(y)) * lq for y, lq in zip(ys, log_q))
        return ce + mp.mpf(factor) * mp.fsum(_mp_count(p, threshold, temperature) for p in probs)

    return _exact_rows(prediction, target, row_loss)


def _cce_count_cases():
    """One-hot targets, classes last. With logits and the hard count, no softmax probability lies
    within 1e-5 of the threshold (a count of probabilities computed in float32 would otherwise
    depend on their last bit); probability inputs may sit exactly on it (0.25: not counted)."""
    out = []
    c = 4
    for tag, params in [
        ("t0.9", {"threshold": 0.9}),
        ("t0.5-f0.5-T0.05", {"threshold": 0.5, "factor": 0.5, "temperature": 0.05}),
        ("probs-t0.9", {"threshold": 0.9, "from_logits": False}),
        ("probs-t0.25-f2-T0.1", {"threshold": 0.25, "factor": 2.0, "temperature": 0.1, "from_logits": False}),
    ]:
        from_logits = params.get("from_logits", True)
        rng = rng_for("cce_count_penalty" + tag)

        def pred(shape):
            # probabilities from softmax(N(0, 1)) stay >~ 1e-3: finite differences of log p are accurate
            return rng.normal(0.0, 3.0, size=shape) if from_logits else _softmax_rows(rng.normal(0.0, 1.0, size=shape))

        def hard(shape):
            return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]

        grid = _tie_free_grid(c) if from_logits else _prob_grid(c)
        cases = [
            Case(f"{tag}-typical", "typical", params, pred((6, c)), hard((6, c)), rng.uniform(0.2, 2.0, size=6)),
            Case(f"{tag}-typical-3d", "typical", params, pred((2, 3, c)), hard((2, 3, c)),
                 note="per-position rows: the per-sample loss is their mean"),
            Case(f"{tag}-extreme-grid", "extreme", params, grid, np.eye(c)[np.arange(grid.shape[0]) % c]),
            Case(f"{tag}-extreme-weights", "extreme", params, pred((3, c)), hard((3, c)),
                 np.array([1e6, 1e-6, 0.0])),
            Case(f"{tag}-edge-batch1", "edge", params, pred((1, c)), hard((1, c))),
            Case(f"{tag}-edge-4d", "edge", params, pred((2, 2, 2, c)), hard((2, 2, 2, c))),
        ]
        if from_logits and params.get("temperature", 0.0) == 0.0:
            for case in cases:
                _, p = _cce_count_parts(case.prediction, from_logits)
                assert np.abs(p - params["threshold"]).min() > 1e-5, (tag, case.id)
        out += cases
    return out


def _cce_count_invalid():
    p, t, sigmoid_head = softmax_head_inputs()
    base = {"threshold": 0.9}
    return _count_param_invalid(base) + [
        InvalidCase("from-logits-not-bool", dict(base, from_logits=1)),
        InvalidCase("no-class-axis", base, np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 0.0])),
        InvalidCase("one-class", base, np.array([[0.5], [-1.0]]), np.array([[1.0], [1.0]])),
        InvalidCase("probabilities-out-of-range", dict(base, from_logits=False), np.array([[1.2, -0.2, 0.0]]),
                    np.array([[1.0, 0.0, 0.0]])),
        InvalidCase("probability-rows-not-summing-to-one", dict(base, from_logits=False), sigmoid_head, t),
        InvalidCase("target-shape-sparse-labels", base, p, np.array([0.0, 1.0])),
    ]


_CCE_COUNT_PENALTY_PERFORMANCE = (
    note("torch", "torch compile*", ("cls",), 0.9, COUNT_ON_GRAPH, COMPILED_CALL),
)

CCE_COUNT_PENALTY = register(LossSpec(
    name="cce_count_penalty",
    nonfinite_propagates=('prediction',),
    family="regularizers",
    summary=("Softmax cross-entropy plus factor × the number of classes whose probability is above "
             "a threshold (sparse_prediction_loss of the count-above-a-threshold problem), hard or sigmoid-relaxed; classes last."),
    formula=(r"\ell = \frac{1}{R}\sum_r\Big[-\sum_c y_{rc}\log p_{rc} + \mathrm{factor}\sum_c c(p_{rc})\Big],"
             r"\ p_r = \mathrm{softmax}(x_r),\ c(p) = \mathbb{1}[p > t]\ (\tau = 0),\ "
             r"\sigma((p - t)/\tau)\ (\tau > 0)"),
    params=COUNT_PARAMS + (Param(
        "from_logits", True, "a bool", v.boolean(),
        doc="True: logits (log-softmax for the cross-entropy, the count runs over softmax(x)). False: "
            "softmax probabilities whose rows sum to 1; log(max(p, 2**-126))."),),
    reference=_cce_count_reference,
    reference_vjp=_cce_count_vjp,
    exact=_cce_count_exact,
    cases=_cce_count_cases,
    invalid_cases=_cce_count_invalid,
    prediction_domain=_softmax_domain,
    prediction_domain_hint=_softmax_hint,
    check_shapes=_check_class_axis,
    check_values=_check_dense_values,
    grad_convention=(
        "Cross-entropy: softmax(x) Σ_c y_c - y (logits) or -y/p through the clamp (probabilities), per "
        "row, divided by the number of rows R. Count over the probabilities: " + COUNT_GRAD
        + " For logits the relaxed count's gradient goes through the softmax: p ⊙ (s - Σ_c p_c s_c)."),
    stability=("log-softmax (log-sum-exp) for the cross-entropy and exp(log-softmax) for the counted "
               "probabilities; the count is never taken on logits. " + COUNT_STABILITY),
    identities=(
        Identity({"threshold": 0.9, "factor": 0.0}, "categorical_crossentropy", {},
                 "factor = 0 leaves the categorical cross-entropy (logits)"),
        Identity({"threshold": 0.25, "factor": 0.0, "temperature": 0.1, "from_logits": False},
                 "categorical_crossentropy", {"from_logits": False}, "the same on probabilities"),
    ),
    performance_notes=_CCE_COUNT_PENALTY_PERFORMANCE,
    peer_notes=(
        PeerNote("sparse_prediction_loss of the count problem (Keras)", "every input",
                 "on a softmax output it equals ours with from_logits=False (its crossentropy clips p at "
                 "1e-7, ours at 2**-126); it adds the batch mean of the counts to every sample"),
        COUNT_PEER,
    ),
    references=("count above a threshold (docs/problems.md): third recipe, sparse_prediction_loss",),
    trap=COUNT_TRAP + " The count runs over probabilities (softmax of the logits), never over logits.",
    torch_class="CCECountPenaltyLoss",
    keras_class="CCECountPenalty",
))


# =========================================================================== kl_sparsity
def _kl_stats(prediction, sample_weight):
    """``(w (N,), q (M,), q̄ (M,), Σw)``: the weighted batch mean of each unit and of its
    complement ``1 - a`` (exact for ``a`` near 1, so ``1 - q`` keeps its digits for saturated units)."""
    a = np.asarray(prediction, np.float64)
    a = a.reshape(a.shape[0], -1)
    w = np.ones(a.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    count = float(w.sum())
    safe = count if count > 0 else 1.0
    return w, (w[:, None] * a).sum(axis=0) / safe, (w[:, None] * (1.0 - a)).sum(axis=0) / safe, count


def _kl_reference(prediction, _target, sample_weight=None, *, target, weight, epsilon, sync):
    _, q, qc, count = _kl_stats(prediction, sample_weight)
    if count == 0:  # no sample carries weight: no statistic, no penalty
        return 0.0
    q, qc = np.clip(q, epsilon, 1.0 - epsilon), np.clip(qc, epsilon, 1.0 - epsilon)
    rho = target
    # log1p of the relative gaps: each term keeps its digits near q = ρ (where the KL is ~(q-ρ)²)
    with np.errstate(divide="ignore"):
        kl = rho * np.log1p((rho - q) / q) + (1.0 - rho) * np.log1p((q - rho) / qc)
    return float(weight * kl.sum())


def _kl_vjp(prediction, _target, cotangent, sample_weight=None, *, target, weight, epsilon, sync):
    w, q, qc, count = _kl_stats(prediction, sample_weight)
    if count == 0:
        return np.zeros(np.shape(prediction))
    lo, hi = epsilon, 1.0 - epsilon

    def inside(m):  # the clamp's bounds take the identity branch
        return (m >= lo) & (m <= hi)

    q_in, qc_in = inside(q), inside(qc)
    q, qc = np.clip(q, lo, hi), np.clip(qc, lo, hi)
    with np.errstate(divide="ignore"):  # ε = 0 and q ∈ {0, 1}: the true, infinite gradient
        dq = np.where(q_in, -target / q, 0.0) + np.where(qc_in, (1.0 - target) / qc, 0.0)
    g = float(np.asarray(cotangent, np.float64)) * weight * dq[None, :] * (w / count)[:, None]
    return g.reshape(np.shape(prediction))


def _kl_exact(prediction, _target, sample_weight=None, *, target, weight, epsilon, sync):
    pred = np.asarray(prediction, dtype=object)
    n = pred.shape[0]
    a = pred.reshape(n, -1)
    w = [mp.mpf(1)] * n if sample_weight is None else [mp.mpf(float(x)) for x in sample_weight]
    count = mp.fsum(w)
    if count == 0:
        return [mp.mpf(0)]
    rho, lo, hi = mp.mpf(target), mp.mpf(epsilon), mp.mpf(1.0 - epsilon)
    total = mp.mpf(0)
    for j in range(a.shape[1]):
        q = mp.fsum(w[i] * mp.mpf(a[i, j]) for i in range(n)) / count
        q, qc = min(max(q, lo), hi), min(max(1 - q, lo), hi)
        total += rho * mp.log(rho / q) + (1 - rho) * mp.log((1 - rho) / qc)
    return [mp.mpf(weight) * total]


def _kl_cases():
    out = []
    for tag, params in [
        ("default", {}),
        ("w0.2", {"weight": 0.2}),
        ("t0.25-eps0", {"target": 0.25, "epsilon": 0.0}),
        ("t0.05-eps2^-10-sync", {"target": 0.05, "epsilon": 2.0 ** -10, "sync": True}),
    ]:
        rng = rng_for("kl_sparsity" + tag)
        full = validate_kl(params)
        eps, rho = full["epsilon"], full["target"]

        def acts(shape):
            return sigmoid(rng.normal(-1.0, 1.5, size=shape))

        if eps > 0:  # dead and saturated units: q = 0 and q = 1 are clamped (gradient 0 there)
            ends = np.array([[0.0, 1.0, 1e-12, 1.0, 0.3], [0.0, 1.0, 0.0, 1.0 - 1e-12, 0.6],
                             [0.0, 1.0, 1e-30, 1.0, 0.2], [0.0, 1.0, 0.0, 1.0, 0.9]])
            edge_note = "q = 0 and q = 1 exactly, and within 1e-12 of them: clamped to [ε, 1 - ε]"
            boundary = np.array([[eps, 1.0 - eps, 0.5, rho]])
            cases_b = [Case(f"{tag}-edge-at-clamp", "edge", params, boundary, None, smooth=False,
                            note="batch means exactly at ε and 1 - ε: the identity branch (gradient passes)")]
        else:  # no clamp: q ∈ (0, 1) keeps the KL finite
            ends = np.array([[1e-12, 1.0 - 1e-6, 0.5], [1e-9, 1.0 - 1e-6, 0.5], [2e-12, 1.0 - 2e-6, 0.25]])
            edge_note = "batch means 1e-12 and 1 - 1e-6 without a clamp: large, finite KL and gradient"
            cases_b = []
        out += [
            Case(f"{tag}-typical", "typical", params, acts((8, 5)), None),
            Case(f"{tag}-typical-3d", "typical", params, acts((4, 2, 3)), None,
                 note="units are every non-batch position"),
            Case(f"{tag}-extreme-ends", "extreme", params, ends, None, note=edge_note),
            Case(f"{tag}-edge-batch1", "edge", params, acts((1, 6)), None, note="q is the activation itself"),
            Case(f"{tag}-edge-1d", "edge", params, acts((6,)), None, note="1-D: one unit, each element a sample"),
            Case(f"{tag}-edge-at-target", "edge", params, np.full((4, 3), rho), None,
                 note="q = ρ for every unit: KL 0 and gradient 0"),
            *cases_b,
        ]
    return out


def validate_kl(params):
    return KL_SPARSITY.validate_params(params)


def _kl_invalid():
    good = np.array([[0.1, 0.7], [0.2, 0.4]])
    return [
        InvalidCase("target-zero", {"target": 0.0}),
        InvalidCase("target-one", {"target": 1.0}),
        InvalidCase("target-nan", {"target": float("nan")}),
        InvalidCase("target-string", {"target": "0.1"}),
        InvalidCase("weight-negative", {"weight": -0.2}),
        InvalidCase("epsilon-half", {"epsilon": 0.5}),
        InvalidCase("epsilon-negative", {"epsilon": -1e-7}),
        InvalidCase("sync-not-bool", {"sync": 1}),
        InvalidCase("relu-activations", {}, np.array([[0.0, 2.5], [0.3, 0.0]])),
        *_single_input_common_invalid({}, good, domain_bad=np.array([[0.1, -0.2], [0.2, 0.4]])),
    ]


#: why kl_sparsity is ~2x the KL-sparsity problem's kl_divergence (its performance notes)
KL_STATISTICS = (
    "the KL-sparsity problem's code computes ρ log(ρ/q) + (1-ρ) log((1-ρ)/(1-q)) from q = mean(a) alone; ours also sums 1 - a "
    "(1 - q as a difference loses the digits of saturated units, which the log(1 - q) term needs), clamps to "
    "[ε, 1-ε] with the identity gradient at the bounds and handles weighted, empty and synced batches: ~12 "
    "ops on (units,) vectors against ~5, and at this benchmark's shapes the unit count is the input's whole "
    "non-batch size (30 at `cls`, 65,536 at `seg`), so those vector ops are input-sized")


_KL_SPARSITY_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg", "large"), 2.7, KL_STATISTICS, TORCH_CONTRACT),
    note("keras", "keras eager*", ("cls", "seg", "large"), 2.5, KL_STATISTICS, KERAS_EAGER),
)

KL_SPARSITY = register(LossSpec(
    name="kl_sparsity",
    family="regularizers",
    summary=("Sparse-autoencoder penalty: weight × Σ_j KL(ρ ‖ q_j), q_j the batch-mean activation of "
             "unit j clamped to [ε, 1 - ε]; one value per batch, single input."),
    formula=(r"P = w \sum_j \left[\rho\log\frac{\rho}{q_j} + (1-\rho)\log\frac{1-\rho}{\bar q_j}\right],\ "
             r"q_j = \mathrm{clip}\!\left(\frac{\sum_i s_i a_{ij}}{\sum_i s_i}, \epsilon, 1-\epsilon\right),\ "
             r"\bar q_j = \mathrm{clip}\!\left(\frac{\sum_i s_i (1 - a_{ij})}{\sum_i s_i}, \epsilon, 1-\epsilon\right)"),
    params=(
        Param("target", 0.1, "a float in (0, 1)", v.real(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
              doc="Target firing rate ρ (sparsity_target in the KL-sparsity problem)."),
        Param("weight", 1.0, "a finite float >= 0", v.real(lo=0.0),
              doc="Multiplies the summed KL (sparsity_weight in the KL-sparsity problem)."),
        Param("epsilon", 1e-7, "a float in [0, 0.5)", v.real(lo=0.0, hi=0.5, hi_open=True),
              doc="The batch means are clamped to [ε, 1 - ε], so dead (q = 0) and saturated (q = 1) "
                  "units give a finite penalty with gradient 0 (the KL-sparsity problem's code: NaN/inf). 0: no clamp, the "
                  "true KL, infinite at q ∈ {0, 1}."),
        Param("sync", False, "a bool", v.boolean(),
              doc="Sum the per-unit batch sums (of a and of 1 - a) and the sample count over data-parallel replicas "
                  "(torch.distributed / tf.distribute, with gradients) before dividing: q_j is then "
                  "the global-batch mean and the penalty equals the single-process one."),
    ),
    reference=_kl_reference,
    reference_vjp=_kl_vjp,
    exact=_kl_exact,
    cases=_kl_cases,
    invalid_cases=_kl_invalid,
    prediction_domain=lambda params: (0.0, 1.0),
    prediction_domain_hint=_activation_hint,
    target_domain=None,
    batch_statistic=True,
    single_input=True,
    grad_convention=(
        "dP/da_ij = w (-ρ/q_j + (1-ρ)/q̄_j) · s_i/Σs = w (q_j - ρ)/(q_j (1 - q_j)) · s_i/Σs, with "
        "q̄_j = 1 - q_j the batch mean of 1 - a; each of q_j, q̄_j is clamped to [ε, 1 - ε] and its term "
        "passes the gradient inside the clamp, bounds included (a mean exactly at ε or 1 - ε takes "
        "the identity branch, as tf.clip_by_value does; torch_impl writes it out, since torch.clamp's "
        "gradient at a bound changed in torch 2.14), and 0 where the clamp binds (a mean strictly "
        "outside [ε, 1 - ε]). In float32 the bounds are ε and 1 - ε rounded to float32. All sample weights 0: no "
        "statistic, penalty 0, gradient 0. ε = 0 and q_j ∈ {0, 1}: the true KL, +inf, with an "
        "infinite gradient."),
    stability=(
        "1 - q is the batch mean of 1 - a (exact for a near 1), not 1 minus the mean: saturated units "
        "keep the relative accuracy of dead ones (float32: 1 - q = 1e-6 from a mean of a would be off "
        "by 6%). The clamp keeps both logs finite. Frameworks: ρ(log ρ - log q) + (1-ρ)(log(1-ρ) - "
        "log q̄), exactly 0 at q = ρ, whose autodiff is -ρ/q + (1-ρ)/q̄ (±inf, not NaN, at an unclamped "
        "0 or 1); the reference uses log1p of the relative gaps, full relative accuracy down to "
        "|q - ρ| ~ 1e-12 (the frameworks' absolute error is ~1 ulp of the terms)."),
    performance_notes=_KL_SPARSITY_PERFORMANCE,
    peer_notes=(
        PeerNote("kl_divergence of the KL-sparsity problem (TensorFlow 1)", "q_j ∈ {0, 1} or activations outside [0, 1]",
                 "inf / NaN (log of 0 or of a negative ratio); ours clamps q and rejects activations "
                 "outside [0, 1] with a ValueError"),
        PeerNote("keras activity_regularizer=KLSparsity(...)", "Keras layers",
                 "Keras divides an activity regularizer's value by the batch size (its convention for "
                 "sum-type regularizers such as L1): the model loss gains P / N, not P"),
    ),
    references=("KL sparsity for autoencoders (docs/problems.md): Géron, sparse autoencoders, KL sparsity loss",
                "Ng, Sparse autoencoder, CS294A lecture notes (2011)"),
    trap=("The KL-sparsity problem's KL is NaN/inf when a unit's batch mean is 0 or 1 (dead or saturated units) and "
          "for activations outside [0, 1] (e.g. ReLU): we clamp q to [ε, 1 - ε] (gradient 0 for a mean "
          "strictly outside, passed at the bounds themselves) and reject activations outside [0, 1]."),
    torch_class="KLSparsity",
    keras_class="KLSparsity",
))

__all__ = ["COUNT_PENALTY", "MSE_COUNT_PENALTY", "CCE_COUNT_PENALTY", "KL_SPARSITY",
           "check_activation_threshold", "ACTIVATION_THRESHOLD_DOMAIN"]
