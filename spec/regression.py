"""Regression losses: ``mean_squared_error``, ``asymmetric_exponential``, ``mean_absolute_error``,
``huber``, ``log_cosh``, ``mean_absolute_percentage_error``, ``mean_squared_logarithmic_error`` and
``cosine_similarity`` (real predictions and real targets: ``target_domain=None``), and ``poisson`` (counts: targets
>= 0)."""
from __future__ import annotations

import dataclasses

import numpy as np

from . import messages
from . import validation as v
from .cases import rng_for
from .core import DEFAULT_TOLERANCES, Case, InvalidCase, LossSpec, Param, PeerNote, Tolerance, register
from .numerics import exact_elementwise_mean, mean_nonbatch, mp, spread_cotangent
from .performance import KERAS_EAGER, TORCH_CONTRACT, note


def regression_cases(name: str, *, gaps: tuple[float, ...], kink_at_zero: bool = False) -> list[Case]:
    """Typical / extreme / edge cases with real targets (≤ 40 elements each).

    ``gaps`` are the values of ``d = y - ŷ`` of the extreme grid: whole numbers and powers of two
    on whole-number targets, so that ``d`` is exact in float32 too. ``kink_at_zero``: the loss has
    a kink at ``d = 0`` (``|d|``), so the cases with an element at ``d = 0`` are ``smooth=False``
    (their subgradient is the entry's convention, checked against the frameworks).
    """
    smooth = not kink_at_zero
    rng = rng_for(name)
    d = np.asarray(gaps, np.float64)
    y_grid = np.tile(np.array([-3.0, 0.0, 2.5]), (d.size, 1))
    fit = rng.normal(size=(3, 4))
    return [
        Case("typical", "typical", {}, rng.normal(size=(6, 3)), rng.normal(size=(6, 3)),
             rng.uniform(0.2, 2.0, size=6)),
        Case("typical-3d", "typical", {}, rng.normal(0.0, 2.0, size=(2, 3, 4)), rng.normal(size=(2, 3, 4)),
             note="the per-sample loss is the mean over every non-batch axis"),
        Case("extreme-gaps", "extreme", {}, y_grid - d[:, None], y_grid, smooth=smooth or 0.0 not in gaps,
             note="d = y - ŷ over the grid, through 0 (the kink of |·|: asymmetric_exponential, mean_absolute_error)"),
        Case("extreme-weights", "extreme", {}, rng.normal(size=(3, 4)), rng.normal(size=(3, 4)),
             np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"),
        Case("edge-exact-fit", "edge", {}, fit, fit.copy(), smooth=smooth,
             note="ŷ = y everywhere: loss 0, gradient 0"),
        Case("edge-batch1", "edge", {}, rng.normal(size=(1, 4)), rng.normal(size=(1, 4))),
        Case("edge-1d", "edge", {}, rng.normal(size=(5,)), rng.normal(size=(5,)),
             note="1-D input: each element is a sample"),
        Case("edge-tiny-gaps", "edge", {}, np.array([[1e-300, -1e-300, 2.0 ** -1000, -(2.0 ** -1022)]]),
             np.zeros((1, 4)), dtypes=("float64",),
             note="|d| down to the smallest normal float64 (subnormals are flushed to 0 by TensorFlow on "
                  "CPU; float32 rounds all of these to 0)"),
    ]


# =========================================================================== mean_squared_error
def _mse_reference(prediction, target):
    return mean_nonbatch((np.asarray(target, np.float64) - prediction) ** 2)


def _mse_vjp(prediction, target, cotangent):
    return 2.0 * (prediction - np.asarray(target, np.float64)) * spread_cotangent(cotangent, np.shape(prediction))


def _mse_exact(prediction, target):
    return exact_elementwise_mean(lambda x, y: (y - x) ** 2, prediction, target)


_MEAN_SQUARED_ERROR_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg", "large"), 2.7,
         "the peer is F.mse_loss(reduction='mean'), one kernel each way with the mean inside it; ours is the same "
         "kernel with reduction='none' (sample weights and reduction='none' need per-sample values) followed by "
         "the per-sample mean and the reduction, and with validate=True one aminmax pass per array: on a loss "
         "this cheap (0.2-0.5 ms) those passes are the difference", TORCH_CONTRACT),
)

MEAN_SQUARED_ERROR = register(LossSpec(
    name="mean_squared_error",
    nonfinite_propagates=('prediction', 'target'),
    family="regression",
    summary="Mean squared error, averaged over every non-batch axis of a sample.",
    formula=r"\ell = \frac{1}{M}\sum_j (y_j - \hat y_j)^2",
    params=(),
    reference=_mse_reference,
    reference_vjp=_mse_vjp,
    exact=_mse_exact,
    cases=lambda: regression_cases("mean_squared_error",
                                   gaps=(-1e4, -709.0, -88.0, -1.0, -2.0 ** -20, 0.0, 2.0 ** -20, 1.0, 88.0, 1e4)),
    invalid_cases=lambda: [],
    target_domain=None,
    grad_convention="Smooth: d/dŷ = 2 (ŷ - y) / M.",
    stability="(y - ŷ)² directly: no cancellation beyond the subtraction itself; finite in float32 for |y - ŷ| < 1.8e19.",
    performance_notes=_MEAN_SQUARED_ERROR_PERFORMANCE,
    peer_notes=(
        PeerNote("torch.nn.functional.mse_loss", "every input",
                 "equal values and gradients; its reduction='mean' averages every element of the batch "
                 "(ours: per-sample means, then Σ w ℓ / N: the same without sample weights)"),
        PeerNote("keras.losses.MeanSquaredError", "rank > 2 inputs",
                 "equal; Keras averages the last axis only per call and then reduces the rest, which "
                 "gives the same mean; its reduction='none' keeps every axis but the last, ours one "
                 "value per sample"),
    ),
    references=("count above a threshold (docs/problems.md): the base loss of the count-penalty recipe",),
    trap="Targets are real numbers: no [0, 1] range check (the classification losses have one).",
    torch_class="MeanSquaredErrorLoss",
    keras_class="MeanSquaredError",
))


# =========================================================================== asymmetric_exponential
def _asym_reference(prediction, target):
    d = np.asarray(target, np.float64) - prediction
    with np.errstate(over="ignore"):  # ŷ - y > 709.8: the true value overflows float64 (inf)
        return mean_nonbatch(np.abs(np.expm1(-d)))


def _asym_vjp(prediction, target, cotangent):
    d = np.asarray(target, np.float64) - prediction
    # d/dŷ |expm1(ŷ - y)| = sign(ŷ - y) e^{ŷ - y}; sign(0) = 0 is the stated subgradient
    with np.errstate(over="ignore"):
        return np.sign(-d) * np.exp(-d) * spread_cotangent(cotangent, np.shape(prediction))


def _asym_exact(prediction, target):
    return exact_elementwise_mean(lambda x, y: abs(mp.expm1(x - y)), prediction, target)


def _asym_cases():
    # ŷ - y up to 80 (e^80 = 5.5e34 is finite in float32) and y - ŷ up to 1e4, past the cost-sensitive problem's
    # intermediate overflow at 88.7 (float32) and 709 (float64)
    return regression_cases("asymmetric_exponential",
                            gaps=(-80.0, -20.0, -1.0, -2.0 ** -20, 0.0, 2.0 ** -20, 1.0, 20.0, 88.0, 709.0, 1e4))


_ASYMMETRIC_EXPONENTIAL_PERFORMANCE = (
)

ASYMMETRIC_EXPONENTIAL = register(LossSpec(
    name="asymmetric_exponential",
    family="regression",
    summary=("|1 - exp(-(y - ŷ))|: over-prediction costs exponentially (e^{ŷ-y} - 1), "
             "under-prediction at most 1 (the cost-sensitive problem)."),
    formula=r"\ell = \frac{1}{M}\sum_j \left|1 - e^{-(y_j - \hat y_j)}\right| = \frac{1}{M}\sum_j \left|\mathrm{expm1}(\hat y_j - y_j)\right|",
    params=(),
    reference=_asym_reference,
    reference_vjp=_asym_vjp,
    exact=_asym_exact,
    cases=_asym_cases,
    invalid_cases=lambda: [],
    target_domain=None,
    grad_convention=("d/dŷ = sign(ŷ - y) e^{ŷ - y} / M. At y = ŷ (the kink of |·|) the subgradient is "
                     "exactly 0: torch.abs and tf.abs both backpropagate sign(0) = 0."),
    stability=("|expm1(ŷ - y)| instead of the cost-sensitive problem's |1 - exp(-log(exp(y - ŷ)))|: no cancellation near "
               "y = ŷ and no intermediate exp(y - ŷ), which overflows for y - ŷ > 709 (float64) / 88.7 "
               "(float32) and makes the gradient inf/inf = NaN there. The value itself overflows only "
               "where the true loss does: ŷ - y > 709.8 (float64), > 88.7 (float32)."),
    performance_notes=_ASYMMETRIC_EXPONENTIAL_PERFORMANCE,
    peer_notes=(
        PeerNote("custom_loss of the cost-sensitive problem (Keras backend)", "y - ŷ > 88.7 in float32 (> 709 in float64)",
                 "exp(y - ŷ) overflows, log(inf) = inf and exp(-inf) = 0 give the value 1 (right) with a "
                 "NaN gradient; near y = ŷ, 1 - exp(-d) loses its relative precision; ours is exact "
                 "there and finite"),
    ),
    references=("cost-sensitive / class-weighted (docs/problems.md): asymmetric cost, Type I errors costlier than Type II",),
    trap=("The cost-sensitive problem writes exp(-log(exp(d))), d = y - ŷ: exp(d) overflows for d > 709 (float32: 88.7) "
          "and the gradient becomes NaN; we use -expm1(-d), with subgradient 0 at d = 0."),
    torch_class="AsymmetricExponentialLoss",
    keras_class="AsymmetricExponential",
))


