"""Multiclass classification losses (softmax heads): ``categorical_crossentropy``,
``sparse_categorical_crossentropy``, ``cost_sensitive_cce``, ``categorical_focal_crossentropy`` and
``categorical_generalized_crossentropy``.

Layout (both frameworks)
------------------------
The class axis is the LAST axis (Keras' ``channels_last`` convention): prediction ``(N, ..., C)``,
target ``(N, ..., C)`` (one-hot or soft labels) or, for the sparse loss, integer class indices of
shape ``(N, ...)``. For inputs of rank > 2 (segmentation maps) the per-sample loss is the mean
over the non-batch, non-class positions. torch users whose logits are NCHW (``F.cross_entropy``'s
layout) move the class axis last first: ``x.movedim(1, -1)``.

Numerics
--------
Logits go through a log-softmax written as ``(x - m) - log1p(Σ_{c≠c*} exp(x_c - m))`` (``m`` the row
max, ``c*`` one argmax): the ``log1p`` keeps full relative accuracy for the tiny losses of confident,
correct predictions, where ``log(Σ exp)`` rounds them to 0 (the frameworks' log-softmax is within
their absolute tolerance there). Probabilities (``from_logits=False``) use the library's one clamp
``log(max(p, 2**-126))`` (:mod:`spec.numerics`) and must be rows summing to 1: rows that do not
are rejected, never silently renormalized (the MNIST problem, docs/problems.md: a sigmoid head feeding a softmax loss).
"""
from __future__ import annotations

import math

import numpy as np

from . import validation as v
from .cases import EXTREME_LOGITS, rng_for, softmax_head_inputs
from .core import CHECKS_ALL, CHECKS_LABELS, CHECKS_NOTHING, Case, Identity, InvalidCase, LossSpec, Param, ParamError, PeerNote, register
from .messages import VALIDATE_HINT, format_shape
from .numerics import (MP_P_MIN_EXP, clamped_log, clamped_log1m, clamped_log1m_grad, clamped_log_grad, log_softmax,
                       mean_nonbatch, mp, mp_clamped_log, mp_log_softmax, softmax_cross_entropy_grad)
from .performance import KERAS_EAGER, TORCH_CONTRACT, note

#: |row sum - 1| allowed for probability rows (``from_logits=False``). 1e-2, not 1e-3: a softmax
#: row rounded to bfloat16 (and possibly cast back to float32 before the loss) has its sum moved by
#: up to 2**-9 ≈ 0.002 by the rounding alone, and by several times that when the softmax itself
#: ran in bfloat16; the tolerance widens further to 4 eps for half-precision inputs. Still far
#: from what it must catch: rows of C sigmoids sum to about C/2 at initialization (the MNIST problem).
ROW_SUM_TOL = 1e-2


# =========================================================================== messages
def _num(x) -> str:
    return f"{float(x):.6g}"


def class_axis_missing(loss: str, shape) -> str:
    return (f"{loss}: prediction must have shape (N, ..., C) with the classes on the last axis; got "
            f"shape {format_shape(shape)} (torch users with NCHW logits: pass x.movedim(1, -1))")


def too_few_classes(loss: str, shape) -> str:
    return (f"{loss}: the class axis (last) of prediction has size 1 (shape {format_shape(shape)}): "
            f"softmax over one class is 1 and the loss is always 0. For a binary problem give 2 "
            f"columns, or use one logit with weighted_bce")


def cost_matrix_shape(loss: str, k: int, c: int) -> str:
    return (f"{loss}: `cost_matrix` is {k}x{k} but the last axis of prediction has {c} classes; "
            f"expected a ({c}, {c}) matrix (rows: true class, columns: predicted class)")


def rows_not_normalized(loss: str, lo: float, hi: float, tol: float) -> str:
    return (f"{loss}: with from_logits=False every prediction row (last axis) must be a probability "
            f"distribution summing to 1 (tolerance {tol:.3g}); got row sums in [{_num(lo)}, {_num(hi)}]. "
            f"Likely cause: a sigmoid (or linear) output layer feeding a softmax loss; drop the "
            f"activation and pass the logits with from_logits=True (recommended), or use a softmax "
            f"output{VALIDATE_HINT}")


def labels_not_integer(loss: str) -> str:
    return (f"{loss}: target must hold integer class indices (shape prediction.shape[:-1]); got "
            f"non-integer values (one-hot or soft targets go to categorical_crossentropy){VALIDATE_HINT}")


def class_weight_length(loss: str, k: int, c: int) -> str:
    return (f"{loss}: `class_weight` has {k} values but the last axis of prediction has {c} classes; "
            f"expected one weight per class ({c} values)")


def labels_out_of_range_ignoring(loss: str, lo: float, hi: float, c: int, ignore_index: int) -> str:
    return (f"{loss}: target class indices must lie in [0, {c - 1}] (the last axis of prediction has "
            f"{c} classes) or equal ignore_index={ignore_index}; the other labels are in [{_num(lo)}, {_num(hi)}]"
            f"{VALIDATE_HINT}")


def labels_out_of_range(loss: str, lo: float, hi: float, c: int) -> str:
    return (f"{loss}: target class indices must lie in [0, {c - 1}] (the last axis of prediction has "
            f"{c} classes); got values in [{_num(lo)}, {_num(hi)}]{VALIDATE_HINT}")


# =========================================================================== checks
def _size(shape) -> int:
    return 1 if any(d is None for d in shape) else math.prod(int(d) for d in shape)  # (np.prod: ~30 µs a call)


def _check_class_axis(loss, params, shape):
    """``check_shapes``: a class axis (last) with C >= 2, and a (C, C) cost matrix if any."""
    if len(shape) < 2:
        raise ValueError(class_axis_missing(loss, shape))
    c = shape[-1]
    if c is None:
        return
    if int(c) < 2:
        raise ValueError(too_few_classes(loss, shape))
    cost = params.get("cost_matrix")
    if isinstance(cost, np.ndarray) and cost.shape[0] != int(c):
        raise ValueError(cost_matrix_shape(loss, cost.shape[0], int(c)))
    weights = params.get("class_weight")
    if isinstance(weights, np.ndarray) and weights.shape[0] != int(c):
        raise ValueError(class_weight_length(loss, weights.shape[0], int(c)))


def _check_probability_rows(loss, params, prediction, ops):
    if params.get("from_logits", True) or _size(ops.shape(prediction)) == 0:
        return
    tol = max(ROW_SUM_TOL, 4.0 * ops.eps(prediction))
    lo, hi = ops.row_sum_range(prediction)
    if lo < 1.0 - tol or hi > 1.0 + tol:
        raise ValueError(rows_not_normalized(loss, lo, hi, tol))


def _check_dense_values(loss, params, prediction, target, ops):
    _check_probability_rows(loss, params, prediction, ops)


def _check_sparse_values(loss, params, prediction, target, ops):
    _check_probability_rows(loss, params, prediction, ops)
    if _size(ops.shape(target)) == 0:
        return
    if not ops.all_integral(target):
        raise ValueError(labels_not_integer(loss))
    c = int(ops.shape(prediction)[-1])
    lo, hi = ops.min_max(target)
    if lo >= 0 and hi <= c - 1:
        return
    ignore = params.get("ignore_index")
    if ignore is None:
        raise ValueError(labels_out_of_range(loss, lo, hi, c))
    # ignored labels outside [0, C-1] (torch's -100, a void 255): the extremes of the others
    others = ops.min_max_excluding(target, ignore)
    if others is not None and (others[0] < 0 or others[1] > c - 1):
        raise ValueError(labels_out_of_range_ignoring(loss, others[0], others[1], c, ignore))


def _dense_scope(params):
    """``check_values_scope`` of :func:`_check_dense_values`: row sums of probabilities only."""
    return CHECKS_ALL if not params.get("from_logits", True) else CHECKS_NOTHING


def _sparse_scope(params):
    """``check_values_scope`` of :func:`_check_sparse_values`: the labels alone for logits without an
    ignored label (their range is then [0, C - 1])."""
    return CHECKS_LABELS if params.get("from_logits", True) and params.get("ignore_index") is None else CHECKS_ALL


def _sparse_target_shape(shape):
    # a 1-D prediction has no class axis: keep its shape here so that check_shapes reports that
    return tuple(shape[:-1]) if len(shape) >= 2 else tuple(shape)


def _check_cost_matrix(value):
    if value is None or isinstance(value, (bool, str, np.bool_)):
        raise ParamError
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParamError from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
        raise ParamError
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ParamError
    return arr


def _check_class_weight(value):
    if value is None:
        return None
    if isinstance(value, (bool, str, np.bool_)):
        raise ParamError
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParamError from None
    if arr.ndim != 1 or arr.shape[0] < 2 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ParamError
    return arr


