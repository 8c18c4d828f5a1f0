"""Binary / multilabel classification losses: ``weighted_bce`` and ``binary_focal``."""
from __future__ import annotations

import numpy as np

from . import validation as v
from .cases import EXTREME_LOGITS, binary_cases
from .core import Identity, InvalidCase, LossSpec, Param, PeerNote, register
from .numerics import (
    clamped_log,
    clamped_log1m,
    clamped_log1m_grad,
    clamped_log_grad,
    exact_elementwise_mean,
    log_sigmoid,
    mean_nonbatch,
    mp,
    mp_clamped_log,
    mp_log_sigmoid,
    safe_log,
    sigmoid,
    spread_cotangent,
)
from .performance import COMPILED_CALL, KERAS_EAGER, TORCH_CONTRACT, TORCH_VALIDATION, note

FROM_LOGITS = Param(
    "from_logits", True, "a bool", v.boolean(),
    doc="True: the prediction is a logit (stable path). False: a probability in [0, 1], "
        "whose logs use the documented clamp log(max(q, 2**-126)).")


def _probability_hint(params) -> str:
    if params.get("from_logits", True):
        return ""
    return ("; with from_logits=False the prediction must be a probability "
            "(pass from_logits=True if the model outputs logits)")


def _prediction_domain(params):
    return None if params.get("from_logits", True) else (0.0, 1.0)


def _log_probs(prediction, from_logits):
    """``(log p, log(1 - p))`` and their derivatives w.r.t. the prediction, float64."""
    x = np.asarray(prediction, np.float64)
    if from_logits:
        return log_sigmoid(x), log_sigmoid(-x), sigmoid(-x), -sigmoid(x)
    return (clamped_log(x), clamped_log1m(x), clamped_log_grad(x), clamped_log1m_grad(x))


def _mp_log_probs(x, from_logits):
    if from_logits:
        return mp_log_sigmoid(x), mp_log_sigmoid(-x)
    return mp_clamped_log(x), mp_clamped_log(1 - x)


# =========================================================================== weighted_bce
def _wbce_reference(prediction, target, *, pos_weight, from_logits):
    log_p, log_1mp, _, _ = _log_probs(prediction, from_logits)
    y = target
    return mean_nonbatch(-(pos_weight * y * log_p + (1.0 - y) * log_1mp))


def _wbce_vjp(prediction, target, cotangent, *, pos_weight, from_logits):
    _, _, d_log_p, d_log_1mp = _log_probs(prediction, from_logits)
    y = target
    elem_grad = -(pos_weight * y * d_log_p + (1.0 - y) * d_log_1mp)
    return elem_grad * spread_cotangent(cotangent, np.shape(prediction))


def _wbce_exact_elem(x, y, *, pos_weight, from_logits):
    log_p, log_1mp = _mp_log_probs(x, from_logits)
    return -(pos_weight * y * log_p + (1 - y) * log_1mp)


def _wbce_exact(prediction, target, *, pos_weight, from_logits):
    return exact_elementwise_mean(_wbce_exact_elem, prediction, target, ("pos_weight",),
                                  pos_weight=pos_weight, from_logits=from_logits)


def _wbce_cases():
    name = "weighted_bce"
    out = []
    for tag, params in [
        ("default", {}),
        ("pw3", {"pos_weight": 3.0}),
        ("pwvec", {"pos_weight": np.array([0.5, 2.0, 27.0])}),
        ("probs-pw2", {"pos_weight": 2.0, "from_logits": False}),
    ]:
        out += binary_cases(name, params, tag, from_logits=params.get("from_logits", True))
    return out


def _wbce_invalid():
    p = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    probs_bad = np.array([[0.5, 1.5, 0.2], [0.1, 0.0, -0.1]])
    return [
        InvalidCase("pos-weight-zero", {"pos_weight": 0.0}),
        InvalidCase("pos-weight-negative", {"pos_weight": -1.0}),
        InvalidCase("pos-weight-nan", {"pos_weight": float("nan")}),
        InvalidCase("pos-weight-vector-negative", {"pos_weight": [1.0, -2.0, 3.0]}),
        InvalidCase("pos-weight-matrix", {"pos_weight": [[1.0, 2.0]]}),
        InvalidCase("pos-weight-string", {"pos_weight": "balanced"}),
        InvalidCase("from-logits-not-bool", {"from_logits": 1}),
        InvalidCase("pos-weight-length", {"pos_weight": [1.0, 2.0]}, p, t),
        InvalidCase("probabilities-out-of-range", {"from_logits": False}, probs_bad, t),
    ]