# =========================================================================== mean_absolute_error
def _mae_reference(prediction, target):
    return mean_nonbatch(np.abs(np.asarray(target, np.float64) - prediction))


def _mae_vjp(prediction, target, cotangent):
    # d/dŷ |ŷ - y| = sign(ŷ - y); sign(0) = 0 is the stated subgradient
    return np.sign(prediction - np.asarray(target, np.float64)) * spread_cotangent(cotangent, np.shape(prediction))


def _mae_exact(prediction, target):
    return exact_elementwise_mean(lambda x, y: abs(x - y), prediction, target)


MEAN_ABSOLUTE_ERROR = register(LossSpec(
    name="mean_absolute_error",
    nonfinite_propagates=('prediction', 'target'),
    family="regression",
    summary="Mean absolute error, averaged over every non-batch axis of a sample.",
    formula=r"\ell = \frac{1}{M}\sum_j \left|y_j - \hat y_j\right|",
    params=(),
    reference=_mae_reference,
    reference_vjp=_mae_vjp,
    exact=_mae_exact,
    cases=lambda: regression_cases("mean_absolute_error", kink_at_zero=True,
                                   gaps=(-1e4, -709.0, -88.0, -1.0, -2.0 ** -20, 0.0, 2.0 ** -20, 1.0, 88.0, 1e4)),
    invalid_cases=lambda: [],
    target_domain=None,
    grad_convention=("d/dŷ = sign(ŷ - y) / M. At ŷ = y (the kink of |·|) the subgradient is exactly 0: "
                     "torch.nn.functional.l1_loss, torch.abs and tf.abs all backpropagate sign(0) = 0 "
                     "(so do torch.nn.L1Loss and keras.losses.MeanAbsoluteError)."),
    stability="|y - ŷ| directly: exact but for the rounding of the subtraction; finite for every finite input.",
    performance_notes=(
        note("torch", "torch eager*", ("cls", "seg"), 1.3,
             "the peer is F.l1_loss(reduction='mean'), one kernel each way with the mean inside it; ours is the same "
             "kernel with reduction='none' (sample weights and reduction='none' need per-sample values) followed by "
             "the per-sample mean and the reduction", TORCH_CONTRACT),
    ),
    peer_notes=(
        PeerNote("torch.nn.L1Loss / torch.nn.functional.l1_loss", "every input",
                 "equal values and gradients (subgradient 0 at ŷ = y too); its reduction='mean' averages every "
                 "element of the batch (ours: per-sample means, then Σ w ℓ / N: the same without sample weights)"),
        PeerNote("keras.losses.MeanAbsoluteError", "float64 inputs; rank > 2 inputs",
                 "equal in float32 (value and gradient, 0 at ŷ = y); Keras computes in its floatx (float32) unless "
                 "built with dtype='float64', ours keeps float64; its reduction='none' keeps every axis but the "
                 "last, ours one value per sample"),
    ),
    references=("Keras MeanAbsoluteError, torch L1Loss: the L1 regression loss",),
    trap="Not differentiable at ŷ = y: the subgradient there is 0 in both frameworks (pinned by the peer tests).",
    torch_class="MeanAbsoluteErrorLoss",
    keras_class="MeanAbsoluteError",
))


# =========================================================================== huber
def _huber_reference(prediction, target, delta):
    d = prediction - np.asarray(target, np.float64)
    a = np.abs(d)
    with np.errstate(over="ignore"):  # d² of the linear branch's elements may overflow; not selected
        return mean_nonbatch(np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta)))


def _huber_vjp(prediction, target, cotangent, delta):
    # d/dŷ = d for |d| <= δ, δ sign(d) beyond: clip(d, -δ, δ), continuous (C¹ loss)
    d = prediction - np.asarray(target, np.float64)
    return np.clip(d, -delta, delta) * spread_cotangent(cotangent, np.shape(prediction))


def _huber_elem(x, y, delta):
    a = abs(x - y)
    return a * a / 2 if a <= delta else delta * (a - delta / 2)


def _huber_exact(prediction, target, delta):
    return exact_elementwise_mean(_huber_elem, prediction, target, vector_params=("delta",), delta=delta)


def _huber_cases():
    name = "huber"
    rng = rng_for(name, 1)
    y_grid = np.array([-3.0, 0.0, 2.5])

    def at(gaps):
        d = np.asarray(gaps, np.float64)
        y = np.tile(y_grid, (d.size, 1))
        return y - d[:, None], y

    # δ = 1: d = ±1 (the boundary) on the grid with the others
    cases = regression_cases(name, gaps=(-1e4, -709.0, -88.0, -1.5, -1.0, -2.0 ** -20, 0.0, 2.0 ** -20, 1.0,
                                          1.0 + 2.0 ** -20, 88.0, 1e4))
    quarter = (-0.5, -0.25, -0.25 + 2.0 ** -20, -0.125, 0.0, 0.125, 0.25, 0.25 + 2.0 ** -20, 0.5, 1e4)
    big = (-1e4, -88.0, -2.5 - 2.0 ** -18, -2.5, -1.0, 0.0, 1.0, 2.5, 2.5 + 2.0 ** -18, 88.0)
    cases += [
        Case("delta-0.25-typical", "typical", {"delta": 0.25}, rng.normal(size=(6, 3)), rng.normal(size=(6, 3)),
             rng.uniform(0.2, 2.0, size=6), note="most elements on the linear branch"),
        Case("delta-0.25-boundary", "edge", {"delta": 0.25}, *at(quarter),
             note="|d| = δ exactly (both frameworks: value δ²/2, gradient ±δ) and one float32 ulp of 0.25 beyond"),
        Case("delta-2.5-boundary", "extreme", {"delta": 2.5}, *at(big),
             note="|d| = δ = 2.5 exactly and just beyond, huge |d| on the linear branch"),
        Case("delta-tiny-typical", "typical", {"delta": 2.0 ** -10}, rng.normal(size=(2, 3, 4)),
             rng.normal(size=(2, 3, 4)), note="δ = 2**-10: every element linear, δ |d| - δ²/2"),
        Case("delta-large-typical", "typical", {"delta": 1e4}, rng.normal(0.0, 3.0, size=(4, 5)),
             rng.normal(size=(4, 5)), note="δ = 1e4: every element quadratic, d²/2"),
    ]
    return cases


DELTA = Param("delta", 1.0, "a finite float > 0", v.real(lo=0.0, lo_open=True),
              doc="Where the loss turns from quadratic (|d| <= delta) to linear; the gradient's magnitude "
                  "is capped at delta. torch's SmoothL1Loss(beta) is huber(delta=beta) / beta.")