def _check_ignore_index(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParamError
    return int(value)


def _prediction_domain(params):
    return None if params.get("from_logits", True) else (0.0, 1.0)


def _probability_hint(params) -> str:
    if params.get("from_logits", True):
        return ""
    return ("; with from_logits=False the prediction must be softmax probabilities "
            "(pass from_logits=True if the model outputs logits)")


# =========================================================================== numerics
def _log_q(x, from_logits):
    """``log q`` (q = softmax(x) or the clamped probability) and, for probabilities, d log q / dp."""
    if from_logits:
        return log_softmax(x), None
    return clamped_log(x), clamped_log_grad(x)


def _mp_log_q(row, from_logits):
    return mp_log_softmax(row) if from_logits else [mp_clamped_log(val) for val in row]


def _row_cotangent(cotangent, shape):
    """The cotangent of "mean over the rows of each sample": ``c_i / R`` broadcast to ``shape``."""
    cot = np.asarray(cotangent, np.float64)
    rows = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
    return (cot / rows).reshape((shape[0],) + (1,) * (len(shape) - 1))


def _dce(x, y, from_logits):
    """``d CE / d prediction`` per row for dense targets ``y`` (CE = -Σ_c y_c log q_c)."""
    if from_logits:
        return softmax_cross_entropy_grad(x, y)
    return -y * clamped_log_grad(x)


def _exact_rows(prediction, target, row_loss, *, sparse=False):
    """Per-sample mean over the rows (non-batch, non-class positions) of ``row_loss(xs, ys)``."""
    pred = np.asarray(prediction, dtype=object)
    tgt = np.asarray(target, np.float64)
    c = pred.shape[-1]
    out = []
    for i in range(pred.shape[0]):
        xs = pred[i].reshape(-1, c)
        ys = tgt[i].reshape(-1) if sparse else tgt[i].reshape(-1, c)
        losses = [row_loss([mp.mpf(val) for val in xs[r]], ys[r]) for r in range(xs.shape[0])]
        out.append(mp.fsum(losses) / len(losses))
    return out


# =========================================================================== categorical_crossentropy
def _smooth(y, label_smoothing, c):
    return y * (1.0 - label_smoothing) + label_smoothing / c


def _weighted(y, class_weight):
    return y if class_weight is None else y * np.asarray(class_weight, np.float64)


def _cce_reference(prediction, target, *, from_logits, label_smoothing, class_weight=None):
    x = np.asarray(prediction, np.float64)
    y = _weighted(_smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1]), class_weight)
    logq, _ = _log_q(x, from_logits)
    return mean_nonbatch(-(y * logq).sum(axis=-1))


def _cce_vjp(prediction, target, cotangent, *, from_logits, label_smoothing, class_weight=None):
    x = np.asarray(prediction, np.float64)
    y = _weighted(_smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1]), class_weight)
    return _dce(x, y, from_logits) * _row_cotangent(cotangent, x.shape)


def _cce_exact(prediction, target, *, from_logits, label_smoothing, class_weight=None):
    ls = mp.mpf(label_smoothing)

    def row_loss(xs, ys):
        c = len(xs)
        w = [mp.mpf(1)] * c if class_weight is None else [mp.mpf(float(val)) for val in class_weight]
        logq = _mp_log_q(xs, from_logits)
        return -mp.fsum(wc * (mp.mpf(float(y)) * (1 - ls) + ls / c) * lq for wc, y, lq in zip(w, ys, logq))

    return _exact_rows(prediction, target, row_loss)


# =========================================================================== shared case generator
def _softmax_rows(z):
    return np.exp(log_softmax(z))


def _tie_free_grid(c):
    """One row per extreme logit v: ``[v, 1, -v/2, 0.5, ...][:c]`` (a unique max in every row)."""
    base = [lambda v: v, lambda v: 1.0, lambda v: -v / 2, lambda v: 0.5]
    return np.array([[base[k](v) for k in range(c)] for v in EXTREME_LOGITS], np.float64)


def _prob_grid(c):
    """Extreme probability rows (sums 1): one-hots, 1 - 1e-7, 1e-12, a value below the clamp
    (1e-40 < 2**-126), uniform (an exact tie) and a half/half tie."""
    rows = []
    def row(*lead):
        r = np.zeros(c)
        r[:len(lead)] = lead
        return r
    rows.append(row(1.0))
    rows.append(np.eye(c)[c - 1])
    rows.append(row(1.0 - 1e-7, 1e-7))
    rows.append(row(1e-12, 1.0 - 1e-12))
    rows.append(row(1e-40, 1.0))
    rows.append(np.full(c, 1.0 / c))
    rows.append(row(0.5, 0.5))
    return np.array(rows)


def _multiclass_cases(name, params, tag, *, from_logits, classes, sparse=False, ties=True,
                      tie_kink=False):
    """Typical / extreme / edge cases of a softmax-head loss with ``classes`` columns.

    ``sparse``: integer labels (int64) of shape prediction.shape[:-1], else one-hot / soft rows
    summing to 1. ``ties=False`` keeps every logit row's max unique (for identities that hold only
    without ties); ``tie_kink`` marks the tie cases non-smooth (argmax masks).
    """
    rng = rng_for(name + tag)
    c = classes

    def pred(shape):
        # probabilities from softmax(N(0, 1)) stay >~ 1e-3 (finite differences of log p are
        # accurate there); the extreme grid covers tiny and zero probabilities
        return rng.normal(0.0, 3.0, size=shape) if from_logits else _softmax_rows(rng.normal(0.0, 1.0, size=shape))

    def labels(shape):
        return rng.integers(0, c, size=shape).astype(np.int64)

    def hard(shape):
        lab = labels(shape[:-1])
        return lab if sparse else np.eye(c)[lab]

    def soft(shape):
        if sparse:
            return labels(shape[:-1])
        return rng.dirichlet(np.ones(c), size=shape[:-1])

    cases = [
        Case(f"{tag}-typical-hard", "typical", params, pred((6, c)), hard((6, c)),
             rng.uniform(0.2, 2.0, size=6)),
        Case(f"{tag}-typical-soft-3d", "typical", params, pred((2, 3, c)), soft((2, 3, c)),
             note="per-position rows (e.g. pixels): the per-sample loss is their mean"),
    ]
    grid = _tie_free_grid(c) if from_logits else _prob_grid(c)
    grid_labels = np.arange(grid.shape[0]) % c
    grid_y = grid_labels.astype(np.int64) if sparse else np.eye(c)[grid_labels]
    cases.append(Case(f"{tag}-extreme-grid", "extreme", params, grid, grid_y,
                      smooth=not (tie_kink and not from_logits),
                      note="every extreme row against every class"))
    cases.append(Case(f"{tag}-extreme-weights", "extreme", params, pred((3, c)), hard((3, c)),
                      np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"))
    if from_logits:
        lab = labels((4,))
        x = rng.normal(0.0, 1.0, size=(4, c))
        x[np.arange(4), lab] = 30.0 + np.arange(4)
        cases.append(Case(f"{tag}-edge-confident-correct", "edge", params, x,
                          lab if sparse else np.eye(c)[lab],
                          note="loss ~ C e^-30: relative accuracy of tiny losses (log1p)"))
    cases += [
        Case(f"{tag}-edge-batch1", "edge", params, pred((1, c)), hard((1, c))),
        Case(f"{tag}-edge-4d", "edge", params, pred((2, 2, 2, c)), hard((2, 2, 2, c))),
    ]
    if ties:
        if from_logits:
            x = np.array([[1.5] * 2 + [-2.0] * (c - 2), [0.0] * c, [-1.0] + [2.0] * (c - 1)])
        else:
            x = np.array([[0.4, 0.4] + [0.2 / (c - 2)] * (c - 2) if c > 2 else [0.5, 0.5],
                          [1.0 / c] * c, [0.5, 0.5] + [0.0] * (c - 2)])
        lab = np.array([0, 1, c - 1])
        cases.append(Case(f"{tag}-edge-ties", "edge", params, x, lab if sparse else np.eye(c)[lab],
                          smooth=not tie_kink, note="exact ties at the row max"))
    return cases


# =========================================================================== entries' params
FROM_LOGITS = Param(
    "from_logits", True, "a bool", v.boolean(),
    doc="True: the prediction is a logit (log-softmax, stable). False: softmax probabilities whose "
        "rows sum to 1 (rejected otherwise, never renormalized); their logs use log(max(p, 2**-126)).")

LABEL_SMOOTHING = Param(
    "label_smoothing", 0.0, "a float in [0, 1]", v.real(lo=0.0, hi=1.0),
    doc="Mixes the target with the uniform distribution: y' = y (1 - ls) + ls / C (Keras and torch "
        "semantics).")

CLASS_WEIGHT = Param(
    "class_weight", None, "None or a 1-D array of C >= 2 finite values >= 0 (one per class)", _check_class_weight,
    doc="Per-class weights w: each row's loss is -Σ_c w_c y'_c log q_c (torch's CrossEntropyLoss(weight=) per "
        "element; Keras' fit(class_weight=) as sample weights w[y] of one-hot rows). The mean stays "
        "Σ_i ℓ_i / N (Keras' sum_over_batch_size, and torch's mean with probability targets); torch's "
        "weighted 'mean' with class-index targets divides by Σ_r w_{y_r} instead: reduction='sum' "
        "divided by that total reproduces it.")

IGNORE_INDEX = Param(
    "ignore_index", None, "None or an int", _check_ignore_index,
    doc="Rows labelled with this value contribute 0 (loss and gradient) and are exempt from the label range "
        "check: torch's ignore_index (e.g. -100), Keras' ignore_class (e.g. a void label 255). They still "
        "count in the mean over the rows of a sample and in N; torch's 'mean' and Keras' "
        "sum_over_batch_size divide by the non-ignored rows instead (reduction='sum' divided by their "
        "count, or weight total, reproduces them).")


# =========================================================================== categorical_crossentropy
def _cce_cases():
    name = "categorical_crossentropy"
    out = []
    # logits cases keep C = 4, unique row maxima and targets summing to 1: the identities below
    # (cost_sensitive_cce with an all-ones 4x4 cost matrix) hold on every one of them
    for tag, params in [
        ("default", {}),
        ("ls0.1", {"label_smoothing": 0.1}),
        ("probs", {"from_logits": False}),
        ("probs-ls0.2", {"from_logits": False, "label_smoothing": 0.2}),
    ]:
        from_logits = params.get("from_logits", True)
        out += _multiclass_cases(name, params, tag, from_logits=from_logits, classes=4,
                                 ties=not from_logits)
    rng = rng_for(name + "weighted")
    w = SPARSE_CLASS_WEIGHT
    grid = _tie_free_grid(4)
    out += [
        Case("weighted-ls0.1-typical-soft-3d", "typical", {"class_weight": w, "label_smoothing": 0.1},
             rng.normal(0.0, 3.0, size=(2, 3, 4)), rng.dirichlet(np.ones(4), size=(2, 3)),
             rng.uniform(0.2, 2.0, size=2), note="torch's CrossEntropyLoss(weight=, label_smoothing=) with "
             "probability targets: -Σ_c w_c y'_c log q_c per row"),
        Case("weighted-extreme-grid", "extreme", {"class_weight": w}, grid,
             np.eye(4)[np.arange(grid.shape[0]) % 4]),
        Case("weighted-probs-typical", "typical", {"class_weight": w, "from_logits": False},
             _softmax_rows(rng.normal(0.0, 1.0, size=(5, 4))), np.eye(4)[rng.integers(0, 4, size=5)]),
    ]
    return out


def _cce_invalid():
    p, t, sigmoid_head = softmax_head_inputs()
    return [
        InvalidCase("label-smoothing-above-one", {"label_smoothing": 1.5}),
        InvalidCase("label-smoothing-negative", {"label_smoothing": -0.1}),
        InvalidCase("label-smoothing-string", {"label_smoothing": "0.1"}),
        InvalidCase("from-logits-not-bool", {"from_logits": 0}),
        InvalidCase("no-class-axis", {}, np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 0.0])),
        InvalidCase("one-class", {}, np.array([[0.5], [-1.0]]), np.array([[1.0], [1.0]])),
        InvalidCase("probabilities-out-of-range", {"from_logits": False}, np.array([[1.2, -0.2, 0.0]]),
                    np.array([[1.0, 0.0, 0.0]])),
        InvalidCase("probability-rows-not-summing-to-one", {"from_logits": False}, sigmoid_head, t),
        InvalidCase("target-shape-sparse-labels", {}, p, np.array([0.0, 1.0])),
        InvalidCase("class-weight-negative", {"class_weight": [1.0, -2.0, 1.0]}),
        InvalidCase("class-weight-inf", {"class_weight": [1.0, float("inf"), 1.0]}),
        InvalidCase("class-weight-length", {"class_weight": [1.0, 2.0, 3.0, 4.0]}, p, t),
    ]


