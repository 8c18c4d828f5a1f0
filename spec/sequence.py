"""Sequence losses: ``ctc`` (logits ``(N, T, C)``, label sequences ``(N, L)`` padded with the blank).

Layouts. Ours and Keras: ``y_pred`` / ``input`` are logits ``(N, T, C)`` (batch, time, classes; the
softmax over the classes is taken inside), ``y_true`` / ``target`` integer labels ``(N, L)``; the
labels of a row are its entries other than the blank, in order (``blank`` pads the row), and every
sample uses all ``T`` time steps. torch.nn.CTCLoss takes log-probabilities ``(T, N, C)`` (time first)
and explicit ``input_lengths`` and ``target_lengths``: ours equals it on ``log_softmax(input)``
transposed, ``input_lengths = T`` and ``target_lengths`` = the non-blank count of each row.
"""
from __future__ import annotations

import numpy as np

from . import validation as v
from .cases import rng_for
from .core import CHECKS_LABELS, DEFAULT_TOLERANCES, Case, InvalidCase, LossSpec, Param, PeerNote, Tolerance, Tolerances, register
from .messages import VALIDATE_HINT, format_shape
from .numerics import log_softmax, mp
from .performance import TORCH_CONTRACT, note

NEG_INF = -np.inf


# --------------------------------------------------------------------------- shapes and labels
def _sequence_target_shape(shape):
    # (N, T, C) logits → (N, L) labels, any L (a prediction of another rank is reported by check_shapes)
    return (shape[0], None)


def logits_shape(loss: str, shape) -> str:
    return (f"{loss}: prediction must be logits of shape (N, T, C) (batch, time, classes); got shape "
            f"{format_shape(shape)}")


def blank_out_of_range(loss: str, blank: int, classes: int) -> str:
    return (f"{loss}: `blank`={blank} is not a class of the prediction: it must be below C={classes} (the size "
            f"of its last axis)")


def labels_not_integer(loss: str) -> str:
    return (f"{loss}: target must hold integer labels of shape (N, L), padded with the blank; got non-integer "
            f"values{VALIDATE_HINT}")


def labels_out_of_range(loss: str, lo: float, hi: float, classes: int) -> str:
    return (f"{loss}: target labels must lie in [0, {classes - 1}] (C={classes} classes, the blank included); "
            f"got values in [{lo:g}, {hi:g}]{VALIDATE_HINT}")


def _check_logits_shape(loss, params, shape):
    if len(shape) != 3:
        raise ValueError(logits_shape(loss, shape))
    classes = shape[-1]
    if classes is not None and params["blank"] >= int(classes):
        raise ValueError(blank_out_of_range(loss, params["blank"], int(classes)))


def _size(shape) -> int:
    return int(np.prod([1 if d is None else int(d) for d in shape]))


def _check_labels(loss, params, prediction, target, ops):
    if not _size(ops.shape(target)):
        return
    if not ops.all_integral(target):
        raise ValueError(labels_not_integer(loss))
    classes = ops.shape(prediction)[-1]
    lo, hi = ops.min_max(target)
    if classes is not None and (lo < 0 or hi > int(classes) - 1):
        raise ValueError(labels_out_of_range(loss, lo, hi, int(classes)))


def _labels_scope(params) -> str:
    """``check_values_scope`` of :func:`_check_labels`: integer labels in [0, C - 1], whatever the params."""
    return CHECKS_LABELS


def label_sequences(target, blank):
    """Each row's labels: its entries other than ``blank``, in order (a list of int lists)."""
    rows = np.asarray(target, np.float64).astype(np.int64)
    return [[int(c) for c in row if c != blank] for row in rows]


def needed_steps(labels) -> int:
    """The fewest time steps that emit ``labels``: one per label and a blank between repeats."""
    return len(labels) + sum(1 for a, b in zip(labels, labels[1:]) if a == b)