HUBER = register(LossSpec(
    name="huber",
    nonfinite_propagates=('prediction', 'target'),
    family="regression",
    summary="Huber loss: d²/2 for |d| <= delta, delta (|d| - delta/2) beyond (d = ŷ - y), averaged over every "
            "non-batch axis of a sample.",
    formula=(r"\ell = \frac{1}{M}\sum_j h_\delta(\hat y_j - y_j),\quad "
             r"h_\delta(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\ "
             r"\delta\left(|d| - \tfrac12\delta\right) & |d| > \delta \end{cases}"),
    params=(DELTA,),
    reference=_huber_reference,
    reference_vjp=_huber_vjp,
    exact=_huber_exact,
    cases=_huber_cases,
    invalid_cases=lambda: [
        InvalidCase("delta-zero", {"delta": 0.0}),
        InvalidCase("delta-negative", {"delta": -1.0}),
        InvalidCase("delta-nan", {"delta": float("nan")}),
        InvalidCase("delta-inf", {"delta": float("inf")}),
        InvalidCase("delta-bool", {"delta": True}),
        InvalidCase("delta-string", {"delta": "1.0"}),
    ],
    target_domain=None,
    grad_convention=("C¹: d/dŷ = clip(ŷ - y, -δ, δ) / M, continuous at |ŷ - y| = δ. Exactly at |d| = δ the spec and "
                     "the Keras twin take the quadratic branch (|d| <= δ, as keras.losses.Huber), torch's "
                     "huber_loss kernel (our torch twin, torch.nn.HuberLoss) the linear one (|d| < δ is "
                     "quadratic); both give the same value δ²/2 and gradient ±δ there."),
    performance_notes=(
        note("torch", "torch eager*", ("cls", "seg"), 1.45,
             "the peer is F.huber_loss(reduction='mean'), one kernel each way with the mean inside it; ours is the "
             "same kernel with reduction='none' followed by the per-sample mean and the reduction", TORCH_CONTRACT),
    ),
    stability=("The linear branch is δ (|d| - δ/2) (no cancellation: |d| - δ/2 >= δ/2 there); the quadratic "
               "branch's d² of an unselected element may overflow but is never selected and its gradient "
               "is 0. delta is rounded to the compute dtype (float32: choose a float32 number, e.g. 0.25)."),
    peer_notes=(
        PeerNote("torch.nn.HuberLoss(delta) / torch.nn.functional.huber_loss", "every input",
                 "equal values and gradients (ours calls its kernel; at |d| = δ it takes the linear branch, "
                 "with the same value and gradient); its reduction='mean' averages every element of the batch "
                 "(ours: per-sample means, then Σ w ℓ / N: the same without sample weights)"),
        PeerNote("torch.nn.SmoothL1Loss(beta)", "every input",
                 "SmoothL1Loss(beta) = huber(delta=beta) / beta (d²/(2β) for |d| < β, |d| - β/2 beyond): "
                 "divide our loss by delta, or multiply a smooth-L1 learning rate by beta"),
        PeerNote("keras.losses.Huber(delta)", "float64 inputs; rank > 2 inputs",
                 "equal in float32 (it writes the linear branch δ|d| - δ²/2, the same up to rounding); Keras "
                 "computes in its floatx (float32) unless built with dtype='float64', ours keeps float64; its "
                 "reduction='none' keeps every axis but the last, ours one value per sample"),
        PeerNote("keras.losses.Huber(delta).get_config()", "serialization",
                 "Keras 3 leaves delta out of Huber's config: a serialized or saved Huber(delta=0.25) comes back "
                 "with delta=1; ours (tf_impl.Huber) keeps delta, and torch_impl.from_keras reads the object's"),
    ),
    references=("P. J. Huber, Robust Estimation of a Location Parameter (1964); Keras Huber, torch HuberLoss",),
    trap="torch's SmoothL1Loss is not Huber: it is Huber divided by beta (equal only for beta = delta = 1).",
    torch_class="HuberLoss",
    keras_class="Huber",
))


# =========================================================================== log_cosh
LOG2 = float(np.log(2.0))


def _log_cosh(d):
    """``log cosh d`` with full relative accuracy for every finite d, float64.

    ``|d| <= 1``: ``log1p(t² / (2 + 2t))`` with ``t = expm1(|d|)`` (``cosh d - 1 = t² / (2 (1 + t))``: no
    cancellation, so ``d²/2`` keeps its digits down to the smallest d, where ``|d| + softplus(-2|d|) - log 2``
    loses them all). ``|d| > 1``: ``(|d| - log 2) + softplus(-2|d|)`` (no overflow: ``cosh d`` itself overflows for
    ``|d| > 710``)."""
    a = np.abs(np.asarray(d, np.float64))
    small = a <= 1.0
    t = np.expm1(np.where(small, a, 0.0))
    return np.where(small, np.log1p(t * t / (2.0 + 2.0 * t)), (a - LOG2) + np.logaddexp(0.0, -2.0 * a))


def _log_cosh_reference(prediction, target):
    return mean_nonbatch(_log_cosh(prediction - np.asarray(target, np.float64)))


def _log_cosh_vjp(prediction, target, cotangent):
    return np.tanh(prediction - np.asarray(target, np.float64)) * spread_cotangent(cotangent, np.shape(prediction))


def _log_cosh_exact(prediction, target):
    # log cosh d = log1p(2 sinh²(d/2)): relative accuracy at the working precision for every d (mp.cosh(d)
    # rounds 1 + d²/2 to 1 for |d| < 10^-40 at 80 digits); mpmath has no overflow
    return exact_elementwise_mean(lambda x, y: mp.log1p(2 * mp.sinh((x - y) / 2) ** 2), prediction, target)


def _log_cosh_cases():
    cases = regression_cases("log_cosh", gaps=(-1e4, -711.0, -709.0, -88.0, -20.0, -1.0 - 2.0 ** -20, -1.0, -0.5,
                                               -2.0 ** -20, 0.0, 2.0 ** -20, 1.0 - 2.0 ** -20, 1.0, 20.0, 89.0,
                                               711.0, 1e4))
    d = np.array([[2.0 ** -12, -(2.0 ** -12), 1e-3, -3e-3], [2.0 ** -30, 0.0, -(2.0 ** -60), 0.0625]])
    cases.append(Case("edge-small-gaps", "edge", {}, d, np.zeros_like(d),
                      note="log cosh d ≈ d²/2 with every digit: |d| + softplus(-2|d|) - log 2 (and Keras' "
                           "d + softplus(-2d) - log 2) cancel to noise here, in float32 to 0 or 6e-8"))
    return cases


LOG_COSH = register(LossSpec(
    name="log_cosh",
    nonfinite_propagates=('prediction', 'target'),
    family="regression",
    summary="Log-cosh loss: log(cosh(ŷ - y)), ≈ d²/2 near 0 and |d| - log 2 far out, averaged over every "
            "non-batch axis of a sample.",
    formula=(r"\ell = \frac{1}{M}\sum_j \log\cosh(\hat y_j - y_j) = \frac{1}{M}\sum_j \left(|d_j| + "
             r"\log\left(1 + e^{-2|d_j|}\right) - \log 2\right),\quad d_j = \hat y_j - y_j"),
    params=(),
    reference=_log_cosh_reference,
    reference_vjp=_log_cosh_vjp,
    exact=_log_cosh_exact,
    cases=_log_cosh_cases,
    invalid_cases=lambda: [],
    target_domain=None,
    grad_convention="Smooth: d/dŷ = tanh(ŷ - y) / M (0 at ŷ = y, where both twins' abs backpropagates sign(0) = 0).",
    performance_notes=(
    ),
    stability=("Never cosh itself (it overflows for |d| > 710 in float64, 89 in float32): one formula, "
               "log1p(t²/(2 + 2t)) + (|d| - c) with c = min(|d|, 40) and t = expm1(c). t²/(2 + 2t) is cosh c - 1 "
               "without cancellation, so every digit of d²/2 is kept down to the smallest d; beyond 40 the loss "
               "is log cosh 40 + (|d| - 40) up to e^-80, below every dtype's rounding, and t² <= 5.5e34 is finite "
               "in float32. The gradient is tanh(d) in closed form (one op backward; through autograd where the "
               "target needs a gradient too)."),
    peer_notes=(
        PeerNote("keras.losses.LogCosh", "|d| small (float32: |d| < 1e-2; float64: |d| < 1e-6)",
                 "Keras computes d + softplus(-2d) - log 2: for small d the terms cancel to the rounding of log 2 "
                 "(float32: the value at d = 2**-12 is 0 or 6e-8 instead of 3.0e-8; absolute error <= 1.2e-7, "
                 "within our float32 tolerance of 1e-6); ours keeps every digit. Elsewhere equal, gradients too; "
                 "Keras computes in floatx (float32) unless built with dtype='float64', ours keeps float64"),
        PeerNote("keras.losses.LogCosh(dtype='float64')", "every float64 input",
                 "its log 2 is ops.log(2.0) computed in float32 and cast: every value is short by "
                 "float32(log 2) - log 2 = 1.9e-9 (relative 2e-9 at d = 1, not float64 accuracy); gradients are "
                 "unaffected; ours uses log 2 in the compute dtype"),
        PeerNote("torch (no torch.nn peer)", "|d| > 89 (float32), > 710 (float64)",
                 "the log(cosh(d)) users write in torch overflows to inf there and its gradient sinh/cosh = "
                 "inf/inf is NaN; ours is log cosh 40 + (|d| - 40) there, finite, with gradient tanh(d) = ±1"),
    ),
    references=("Keras LogCosh; P. Chen, G. Chen, S. Zhang, Log Hyperbolic Cosine Loss Improves Variational "
                "Auto-Encoder (2019)",),
    trap="log(cosh(d)) overflows for |d| > 89 in float32; d + softplus(-2d) - log 2 loses every digit near d = 0.",
    torch_class="LogCoshLoss",
    keras_class="LogCosh",
))