_CATEGORICAL_CROSSENTROPY_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg", "large"), 1.6,
         "the peer is the same F.cross_entropy kernel ours calls (reduction='none' on the (rows, C) view); ours "
         "then takes the per-sample mean over the non-class axes and the reduction as separate ops where the peer "
         "reduces inside its kernel, and with validate=True also checks that every target row is a probability "
         "row (one pass over the targets)", TORCH_CONTRACT),
)

CATEGORICAL_CROSSENTROPY = register(LossSpec(
    name="categorical_crossentropy",
    nonfinite_propagates=('prediction',),
    family="multiclass",
    summary="Softmax cross-entropy with one-hot or soft targets on the last axis, optional label smoothing.",
    formula=(r"\ell = -\frac{1}{R}\sum_{r}\sum_{c=1}^{C} w_c\,y'_{rc}\,\log\mathrm{softmax}(x_r)_c,\quad "
             r"y' = y(1-\epsilon) + \epsilon/C"),
    params=(FROM_LOGITS, LABEL_SMOOTHING, CLASS_WEIGHT),
    reference=_cce_reference,
    reference_vjp=_cce_vjp,
    exact=_cce_exact,
    cases=_cce_cases,
    invalid_cases=_cce_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    check_shapes=_check_class_axis,
    check_values=_check_dense_values,
    check_values_scope=_dense_scope,
    grad_convention=(
        "Logits: smooth, d/dx = softmax(x) Σ_c t_c - t with t = w ⊙ y' (per row, divided by the number of rows R). "
        "Probabilities: d/dp_c = -t_c / p_c through the clamp log(max(p, 2**-126)): 1/p for "
        "p >= 2**-126 (ties take the identity branch), 0 below; the row-sum constraint is not "
        "projected out (the gradient is the plain partial derivative, as in the frameworks)."),
    stability=("log-softmax as (x - max) - log1p(Σ_{c≠argmax} exp(x_c - max)) in the reference; "
               "F.log_softmax / tf.nn.log_softmax in the frameworks (log-sum-exp, never "
               "log(softmax(x))); finite for any finite logits, ±1e4 included, in float32."),
    identities=(
        Identity({}, "cost_sensitive_cce", {"cost_matrix": np.ones((4, 4))},
                 "an all-ones cost matrix makes the argmax multiplier Σ_t y_t = 1 (targets summing to "
                 "1, no ties at the row max: the logits cases of this entry)"),
        Identity({}, "cost_sensitive_cce", {"cost_matrix": np.ones((4, 4)), "mode": "soft"},
                 "all-ones costs in soft mode: m = Σ_t y_t Σ_p softmax_p = 1"),
    ),
    performance_notes=_CATEGORICAL_CROSSENTROPY_PERFORMANCE,
    peer_notes=(
        PeerNote("torch.nn.functional.cross_entropy (probability targets, label_smoothing)",
                 "logits", "equal values and gradients; its class axis is 1 (NCHW), ours the last "
                 "one, and its reduction='mean' averages every position of the batch"),
        PeerNote("keras CategoricalCrossentropy(from_logits=True, label_smoothing=)", "logits",
                 "equal values and gradients; Keras' default is from_logits=False, ours True"),
        PeerNote("keras CategoricalCrossentropy(from_logits=False)", "probabilities",
                 "Keras divides each row by its sum (a sigmoid head is silently renormalized) and "
                 "clips p to [1e-7, 1 - 1e-7] (value capped at 16.12, gradient 0 below 1e-7); ours "
                 "rejects rows not summing to 1 and uses log(max(p, 2**-126)), the true loss down "
                 "to 2**-126. Its renormalization adds Σy / Σp (1 on the simplex) to the gradient of every "
                 "class: the gradients agree along the simplex only"),
    ),
    references=("MNIST thresholding and data selection (docs/problems.md): softmax losses fed by a sigmoid head",
                "Szegedy et al., Rethinking the Inception Architecture (label smoothing), CVPR 2016"),
    trap=("log(softmax(x)) or log(p) overflows/underflows to inf/NaN and Keras' probability clip "
          "caps the loss at 16.12: we take logits by default (log-sum-exp) and clamp probabilities "
          "at 2**-126; probability rows must sum to 1 and a single output column (always 0) is "
          "rejected."),
    torch_class="CategoricalCELoss",
    keras_class="CategoricalCE",
))


# =========================================================================== sparse_categorical_crossentropy
def _labels(target):
    # the harness passes integer labels as float64: they are whole numbers, cast back exactly
    return np.asarray(target, np.float64).astype(np.int64)


def _sparse_dense_target(target, c, label_smoothing, class_weight, ignore_index):
    """``w ⊙ y'`` per row: the smoothed one-hot of the label times the class weights, a zero row
    where the label is ``ignore_index``."""
    labels = _labels(target)
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    y = _smooth(np.eye(c)[np.where(valid, labels, 0)], label_smoothing, c) * valid[..., None]
    return y if class_weight is None else y * np.asarray(class_weight, np.float64)