_WEIGHTED_BCE_PERFORMANCE = (
    note("torch", "torch eager", ("cls",), 1.2,
         "the accurate closed form is 13 elementwise passes in one autograd.Function (exp, log1p and a sigmoid "
         "of -|x|: three transcendental passes) and one backward multiply, against ATen's log-sigmoid kernel and "
         "its backward (0.92 of the peer at `cls` with validate=False, 0.95-1.12 with validate=True between runs "
         "of 2026-12-05)", TORCH_VALIDATION),
    note("torch", "torch compile*", ("cls", "seg", "large"), 1.2,
         "inductor fuses the closed form into one loop that is compute-bound on its transcendentals: exp and "
         "log1p for the softplus pair and two sigmoids an element against the peer's one exp and one log1p (the "
         "accurate form's price; under XLA the same math is 0.2-0.5 of the Keras peer)", COMPILED_CALL),
)

WEIGHTED_BCE = register(LossSpec(
    name="weighted_bce",
    nonfinite_propagates=('prediction',),
    family="classification",
    summary="Binary cross-entropy with a weight on the positive term (multilabel, imbalanced).",
    formula=r"\ell = -\frac{1}{M}\sum_j \left[w_j\, y_j \log\sigma(x_j) + (1-y_j)\log(1-\sigma(x_j))\right]",
    params=(
        Param("pos_weight", 1.0, "a positive finite float or a 1-D array of them (one per class, last axis)",
              v.positive_scalar_or_vector(), differentiable=True,
              doc="Weight of the positive term; >1 raises recall. `pos_weight_from_labels` gives "
                  "negatives/positives per column."),
        FROM_LOGITS,
    ),
    reference=_wbce_reference,
    reference_vjp=_wbce_vjp,
    exact=_wbce_exact,
    cases=_wbce_cases,
    invalid_cases=_wbce_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    check_shapes=v.last_axis_param_check("pos_weight"),
    grad_convention=(
        "Logits: smooth everywhere, d/dx = -w y σ(-x) + (1-y) σ(x). Probabilities: "
        "d/dp = -w y/p + (1-y)/(1-p) through the clamp log(max(q, 2**-126)): 1/q for q >= 2**-126 "
        "(ties take the identity branch), 0 below (so p = 0 with y = 1 has gradient 0, value 87.34 w)."),
    stability=("log σ(x) = -softplus(-x) (log-sum-exp form), never log(sigmoid(x)); computed in "
               "float32 for half inputs and float64 for float64 inputs."),
    performance_notes=_WEIGHTED_BCE_PERFORMANCE,
    peer_notes=(
        PeerNote("torch.nn.BCEWithLogitsLoss(pos_weight=)", "logits",
                 "equal values and gradients; its reduction='mean' is our mean over all elements "
                 "(same when samples are equal-sized and unweighted)"),
        PeerNote("tf.nn.weighted_cross_entropy_with_logits", "x == 0 exactly",
                 "equal values everywhere and equal gradients for x != 0; at x = 0 its autodiff of "
                 "max(-x, 0) + log1p(exp(-|x|)) takes the tie branches and returns a wrong derivative "
                 "(ours: -w y σ(0) + (1-y) σ(0))"),
        PeerNote("keras BinaryCrossentropy(from_logits=False)", "p < 1e-7 or p > 1 - 1e-7",
                 "Keras clips p to [1e-7, 1-1e-7]: value capped at 16.12 and gradient 0; ours is the "
                 "true loss down to p = 2**-126"),
        PeerNote("torch.nn.functional.binary_cross_entropy", "p (1-p) < 1e-12",
                 "torch's backward uses (p-y)/max(p(1-p), 1e-12), not the derivative of its forward"),
        PeerNote("torch.nn.BCELoss / torch.nn.functional.binary_cross_entropy", "p < 2**-126 or 1 - p < 2**-126",
                 "torch clamps log p at -100: at p = 0 with y = 1 its value is 100, ours -log 2**-126 = 87.3 (ours "
                 "clamps p at 2**-126); equal for every p in [2**-126, 1 - 2**-126]"),
        PeerNote("torch.nn.SoftMarginLoss", "-y x > 88.7 (float32), > 709 (float64)",
                 "SoftMarginLoss(x, y) with y = ±1 is ours (from_logits=True) with target (y + 1) / 2, but torch "
                 "computes log1p(exp(-y x)), which overflows to inf there; ours (softplus) gives -y x"),
        PeerNote("torch.nn.MultiLabelSoftMarginLoss", "every input",
                 "equal values and gradients: the mean over the classes of the logit BCE, one value per sample"),
    ),
    references=("sparse multilabel (docs/problems.md): weighted_cross_entropy_with_logits for 30 sparse labels",),
    trap=("The sparse-multilabel problem applies a sigmoid output and then wants logits; it also hand-picks 27 "
          "(≈ negatives/positives). We take logits by default and provide pos_weight_from_labels."),
    torch_class="WeightedBCELoss",
    keras_class="WeightedBCE",
))