# =========================================================================== mean_absolute_percentage_error
def _mape_reference(prediction, target, epsilon):
    y = np.asarray(target, np.float64)
    return mean_nonbatch(100.0 * np.abs(y - prediction) / np.maximum(np.abs(y), epsilon))


def _mape_vjp(prediction, target, cotangent, epsilon):
    # d/dŷ 100 |ŷ - y| / max(|y|, ε) = 100 sign(ŷ - y) / max(|y|, ε); sign(0) = 0 is the stated subgradient
    y = np.asarray(target, np.float64)
    return (100.0 * np.sign(prediction - y) / np.maximum(np.abs(y), epsilon)
            * spread_cotangent(cotangent, np.shape(prediction)))


def _mape_exact(prediction, target, epsilon):
    return exact_elementwise_mean(lambda x, y, epsilon: 100 * abs(x - y) / max(abs(y), epsilon), prediction,
                                  target, vector_params=("epsilon",), epsilon=epsilon)


def _mape_cases():
    name = "mean_absolute_percentage_error"
    rng = rng_for(name, 1)
    cases = regression_cases(name, kink_at_zero=True,
                             gaps=(-1e4, -709.0, -88.0, -1.0, -2.0 ** -20, 0.0, 2.0 ** -20, 1.0, 88.0, 1e4))
    small_y = np.array([[0.0, 1e-8, -1e-8, 1e-7], [-1e-7, 2e-7, 1e-6, -1e-3]])
    cases += [
        Case("edge-targets-near-zero", "edge", {}, rng.normal(size=(2, 4)), small_y,
             note="|y| below, at and above epsilon = 1e-7: the denominator is max(|y|, epsilon), "
                  "so |y - ŷ| / 1e-7 (times 100) for |y| <= 1e-7"),
        Case("epsilon-1-typical", "typical", {"epsilon": 1.0}, rng.normal(size=(4, 3)), rng.normal(size=(4, 3)),
             rng.uniform(0.2, 2.0, size=4), note="epsilon = 1: targets with |y| < 1 are divided by 1"),
    ]
    return cases


EPSILON_MAPE = Param("epsilon", 1e-7, "a finite float > 0", v.real(lo=0.0, lo_open=True),
                     doc="The smallest denominator: each element is divided by max(|y|, epsilon). The default "
                         "is Keras' backend epsilon (keras.losses.MeanAbsolutePercentageError); "
                         "torchmetrics' MeanAbsolutePercentageError uses 1.17e-6 and no factor 100.")

_MEAN_ABSOLUTE_PERCENTAGE_ERROR_PERFORMANCE = (
)

MEAN_ABSOLUTE_PERCENTAGE_ERROR = register(LossSpec(
    name="mean_absolute_percentage_error",
    nonfinite_propagates=('prediction', 'target'),
    family="regression",
    summary="Mean absolute percentage error: 100 |y - ŷ| / max(|y|, epsilon), averaged over every non-batch "
            "axis of a sample.",
    formula=r"\ell = \frac{100}{M}\sum_j \frac{\left|y_j - \hat y_j\right|}{\max(|y_j|, \epsilon)}",
    params=(EPSILON_MAPE,),
    reference=_mape_reference,
    reference_vjp=_mape_vjp,
    exact=_mape_exact,
    cases=_mape_cases,
    invalid_cases=lambda: [
        InvalidCase("epsilon-zero", {"epsilon": 0.0}),
        InvalidCase("epsilon-negative", {"epsilon": -1e-7}),
        InvalidCase("epsilon-nan", {"epsilon": float("nan")}),
        InvalidCase("epsilon-inf", {"epsilon": float("inf")}),
        InvalidCase("epsilon-bool", {"epsilon": True}),
    ],
    target_domain=None,
    grad_convention=("d/dŷ = 100 sign(ŷ - y) / (M max(|y|, ε)). At ŷ = y (the kink of |·|) the subgradient is "
                     "exactly 0: torch.abs and tf.abs backpropagate sign(0) = 0 (so does "
                     "keras.losses.MeanAbsolutePercentageError). The target is not differentiated."),
    stability=("|y - ŷ| / max(|y|, ε): the clamp is the definition (Keras'), so a target of 0 gives "
               "100 |ŷ| / ε, e.g. 1e9 |ŷ| with the default ε = 1e-7: finite, but large; choose ε on the "
               "scale of the targets (or leave out the samples) where targets near 0 occur. ε is rounded "
               "to the compute dtype (float32: 1e-7 becomes 1.0000000116860974e-07, relative 1.2e-8)."),
    performance_notes=_MEAN_ABSOLUTE_PERCENTAGE_ERROR_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.MeanAbsolutePercentageError", "float64 inputs; rank > 2 inputs",
                 "equal in float32 (value and gradient, 0 at ŷ = y; its epsilon is the backend epsilon "
                 "1e-7 in the input's dtype, our default); Keras computes in its floatx (float32) unless "
                 "built with dtype='float64', ours keeps float64; its reduction='none' keeps every axis but "
                 "the last, ours one value per sample"),
        PeerNote("torchmetrics MeanAbsolutePercentageError (no torch.nn peer)", "every input",
                 "a fraction, not a percentage, with epsilon 1.17e-6: it equals "
                 "mean_absolute_percentage_error(epsilon=1.17e-6) / 100 over all elements"),
    ),
    references=("Keras MeanAbsolutePercentageError: the percentage error, with Keras' epsilon in the denominator",),
    trap=("Targets near 0 dominate: |y| <= epsilon divides by epsilon (1e-7), a weight of 1e9 per unit of error; "
          "torch.nn has no MAPE."),
    torch_class="MeanAbsolutePercentageErrorLoss",
    keras_class="MeanAbsolutePercentageError",
))


# =========================================================================== mean_squared_logarithmic_error
def _log1p_difference(a, b):
    """``log1p(a) - log1p(b)`` for ``a, b >= 0`` with full relative accuracy: ``log1p(r)``, ``r = (a - b) /
    (1 + b)``, where ``1 + a >= (1 + b) / 2`` (near ``a = b`` the plain difference of two logs cancels:
    relative error 1e-9 at ``a - b = 2**-20``, float64), the plain difference beyond (the logs differ by
    more than log 2 there: no cancellation; ``r`` would round to -1 for ``b >> a``). The unselected
    ``log1p(r)`` sees ``r = 0``."""
    r = (a - b) / (1.0 + b)
    near = r >= -0.5
    return np.where(near, np.log1p(np.where(near, r, 0.0)), np.log1p(a) - np.log1p(b))


def _msle_reference(prediction, target, epsilon):
    y = np.asarray(target, np.float64)
    return mean_nonbatch(_log1p_difference(np.maximum(prediction, epsilon), np.maximum(y, epsilon)) ** 2)


def _msle_vjp(prediction, target, cotangent, epsilon):
    # d/dŷ = 2 (log1p(ŷ) - log1p(max(y, ε))) / (1 + ŷ) where ŷ >= ε (the branch of max(ŷ, ε) that both
    # frameworks differentiate at ŷ = ε), 0 below
    y = np.asarray(target, np.float64)
    clamped = np.maximum(prediction, epsilon)
    grad = np.where(prediction >= epsilon,
                    2.0 * _log1p_difference(clamped, np.maximum(y, epsilon)) / (1.0 + clamped), 0.0)
    return grad * spread_cotangent(cotangent, np.shape(prediction))


def _msle_elem(x, y, epsilon):
    return (mp.log1p(max(x, epsilon)) - mp.log1p(max(y, epsilon))) ** 2


def _msle_exact(prediction, target, epsilon):
    return exact_elementwise_mean(_msle_elem, prediction, target, vector_params=("epsilon",), epsilon=epsilon)


def _msle_cases():
    name = "mean_squared_logarithmic_error"
    rng = rng_for(name, 1)
    cases = regression_cases(name, gaps=(-1e4, -709.0, -88.0, -1.0, -2.0 ** -20, 0.0, 2.0 ** -20, 1.0, 88.0, 1e4))
    small = np.array([[3e-6, 1e-5, 2e-4, 1e-3], [1e-6, 4e-6, 1e-4, 3e-3]])
    clamp = np.array([[-5.0, -1e-3, 0.0, 5e-8], [-1.0, 0.0, 2.0, 1e-8]])
    cases += [
        Case("edge-small-positive", "edge", {}, small, small[::-1].copy(),
             note="ŷ, y in (1e-7, 1e-2): log(1 + x) loses the digits of x in 1 + x (Keras' form), log1p keeps them"),
        Case("edge-clamped", "edge", {}, clamp, np.array([[0.5, 0.0, -1.0, 3.0], [0.0, 1e-8, 2.0, -2.0]]),
             note="ŷ < epsilon: clamped to epsilon, gradient 0; negative and tiny targets clamped too"),
        Case("edge-at-epsilon", "edge", {}, np.array([[1e-7, 0.25, 1.0], [1e-7, 4.0, -1.0]]),
             np.array([[2.0, 1.0, 0.0], [0.0, 1e-7, 3.0]]), smooth=False,
             note="ŷ = epsilon exactly (in float32 both are float32(1e-7)): both frameworks' max(ŷ, ε) sends the "
                  "gradient to ŷ (the branch ŷ >= ε)"),
        Case("epsilon-0-typical", "typical", {"epsilon": 0.0}, np.abs(rng.normal(size=(4, 3))),
             np.abs(rng.normal(size=(4, 3))), rng.uniform(0.2, 2.0, size=4),
             note="epsilon = 0: the plain loss on non-negative data"),
    ]
    return cases