def _sparse_reference(prediction, target, *, from_logits, label_smoothing=0.0, class_weight=None,
                      ignore_index=None):
    x = np.asarray(prediction, np.float64)
    logq, _ = _log_q(x, from_logits)
    wy = _sparse_dense_target(target, x.shape[-1], label_smoothing, class_weight, ignore_index)
    return mean_nonbatch(-(wy * logq).sum(axis=-1))


def _sparse_vjp(prediction, target, cotangent, *, from_logits, label_smoothing=0.0, class_weight=None,
                ignore_index=None):
    x = np.asarray(prediction, np.float64)
    wy = _sparse_dense_target(target, x.shape[-1], label_smoothing, class_weight, ignore_index)
    return _dce(x, wy, from_logits) * _row_cotangent(cotangent, x.shape)


def _sparse_exact(prediction, target, *, from_logits, label_smoothing=0.0, class_weight=None, ignore_index=None):
    ls = mp.mpf(label_smoothing)

    def row_loss(xs, label):
        c = len(xs)
        if ignore_index is not None and int(label) == ignore_index:
            return mp.mpf(0)
        w = [mp.mpf(1)] * c if class_weight is None else [mp.mpf(float(val)) for val in class_weight]
        logq = _mp_log_q(xs, from_logits)
        return -mp.fsum(w[k] * ((1 - ls) * (k == int(label)) + ls / c) * logq[k] for k in range(c))

    return _exact_rows(prediction, target, row_loss, sparse=True)


def _sparse_cases():
    name = "sparse_categorical_crossentropy"
    out = []
    for tag, params in [("default", {}), ("probs", {"from_logits": False})]:
        from_logits = params.get("from_logits", True)
        out += _multiclass_cases(name, params, tag, from_logits=from_logits, classes=4, sparse=True)
    rng = rng_for(name + "edges")
    out += [
        Case("default-edge-float-labels", "edge", {}, rng.normal(0.0, 3.0, size=(3, 4)),
             np.array([0.0, 3.0, 2.0]), note="whole-number float labels are accepted (Keras casts them)"),
        Case("default-edge-2-classes", "edge", {}, rng.normal(0.0, 3.0, size=(5, 2)),
             np.array([0, 1, 1, 0, 1], np.int64), note="a binary problem as 2 softmax columns"),
    ]
    return out + _sparse_weighted_cases()


#: class weights of the weighted sparse cases: one zero weight, one large
SPARSE_CLASS_WEIGHT = np.array([0.5, 2.0, 0.0, 4.0])


def _sparse_weighted_cases():
    """class_weight / ignore_index / label_smoothing (torch's CrossEntropyLoss(weight=, ignore_index=,
    label_smoothing=) and Keras' ignore_class): ignored rows among the labels, outside [0, C-1] and
    inside it."""
    rng = rng_for("sparse_categorical_crossentropy" + "weighted")
    w = SPARSE_CLASS_WEIGHT
    torch_like = {"class_weight": w, "ignore_index": -100, "label_smoothing": 0.1}
    labels = np.array([0, -100, 3, 2, -100, 1], np.int64)
    grid = _tie_free_grid(4)
    grid_labels = np.arange(grid.shape[0]) % 4
    grid_labels[::3] = -100
    return [
        Case("weighted-ignore-ls-typical", "typical", torch_like, rng.normal(0.0, 3.0, size=(6, 4)), labels,
             rng.uniform(0.2, 2.0, size=6), note="torch's CrossEntropyLoss(weight=, ignore_index=-100, "
             "label_smoothing=0.1) per row"),
        Case("weighted-ignore-ls-3d", "typical", torch_like, rng.normal(0.0, 3.0, size=(2, 3, 4)),
             np.array([[0, -100, 3], [-100, -100, 1]], np.int64),
             note="ignored positions count in the per-sample mean over the rows (as 0)"),
        Case("weighted-ignore-ls-extreme-grid", "extreme", torch_like, grid, grid_labels),
        Case("ignore-void-typical", "typical", {"ignore_index": 255}, rng.normal(0.0, 3.0, size=(5, 4)),
             np.array([255, 1, 2, 255, 0], np.int64), note="Keras' ignore_class=255 (a void label)"),
        Case("ignore-in-range-probs", "typical", {"ignore_index": 0, "class_weight": w, "from_logits": False},
             _softmax_rows(rng.normal(0.0, 1.0, size=(5, 4))), np.array([0, 1, 2, 3, 0], np.int64),
             note="an ignored real class (0): its rows contribute nothing"),
        Case("ignore-every-row-edge", "edge", {"ignore_index": -100}, rng.normal(0.0, 3.0, size=(3, 4)),
             np.full(3, -100, np.int64), note="every row ignored: loss 0 and gradient 0 (no 0/0)"),
    ]


def _sparse_invalid():
    p = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    labels = np.array([2, 0], np.int64)
    # the MNIST problem: Dense(10, activation='sigmoid') + sparse_categorical_crossentropy
    sigmoid_head = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6]])
    return [
        InvalidCase("from-logits-not-bool", {"from_logits": "false"}),
        InvalidCase("label-negative", {}, p, np.array([-1, 0], np.int64)),
        InvalidCase("label-too-large", {}, p, np.array([0, 3], np.int64)),
        InvalidCase("label-not-integer", {}, p, np.array([0.5, 1.0])),
        InvalidCase("one-hot-target", {}, p, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])),
        InvalidCase("no-class-axis", {}, np.array([0.5, -1.0, 2.0]), np.array([0, 1, 0], np.int64)),
        InvalidCase("one-class", {}, np.array([[0.5], [-1.0]]), np.array([0, 0], np.int64)),
        InvalidCase("sigmoid-head-probabilities", {"from_logits": False}, sigmoid_head, labels),
        InvalidCase("unnormalized-scores", {"from_logits": False}, np.array([[0.1, 0.2, 0.3], [0.0, 0.1, 0.0]]),
                    labels),
        InvalidCase("class-weight-negative", {"class_weight": [1.0, -1.0, 1.0]}),
        InvalidCase("class-weight-nan", {"class_weight": [1.0, float("nan"), 1.0]}),
        InvalidCase("class-weight-matrix", {"class_weight": [[1.0, 1.0], [1.0, 1.0]]}),
        InvalidCase("class-weight-string", {"class_weight": "balanced"}),
        InvalidCase("class-weight-length", {"class_weight": [1.0, 2.0]}, p, labels),
        InvalidCase("ignore-index-float", {"ignore_index": -100.0}),
        InvalidCase("ignore-index-bool", {"ignore_index": True}),
        InvalidCase("label-smoothing-above-one", {"label_smoothing": 2.0}),
        InvalidCase("label-too-large-with-ignore-index", {"ignore_index": -100}, np.concatenate([p, p]),
                    np.array([-100, 0, 3, -100], np.int64)),
        InvalidCase("label-negative-with-ignore-index", {"ignore_index": 255}, np.concatenate([p, p]),
                    np.array([255, -1, 0, 2], np.int64)),
    ]


_SPARSE_CATEGORICAL_CROSSENTROPY_PERFORMANCE = (
    note("torch", "torch eager*", ("cls",), 1.65,
         "the peer is the same F.cross_entropy kernel ours calls; with validate=True ours also checks the integer "
         "labels against the class count (one aminmax of the labels)", TORCH_CONTRACT),
)