# =========================================================================== binary_focal
def _focal_parts(prediction, target, from_logits):
    """log(1 - p_t), its derivative, BCE and its derivative, elementwise (float64)."""
    log_p, log_1mp, d_log_p, d_log_1mp = _log_probs(prediction, from_logits)
    y = target
    # 1 - p_t = y (1-p) + (1-y) p, in log space: logaddexp(log y + log(1-p), log(1-y) + log p)
    u = safe_log(y) + log_1mp
    w = safe_log(1.0 - y) + log_p
    log_m = np.logaddexp(u, w)
    d_log_m = np.exp(u - log_m) * d_log_1mp + np.exp(w - log_m) * d_log_p
    bce = -(y * log_p + (1.0 - y) * log_1mp)
    d_bce = -(y * d_log_p + (1.0 - y) * d_log_1mp)
    return log_m, d_log_m, bce, d_bce


def _alpha_t(target, alpha):
    return 1.0 if alpha is None else alpha * target + (1.0 - alpha) * (1.0 - target)


def _focal_reference(prediction, target, *, gamma, alpha, from_logits):
    log_m, _, bce, _ = _focal_parts(prediction, target, from_logits)
    return mean_nonbatch(_alpha_t(target, alpha) * np.exp(gamma * log_m) * bce)


def _focal_vjp(prediction, target, cotangent, *, gamma, alpha, from_logits):
    log_m, d_log_m, bce, d_bce = _focal_parts(prediction, target, from_logits)
    mod = np.exp(gamma * log_m)
    elem_grad = _alpha_t(target, alpha) * mod * (gamma * d_log_m * bce + d_bce)
    return elem_grad * spread_cotangent(cotangent, np.shape(prediction))


def _focal_exact_elem(x, y, *, gamma, alpha, from_logits):
    log_p, log_1mp = _mp_log_probs(x, from_logits)
    m = y * mp.exp(log_1mp) + (1 - y) * mp.exp(log_p)
    bce = -(y * log_p + (1 - y) * log_1mp)
    a_t = 1 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    return a_t * mp.exp(gamma * mp.log(m)) * bce


def _focal_exact(prediction, target, *, gamma, alpha, from_logits):
    return exact_elementwise_mean(_focal_exact_elem, prediction, target, ("gamma", "alpha"),
                                  gamma=gamma, alpha=alpha, from_logits=from_logits)


def _focal_cases():
    name = "binary_focal"
    out = []
    for tag, params in [
        ("default", {}),
        ("g0.5-a0.25", {"gamma": 0.5, "alpha": 0.25}),
        ("g0", {"gamma": 0.0}),
        ("g5-a0.75", {"gamma": 5.0, "alpha": 0.75}),
        ("probs-g2", {"from_logits": False}),
        ("probs-g0.3", {"gamma": 0.3, "alpha": 0.5, "from_logits": False}),
    ]:
        out += binary_cases(name, params, tag, from_logits=params.get("from_logits", True))
    return out