EPSILON_MSLE = Param("epsilon", 1e-7, "a finite float >= 0", v.real(lo=0.0),
                     doc="Predictions and targets below epsilon are replaced by epsilon (so log1p stays finite "
                         "for negative inputs, whose gradient is 0). The default is Keras' backend epsilon "
                         "(keras.losses.MeanSquaredLogarithmicError); 0 clamps at 0.")

_MEAN_SQUARED_LOGARITHMIC_ERROR_PERFORMANCE = (
    note("keras", "keras eager*", ("seg",), 2.3,
         "keras.losses.MeanSquaredLogarithmicError is log(max(x, ε) + 1) for both arrays, a difference, a square "
         "and a mean (~9 ops); ours is the cancellation-free log1p(|a - b| / (1 + min(a, b))) (~9 ops) plus the "
         "contract's per-sample mean and reduction and, with validate=True, the min and max passes (the "
         "bfloat16 validate=True row, 2.1, is the one far over)", KERAS_EAGER),
)

MEAN_SQUARED_LOGARITHMIC_ERROR = register(LossSpec(
    name="mean_squared_logarithmic_error",
    family="regression",
    summary="Mean squared logarithmic error: (log1p(max(ŷ, epsilon)) - log1p(max(y, epsilon)))², averaged over "
            "every non-batch axis of a sample.",
    formula=(r"\ell = \frac{1}{M}\sum_j \left(\log\left(1 + \max(\hat y_j, \epsilon)\right) - "
             r"\log\left(1 + \max(y_j, \epsilon)\right)\right)^2"),
    params=(EPSILON_MSLE,),
    reference=_msle_reference,
    reference_vjp=_msle_vjp,
    exact=_msle_exact,
    cases=_msle_cases,
    invalid_cases=lambda: [
        InvalidCase("epsilon-negative", {"epsilon": -1e-7}),
        InvalidCase("epsilon-nan", {"epsilon": float("nan")}),
        InvalidCase("epsilon-inf", {"epsilon": float("inf")}),
        InvalidCase("epsilon-string", {"epsilon": "1e-7"}),
    ],
    target_domain=None,
    grad_convention=("d/dŷ = 2 (log1p(ŷ) - log1p(max(y, ε))) / (M (1 + ŷ)) for ŷ >= ε, 0 for ŷ < ε (the clamp). "
                     "At ŷ = ε the subgradient is the ŷ >= ε branch: torch.clamp_min (our torch twin) and "
                     "tf.maximum(ŷ, ε) (our Keras twin, keras.losses.MeanSquaredLogarithmicError) both send the "
                     "gradient to ŷ there; torch.maximum would split it in half. The target is not differentiated."),
    stability=("The distance of the logs in one formula, |log1p(a) - log1p(b)| = log1p(|a - b| / (1 + min(a, b))) "
               "(a, b the clamped ŷ, y; squared, so its sign is not needed): a log1p of a non-negative number, "
               "where the plain difference of two logs cancels near ŷ = y (relative error 1e-9 at ŷ - y = 2**-20 "
               "in float64, 1e-1 in float32) and a ratio (a - b) / (1 + b) near -1 would cancel inside log1p; "
               "never log(x + 1), whose sum 1 + x drops the low digits of a small x (Keras' form; see the peer "
               "notes). Finite for every finite input: the clamp keeps 1 + x >= 1."),
    performance_notes=_MEAN_SQUARED_LOGARITHMIC_ERROR_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.MeanSquaredLogarithmicError", "ŷ or y in (ε, ~1e-2), float32 (float64: (ε, ~1e-6))",
                 "Keras computes log(max(x, ε) + 1): 1 + x rounds away the low digits of x, so the difference "
                 "of two small logs loses its relative precision (float32, ŷ = 3e-6, y = 1e-6: about 10% off; "
                 "absolute error below 1e-11, inside our float32 tolerance's absolute part); ours uses log1p. "
                 "Elsewhere equal, gradients too; Keras computes in floatx (float32) unless built with "
                 "dtype='float64', ours keeps float64"),
        PeerNote("keras.losses.MeanSquaredLogarithmicError(dtype='float64')", "ŷ or y in [1e-7, 1.0000000117e-7]",
                 "its epsilon is a float32 tensor cast up: it clamps at float32(1e-7) = 1.0000000116860974e-07, "
                 "ours at 1e-7 (the parameter in the compute dtype); at most 1.2e-15 in each log"),
        PeerNote("torch (no torch.nn peer)", "every input",
                 "torch.nn has no MSLE; torchmetrics' MeanSquaredLogError is mean((log1p(ŷ) - log1p(y))²) "
                 "without a clamp (NaN for inputs below -1): ours with epsilon=0 on non-negative data"),
    ),
    references=("Keras MeanSquaredLogarithmicError: the squared error of log(1 + x), for targets spanning "
                "orders of magnitude",),
    trap="Negative predictions are clamped to epsilon and get gradient 0: a model stuck below 0 does not learn.",
    torch_class="MeanSquaredLogarithmicErrorLoss",
    keras_class="MeanSquaredLogarithmicError",
))


# =========================================================================== poisson
LOG_2PI = float(np.log(2.0 * np.pi))


def _stirling(y):
    """torch's ``full=True`` term: ``y log y - y + log(2πy) / 2`` for ``y > 1``, 0 for ``y <= 1`` (Stirling's
    approximation of ``log y!``); the unselected logs see 1."""
    big = y > 1.0
    safe = np.where(big, y, 1.0)
    return np.where(big, safe * np.log(safe) - safe + 0.5 * (LOG_2PI + np.log(safe)), 0.0)


def _poisson_elementwise(prediction, y, log_input, epsilon, full):
    with np.errstate(over="ignore"):  # exp(x) past 709.8: the true loss overflows float64 too
        loss = np.exp(prediction) - y * prediction if log_input else prediction - y * np.log(prediction + epsilon)
    return loss + _stirling(y) if full else loss


def _poisson_reference(prediction, target, log_input, epsilon, full):
    return mean_nonbatch(_poisson_elementwise(prediction, np.asarray(target, np.float64), log_input, epsilon, full))


def _poisson_vjp(prediction, target, cotangent, log_input, epsilon, full):
    y = np.asarray(target, np.float64)
    with np.errstate(over="ignore"):
        grad = np.exp(prediction) - y if log_input else 1.0 - y / (prediction + epsilon)
    return grad * spread_cotangent(cotangent, np.shape(prediction))


def _poisson_elem(x, y, log_input, epsilon, full):
    loss = mp.exp(x) - y * x if log_input else x - y * mp.log(x + epsilon)
    if full and y > 1:
        loss += y * mp.log(y) - y + mp.log(2 * mp.pi * y) / 2
    return loss


def _poisson_exact(prediction, target, log_input, epsilon, full):
    return exact_elementwise_mean(_poisson_elem, prediction, target, vector_params=("epsilon",),
                                  log_input=log_input, epsilon=epsilon, full=full)