SPARSE_CATEGORICAL_CROSSENTROPY = register(LossSpec(
    name="sparse_categorical_crossentropy",
    family="multiclass",
    summary=("Softmax cross-entropy with integer class labels (target shape = prediction.shape[:-1]); optional "
             "per-class weights, an ignored label and label smoothing."),
    formula=(r"\ell = -\frac{1}{R}\sum_{r} [y_r \ne k] \sum_{c} w_c\, y'_{rc} \log\mathrm{softmax}(x_r)_c,\quad "
             r"y'_r = \mathrm{onehot}(y_r)(1-\epsilon) + \epsilon/C,\quad y_r \in \{0,\dots,C-1\}"),
    params=(FROM_LOGITS, LABEL_SMOOTHING, CLASS_WEIGHT, IGNORE_INDEX),
    reference=_sparse_reference,
    reference_vjp=_sparse_vjp,
    exact=_sparse_exact,
    cases=_sparse_cases,
    invalid_cases=_sparse_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    target_domain=None,  # class indices: checked by _check_sparse_values
    target_shape=_sparse_target_shape,
    check_shapes=_check_class_axis,
    check_values=_check_sparse_values,
    check_values_scope=_sparse_scope,
    grad_convention=(
        "Logits: smooth, d/dx = softmax(x) Σ_c t_c - t per row with t = w ⊙ y' (softmax(x) - onehot(y) by "
        "default; divided by the number of rows R); 0 on ignored rows. "
        "Probabilities: -t_c/p_c through the clamp log(max(p, 2**-126)) (identity "
        "branch at ties, 0 below). No gradient w.r.t. the labels or the class weights."),
    stability=("Same log-softmax as categorical_crossentropy; the labelled entry is gathered (torch) "
               "or selected with a one-hot mask (TF, XLA-friendly), never a softmax then a log."),
    performance_notes=_SPARSE_CATEGORICAL_CROSSENTROPY_PERFORMANCE,
    peer_notes=(
        PeerNote("torch.nn.functional.cross_entropy (class-index targets)", "logits",
                 "equal values and gradients; class axis 1 there, last here; out-of-range labels "
                 "raise there on CPU (device assert on CUDA); ours rejects them with the spec message"),
        PeerNote("keras SparseCategoricalCrossentropy", "from_logits=False (its default)",
                 "Keras clips p to [1e-7, 1 - 1e-7] and applies a softmax to log p, i.e. divides by "
                 "the row sum: the MNIST problem's sigmoid head trains on σ/Σσ without any warning; ours "
                 "raises ValueError naming the sigmoid head. Keras also squeezes a trailing target "
                 "axis of size 1; ours requires shape prediction.shape[:-1] (pass y[..., 0]; from_keras does it). "
                 "Its renormalization adds 1 to the gradient of every class: the gradients agree along the "
                 "simplex only"),
        PeerNote("torch.nn.CrossEntropyLoss(weight=, ignore_index=, label_smoothing=)", "reduction='mean'",
                 "per row the same (class_weight=, ignore_index=, label_smoothing=; equal 'sum' and 'none' on "
                 "2-D inputs), but torch's weighted mean divides by Σ_r w_{y_r} over the rows not ignored, ours "
                 "by N (the library's mean, Keras' sum_over_batch_size): reduction='sum' divided by that total "
                 "gives torch's number; all rows ignored: torch NaN (0/0), ours 0"),
        PeerNote("keras SparseCategoricalCrossentropy(ignore_class=)", "reduction='sum_over_batch_size'",
                 "ignore_class = ignore_index per row (equal 'sum'); Keras' mean divides by the number of rows "
                 "not ignored (0 when there is none), ours by N: reduction='sum' divided by that count gives "
                 "Keras' number. Keras' fit(class_weight=) is class_weight= here (sample weights w[y])"),
        PeerNote("torch.nn.NLLLoss", "log-probabilities (its input)",
                 "NLLLoss(lp, y) = -lp_y; ours of the same normalized log-probabilities (from_logits=True) "
                 "takes their log-softmax, which leaves them unchanged: equal values and equal gradients "
                 "w.r.t. the logits before the log_softmax; w.r.t. lp itself ours adds softmax(lp) / N, "
                 "which that log_softmax's backward removes. Unnormalized inputs differ (NLLLoss reads them "
                 "as they are)"),
        PeerNote("keras SparseCategoricalCrossentropy", "tf.function without data checks",
                 "an out-of-range label raises in Keras on CPU; ours, like any graph-mode call with "
                 "validation skipped, selects nothing (one-hot of an invalid index is 0): loss 0 for "
                 "that row. Labels are checked eagerly (validate=True)."),
    ),
    references=("MNIST thresholding and data selection (docs/problems.md): Dense(10, activation='sigmoid') + 'sparse_categorical_crossentropy'",),
    trap=("The MNIST problem feeds a sigmoid head into sparse_categorical_crossentropy: Keras silently "
          "renormalizes. Here from_logits=True is the default, and with from_logits=False rows that "
          "do not sum to 1 (tolerance 1e-2) raise a ValueError naming the likely cause."),
    torch_class="SparseCategoricalCELoss",
    keras_class="SparseCategoricalCE",
))


# =========================================================================== cost_sensitive_cce
def _cs_parts(prediction, target, cost_matrix, mode, from_logits):
    """Per row: CE, the multiplier m, dCE/dx and (soft mode) dm/dx."""
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target, np.float64)
    logq, dlogq = _log_q(x, from_logits)
    ce = -(y * logq).sum(axis=-1)
    a = y @ np.asarray(cost_matrix, np.float64)  # a_p = Σ_t y_t C[t, p]
    dce = _dce(x, y, from_logits)
    if mode == "argmax":
        mask = x == x.max(axis=-1, keepdims=True)  # every class tied at the max counts
        return ce, (a * mask).sum(axis=-1), dce, None
    if not from_logits:
        return ce, (a * x).sum(axis=-1), dce, a
    # costs relative to the most probable class k: m = a_k + Σ_p q_p (a_p - a_k), so a - m is a sum
    # of the small q_p (a_p - a_k) instead of the cancellation a - m with m ≈ a_k (see soft_shift)
    q = np.exp(logq)
    a_k, shifted = soft_shift(x, a)
    excess = (shifted * q).sum(axis=-1)
    return ce, a_k + excess, dce, q * (shifted - excess[..., None])


def soft_shift(x, a):
    """``(a_k, a - a_k)`` per row, ``k = argmax_c x_c`` (first on ties): soft mode's costs taken
    relative to the most probable class. ``d m / d x = q (a - m)`` computed as ``q (a - m)`` loses
    ``a_k - m = -Σ_{p≠k} q_p (a_p - a_k)`` entirely when softmax saturates (float32: m rounds to
    a_k once the other q_p are below ~1e-7), and CE times that lost term is not small when CE is
    large (seen by the deep hypothesis run: logits (-22, -40, -1e4), CE ≈ 1e4, error 1.4e-3). With
    the shifted costs the k-th term of the sum is exactly zero and every other term is a small
    q_p times an exact cost difference. The frameworks build ``m`` the same way, so autodiff's
    softmax backward sees ``∂m/∂q_k = 0``."""
    k = np.argmax(x, axis=-1)[..., None]
    a_k = np.take_along_axis(a, k, axis=-1)
    return a_k[..., 0], a - a_k


def _cs_reference(prediction, target, *, cost_matrix, mode, from_logits):
    ce, m, _, _ = _cs_parts(prediction, target, cost_matrix, mode, from_logits)
    return mean_nonbatch(ce * m)


def _cs_vjp(prediction, target, cotangent, *, cost_matrix, mode, from_logits):
    ce, m, dce, dm = _cs_parts(prediction, target, cost_matrix, mode, from_logits)
    grad = m[..., None] * dce
    if dm is not None:
        grad = grad + ce[..., None] * dm
    return grad * _row_cotangent(cotangent, np.shape(prediction))


def _cs_exact(prediction, target, *, cost_matrix, mode, from_logits):
    cost = [[mp.mpf(float(val)) for val in row] for row in np.asarray(cost_matrix, np.float64)]

    def row_loss(xs, ys):
        c = len(xs)
        ys = [mp.mpf(float(y)) for y in ys]
        logq = _mp_log_q(xs, from_logits)
        ce = -mp.fsum(y * lq for y, lq in zip(ys, logq))
        a = [mp.fsum(ys[t] * cost[t][p] for t in range(c)) for p in range(c)]
        if mode == "argmax":
            top = max(xs)
            m = mp.fsum(a[p] for p in range(c) if xs[p] == top)
        else:
            q = [mp.exp(lq) for lq in logq] if from_logits else xs
            m = mp.fsum(a[p] * q[p] for p in range(c))
        return ce * m

    return _exact_rows(prediction, target, row_loss)


#: seed-003-like costs: rows = true class, columns = predicted class, ones on the diagonal
COST_3 = np.array([[1.0, 2.0, 5.0], [3.0, 1.0, 1.0], [10.0, 1.0, 1.0]])
#: a binary problem as 2 columns: predicting 0 for a true 1 (false negative) costs 5x
COST_2 = np.array([[1.0, 1.0], [5.0, 1.0]])


def _cs_cases():
    name = "cost_sensitive_cce"
    out = []
    for tag, params in [
        ("argmax-3", {"cost_matrix": COST_3}),
        ("argmax-2col", {"cost_matrix": COST_2}),
        ("soft-3", {"cost_matrix": COST_3, "mode": "soft"}),
        ("probs-argmax-3", {"cost_matrix": COST_3, "from_logits": False}),
        ("probs-soft-2col", {"cost_matrix": COST_2, "mode": "soft", "from_logits": False}),
    ]:
        from_logits = params.get("from_logits", True)
        argmax = params.get("mode", "argmax") == "argmax"
        out += _multiclass_cases(name, params, tag, from_logits=from_logits,
                                 classes=params["cost_matrix"].shape[0], tie_kink=argmax)
    x = np.zeros((5, 3))
    x[4, 1] = 1e4
    out.append(Case("soft-3-extreme-saturated-wrong", "extreme", {"cost_matrix": COST_3, "mode": "soft"},
                    x, np.eye(3)[np.zeros(5, np.int64)],
                    note="found by hypothesis (CI): CE = 1e4 with softmax saturated on a wrong class; "
                         "d/dx = m·(q - y) exactly in float32 only when the softmax backward is kept "
                         "apart from the log-softmax backward"))
    x = np.zeros((3, 3))
    x[1] = (-22.0, -40.0, -1e4)
    out.append(Case("soft-3-extreme-saturated-cost-shift", "extreme", {"cost_matrix": COST_3, "mode": "soft"},
                    x, np.eye(3)[np.array([0, 2, 0])],
                    note="found by the deep hypothesis run (seed 20261123): the softmax of row 1 saturates on "
                         "class 0 (q_1, q_2 < 2e-8) while CE = 9978; d/dx_0 = m + CE q_0 (a_0 - m) and a_0 - m "
                         "= 9 (q_1 + q_2) rounds to 0 in float32 unless m is built from costs relative to "
                         "the argmax class (soft_shift): 1.4e-3 of the gradient was lost"))
    return out


