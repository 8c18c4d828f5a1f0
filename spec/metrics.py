r"""Thresholded binary / multilabel metrics: Recall, Precision, FBeta, IoU.

The NumPy reference of the metric math, the parameter checks, the input-validation driver and
every error message. :mod:`torch_impl.metrics` (torchmetrics ``Metric``) and
:mod:`tf_impl.metrics` (``keras.metrics.Metric``) call these checks, so parameters, defaults and
error texts are identical; the tests compare both with this reference and with scikit-learn.

Definitions
-----------
* Inputs: ``prediction`` and ``target`` of the same shape ``(N, ..., C)``: classes (labels) on
  the last axis, samples on axis 0, any middle axes (pixels) pooled with the samples. A 1-D
  input ``(N,)`` is one binary output (``C = 1``). Targets are 0 or 1.
* Decision: a prediction is positive when ``p > threshold`` (strict, as Keras and
  torchmetrics). With ``from_logits=True`` the threshold applies to ``σ(x)``: since σ is
  increasing, ``σ(x) > t ⇔ x > logit(t)``, and we compare ``x > L`` with
  ``L = log(t) - log1p(-t)`` (float64) without computing the sigmoid, which saturates: in
  float32 ``σ(20) = σ(21) = 1.0``, so ``t = 1 - 1e-9`` would call both positive, while the truth
  (and our decision) is ``σ(20) < t < σ(21)``. Inputs are compared in float64, so float32
  inputs are decided exactly as the reference decides them.
* Statistics per class ``c`` (streamed: sums over every update):
  ``tp_c = Σ w_i [pred ∧ true]``, ``fp_c = Σ w_i [pred ∧ ¬true]``, ``fn_c = Σ w_i [¬pred ∧ true]``
  with ``sample_weight`` ``w_i`` (default 1) broadcast over the non-batch axes; float64 states.
* Scores: recall ``tp / (tp + fn)``; precision ``tp / (tp + fp)``;
  F-beta ``(1+β²) tp / ((1+β²) tp + β² fn + fp)`` (= ``(1+β²) P R / (β² P + R)``);
  IoU (Jaccard) ``tp / (tp + fp + fn)``.
* ``average``: ``"micro"`` sums the statistics over classes first (Keras' built-in
  ``Recall``/``Precision`` on a multilabel matrix; scikit-learn ``average="micro"``, and
  ``"binary"`` for one output); ``"macro"`` is the unweighted mean of the per-class scores,
  every class counted (scikit-learn ``"macro"``); ``"none"`` returns the ``(C,)`` per-class scores
  (scikit-learn ``average=None``), a scalar when ``C = 1`` (torchmetrics squeezes one-element
  results of every ``Metric.compute``; both frameworks and the reference follow it).
  ``"macro"`` and ``"none"`` need ``num_classes`` (the states are per class from the first
  update).
* **Zero division**: a score whose denominator is 0 (e.g. recall of a class with no positive
  label) is **0.0**, scikit-learn's ``zero_division=0``; in ``"macro"`` it still counts as a
  class (it pulls the mean down), as in scikit-learn.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import numpy as np

from . import messages
from . import validation as v
from .core import Param, ParamError

AVERAGES = ("micro", "macro", "none")


# --------------------------------------------------------------------------- messages
def unknown_param(metric: str, key: str, known: tuple[str, ...]) -> str:
    return f"{metric}: unknown parameter `{key}`; expected one of: {', '.join(known)}"


def needs_num_classes(metric: str, average: str) -> str:
    return (f"{metric}: average={average!r} keeps one statistic per class and needs `num_classes` "
            f"(the size of the last axis); got num_classes=None")


def num_classes_mismatch(metric: str, num_classes: int, last_axis: int) -> str:
    return (f"{metric}: num_classes={num_classes} but the last axis of prediction has {last_axis} "
            f"entries (a 1-D prediction is one class)")


def target_not_binary(metric: str) -> str:
    return f"{metric}: target must be 0 or 1; got other values{messages.VALIDATE_HINT}"


def _probability_hint(params) -> str:
    if params.get("from_logits"):
        return ""
    return ("; with from_logits=False the prediction must be a probability "
            "(pass from_logits=True if the model outputs logits)")


# --------------------------------------------------------------------------- parameters
def _positive_int():
    def check(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ParamError
        if int(value) < 1:
            raise ParamError
        return int(value)

    return check


THRESHOLD = Param("threshold", 0.5, "a float in (0, 1) (open interval)",
                  v.real(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
                  doc="Decision threshold on the probability: positive when p > threshold "
                      "(with from_logits=True: when x > logit(threshold)).")
FROM_LOGITS = Param("from_logits", False, "a bool", v.boolean(),
                    doc="True: predictions are logits; the threshold applies to sigmoid(x), "
                        "compared as x > logit(threshold) without computing the sigmoid.")
AVERAGE = Param("average", "micro", "one of 'micro', 'macro', 'none'", v.choice(*AVERAGES),
                doc="Over the last axis (classes): micro pools the statistics, macro averages "
                    "per-class scores, none returns them.")
NUM_CLASSES = Param("num_classes", None, "None or an int >= 1", v.optional(_positive_int()),
                    doc="Size of the last axis (1 for a 1-D prediction). Required by average="
                        "'macro'/'none'; when given, checked at every update.")
VALIDATE = Param("validate", True, "a bool", v.boolean(),
                 doc="Check data values at update (NaN, target 0/1, probability range); shapes "
                     "are always checked. Skipped automatically inside tf.function/torch.compile.")
BETA = Param("beta", 1.0, "a finite float >= 0", v.real(lo=0.0),
             doc="Weight of recall: F-beta = (1+β²) P R / (β² P + R); β = 0 is precision.")


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    summary: str
    formula: str
    params: tuple[Param, ...]
    sklearn: str
    torch_class: str
    keras_class: str

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate_params(self, config) -> dict[str, Any]:
        """Fill defaults and normalize; raise ``ValueError`` with the shared message."""
        known = self.param_names
        for key in config:
            if key not in known:
                raise ValueError(unknown_param(self.name, key, known))
        out = {}
        for p in self.params:
            value = config.get(p.name, p.default)
            try:
                out[p.name] = p.check(value)
            except ParamError:
                raise ValueError(messages.invalid_param(self.name, p.name, value, p.domain)) from None
        if out["average"] != "micro" and out["num_classes"] is None:
            raise ValueError(needs_num_classes(self.name, out["average"]))
        return out


_COMMON = (THRESHOLD, FROM_LOGITS, AVERAGE, NUM_CLASSES, VALIDATE)

METRICS: dict[str, MetricSpec] = {
    m.name: m for m in (
        MetricSpec("recall", "Recall (sensitivity) of thresholded predictions.",
                   r"\frac{tp}{tp + fn}", _COMMON, "recall_score", "Recall", "Recall"),
        MetricSpec("precision", "Precision of thresholded predictions.",
                   r"\frac{tp}{tp + fp}", _COMMON, "precision_score", "Precision", "Precision"),
        MetricSpec("fbeta", "F-beta score of thresholded predictions.",
                   r"\frac{(1+\beta^2)\,tp}{(1+\beta^2)\,tp + \beta^2 fn + fp}", (BETA,) + _COMMON,
                   "fbeta_score", "FBeta", "FBeta"),
        MetricSpec("iou", "Intersection over union (Jaccard index) of thresholded predictions.",
                   r"\frac{tp}{tp + fp + fn}", _COMMON, "jaccard_score", "IoU", "IoU"),
    )
}


def get(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; defined: {', '.join(sorted(METRICS))}") from None


def decision_threshold(threshold: float, from_logits: bool) -> float:
    """The float64 value the prediction is compared with (``prediction > L``)."""
    threshold = float(threshold)
    return math.log(threshold) - math.log1p(-threshold) if from_logits else threshold


# --------------------------------------------------------------------------- input validation
class MetricOps(Protocol):
    """:class:`spec.validation.ArrayOps` plus a 0/1 test."""

    def shape(self, x) -> tuple: ...

    def can_read_values(self) -> bool: ...

    def has_nonfinite(self, x) -> bool: ...

    def min_max(self, x) -> tuple[float, float]: ...

    def all_binary(self, x) -> bool: ...


class NumpyMetricOps(v.NumpyOps):
    def all_binary(self, x):
        a = np.asarray(x)
        return bool(np.all((a == 0) | (a == 1)))


def _dims_equal(a, b) -> bool:
    return a is None or b is None or int(a) == int(b)


def check_metric_inputs(metric: str, params, prediction, target, sample_weight, ops: MetricOps) -> None:
    """Validate one update. Shape checks always run (at trace time in graph mode); data checks
    run when ``params["validate"]`` and values can be read. Order: shapes → NaN → target 0/1 →
    probability range → sample_weight values."""
    p_shape = ops.shape(prediction)
    if len(p_shape) < 1:
        raise ValueError(messages.no_batch_axis(metric, p_shape))
    t_shape = ops.shape(target)
    if len(t_shape) != len(p_shape) or not all(_dims_equal(a, b) for a, b in zip(p_shape, t_shape)):
        raise ValueError(messages.shape_mismatch(metric, p_shape, t_shape))
    if sample_weight is not None:
        w_shape = ops.shape(sample_weight)
        if len(w_shape) != 1 or not _dims_equal(w_shape[0], p_shape[0]):
            batch = "None" if p_shape[0] is None else int(p_shape[0])
            raise ValueError(messages.sample_weight_shape(metric, w_shape, batch))
    num_classes = params["num_classes"]
    last = 1 if len(p_shape) == 1 else p_shape[-1]
    if num_classes is not None and last is not None and int(last) != num_classes:
        raise ValueError(num_classes_mismatch(metric, num_classes, int(last)))
    if not (params["validate"] and ops.can_read_values()):
        return
    for arg, x in (("prediction", prediction), ("target", target)):
        if ops.has_nonfinite(x):
            raise ValueError(messages.not_finite(metric, arg))
    empty = any(d is not None and int(d) == 0 for d in p_shape)
    if empty:
        return
    if not ops.all_binary(target):
        raise ValueError(target_not_binary(metric))
    if not params["from_logits"]:
        vmin, vmax = ops.min_max(prediction)
        if vmin < 0.0 or vmax > 1.0:
            raise ValueError(messages.out_of_domain(metric, "prediction", 0.0, 1.0, vmin, vmax,
                                                    _probability_hint(params)))
    if sample_weight is not None:
        if ops.has_nonfinite(sample_weight):
            raise ValueError(messages.not_finite(metric, "sample_weight"))
        vmin, _ = ops.min_max(sample_weight)
        if vmin < 0:
            raise ValueError(messages.negative_weight(metric, vmin))


# --------------------------------------------------------------------------- reference
def stat_scores(prediction, target, *, threshold=0.5, from_logits=False, sample_weight=None):
    """Per-class ``(tp, fp, fn)``, each float64 ``(C,)``, of one batch."""
    x = np.asarray(prediction, np.float64)
    y = np.asarray(target)
    if x.ndim == 1:
        x, y = x[:, None], y[:, None]
    n, c = x.shape[0], x.shape[-1]
    x, y = x.reshape(n, -1, c), y.reshape(n, -1, c)
    pred = x > decision_threshold(threshold, from_logits)
    true = y.astype(np.float64) > 0.5
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w[:, None, None]
    tp = (w * (pred & true)).sum(axis=(0, 1))
    fp = (w * (pred & ~true)).sum(axis=(0, 1))
    fn = (w * (~pred & true)).sum(axis=(0, 1))
    return tp, fp, fn


def _ratio(num, den):
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def ratio_terms(metric: str, tp, fp, fn, *, beta: float = 1.0):
    r"""``(numerator, denominator)`` of the metric of statistics ``tp, fp, fn`` (elementwise).

    Arithmetic only (``+``, ``*``), so the same function serves NumPy arrays here and the torch and
    TensorFlow statistics of ``torch_impl.metrics`` / ``tf_impl.metrics``; each divides with 0/0 → 0.

    .. math:: R = \frac{tp}{tp + fn},\quad P = \frac{tp}{tp + fp},\quad
              F_\beta = \frac{(1+\beta^2)\,tp}{(1+\beta^2)\,tp + \beta^2 fn + fp},\quad
              J = \frac{tp}{tp + fp + fn}
    """
    if metric == "recall":
        return tp, tp + fn
    if metric == "precision":
        return tp, tp + fp
    if metric == "fbeta":
        b2 = beta * beta
        return (1.0 + b2) * tp, (1.0 + b2) * tp + b2 * fn + fp
    if metric == "iou":
        return tp, tp + fp + fn
    raise KeyError(metric)


def score(metric: str, tp, fp, fn, *, beta: float = 1.0):
    """The metric of statistics (elementwise; 0/0 → 0.0)."""
    return _ratio(*ratio_terms(metric, tp, fp, fn, beta=beta))


def compute(metric: str, tp, fp, fn, *, average: str = "micro", beta: float = 1.0):
    """Reduce per-class statistics over classes: a float (micro, macro) or ``(C,)`` (none; a
    float when ``C = 1``)."""
    tp, fp, fn = (np.asarray(a, np.float64) for a in (tp, fp, fn))
    if average == "micro":
        return np.float64(score(metric, tp.sum(), fp.sum(), fn.sum(), beta=beta))
    per_class = score(metric, tp, fp, fn, beta=beta)
    if average == "macro" or per_class.size == 1:
        return np.float64(per_class.mean())
    return per_class


def reference(metric: str, batches, **config):
    """The metric of a stream: ``batches`` is a list of ``(prediction, target[, sample_weight])``."""
    params = get(metric).validate_params(config)
    ops = NumpyMetricOps()
    totals = None
    for batch in batches:
        prediction, target, *rest = batch
        sample_weight = rest[0] if rest else None
        check_metric_inputs(metric, params, prediction, target, sample_weight, ops)
        stats = stat_scores(prediction, target, threshold=params["threshold"],
                            from_logits=params["from_logits"], sample_weight=sample_weight)
        totals = stats if totals is None else tuple(a + b for a, b in zip(totals, stats))
    return compute(metric, *totals, average=params["average"], beta=params.get("beta", 1.0))


__all__ = ["METRICS", "MetricSpec", "get", "decision_threshold", "check_metric_inputs", "stat_scores",
           "score", "compute", "reference"]