def _focal_invalid():
    return [
        InvalidCase("gamma-negative", {"gamma": -0.5}),
        InvalidCase("gamma-inf", {"gamma": float("inf")}),
        InvalidCase("gamma-bool", {"gamma": True}),
        InvalidCase("alpha-above-one", {"alpha": 1.5}),
        InvalidCase("alpha-negative", {"alpha": -0.1}),
        InvalidCase("alpha-string", {"alpha": "auto"}),
        InvalidCase("from-logits-not-bool", {"from_logits": "true"}),
        InvalidCase("probabilities-out-of-range", {"from_logits": False},
                    np.array([[0.2, 1.2], [0.3, 0.4]]), np.array([[1.0, 0.0], [0.0, 1.0]])),
    ]


_BINARY_FOCAL_PERFORMANCE = (
    note("torch", "torch compile*", ("cls", "seg", "large"), 1.05,
         "the eager peer (torchvision's sigmoid_focal_loss formula, one sigmoid and a BCE kernel) is short at "
         "`cls` and in forward-only calls; at `seg` fwd+bwd float32 the compiled closed form meets the target",
         COMPILED_CALL),
)

BINARY_FOCAL = register(LossSpec(
    name="binary_focal",
    nonfinite_propagates=('prediction',),
    family="classification",
    summary="Focal loss (Lin et al. 2017): BCE down-weighted on easy examples by (1 - p_t)^γ.",
    formula=(r"\ell = \frac{1}{M}\sum_j \alpha_t\,(1-p_t)^{\gamma}\,\mathrm{BCE}(x_j, y_j),\quad "
             r"1-p_t = y(1-p) + (1-y)p,\ \alpha_t = \alpha y + (1-\alpha)(1-y)"),
    params=(
        Param("gamma", 2.0, "a finite float >= 0", v.real(lo=0.0),
              doc="Focusing parameter; 0 gives BCE. Any gamma >= 0 has finite gradients."),
        Param("alpha", None, "None or a float in [0, 1]", v.optional(v.real(lo=0.0, hi=1.0)),
              differentiable=True,
              doc="Weight of positives (1 - alpha for negatives), torchvision semantics; None: no weighting."),
        FROM_LOGITS,
    ),
    reference=_focal_reference,
    reference_vjp=_focal_vjp,
    exact=_focal_exact,
    cases=_focal_cases,
    invalid_cases=_focal_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    grad_convention=(
        "Smooth for logits and every gamma >= 0: (1-p_t)^γ is computed as exp(γ log(1-p_t)) with "
        "log(1-p_t) a log-sum-exp of log-sigmoids, so d/dx = α_t (1-p_t)^γ (γ BCE d log(1-p_t)/dx "
        "+ dBCE/dx) stays finite at saturated logits even for 0 < γ < 1. Probabilities: through "
        "the same clamp as weighted_bce."),
    stability=("No pow of a quantity that can underflow to 0: log(1-p_t) = logaddexp(log y + log σ(-x), "
               "log(1-y) + log σ(x)); soft targets use torchvision's α_t and BCE."),
    identities=(
        Identity({"gamma": 0.0}, "weighted_bce", {}, "gamma = 0, alpha = None is plain BCE"),
        Identity({"gamma": 0.0, "from_logits": False}, "weighted_bce", {"from_logits": False},
                 "same on probabilities"),
    ),
    performance_notes=_BINARY_FOCAL_PERFORMANCE,
    peer_notes=(
        PeerNote("torchvision.ops.sigmoid_focal_loss", "logits, hard or soft targets",
                 "equal values; its gradient is NaN-free for gamma >= 1 but for 0 < gamma < 1 it "
                 "computes (1 - p_t)**gamma, whose derivative is inf·0 = NaN once 1 - p_t underflows"),
        PeerNote("keras BinaryFocalCrossentropy", "0 < gamma < 1 with |x| >= 40 (float32)",
                 "NaN gradient (pow of 0 to a power < 1); ours is finite and equal to the reference"),
    ),
    references=("Lin et al., Focal Loss for Dense Object Detection, ICCV 2017",
                "segmentation overlap losses (docs/problems.md): ship segmentation, focal with high gamma"),
    trap="(1-p_t)**gamma has an infinite derivative at 0 for gamma < 1: naive code returns NaN.",
    torch_class="BinaryFocalLoss",
    keras_class="BinaryFocal",
))

__all__ = ["WEIGHTED_BCE", "BINARY_FOCAL", "EXTREME_LOGITS"]