def _cs_invalid():
    p, t, sigmoid_head = softmax_head_inputs()
    return [
        InvalidCase("cost-matrix-missing", {}),
        InvalidCase("cost-matrix-negative", {"cost_matrix": [[1.0, -1.0], [1.0, 1.0]]}),
        InvalidCase("cost-matrix-not-square", {"cost_matrix": [[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]}),
        InvalidCase("cost-matrix-vector", {"cost_matrix": [1.0, 2.0]}),
        InvalidCase("cost-matrix-nan", {"cost_matrix": [[1.0, float("nan")], [1.0, 1.0]]}),
        InvalidCase("cost-matrix-string", {"cost_matrix": "balanced"}),
        InvalidCase("mode-unknown", {"cost_matrix": COST_2, "mode": "max"}),
        InvalidCase("from-logits-not-bool", {"cost_matrix": COST_2, "from_logits": None}),
        InvalidCase("cost-matrix-size", {"cost_matrix": COST_2}, p, t),
        InvalidCase("one-class", {"cost_matrix": COST_2}, np.array([[0.5], [-1.0]]), np.array([[1.0], [1.0]])),
        InvalidCase("probability-rows-not-summing-to-one", {"cost_matrix": COST_3, "from_logits": False},
                    sigmoid_head, t),
    ]


COST_SENSITIVE_CCE = register(LossSpec(
    name="cost_sensitive_cce",
    nonfinite_propagates=('prediction',),
    family="multiclass",
    summary=("Categorical cross-entropy times a misclassification cost read from a (true, predicted) "
             "cost matrix (the cost-sensitive problem's w_categorical_crossentropy, fixed)."),
    formula=(r"\ell = \frac{1}{R}\sum_r \mathrm{CE}(x_r, y_r)\, m_r,\quad "
             r"m_r = \sum_{p:\,x_{rp}=\max_c x_{rc}}\ \sum_t C_{tp}\,y_{rt}\ \text{(argmax)},\quad "
             r"m_r = \sum_t y_{rt}\sum_p C_{tp}\,\mathrm{softmax}(x_r)_p\ \text{(soft)}"),
    params=(
        Param("cost_matrix", None,
              "a (C, C) array of finite values >= 0 with C >= 2 (required; cost_matrix[t, p] is the "
              "cost of predicting class p when the truth is t)",
              _check_cost_matrix, required=True,
              doc="Rows: true class, columns: predicted class (the cost-sensitive problem's weights[c_t, c_p]). Ones on "
                  "the diagonal keep plain CE on correct predictions; a zero diagonal stops learning "
                  "from them. Binary problems: 2 columns and a 2x2 matrix."),
        Param("mode", "argmax", "one of 'argmax', 'soft'", v.choice("argmax", "soft"),
              doc="'argmax': m from the predicted class (the cost-sensitive problem; ties summed; m is a constant for "
                  "the gradient). 'soft': m from the softmax probabilities (differentiable)."),
        FROM_LOGITS,
    ),
    reference=_cs_reference,
    reference_vjp=_cs_vjp,
    exact=_cs_exact,
    cases=_cs_cases,
    invalid_cases=_cs_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    check_shapes=_check_class_axis,
    check_values=_check_dense_values,
    check_values_scope=_dense_scope,
    grad_convention=(
        "mode='argmax': m is piecewise constant in the prediction and is treated as a constant "
        "(stop_gradient / detach): d/dx = m dCE/dx everywhere, at ties too. Tie convention: the mask "
        "is [x_p == max_c x_c] by an exact equality test on the prediction as given (logits, or "
        "probabilities when from_logits=False), so every class tied at the max counts and their "
        "costs are summed (the cost-sensitive problem's K.equal mask); both frameworks compute the same mask. "
        "mode='soft': smooth, d/dx = m dCE/dx + CE s ⊙ (a - m) with a = y C, s = softmax(x) (logits), "
        "or m dCE/dp + CE a (probabilities). dCE as in categorical_crossentropy."),
    stability=("CE from the log-softmax of categorical_crossentropy (logits) or the 2**-126 clamp "
               "(probabilities); m is a sum of non-negative terms; no division anywhere. Soft mode on "
               "logits: m = a_k + Σ_p q_p (a_p - a_k) with k the row's argmax (not Σ a_p q_p), so "
               "d/dx_k = ... - CE q_k Σ_p q_p (a_p - a_k) keeps the small terms a saturated softmax "
               "would round away (m = a_k in float32), which CE ~ 1e4 makes visible."),
    peer_notes=(
        PeerNote("w_categorical_crossentropy (cost-sensitive problem)", "Keras >= 2",
                 "it calls K.categorical_crossentropy(y_pred, y_true), Keras 1's (output, target) "
                 "order; Keras 2 swapped it to (target, output), so the problem's code computes "
                 "-Σ y_pred log(clip(y_true)): large and wrong. Ours computes CE(target, prediction) "
                 "by keyword in both frameworks"),
        PeerNote("w_categorical_crossentropy (cost-sensitive problem)", "from_logits=False, any row",
                 "same mask (K.equal(y_pred, max), ties summed, no gradient through it) and the same "
                 "product with CE; ours also takes logits (the mask of the logits equals that of "
                 "their softmax up to rounding ties) and inputs of rank > 2"),
    ),
    references=("cost-sensitive / class-weighted (docs/problems.md): w_categorical_crossentropy, imbalanced binary text classification",
                "Elkan, The Foundations of Cost-Sensitive Learning, IJCAI 2001"),
    trap=("The cost-sensitive problem passes (y_pred, y_true) in Keras 1 order to K.categorical_crossentropy (wrong "
          "under Keras 2+), and its question is a binary problem: here the arguments are fixed by "
          "the contract and 2-column binary problems with a 2x2 matrix are tested cases."),
    torch_class="CostSensitiveCCELoss",
    keras_class="CostSensitiveCCE",
))

# =========================================================================== categorical_focal_crossentropy
def _focal_logs(x, from_logits):
    """``(log q, log(1 - q))`` per class, float64, both with full relative accuracy.

    Logits: ``log(1 - q_c) = log1p(-q_c)`` for every class but the argmax ``c*`` (there
    ``q_c <= 1/2``); at ``c*`` it is ``logsumexp_{k≠c*}(x) - logsumexp(x)``, finite however saturated
    the row is (``1 - q_c*`` would round to 0, and ``(1 - q)^γ`` with ``γ < 1`` has an infinite
    derivative at 0). Probabilities: the clamps ``log(max(p, 2**-126))`` and ``log(max(1 - p, 2**-126))``."""
    if not from_logits:
        return clamped_log(x), clamped_log1m(x)
    logq = log_softmax(x)
    k = np.argmax(x, axis=-1)[..., None]
    # both logsumexps of x - x_c* (<= 0 off c*, log C at most): large logits (1e4, float32 spacing
    # 1e-3) cancel before the sums, not after
    others = x - np.take_along_axis(x, k, axis=-1)
    np.put_along_axis(others, k, -np.inf, axis=-1)
    m2 = others.max(axis=-1, keepdims=True)
    lse_others = m2 + np.log(np.exp(others - m2).sum(axis=-1, keepdims=True))
    lse = -np.take_along_axis(logq, k, axis=-1)  # logsumexp(x - x_c*) = -log q_c*
    off_top = logq.copy()
    np.put_along_axis(off_top, k, -1.0, axis=-1)  # q_c <= 1/2 off the argmax: log1p(-q) is accurate
    log1mq = np.log1p(-np.exp(off_top))
    np.put_along_axis(log1mq, k, lse_others - lse, axis=-1)
    return logq, log1mq


def _focal_reference(prediction, target, *, alpha, gamma, from_logits, label_smoothing):
    x = np.asarray(prediction, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1])
    logq, log1mq = _focal_logs(x, from_logits)
    return mean_nonbatch(-alpha * (y * np.exp(gamma * log1mq) * logq).sum(axis=-1))