def _poisson_cases():
    name = "poisson"
    rng = rng_for(name, 1)
    counts = rng.poisson(3.0, size=(6, 3)).astype(np.float64)
    log_rates = np.array([-1e4, -88.0, -20.0, -1.0, 0.0, 2.0 ** -20, 1.0, 20.0, 85.0])
    grid_y = np.array([0.0, 1.0, 7.0, 1e4])
    rates = np.array([0.0, 1e-12, 1e-7, 2.0 ** -20, 0.5, 1.0, 3.0, 1e4])
    rate_y = np.array([0.0, 1.0, 2.5, 1e3])
    stirling_y = np.array([[0.0, 0.5, 1.0, 1.0 + 2.0 ** -20], [2.0, 3.5, 10.0, 40.0]])
    linear = {"log_input": False}
    return [
        Case("typical", "typical", {}, rng.normal(0.5, 1.0, size=(6, 3)), counts, rng.uniform(0.2, 2.0, size=6),
             note="log-rates against counts (torch.nn.PoissonNLLLoss()'s default)"),
        Case("typical-3d", "typical", {}, rng.normal(size=(2, 3, 4)), rng.poisson(1.5, size=(2, 3, 4)).astype(float),
             note="the per-sample loss is the mean over every non-batch axis"),
        Case("extreme-log-rates", "extreme", {}, np.repeat(log_rates[:, None], grid_y.size, axis=1),
             np.tile(grid_y, (log_rates.size, 1)),
             note="exp(85) = 8.2e36: a row's sum of 4 stays finite in float32; the true loss overflows past x = 88.7 "
                  "(float32), 709.8 (float64)"),
        Case("extreme-weights", "extreme", {}, rng.normal(size=(3, 4)), rng.poisson(2.0, size=(3, 4)).astype(float),
             np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"),
        Case("edge-batch1", "edge", {}, rng.normal(size=(1, 4)), np.array([[0.0, 1.0, 2.0, 0.5]])),
        Case("edge-1d", "edge", {}, rng.normal(size=(5,)), rng.poisson(2.0, size=5).astype(float),
             note="1-D input: each element is a sample"),
        Case("edge-zero-counts", "edge", {}, rng.normal(size=(2, 3)), np.zeros((2, 3)),
             note="y = 0: the loss is the rate exp(x), its gradient too"),
        Case("rate-typical", "typical", linear, rng.uniform(0.1, 5.0, size=(6, 3)), counts,
             rng.uniform(0.2, 2.0, size=6), note="rates (keras.losses.Poisson's input) against counts"),
        Case("rate-extreme", "extreme", linear, np.repeat(rates[:, None], rate_y.size, axis=1),
             np.tile(rate_y, (rates.size, 1)),
             note="rates down to 0 (log(ŷ + ε) = log ε: finite), up to 1e4; a zero count at a zero rate costs 0"),
        Case("rate-epsilon-1e-8", "typical", {"log_input": False, "epsilon": 1e-8},
             rng.uniform(0.1, 2.0, size=(4, 3)), rng.poisson(1.0, size=(4, 3)).astype(float),
             note="torch.nn.PoissonNLLLoss(log_input=False)'s eps"),
        Case("full-typical", "typical", {"full": True}, rng.normal(1.0, 1.0, size=(2, 4)), stirling_y,
             note="torch's Stirling term for y > 1 (y = 1 + 2**-20 just past the switch; 0 for y <= 1)"),
        Case("full-rate-typical", "typical", {"log_input": False, "full": True},
             stirling_y * rng.uniform(0.5, 1.5, size=(2, 4)) + 0.5, stirling_y, rng.uniform(0.2, 2.0, size=2),
             note="rates near the counts"),
    ]


POISSON_PARAMS = (
    Param("log_input", True, "a bool", v.boolean(),
          doc="True: the prediction is the log-rate x and the loss exp(x) - y x (the stable form: no log "
              "of a rate, defined for every real x; torch.nn.PoissonNLLLoss's default). False: the prediction "
              "is the rate ŷ >= 0 and the loss ŷ - y log(ŷ + epsilon) (keras.losses.Poisson)."),
    Param("epsilon", 1e-7, "a finite float > 0", v.real(lo=0.0, lo_open=True),
          doc="With log_input=False, the shift in log(ŷ + epsilon) that keeps a zero rate finite. The default "
              "is Keras' backend epsilon (keras.losses.Poisson); torch.nn.PoissonNLLLoss's eps is 1e-8. "
              "Unused with log_input=True."),
    Param("full", False, "a bool", v.boolean(),
          doc="Add torch's Stirling term y log y - y + log(2πy)/2 for y > 1 (0 for y <= 1), an approximation "
              "of log y! (torch.nn.PoissonNLLLoss(full=True)); it does not depend on the prediction."),
)

_POISSON_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg"), 2.0,
         "the peer is F.poisson_nll_loss(reduction='mean'); ours is the same kernel with reduction='none' "
         "(sample weights and reduction='none' need per-sample values) followed by the sum; only the bfloat16 "
         "rows miss (4.8 and 6.4 ms against 3.4 ms, the validate=False row slower than the validate=True one, "
         "which does strictly more: much of it is the loaded machine); at `cls` (0.79 against 0.57 ms, 0.63 "
         "with validate=False) the aminmax of the target (counts >= 0) and the read of the result are a share "
         "of a short call", TORCH_CONTRACT),
)

POISSON = register(LossSpec(
    name="poisson",
    nonfinite_propagates=('prediction',),
    family="regression",
    summary="Poisson negative log-likelihood of counts y: exp(x) - y x for log-rates x (log_input=True), "
            "ŷ - y log(ŷ + epsilon) for rates ŷ, averaged over every non-batch axis of a sample.",
    formula=(r"\ell = \frac{1}{M}\sum_j \begin{cases} e^{x_j} - y_j x_j & \text{log\_input} \\ "
             r"\hat y_j - y_j \log(\hat y_j + \epsilon) & \text{otherwise} \end{cases}"
             r"\; \left[+\, \mathbb{1}_{y_j > 1}\left(y_j \log y_j - y_j + \tfrac12 \log(2\pi y_j)\right) "
             r"\text{ if full}\right]"),
    params=POISSON_PARAMS,
    reference=_poisson_reference,
    reference_vjp=_poisson_vjp,
    exact=_poisson_exact,
    cases=_poisson_cases,
    invalid_cases=lambda: [
        InvalidCase("log-input-not-bool", {"log_input": 1}),
        InvalidCase("full-not-bool", {"full": "yes"}),
        InvalidCase("epsilon-zero", {"epsilon": 0.0}),
        InvalidCase("epsilon-negative", {"epsilon": -1e-8}),
        InvalidCase("epsilon-inf", {"epsilon": float("inf")}),
        InvalidCase("rate-negative", {"log_input": False}, np.array([[0.5, -0.25], [1.0, 2.0]]),
                    np.array([[1.0, 0.0], [2.0, 3.0]])),
    ],
    prediction_domain=lambda p: None if p["log_input"] else (0.0, np.inf),
    prediction_domain_hint=lambda p: "" if p["log_input"] else (
        "; with log_input=False the prediction is a rate (>= 0); pass log-rates with log_input=True"),
    target_domain=(0.0, np.inf),
    grad_convention=("Smooth: d/dx = (e^x - y) / M (log_input=True), d/dŷ = (1 - y / (ŷ + ε)) / M (log_input=False). "
                     "The target (and the Stirling term) is not differentiated."),
    stability=("log_input=True: exp(x) - y x, no log at all; it overflows only where the true loss does (x > 88.7 "
               "in float32, 709.8 in float64). log_input=False: log(ŷ + ε) >= log ε, finite at ŷ = 0 (0 · log ε = 0 "
               "for a zero count); the gradient 1 - y/(ŷ + ε) is at most y/ε in size. The Stirling term's logs "
               "see 1 where y <= 1 (no 0 · log 0)."),
    performance_notes=_POISSON_PERFORMANCE,
    peer_notes=(
        PeerNote("torch.nn.PoissonNLLLoss(log_input, full, eps) / torch.nn.functional.poisson_nll_loss",
                 "every input",
                 "equal values and gradients with log_input, full and epsilon=eps (our torch twin calls its "
                 "kernel); its eps defaults to 1e-8, ours to Keras' 1e-7; its reduction='mean' averages every "
                 "element of the batch (ours: per-sample means, then Σ w ℓ / N: the same without sample weights)"),
        PeerNote("torch.nn.PoissonNLLLoss(full=True)", "y > 1",
                 "its term is Stirling's approximation of log y!, not log y! itself: at y = 2 it adds 0.652 "
                 "instead of log 2 = 0.693; ours reproduces torch's (full=True), the exact NLL would use "
                 "lgamma(y + 1). For y <= 1 it adds 0 (log 1! = 0 at y = 1)"),
        PeerNote("keras.losses.Poisson", "float64 inputs; rank > 2 inputs; rates below 0",
                 "equal to poisson(log_input=False) (its epsilon is the backend epsilon 1e-7 in the input's dtype, "
                 "our default) in float32; Keras computes in its floatx (float32) unless built with "
                 "dtype='float64', ours keeps float64; it accepts negative rates (log of a negative number: "
                 "NaN), ours rejects them; its reduction='none' keeps every axis but the last"),
    ),
    references=("torch PoissonNLLLoss; Keras Poisson: the negative log-likelihood of a Poisson count "
                "(up to log y!, or Stirling's approximation of it with full=True)",),
    trap=("Keras' Poisson takes rates, torch's PoissonNLLLoss log-rates by default: the same model output "
          "means different things (log_input says which); prefer log-rates (no clamp, no log)."),
    torch_class="PoissonLoss",
    keras_class="Poisson",
))


# =========================================================================== cosine_similarity
def _resolved_axis(axis: int, ndim: int) -> int:
    return axis % ndim