def _extended(labels, blank):
    """``[b, l₁, b, l₂, …, b]`` and where the skip ``s - 2 → s`` is allowed (a label unlike ``s - 2``)."""
    ext = [blank]
    for c in labels:
        ext += [c, blank]
    ext = np.asarray(ext, np.int64)
    skip = np.zeros(ext.size, bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    return ext, skip


# =========================================================================== ctc
def _shifted(a, k, fill=NEG_INF):
    """``a`` moved ``k`` places to the right (``k < 0``: to the left), ``fill`` where nothing comes."""
    out = np.full_like(a, fill)
    n = a.size
    if abs(k) < n:
        if k >= 0:
            out[k:] = a[:n - k]
        else:
            out[:n + k] = a[-k:]
    return out


def _alpha(lp_ext, skip):
    """log α_t(s): the forward variables (rows t) of the extended label path, log space."""
    t_steps, s_size = lp_ext.shape
    alpha = np.full((t_steps, s_size), NEG_INF)
    alpha[0, :2] = lp_ext[0, :2]
    for t in range(1, t_steps):
        prev = alpha[t - 1]
        jump = np.where(skip, _shifted(prev, 2), NEG_INF)
        alpha[t] = lp_ext[t] + np.logaddexp(np.logaddexp(prev, _shifted(prev, 1)), jump)
    return alpha


def _sample_nll(lp, labels, blank):
    """``-log p(labels | x)`` of one sample from its log-probabilities ``(T, C)`` (+inf if infeasible),
    and the forward variables and extended path."""
    ext, skip = _extended(labels, blank)
    lp_ext = lp[:, ext]
    alpha = _alpha(lp_ext, skip)
    return -np.logaddexp(alpha[-1, -1], alpha[-1, -2] if ext.size > 1 else NEG_INF), (alpha, ext, skip, lp_ext)


def _scale(labels, divide_by_target_length):
    return 1.0 / max(len(labels), 1) if divide_by_target_length else 1.0


def _ctc_reference(prediction, target, *, blank, zero_infinity, divide_by_target_length):
    x = np.asarray(prediction, np.float64)
    out = np.empty(x.shape[0])
    for i, labels in enumerate(label_sequences(target, blank)):
        if needed_steps(labels) > x.shape[1]:
            out[i] = 0.0 if zero_infinity else np.inf
            continue
        nll, _ = _sample_nll(log_softmax(x[i]), labels, blank)
        out[i] = nll * _scale(labels, divide_by_target_length)
    return out


def _occupancy(lp, labels, blank):
    """``G[t, c]``: the posterior probability that a path emits class ``c`` at ``t`` (rows sum to 1).

    Reverse mode through the forward recursion: the adjoint ``a_t(s) = ∂ log p / ∂ log α_t(s)`` is the
    posterior of state ``s`` at ``t``; it starts as the final log-sum-exp's weights and flows back along
    each step's log-sum-exp weights ``e^{α_{t-1}(s') - top} / Σ``, which compare neighbouring forward
    variables only. (``α_t + β_t - lp_t + nll`` adds sums of up to T log-probabilities of size 2e4: an
    absolute error ε · 2e4 per element, that is a relative 1e-12 on every posterior, where the
    gradient softmax - G cancels from 0.73 to 2e-7: 7.6e-6 of the element off, against 2.6e-10 here.)"""
    _, (alpha, ext, skip, _) = _sample_nll(lp, labels, blank)
    t_steps, s_size = alpha.shape
    adjoint = np.zeros((t_steps, s_size))
    last = alpha[-1, -2:] if s_size > 1 else alpha[-1, -1:]
    weights = np.exp(last - last.max())
    adjoint[-1, -last.size:] = weights / weights.sum()
    for t in range(t_steps - 1, 0, -1):
        prev = alpha[t - 1]
        preds = np.stack([prev, _shifted(prev, 1), np.where(skip, _shifted(prev, 2), NEG_INF)])
        top = preds.max(axis=0)
        reached = np.isfinite(top)
        e = np.where(reached, np.exp(preds - np.where(reached, top, 0.0)), 0.0)
        flow = adjoint[t] * e / np.where(reached, e.sum(axis=0), 1.0)  # (3, S): to s, s - 1, s - 2
        adjoint[t - 1] += flow[0]
        adjoint[t - 1, :-1] += flow[1, 1:]
        adjoint[t - 1, :-2] += flow[2, 2:]
    occ = np.zeros_like(lp)
    for s, c in enumerate(ext):
        occ[:, c] += adjoint[:, s]
    return occ


def _ctc_vjp(prediction, target, cotangent, *, blank, zero_infinity, divide_by_target_length):
    """``d ℓ_i / d x = softmax(x) - G`` per time step, times the cotangent (0 for an infeasible sample).
    At each step's most probable class ``k`` the element is written ``Σ_{c≠k} G_c - s/(1 + s)`` (the
    complements of ``G_k`` and ``p_k``: a confident step keeps its digits, as
    :func:`spec.numerics.softmax_cross_entropy_grad` does)."""
    x = np.asarray(prediction, np.float64)
    cot = np.broadcast_to(np.asarray(cotangent, np.float64), (x.shape[0],))
    grad = np.zeros_like(x)
    for i, labels in enumerate(label_sequences(target, blank)):
        if needed_steps(labels) > x.shape[1]:
            continue  # +inf (or 0 with zero_infinity) for every prediction: gradient 0
        occ = _occupancy(log_softmax(x[i]), labels, blank)
        k = np.argmax(x[i], axis=-1)[:, None]
        e = np.exp(x[i] - np.take_along_axis(x[i], k, axis=-1))
        np.put_along_axis(e, k, 0.0, axis=-1)
        s = e.sum(axis=-1, keepdims=True)
        g = e / (1.0 + s) - occ
        occ_rest = occ.sum(axis=-1, keepdims=True) - np.take_along_axis(occ, k, axis=-1)
        np.put_along_axis(g, k, occ_rest - s / (1.0 + s), axis=-1)
        grad[i] = cot[i] * _scale(labels, divide_by_target_length) * g
    return grad


def _mp_logaddexp(a, b):
    if a is None:
        return b
    if b is None:
        return a
    m = max(a, b)
    return m + mp.log(mp.exp(a - m) + mp.exp(b - m))


def _ctc_exact(prediction, target, *, blank, zero_infinity, divide_by_target_length):
    from .numerics import mp_log_softmax

    x = np.asarray(prediction, dtype=object)
    out = []
    for i, labels in enumerate(label_sequences(target, blank)):
        if needed_steps(labels) > x.shape[1]:
            out.append(mp.mpf(0) if zero_infinity else mp.inf)
            continue
        lp = [mp_log_softmax([mp.mpf(val) for val in row]) for row in x[i]]
        ext, skip = _extended(labels, blank)
        alpha = [lp[0][ext[s]] if s < 2 else None for s in range(ext.size)]  # None: log 0
        for t in range(1, len(lp)):
            new = []
            for s in range(ext.size):
                total = _mp_logaddexp(alpha[s], alpha[s - 1] if s >= 1 else None)
                if skip[s]:
                    total = _mp_logaddexp(total, alpha[s - 2])
                new.append(None if total is None else total + lp[t][ext[s]])
            alpha = new
        nll = -_mp_logaddexp(alpha[-1], alpha[-2] if ext.size > 1 else None)
        out.append(nll * mp.mpf(_scale(labels, divide_by_target_length)))
    return out


def random_labels(rng, shape):
    """Label sequences for logits of ``shape`` (N, T, C) with the blank 0: at most T // 2 labels in
    1..C-1 per row, then the padding (every sample feasible: T >= 2 L)."""
    n, t_steps, classes = shape
    width = max(t_steps // 2, 1)
    labels = rng.integers(1, classes, size=(n, width)) if classes > 1 else np.zeros((n, width), np.int64)
    lengths = rng.integers(0, width + 1, size=n)
    return np.where(np.arange(width)[None, :] < lengths[:, None], labels, 0).astype(np.int64)


def _ctc_cases():
    rng = rng_for("ctc")
    infeasible = np.array([[2, 2, 2, 0], [1, 3, 0, 0]], np.int64)  # 2, 2, 2 needs 5 steps; T = 4
    return [
        Case("typical", "typical", {}, rng.normal(size=(3, 8, 5)),
             np.array([[1, 2, 3, 0], [4, 4, 0, 0], [2, 1, 2, 3]], np.int64), rng.uniform(0.2, 2.0, size=3),
             note="Keras' layout: blank 0 pads the rows; a repeated label (4, 4) needs a blank between"),
        Case("typical-per-label", "typical", {"divide_by_target_length": True}, rng.normal(size=(3, 6, 4)),
             np.array([[1, 3, 0], [2, 0, 0], [3, 1, 1]], np.int64),
             note="divide_by_target_length=True: with reduction='mean' torch.nn.CTCLoss's 'mean'"),
        Case("typical-blank-last", "typical", {"blank": 3}, rng.normal(size=(2, 6, 4)),
             np.array([[0, 1, 0, 3], [2, 2, 3, 3]], np.int64), rng.uniform(0.2, 2.0, size=2),
             note="blank=3 (tf.nn.ctc_loss's blank_index=-1 layout): class 0 is a label, 3 pads"),
        Case("extreme-confident", "extreme", {}, 25.0 * rng.normal(size=(2, 4, 4)),
             np.array([[1, 1, 2, 0], [3, 1, 3, 2]], np.int64),
             note="logits of scale 25: probabilities down to e^-150, a log-space recursion throughout "
                  "(products of probabilities would underflow); T = the steps the labels need, one alignment "
                  "per row, so G is one-hot and every gradient element keeps its digits (p, or the complement "
                  "of p at the emitted class). With several alignments p - G cancels where both are tiny: "
                  "the reference is then accurate to 1e-9 of the gradient's scale, not of each element"),
        Case("extreme-weights", "extreme", {}, rng.normal(size=(3, 5, 3)),
             np.array([[1, 2], [2, 0], [0, 0]], np.int64), np.array([1e6, 1e-6, 0.0]),
             note="huge, tiny and zero sample weights"),
        Case("edge-one-path", "edge", {}, rng.normal(size=(2, 4, 3)),
             np.array([[1, 1, 2], [2, 1, 2]], np.int64),
             note="T = the fewest steps the labels need (1, _, 1, 2 and 2, 1, 2 plus one spare): few alignments"),
        Case("edge-empty-label", "edge", {"divide_by_target_length": True}, rng.normal(size=(2, 4, 3)),
             np.array([[0, 0], [2, 0]], np.int64),
             note="a row of padding only: the all-blank path, -Σ_t log p_t(blank); its length 0 divides as 1"),
        Case("edge-padding-inside", "edge", {}, rng.normal(size=(2, 6, 4)),
             np.array([[1, 0, 2, 0], [0, 3, 0, 1]], np.int64),
             note="padding between labels: the labels are the non-blank entries in order (1, 2 and 3, 1)"),
        Case("edge-infeasible", "edge", {}, rng.normal(size=(2, 4, 4)), infeasible, smooth=False,
             note="labels 2, 2, 2 need 5 steps (T = 4): loss +inf and gradient 0 (zero_infinity=False)"),
        Case("edge-infeasible-zero", "edge", {"zero_infinity": True}, rng.normal(size=(2, 4, 4)), infeasible,
             note="zero_infinity=True: the infeasible sample has loss 0 and gradient 0"),
        Case("edge-batch1", "edge", {}, rng.normal(size=(1, 3, 2)), np.array([[1]], np.int64)),
    ]


def _ctc_invalid():
    p = np.zeros((2, 4, 3))
    labels = np.array([[1, 2], [2, 0]], np.int64)
    return [
        InvalidCase("blank-negative", {"blank": -1}),
        InvalidCase("blank-float", {"blank": 0.0}),
        InvalidCase("blank-bool", {"blank": True}),
        InvalidCase("zero-infinity-not-bool", {"zero_infinity": 1}),
        InvalidCase("divide-not-bool", {"divide_by_target_length": "yes"}),
        InvalidCase("blank-not-a-class", {"blank": 3}, p, labels),
        InvalidCase("label-not-integer", {}, p, np.array([[1.5, 2.0], [2.0, 0.0]])),
        InvalidCase("label-negative", {}, p, np.array([[1, -1], [2, 0]], np.int64)),
        InvalidCase("prediction-2d", {}, np.zeros((2, 3)), labels),
        InvalidCase("target-1d", {}, p, np.array([1, 2], np.int64)),
    ]


BLANK = Param("blank", 0, "an int >= 0 (a class index)", v.integer(lo=0),
              doc="Class index of the blank, and the padding value of the target rows (Keras' mask_index and "
                  "torch's blank, both 0 by default). Must be below C.")
ZERO_INFINITY = Param("zero_infinity", False, "a bool", v.boolean(),
                      doc="An infeasible sample (labels needing more steps than T: one per label and a blank "
                          "between repeats) has loss +inf; True makes it 0 (torch's zero_infinity). Its gradient "
                          "is 0 either way.")
DIVIDE = Param("divide_by_target_length", False, "a bool", v.boolean(),
               doc="Divide each sample's loss by its label count (at least 1), as torch.nn.CTCLoss's "
                   "reduction='mean' does before averaging: torch's 'mean' is ours with this and reduction='mean'.")

_CTC_PERFORMANCE = (
    note("torch", "torch eager*", ("cls", "seg"), 2.1,
         "(1.7-2.0 between runs of the same code) the peer is F.ctc_loss on float32 log_softmax with lengths counted from the padding; ours runs the "
         "log_softmax and the CTC recursion in float64 (float32 log-probabilities absorb the recursion's small "
         "differences: see the stability text), which is most of the difference, plus a stable argsort and a "
         "gather that move each row's labels to its front (padding anywhere in a row), the feasibility check "
         "(only where the shapes allow an infeasible row: 2L - 1 > T) and the casts back; bfloat16 input is computed the same way (float64 inside)", TORCH_CONTRACT),
    note("torch", "torch eager*", ("cls", "seg"), 1.9,
         "peak memory twice the peer's (1.76 of the peer's plus one input buffer at cls, 1.88 at seg): the CTC "
         "kernel keeps its forward variables α (N, T, 2L+1) for backward and allocates β (N, T, 2L+1) there, "
         "and the log-probabilities (N, T, C) and their gradient are input-sized; the peer holds all four in "
         "float32, ours in float64, 8 bytes an element for 4 (measured: 3.65 vs 1.82 MB at cls, 64x50x20 with "
         "L = 25, where α and β are 2 x 0.65 MB in float32; 23.5 vs 11.7 MB at seg, 32x200x30 with L = 100). "
         "The recursion variables are the float64 the accuracy contract needs (the stability text): no "
         "float32 buffer can replace them, so the excess is the recursion's own size, not a copy",
         target="memory"),
)

CTC = register(LossSpec(
    name="ctc",
    family="sequence",
    summary=("Connectionist temporal classification: -log of the total probability of every alignment of a "
             "sample's label sequence to its T softmax steps (logits (N, T, C), labels (N, L) padded with the blank)."),
    formula=(r"\ell_i = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_i)} \prod_{t=1}^{T} \operatorname{softmax}(x_{i,t})_{\pi_t},"
             r"\quad \mathcal{B}: \text{merge repeats, then drop blanks}"),
    params=(BLANK, ZERO_INFINITY, DIVIDE),
    reference=_ctc_reference,
    reference_vjp=_ctc_vjp,
    exact=_ctc_exact,
    cases=_ctc_cases,
    invalid_cases=_ctc_invalid,
    target_domain=None,  # labels: integers in [0, C) (checked by _check_labels)
    target_shape=_sequence_target_shape,
    make_target=random_labels,
    check_shapes=_check_logits_shape,
    check_values=_check_labels,
    check_values_scope=_labels_scope,
    grad_convention=(
        "dℓ_i/dx_{t,c} = softmax(x_t)_c - G_{t,c}, G_{t,c} = Σ_{s: l'_s = c} α_t(s) β_t(s) / (p_t(l'_s) p(y|x)) the "
        "posterior probability that an alignment emits c at t (forward-backward over the extended labels l' = "
        "b, l₁, b, …, b); smooth everywhere a sample is feasible. An infeasible sample's loss is +inf (0 with "
        "zero_infinity) for every prediction: gradient 0 (torch's zero_infinity=False gives NaN there). "
        "divide_by_target_length scales both by 1 / max(L_i, 1). No gradient w.r.t. the labels."),
    stability=(
        "The recursion runs in log space: log_softmax of the logits (never log(softmax)), α_t(s) = lp_t(l'_s) + "
        "logsumexp of its two or three predecessors; a product of T probabilities would underflow at T·88 "
        "nats in float32. Unreachable states are -inf (torch's kernel), or a large finite negative in the "
        "TensorFlow twin's recursion so that no -inf - (-inf) enters autodiff; infeasible samples are decided "
        "from the label lengths, not from the recursion. float32 logits are computed in float64 inside and the "
        "result cast back: in float32 the log-probabilities (about -|x|) absorb the small differences between "
        "the paths, so the posteriors (the gradient) would be off by eps32 · |x| (6e-4 at |x| = 1e4, found by "
        "the property test). In float64 the same holds at ε64: log-domain sums of up to T steps of |lp| <= 2e4 "
        "keep an absolute error of about ε64 · T · 2e4 (2e-11 at T = 8), and a posterior taken from such a sum "
        "(α_t + β_t - lp_t + nll) carries it as a relative one; where the gradient softmax - G cancels (p ≈ G ≈ "
        "0.73, gradient 1.4e-7) that is an absolute 1e-12 (found by the property test: the torch twin's "
        "kernel is 1.3e-12 off there against mpmath). The reference takes the posteriors by reverse mode through "
        "its recursion (log-sum-exp weights of neighbouring forward variables: 2.6e-10 of the element there, "
        "as the TensorFlow twin's autodiff), and the float64 gradient tolerance is atol 5e-11 · scale; the "
        "float32 one and the value tolerances are the defaults."),
    tolerances=Tolerances(value=DEFAULT_TOLERANCES.value,
                          grad={"float64": Tolerance(rtol=1e-9, atol=5e-11),
                                "float32": DEFAULT_TOLERANCES.grad["float32"]}),
    performance_notes=_CTC_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.CTC()", "float64 logits",
                 "keras.ops.ctc_loss casts float64 logits to float32 (tf.nn.ctc_loss rejects float64) and the "
                 "result back: float32 digits in a float64 tensor; ours computes in float64"),
        PeerNote("keras.losses.CTC(), torch.nn.CTCLoss", "float32 logits of large magnitude",
                 "both run the recursion in float32: the gradient is off by about eps32 · |x| (at a logit of 1e4: "
                 "4e-5 in Keras, 6e-4 in torch, against gradients of size 0.4); ours computes in float64 inside"),
        PeerNote("keras.losses.CTC()", "padding between labels",
                 "Keras counts the non-zero labels (L) and tf.nn.ctc_loss then takes the first L entries of "
                 "the row, padding included (row 1, 0, 2: labels 1, 0 with 0 the blank); ours takes the "
                 "non-blank entries in order (1, 2). Equal when the padding is at the end of the row"),
        PeerNote("keras.losses.CTC()", "infeasible labels (more steps needed than T)",
                 "tf.nn.ctc_loss returns a large finite value (about 711 in float32) and a finite gradient; "
                 "ours returns +inf with gradient 0 (0 and 0 with zero_infinity=True)"),
        PeerNote("keras.losses.CTC()", "blank / mask index",
                 "Keras fixes the blank and the padding at 0 (mask_index=0); ours is blank=0 by default and "
                 "takes any class index"),
        PeerNote("torch.nn.CTCLoss(blank, reduction, zero_infinity)", "reduction='mean'",
                 "torch divides each sample's loss by its target length (clamped to 1) before the batch mean: "
                 "ours with divide_by_target_length=True and reduction='mean'; 'sum' and 'none' are ours with "
                 "divide_by_target_length=False. torch takes log-probabilities (T, N, C): ours applies "
                 "log_softmax to (N, T, C) logits"),
        PeerNote("torch.nn.CTCLoss(zero_infinity=False)", "infeasible labels",
                 "torch returns +inf and a NaN gradient for every logit of that sample; ours +inf and gradient 0"),
    ),
    references=("A. Graves et al., Connectionist Temporal Classification: Labelling Unsegmented Sequence Data "
                "with Recurrent Neural Networks (ICML 2006); keras.losses.CTC; torch.nn.CTCLoss",),
    trap=("keras.losses.CTC computes float64 inputs in float32, and reads a row's first L entries (L: its non-zero "
          "count), so padding must be at the end; torch.nn.CTCLoss's default 'mean' divides by the target lengths "
          "and returns NaN gradients for an infeasible sample unless zero_infinity=True."),
    torch_class="CTCLoss",
    keras_class="CTC",
))

__all__ = ["CTC"]