def _focal_vjp(prediction, target, cotangent, *, alpha, gamma, from_logits, label_smoothing):
    x = np.asarray(prediction, np.float64)
    y = _smooth(np.asarray(target, np.float64), label_smoothing, x.shape[-1])
    logq, log1mq = _focal_logs(x, from_logits)
    f = np.exp(gamma * log1mq)
    if from_logits:
        # dℓ/dx = α (q Σ_c w_c - w) with w_c = y_c f_c (1 - γ q_c log q_c / (1 - q_c)) >= 0: the
        # softmax cross-entropy gradient with weights w (accurate at the argmax too); log q / (1 - q)
        # is log q / -expm1(log q), -1 in the limit log q -> 0
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(logq == 0.0, -1.0, logq / -np.expm1(logq))
        w = y * f * (1.0 - gamma * np.exp(logq) * ratio)
        grad = alpha * softmax_cross_entropy_grad(x, w)
    else:
        grad = -alpha * y * f * (clamped_log_grad(x) + gamma * logq * clamped_log1m_grad(x))
    return grad * _row_cotangent(cotangent, x.shape)


def _focal_exact(prediction, target, *, alpha, gamma, from_logits, label_smoothing):
    ls, a, g = mp.mpf(label_smoothing), mp.mpf(alpha), mp.mpf(gamma)
    p_min = mp.ldexp(1, MP_P_MIN_EXP)

    def log1m(xs, c):
        if not from_logits:
            rest = 1 - xs[c]
            return mp.log(rest if rest >= p_min else p_min)
        top = max(xs)
        return (mp.log(mp.fsum(mp.exp(val - top) for j, val in enumerate(xs) if j != c))
                - mp.log(mp.fsum(mp.exp(val - top) for val in xs)))

    def row_loss(xs, ys):
        c = len(xs)
        logq = _mp_log_q(xs, from_logits)
        return -a * mp.fsum((mp.mpf(float(y)) * (1 - ls) + ls / c) * mp.exp(g * log1m(xs, j)) * lq
                            for j, (y, lq) in enumerate(zip(ys, logq)))

    return _exact_rows(prediction, target, row_loss)


def _focal_cases():
    name = "categorical_focal_crossentropy"
    out = []
    for tag, params in [
        ("default", {}),
        ("gamma0.5-ls0.1", {"gamma": 0.5, "alpha": 1.0, "label_smoothing": 0.1}),
        ("probs-gamma0.5-ls0.2", {"from_logits": False, "gamma": 0.5, "label_smoothing": 0.2}),
    ]:
        out += _multiclass_cases(name, params, tag, from_logits=params.get("from_logits", True), classes=4,
                                 ties=not params.get("from_logits", True))
    x = np.array([[1e4, 0.0, -1e4], [40.0, 0.0, 0.0], [0.0, 1e4, 0.0], [1e4, 1e4 - 1.0, 1e4 - 2.5]])
    out.append(Case("gamma0.3-extreme-saturated", "extreme", {"gamma": 0.3, "alpha": 1.0}, x,
                    np.eye(3)[np.array([0, 0, 0, 1])],
                    note="1 - q of the argmax rounds to 0 (every dtype): (1 - q)^γ with γ < 1 has an infinite "
                         "derivative there; log(1 - q) from the other classes' logsumexp keeps it finite. Last row: "
                         "logits near 1e4 (float32 spacing 1e-3) whose logsumexps must be taken after "
                         "subtracting the max, not subtracted from each other"))
    return out


def _focal_invalid():
    p, t, sigmoid_head = softmax_head_inputs()
    return [
        InvalidCase("alpha-negative", {"alpha": -0.25}),
        InvalidCase("alpha-nan", {"alpha": float("nan")}),
        InvalidCase("alpha-list", {"alpha": [0.25, 0.75]}),
        InvalidCase("gamma-negative", {"gamma": -1.0}),
        InvalidCase("gamma-inf", {"gamma": float("inf")}),
        InvalidCase("gamma-string", {"gamma": "2"}),
        InvalidCase("label-smoothing-above-one", {"label_smoothing": 1.5}),
        InvalidCase("from-logits-not-bool", {"from_logits": 1}),
        InvalidCase("no-class-axis", {}, np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 0.0])),
        InvalidCase("one-class", {}, np.array([[0.5], [-1.0]]), np.array([[1.0], [1.0]])),
        InvalidCase("probability-rows-not-summing-to-one", {"from_logits": False}, sigmoid_head, t),
        InvalidCase("target-shape-sparse-labels", {}, p, np.array([0.0, 1.0])),
    ]


_CATEGORICAL_FOCAL_CROSSENTROPY_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg"), 3.3,
         "the peer is the textbook softmax focal loss, log_softmax, exp, (1 - q)^γ and a weighted sum (two "
         "transcendental passes over the logits); ours keeps (1 - q)^γ = exp(γ log(1 - q)) finite for "
         "confident rows and γ < 1: log(1 - q) of the argmax class from the other classes' logsumexp (an "
         "argmax, a one_hot, a shift, two logsumexps), log1p(-exp(log q)) elsewhere, then exp(γ ·), and one "
         "autograd.Function computes the gradient -α(A_j - q_j Σ A_c) in the same pass (keeping the γ terms "
         "of confident rows, where log q of the argmax rounds to 0): about six exp/log passes over the (rows, "
         "C) logits against two, ~25 small ops against ~8 forward and their backward. torch's logsumexp is "
         "itself a chain of six kernels (amax, subtract, exp, sum, log, add) over rows of C = 30 at `cls` "
         "(2.4-3.2 at `cls` between runs, 2.2 at `seg`, runs of 2026-12-05)", TORCH_CONTRACT),
)

CATEGORICAL_FOCAL_CROSSENTROPY = register(LossSpec(
    name="categorical_focal_crossentropy",
    nonfinite_propagates=('prediction',),
    family="multiclass",
    summary=("Softmax focal loss (Lin et al.) with one-hot or soft targets on the last axis: cross-entropy "
             "terms down-weighted by (1 - q)^γ, times α; optional label smoothing."),
    formula=(r"\ell = -\frac{\alpha}{R}\sum_{r}\sum_{c=1}^{C} y'_{rc}\,(1 - q_{rc})^{\gamma}\,\log q_{rc},\quad "
             r"q_r = \mathrm{softmax}(x_r),\quad y' = y(1-\epsilon) + \epsilon/C"),
    params=(
        Param("alpha", 0.25, "a finite float >= 0", v.real(lo=0.0),
              doc="Constant factor of every term (Keras' default 0.25). Keras also accepts a per-class list; "
                  "here it is one number."),
        Param("gamma", 2.0, "a finite float >= 0", v.real(lo=0.0),
              doc="Focusing exponent: 0 gives α times categorical_crossentropy; larger values down-weight "
                  "well-classified terms. Any γ >= 0, γ < 1 included (finite gradients at saturated logits)."),
        FROM_LOGITS,
        LABEL_SMOOTHING,
    ),
    reference=_focal_reference,
    reference_vjp=_focal_vjp,
    exact=_focal_exact,
    cases=_focal_cases,
    invalid_cases=_focal_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    check_shapes=_check_class_axis,
    check_values=_check_dense_values,
    check_values_scope=_dense_scope,
    grad_convention=(
        "Logits: smooth, d/dx = α (q Σ_c w_c - w) with w_c = y'_c (1 - q_c)^γ (1 - γ q_c log q_c / (1 - q_c)) "
        "(w >= 0; q_c log q_c / (1 - q_c) -> -1 as q_c -> 1): finite for every γ >= 0 and every finite "
        "logit. Probabilities: the plain partial derivative through the clamps log(max(p, 2**-126)) and "
        "log(max(1 - p, 2**-126)) (identity branch at the bound, 0 beyond): -α y'_c (1 - p_c)^γ "
        "(1/p_c - γ log p_c / (1 - p_c)); the row-sum constraint is not projected out."),
    stability=("log q from the log-softmax of categorical_crossentropy; (1 - q)^γ = exp(γ log(1 - q)) with "
               "log(1 - q_c) = log1p(-q_c) off the argmax and logsumexp_{k≠c*}(x) - logsumexp(x) at the "
               "argmax c*: never 1 - softmax, which rounds to 0 (and 0^γ has an infinite derivative for "
               "γ < 1, a NaN gradient). Probabilities: log1p(-p) with the 2**-126 clamp."),
    identities=(
        Identity({"gamma": 0.0, "alpha": 1.0}, "categorical_crossentropy", {},
                 "γ = 0, α = 1: (1 - q)^0 = 1, plain softmax cross-entropy"),
    ),
    performance_notes=_CATEGORICAL_FOCAL_CROSSENTROPY_PERFORMANCE,
    peer_notes=(
        PeerNote("keras CategoricalFocalCrossentropy(from_logits=True)", "logits with a softmax beyond [1e-7, 1 - 1e-7]",
                 "Keras takes softmax(x), then log(clip(q, 1e-7, 1 - 1e-7)): each term is capped at -log 1e-7 "
                 "= 16.12 (gradient 0 beyond) and a saturated correct row keeps (1e-7)^γ · 1e-7 instead of ~0; "
                 "ours is the true loss for any finite logits. Equal values and gradients inside the clip range"),
        PeerNote("keras CategoricalFocalCrossentropy(from_logits=False)", "probabilities",
                 "Keras divides each row by its sum (a sigmoid head is silently renormalized) and clips to "
                 "[1e-7, 1 - 1e-7]; ours rejects rows not summing to 1 and clamps at 2**-126. On rows summing "
                 "to 1 the values are equal inside the clip range and the gradients differ by the "
                 "renormalization: Keras' is ours minus (Σ_c p_c g_c) per row"),
        PeerNote("keras CategoricalFocalCrossentropy", "defaults",
                 "Keras' default is from_logits=False, ours True; alpha may be a per-class list there "
                 "(ops.multiply broadcast over the class axis), one number here"),
        PeerNote("torch.nn", "no multiclass focal loss",
                 "torch.nn has none (torchvision.ops.sigmoid_focal_loss is the binary one: binary_focal); "
                 "γ = 0 equals α · torch.nn.CrossEntropyLoss(label_smoothing=ε) with probability targets"),
    ),
    references=("Lin et al., Focal Loss for Dense Object Detection, ICCV 2017",
                "keras.losses.CategoricalFocalCrossentropy"),
    trap=("The textbook (1 - softmax(x))^γ log(softmax(x)) gives NaN gradients for γ < 1 once a row saturates "
          "(1 - q = 0) and Keras' clip caps every term at 16.12: here log(1 - q) comes from the other "
          "classes' logits and the loss is exact for any finite logit."),
    torch_class="CategoricalFocalCELoss",
    keras_class="CategoricalFocalCE",
))