def _unit_vectors(a, axis, epsilon):
    """``(a / max(‖a‖, ε), above, a / max|a|, ‖a / max|a|‖)`` along ``axis``, float64. Each vector is first divided
    by its largest |element| s (1 for a zero vector), so Σ a² neither overflows nor underflows; ``above``:
    ‖a‖ = s ‖a/s‖ >= ε (the normalizing branch; ‖a‖ = ε exactly is in it), elsewhere a / ε."""
    a = np.asarray(a, np.float64)
    s = np.max(np.abs(a), axis=axis, keepdims=True)
    s = np.where(s > 0.0, s, 1.0)
    scaled = a / s
    norm_scaled = np.sqrt(np.sum(scaled * scaled, axis=axis, keepdims=True))  # >= 1 but for a zero vector
    with np.errstate(over="ignore"):  # s ‖a/s‖ past the largest float: inf >= ε, the right branch
        above = s * norm_scaled >= epsilon
    unit = np.where(above, scaled / np.where(above, norm_scaled, 1.0), a / epsilon)
    return unit, above, s, norm_scaled


def _cosine_reference(prediction, target, axis, epsilon):
    axis = _resolved_axis(axis, np.ndim(prediction))
    n_pred, _, _, _ = _unit_vectors(prediction, axis, epsilon)
    n_true, _, _, _ = _unit_vectors(target, axis, epsilon)
    return mean_nonbatch(-np.sum(n_pred * n_true, axis=axis))


def _cosine_vjp(prediction, target, cotangent, axis, epsilon):
    # d/dŷ (-ŷ/max(‖ŷ‖, ε) · m), m = y / max(‖y‖, ε): -(m - (n·m) n) / ‖ŷ‖ for ‖ŷ‖ >= ε, -m / ε below (ŷ/ε is
    # linear there: a zero prediction vector gets -m/ε, as both frameworks' own cosines give)
    shape = np.shape(prediction)
    axis = _resolved_axis(axis, len(shape))
    n, above, s, norm_scaled = _unit_vectors(prediction, axis, epsilon)
    m, _, _, _ = _unit_vectors(target, axis, epsilon)
    # the part of m orthogonal to n as d - (n·d) n, d = m - sign(n·m) n: exactly 0 where the unit vectors are
    # equal or opposite and where m = 0 (m - (n·m) n would leave (1 - n·n) m, an ulp of noise, there)
    d = m - np.sign(np.sum(n * m, axis=axis, keepdims=True)) * n
    tangent = (d - np.sum(n * d, axis=axis, keepdims=True) * n) / np.where(above, norm_scaled, 1.0) / s
    grad = -np.where(above, tangent, m / epsilon)
    per_vector = spread_cotangent(cotangent, shape[:axis] + shape[axis + 1:])
    return grad * np.expand_dims(per_vector, axis)


def _mp_unit(vector, epsilon):
    norm = mp.sqrt(mp.fsum(v * v for v in vector))
    scale = norm if norm >= epsilon else epsilon
    return [v / scale for v in vector]


def _cosine_exact(prediction, target, axis, epsilon):
    pred = np.asarray(prediction, dtype=object)
    axis = _resolved_axis(axis, pred.ndim)
    d = pred.shape[axis]
    vectors_pred = np.moveaxis(pred, axis, -1).reshape(pred.shape[0], -1, d)
    vectors_true = np.moveaxis(np.asarray(target, np.float64), axis, -1).reshape(pred.shape[0], -1, d)
    eps = mp.mpf(epsilon)
    out = []
    for p_i, t_i in zip(vectors_pred, vectors_true):
        cosines = []
        for a, b in zip(p_i, t_i):
            n = _mp_unit([mp.mpf(v) for v in a], eps)
            m = _mp_unit([mp.mpf(float(v)) for v in b], eps)
            cosines.append(mp.fsum(x * y for x, y in zip(n, m)))
        out.append(-mp.fsum(cosines) / len(cosines))
    return out


def _check_cosine_axis(loss, params, shape):
    """``check_shapes``: ``axis`` names a non-batch axis of the prediction (a 1-D prediction has none)."""
    axis, ndim = params["axis"], len(shape)
    if ndim < 2 or not -ndim < axis < ndim:
        raise ValueError(messages.axis_not_in_shape(loss, axis, shape))


def _cosine_cases():
    name = "cosine_similarity"
    rng = rng_for(name, 1)
    y = np.array([1.0, 2.0, 3.0, 4.0])
    # one row each: large prediction and large target (held by float16 too: the dtype tests cast every case;
    # float32's overflow of Σ x² past ‖x‖ = 1.8e19 is pinned by the peer tests), parallel, anti-parallel and
    # orthogonal vectors, small vectors above ε
    scales_pred = np.array([[3e4, -4e4, 1e4, 0.0], [6e4, 5e4, -6e4, 2e4], [1.0, -2.0, 0.5, 3.0],
                            2.5 * y, -y, [2.0, -1.0, 0.0, 0.0], [1e-3, -2e-3, 5e-4, 1e-3], [1e-6, 0.0, 0.0, 3e-6]])
    scales_true = np.array([y, [-1.0, 0.5, 2.0, 0.0], [6e4, -2e4, 0.0, 5e3], y, y, [1.0, 2.0, 7.0, -1.0],
                            [0.3, 1.0, -2.0, 0.1], y])
    # ‖ŷ‖ or ‖y‖ below ε = 1e-7: zero vectors (value 0; gradient -m/ε for a zero prediction, 0 for a zero
    # target) and vectors of norm 5e-8 (ŷ / ε, y / ε: linear)
    below = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3e-8, -4e-8, 0.0], [0.5, 2.0, -1.0]])
    below_true = np.array([[1.0, 2.0, -2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, -3.0], [4e-8, 0.0, 3e-8]])
    fit = rng.normal(size=(3, 4))
    return [
        Case("typical", "typical", {}, rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), rng.uniform(0.2, 2.0, size=6)),
        Case("typical-3d", "typical", {}, rng.normal(0.0, 2.0, size=(2, 3, 4)), rng.normal(size=(2, 3, 4)),
             note="axis -1: one cosine per position of the middle axis, the per-sample loss is their mean"),
        Case("axis-1-typical", "typical", {"axis": 1}, rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4)),
             note="axis 1 (channels first, torch's NCHW): cosines over the 3 channels, mean over the last axis"),
        Case("extreme-scales", "extreme", {}, scales_pred, scales_true,
             note="norms from 3e-6 to 1e5, both sides"),
        Case("extreme-weights", "extreme", {}, rng.normal(size=(3, 4)), rng.normal(size=(3, 4)),
             np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"),
        Case("edge-below-epsilon", "edge", {}, below, below_true,
             note="zero vectors and vectors of norm 5e-8 < ε: x / ε instead of x / ‖x‖, value 0 for a zero vector"),
        Case("edge-exact-fit", "edge", {}, fit, 2.0 * fit,
             note="ŷ parallel to y (y = 2ŷ: exactly, in both dtypes): loss -1, gradient 0 (y has no part orthogonal "
                  "to ŷ)"),
        Case("edge-parallel-small", "edge", {}, np.array([[0.0, -2.0 ** -14, 0.0], [2.0 ** -14, 0.0, 0.0]]),
             np.array([[0.0, 38.8908576965332, 0.0], [3.0, 0.0, 0.0]]),
             note="small vectors (norm 6.1e-5) anti-parallel and parallel to their targets: cos = ∓1 exactly and "
                  "gradient 0, whose size would be up to 1 / ‖ŷ‖ = 1.6e4; a unit vector a few ulps off (an "
                  "inexact rsqrt) shows there as a gradient of 2.4e-4 (found by the property test)"),
        Case("edge-parallel-tiny-norm", "edge", {}, np.array([[0.0, 1e-5, 1e-8], [0.3, -0.2, 0.5]]),
             np.array([[0.0, 1.0, 0.0], [0.1, 0.4, -0.3]]),
             note="a vector of norm 1e-5 almost parallel to its target: the gradient m - (n·m) n is a difference "
                  "of unit vectors equal to 5e-7, which float32 arithmetic leaves 4.6% off (the Keras twin "
                  "before it computed float32 in float64; found by the property test)"),
        Case("edge-batch1", "edge", {}, rng.normal(size=(1, 5)), rng.normal(size=(1, 5))),
        Case("epsilon-0.5-typical", "typical", {"epsilon": 0.5}, rng.normal(0.0, 0.4, size=(5, 3)),
             np.concatenate([rng.normal(0.0, 0.4, size=(4, 3)), np.zeros((1, 3))]),
             note="epsilon = 0.5 at norms around it: some vectors normalized, some divided by epsilon"),
    ]


COSINE_PARAMS = (
    Param("axis", -1, "a nonzero int (a non-batch axis; negative counts from the last)", v.non_batch_axis(),
          doc="The axis of the vectors whose cosine is taken (Keras' axis, torch's dim); the per-sample loss "
              "averages the cosines over the other non-batch axes. -1: features last (Keras' default); 1: "
              "channels first (torch's F.cosine_similarity default dim)."),
    Param("epsilon", 1e-7, "a finite float > 0", v.real(lo=0.0, lo_open=True),
          doc="The smallest norm: each vector is divided by max(‖x‖, epsilon), so a zero vector gives 0. The "
              "default is Keras' backend epsilon (keras.losses.CosineSimilarity); torch's "
              "F.cosine_similarity uses eps = 1e-8."),
)