# =========================================================================== categorical_generalized_crossentropy
def _gce_log_p(prediction, target, from_logits):
    """``log p_y`` per row (the labelled class) and ``d log q / d prediction`` info: (x, onehot, log p_y)."""
    x = np.asarray(prediction, np.float64)
    onehot = np.eye(x.shape[-1])[_labels(target)]
    logq, _ = _log_q(x, from_logits)
    return x, onehot, (logq * onehot).sum(axis=-1)


def _gce_reference(prediction, target, *, q, from_logits):
    _, _, logp = _gce_log_p(prediction, target, from_logits)
    return mean_nonbatch(-np.expm1(q * logp) / q)


def _gce_vjp(prediction, target, cotangent, *, q, from_logits):
    x, onehot, logp = _gce_log_p(prediction, target, from_logits)
    pq = np.exp(q * logp)[..., None]  # d/dlog p of -(p^q - 1)/q is -p^q
    return pq * _dce(x, onehot, from_logits) * _row_cotangent(cotangent, x.shape)


def _gce_exact(prediction, target, *, q, from_logits):
    qm = mp.mpf(q)

    def row_loss(xs, label):
        return -mp.expm1(qm * _mp_log_q(xs, from_logits)[int(label)]) / qm

    return _exact_rows(prediction, target, row_loss, sparse=True)


def _gce_cases():
    name = "categorical_generalized_crossentropy"
    out = []
    for tag, params in [("default", {}), ("q1", {"q": 1.0}), ("probs-q0.7", {"from_logits": False, "q": 0.7})]:
        out += _multiclass_cases(name, params, tag, from_logits=params.get("from_logits", True), classes=4,
                                 sparse=True)
    return out


def _gce_invalid():
    p, _, sigmoid_head = softmax_head_inputs()
    return [
        InvalidCase("q-zero", {"q": 0.0}),
        InvalidCase("q-above-one", {"q": 1.5}),
        InvalidCase("q-nan", {"q": float("nan")}),
        InvalidCase("q-string", {"q": "0.5"}),
        InvalidCase("from-logits-not-bool", {"from_logits": "true"}),
        InvalidCase("label-too-large", {}, p, np.array([0, 3], np.int64)),
        InvalidCase("label-not-integer", {}, p, np.array([0.5, 1.0])),
        InvalidCase("one-hot-target", {}, p, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])),
        InvalidCase("one-class", {}, np.array([[0.5], [-1.0]]), np.array([0, 0], np.int64)),
        InvalidCase("sigmoid-head-probabilities", {"from_logits": False}, sigmoid_head, np.array([2, 0], np.int64)),
    ]


_CATEGORICAL_GENERALIZED_CROSSENTROPY_PERFORMANCE = (
    note("torch", "torch eager*", ("cls",), 1.3,
         "the peer is (1 - softmax_y^q) / q (softmax, gather, power, subtract, divide); ours is F.cross_entropy "
         "(reduction='none') and -expm1(-q · ce) / q, the same number of passes without the power of a rounded "
         "probability, and with validate=True one aminmax of the labels; the miss (1.14-1.21 at `cls` between runs, "
         "the `seg` rows within 1.1) is that fixed cost on a short call", TORCH_CONTRACT),
)

CATEGORICAL_GENERALIZED_CROSSENTROPY = register(LossSpec(
    name="categorical_generalized_crossentropy",
    family="multiclass",
    summary=("Generalized cross-entropy (Zhang & Sabuncu): (1 - p_y^q) / q of the labelled class's softmax "
             "probability, integer class labels; q -> 0 is cross-entropy, q = 1 is 1 - p_y (MAE)."),
    formula=(r"\ell = \frac{1}{R}\sum_{r} \frac{1 - p_{r,y_r}^{\,q}}{q},\quad p_r = \mathrm{softmax}(x_r),"
             r"\quad y_r \in \{0,\dots,C-1\}"),
    params=(
        Param("q", 0.5, "a float in (0, 1]", v.real(lo=0.0, hi=1.0, lo_open=True),
              doc="Robustness exponent (Keras' default 0.5): towards 0 the loss approaches cross-entropy "
                  "-log p_y, at 1 it is 1 - p_y, the MAE of the one-hot target (robust to label noise)."),
        FROM_LOGITS,
    ),
    reference=_gce_reference,
    reference_vjp=_gce_vjp,
    exact=_gce_exact,
    cases=_gce_cases,
    invalid_cases=_gce_invalid,
    prediction_domain=_prediction_domain,
    prediction_domain_hint=_probability_hint,
    target_domain=None,  # class indices: checked by _check_sparse_values
    target_shape=_sparse_target_shape,
    check_shapes=_check_class_axis,
    check_values=_check_sparse_values,
    check_values_scope=_sparse_scope,
    grad_convention=(
        "Logits: smooth, d/dx = p_y^q (softmax(x) - onehot(y)) per row (divided by R): the "
        "sparse_categorical_crossentropy gradient times p_y^q, finite everywhere. Probabilities: "
        "d/dp_y = -p_y^(q-1) through the clamp log(max(p, 2**-126)) (identity branch at the bound, 0 "
        "below: where the true derivative is infinite, at p_y = 0 with q < 1, the gradient is 0), 0 "
        "at the other classes. No gradient w.r.t. the labels."),
    stability=("p_y^q = exp(q log p_y) with log p_y the log-softmax (logits) or the 2**-126 clamp, and "
               "(1 - p_y^q)/q = -expm1(q log p_y)/q: tiny losses of confident correct rows keep their "
               "digits (1 - p^q cancels), no power of 0."),
    performance_notes=_CATEGORICAL_GENERALIZED_CROSSENTROPY_PERFORMANCE,
    peer_notes=(
        PeerNote("keras CategoricalGeneralizedCrossEntropy(q=)", "probabilities (its only input)",
                 "Keras takes probabilities only (no from_logits) and computes 1 - power(p_y, q): equal values; "
                 "its gradient at p_y = 0 is -inf (power's derivative) where ours is 0 (the clamp), and near "
                 "p_y = 1 its 1 - p^q loses the relative accuracy of tiny losses. It accepts any row (no "
                 "row-sum check) and q in (0, 1) only; ours also q = 1. Despite the name both take integer "
                 "labels; Keras also a trailing label axis of size 1 (pass y[..., 0] here)"),
        PeerNote("torch.nn", "no generalized cross-entropy", "torch.nn has no such loss"),
    ),
    references=("Zhang & Sabuncu, Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy "
                "Labels, NeurIPS 2018", "keras.losses.CategoricalGeneralizedCrossEntropy"),
    trap=("(1 - p**q)/q on probabilities: an infinite gradient at p = 0 and the cancellation 1 - p^q for "
          "confident correct rows; here logits by default, exp/expm1 of q log p."),
    torch_class="CategoricalGeneralizedCELoss",
    keras_class="CategoricalGeneralizedCE",
))


__all__ = ["CATEGORICAL_CROSSENTROPY", "SPARSE_CATEGORICAL_CROSSENTROPY", "COST_SENSITIVE_CCE",
           "CATEGORICAL_FOCAL_CROSSENTROPY", "CATEGORICAL_GENERALIZED_CROSSENTROPY",
           "COST_2", "COST_3", "log_softmax", "ROW_SUM_TOL"]