_COSINE_SIMILARITY_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg"), 3.9,
         "the peer is -F.cosine_similarity(...).mean(), ATen's composite (a product sum and two norms); ours "
         "must not overflow where F.cosine_similarity's float32 norm does (past 1.8e19: see the stability "
         "text): a float32 pair is one autograd.Function computed in float64 (two casts up, two norms, a "
         "product sum, and in the same pass the gradient: a multiply-add, a division and the cast back: ~9 "
         "input-sized passes against the peer's ~3 forward and ~4 backward, at twice the width); a float64 "
         "pair scales each vector by its largest |element| (per array an abs, an amax, a division, a square "
         "and a sum, a sqrt, an rsqrt and three wheres, then the product sum)", TORCH_CONTRACT),
    note("keras", "keras eager*", ("cls", "seg"), 3.0,
         "keras.losses.CosineSimilarity is two l2_normalize (square, sum, rsqrt, multiply) and a product sum "
         "in float32 (~10 ops, its norm overflowing past 1.8e19, its gradient near parallel vectors off: see "
         "the peer notes); ours computes float32 input in float64 (two casts in, one out, every op at float64 "
         "width; no scaling there, as in the torch closed form: ~10 ops per array, the a / ε branch computed "
         "for every element; measured 1.6-1.7 of the peer at cls and 2.6-2.8 at seg, against 1.1-1.2 and "
         "1.7-2.0 in float32 before the near-parallel fix) plus the contract's ops", KERAS_EAGER),
)

COSINE_SIMILARITY = register(LossSpec(
    name="cosine_similarity",
    nonfinite_propagates=('prediction', 'target'),
    family="regression",
    summary="Negative cosine similarity -ŷ·y / (max(‖ŷ‖, epsilon) max(‖y‖, epsilon)) along axis (in [-1, 1], -1 "
            "for parallel vectors), averaged over the other non-batch axes of a sample.",
    formula=(r"\ell = -\frac{1}{K}\sum_k \frac{\hat y_k \cdot y_k}{\max(\lVert \hat y_k\rVert, \epsilon)\,"
             r"\max(\lVert y_k\rVert, \epsilon)}"),
    params=COSINE_PARAMS,
    reference=_cosine_reference,
    reference_vjp=_cosine_vjp,
    exact=_cosine_exact,
    cases=_cosine_cases,
    invalid_cases=lambda: [
        InvalidCase("axis-batch", {"axis": 0}),
        InvalidCase("axis-float", {"axis": 1.0}),
        InvalidCase("axis-bool", {"axis": True}),
        InvalidCase("epsilon-zero", {"epsilon": 0.0}),
        InvalidCase("epsilon-inf", {"epsilon": float("inf")}),
        InvalidCase("axis-out-of-range", {"axis": 2}, np.ones((3, 4)), np.ones((3, 4))),
        InvalidCase("axis-negative-batch", {"axis": -2}, np.ones((3, 4)), np.ones((3, 4))),
        InvalidCase("one-d-prediction", {}, np.ones(5), np.ones(5)),
    ],
    target_domain=None,
    check_shapes=_check_cosine_axis,
    tolerances=dataclasses.replace(DEFAULT_TOLERANCES, exact_value=Tolerance(rtol=1e-12, atol=1e-14)),
    grad_convention=("d/dŷ_k = -(m - (n·m) n) / (K ‖ŷ_k‖) for ‖ŷ_k‖ >= ε (n = ŷ_k/‖ŷ_k‖, m = y_k / max(‖y_k‖, ε)), "
                     "-m / (K ε) for ‖ŷ_k‖ < ε, where the loss is linear in ŷ_k: a zero prediction vector has "
                     "value 0 and gradient -m/(K ε), as Keras' and torch's own cosines give; a zero target vector "
                     "value 0 and gradient 0. At ‖ŷ_k‖ = ε exactly (a kink) the normalizing branch. The target is "
                     "not differentiated."),
    stability=("Each vector is divided by its largest |element| (detached: the cosine does not depend on the "
               "scale) before the norm: Σ x² never overflows (float32: from ‖x‖ = 1.8e19 on, where Keras' and "
               "torch's own cosines become 0 with gradient 0) nor underflows; the value is a sum of products of "
               "unit-vector components, |ℓ| <= 1, with absolute error at most D ulps (the reference's mpmath "
               "tolerance: atol 1e-14 for D <= 33, rtol 1e-12). Near parallel vectors the gradient m - (n·m) n "
               "is a difference of nearly equal vectors: absolute error ~ ulp / ‖ŷ‖, which in float32 arithmetic "
               "is not within the float32 tolerance where that vector's gradient is the largest (a vector of norm "
               "1e-5: 4.6% off, case edge-parallel-tiny-norm): both twins compute float32 inputs in float64 "
               "(ulp64 / ‖ŷ‖ is far inside) and cast the loss back; float64 inputs stay float64."),
    performance_notes=_COSINE_SIMILARITY_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.CosineSimilarity(axis)", "float32 vectors with ‖x‖ >= 1.8e19; rank > 2 inputs",
                 "-Σ l2_normalize(y) l2_normalize(ŷ) with l2_normalize(x) = x min(rsqrt(Σ x²), 1/ε), ε = 1e-7: "
                 "the same math (ours with axis, epsilon=1e-7), zero vectors included (value 0, gradient -m/ε); "
                 "but Σ x² overflows to inf in float32 past ‖x‖ = 1.8e19 and the vector becomes 0 (value 0, "
                 "gradient 0; ours scales first). Its reduction='none' keeps every non-batch axis but axis; "
                 "'sum_over_batch_size' divides by their count: our 'mean' of per-sample means (sample weights "
                 "too, which Keras takes as (N, 1) for rank > 2 inputs)"),
        PeerNote("keras.losses.CosineSimilarity(axis), torch.nn.functional.cosine_similarity",
                 "float32 small vectors nearly parallel to their targets",
                 "both compute in float32: the gradient m - (n·m) n, a difference of nearly equal unit vectors, is "
                 "off by ~eps32 / ‖ŷ‖ (case edge-parallel-tiny-norm, a vector of norm 1e-5: Keras 14% and torch "
                 "1.6% off where the gradient is 0.05); ours computes float32 in float64"),
        PeerNote("torch.nn.functional.cosine_similarity(x1, x2, dim, eps) / torch.nn.CosineSimilarity(dim, eps)",
                 "the sign; eps; gradients at 0 < ‖ŷ‖ < ε; float32 vectors with ‖x‖ >= 1.8e19",
                 "a similarity, not a loss, with the opposite sign: -F.cosine_similarity(input, target, dim=axis, "
                 "eps=epsilon).mean() is ours(axis, epsilon) with reduction='mean' (its eps defaults to 1e-8, "
                 "dim to 1), values and gradients, but for 0 < ‖ŷ‖ < eps: it clamps the norm without recording "
                 "it, so its gradient there is -(m - (n·m)(‖ŷ‖/ε) n)/ε, not the -m/ε of its own value (ours, "
                 "Keras'; equal at ŷ = 0); its float32 norm overflows past 1.8e19 too (value 0, gradient 0)"),
        PeerNote("torch.nn.CosineEmbeddingLoss(margin)", "every input",
                 "not a twin: 1 - cos(x1, x2) for label y = 1 and max(0, cos - margin) for y = -1, over dim 1, "
                 "with cos = x1·x2 / sqrt((‖x1‖² + 1e-12)(‖x2‖² + 1e-12)); with every label 1 it is 1 + ours "
                 "(axis=1) up to that 1e-12 (relative 1e-12 / ‖x‖²)"),
    ),
    references=("Keras CosineSimilarity; torch F.cosine_similarity: the cosine of the angle between prediction and "
                "target vectors (embeddings, directions), negated so that lower is better",),
    trap=("The loss ignores the scale of ŷ: a model trained on it alone can output any length. torch's "
          "F.cosine_similarity takes dim=1 by default, Keras axis=-1: pass axis explicitly when porting."),
    torch_class="CosineSimilarityLoss",
    keras_class="CosineSimilarity",
))


__all__ = ["MEAN_SQUARED_ERROR", "ASYMMETRIC_EXPONENTIAL", "MEAN_ABSOLUTE_ERROR", "HUBER", "LOG_COSH",
           "MEAN_ABSOLUTE_PERCENTAGE_ERROR", "MEAN_SQUARED_LOGARITHMIC_ERROR", "POISSON", "COSINE_SIMILARITY",
           "regression_cases"]
