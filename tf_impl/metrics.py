r"""Registered ``keras.metrics.Metric`` classes: ``Recall``, ``Precision``, ``FBeta``, ``IoU``.

Binary / multilabel metrics of thresholded predictions, twins of :mod:`spec.metrics` (read its
docstring for the definitions: decision ``p > threshold`` or, with ``from_logits=True``,
``x > logit(threshold)``; ``average`` over the last axis; 0/0 → 0.0) and of
:mod:`torch_impl.metrics` (same parameters, defaults and error texts). Split in the torchmetrics
style: ``_stat_scores_update`` gives the per-class ``(tp, fp, fn)`` of a batch,  ``_compute``
the score of accumulated statistics (:func:`spec.metrics.ratio_terms`); the classes hold float64
statistics (``aggregation="sum"``, so replica sync is a sum) and are serializable.

Call order is Keras': ``metric.update_state(y_true, y_pred, sample_weight=None)``. Usable in
``model.compile(metrics=[Recall(from_logits=True)])``: inside ``fit`` (graph mode) only the
shape checks run (at trace time).

>>> m = Recall(from_logits=True)
>>> m.update_state([[1, 1], [0, 1]], [[3.0, -2.0], [-1.0, 0.5]])
>>> float(m.result())  # 2 of the 3 positives are found
0.6666666666666666
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from spec import metrics as _m

from ._core import TFOps, as_tensor
from .losses import PACKAGE


class _MetricOps(TFOps):
    def all_binary(self, x):
        return bool(tf.reduce_all(tf.logical_or(tf.equal(x, 0), tf.equal(x, 1))))

    def min_max(self, x):
        x = tf.cast(x, tf.float64)
        return float(tf.reduce_min(x)), float(tf.reduce_max(x))


_OPS = _MetricOps()


def _as_input(x) -> tf.Tensor:
    x = as_tensor(x)
    return tf.cast(x, tf.uint8) if x.dtype == tf.bool else x


def _stat_scores_update(y_true, y_pred, sample_weight=None, *, metric: str,
                        params: dict[str, Any]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-class ``(tp, fp, fn)`` (float64, ``(C,)``) of one batch, after the spec's checks."""
    y_pred = _as_input(y_pred)
    y_true = _as_input(y_true)
    sample_weight = None if sample_weight is None else _as_input(sample_weight)
    _m.check_metric_inputs(metric, params, y_pred, y_true, sample_weight, _OPS)
    if y_pred.shape.rank == 1:
        y_pred, y_true = y_pred[:, None], y_true[:, None]
    shape = tf.shape(y_pred)
    n, c = shape[0], shape[-1]
    # compared in float64: float32/half values are decided exactly as the reference decides them
    x = tf.reshape(tf.cast(y_pred, tf.float64), tf.stack([n, -1, c]))
    pred = x > _m.decision_threshold(params["threshold"], params["from_logits"])
    true = tf.reshape(tf.cast(y_true, tf.float64), tf.stack([n, -1, c])) > 0.5
    if sample_weight is None:
        w = tf.ones((), tf.float64)
    else:
        w = tf.reshape(tf.cast(sample_weight, tf.float64), tf.stack([n, 1, 1]))

    def total(mask):
        return tf.reduce_sum(w * tf.cast(mask, tf.float64), axis=[0, 1])

    tp = total(tf.logical_and(pred, true))
    fp = total(tf.logical_and(pred, tf.logical_not(true)))
    fn = total(tf.logical_and(tf.logical_not(pred), true))
    return tp, fp, fn


def _safe_divide(num: tf.Tensor, den: tf.Tensor) -> tf.Tensor:
    """``num / den`` with 0/0 → 0.0 (scikit-learn ``zero_division=0``)."""
    positive = den > 0
    return tf.where(positive, num / tf.where(positive, den, tf.ones_like(den)), tf.zeros_like(num))


def _reduce(score, tp, fp, fn, average: str) -> tf.Tensor:
    if average == "micro":
        return score(tf.reduce_sum(tp), tf.reduce_sum(fp), tf.reduce_sum(fn))
    per_class = score(tp, fp, fn)
    if average == "macro" or per_class.shape.num_elements() == 1:  # one class: a scalar, as torchmetrics
        return tf.reduce_mean(per_class)
    return per_class


def _compute(metric: str, params, tp, fp, fn) -> tf.Tensor:
    """The metric of accumulated statistics, reduced over classes as ``params["average"]`` says
    (the ratios are :func:`spec.metrics.ratio_terms`, 0/0 → 0)."""
    beta = params.get("beta", 1.0)
    return _reduce(lambda tp, fp, fn: _safe_divide(*_m.ratio_terms(metric, tp, fp, fn, beta=beta)),
                   tp, fp, fn, params["average"])


def _functional(metric: str, y_true, y_pred, sample_weight, config) -> tf.Tensor:
    params = _m.get(metric).validate_params(config)
    tp, fp, fn = _stat_scores_update(y_true, y_pred, sample_weight, metric=metric, params=params)
    return _compute(metric, params, tp, fp, fn)


# --------------------------------------------------------------------------- functional
def recall(y_true, y_pred, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
           sample_weight=None, validate=True) -> tf.Tensor:
    r"""Recall of one batch of thresholded predictions (see :class:`Recall`).

    .. math:: R = \frac{tp}{tp + fn}\qquad (0/0 \to 0)
    """
    return _functional("recall", y_true, y_pred, sample_weight,
                       dict(threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


def precision(y_true, y_pred, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
              sample_weight=None, validate=True) -> tf.Tensor:
    r"""Precision of one batch of thresholded predictions (see :class:`Precision`).

    .. math:: P = \frac{tp}{tp + fp}\qquad (0/0 \to 0)
    """
    return _functional("precision", y_true, y_pred, sample_weight,
                       dict(threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


def fbeta(y_true, y_pred, *, beta=1.0, threshold=0.5, from_logits=False, average="micro",
          num_classes=None, sample_weight=None, validate=True) -> tf.Tensor:
    r"""F-beta of one batch of thresholded predictions (see :class:`FBeta`).

    .. math:: F_\beta = \frac{(1+\beta^2)\,tp}{(1+\beta^2)\,tp + \beta^2 fn + fp}\qquad (0/0 \to 0)
    """
    return _functional("fbeta", y_true, y_pred, sample_weight,
                       dict(beta=beta, threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


def iou(y_true, y_pred, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
        sample_weight=None, validate=True) -> tf.Tensor:
    r"""IoU (Jaccard index) of one batch of thresholded predictions (see :class:`IoU`).

    .. math:: J = \frac{tp}{tp + fp + fn}\qquad (0/0 \to 0)
    """
    return _functional("iou", y_true, y_pred, sample_weight,
                       dict(threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


# --------------------------------------------------------------------------- Metric classes
class _StatScoresMetric(keras.metrics.Metric):
    """Base: float64 ``tp``/``fp``/``fn`` variables, per class when ``num_classes`` is given
    (shape ``(C,)``), else pooled scalars (``average="micro"`` only)."""

    metric_name: ClassVar[str]

    def __init__(self, *, config: dict[str, Any], name=None):
        params = _m.get(self.metric_name).validate_params(config)
        super().__init__(name=name or self.metric_name, dtype="float64")
        self.params = params
        shape = () if params["num_classes"] is None else (params["num_classes"],)
        self.tp = self.add_variable(shape=shape, initializer="zeros", dtype="float64", name="tp")
        self.fp = self.add_variable(shape=shape, initializer="zeros", dtype="float64", name="fp")
        self.fn = self.add_variable(shape=shape, initializer="zeros", dtype="float64", name="fn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, fn = _stat_scores_update(y_true, y_pred, sample_weight, metric=self.metric_name,
                                         params=self.params)
        if self.params["num_classes"] is None:
            tp, fp, fn = tf.reduce_sum(tp), tf.reduce_sum(fp), tf.reduce_sum(fn)
        self.tp.assign_add(tp)
        self.fp.assign_add(fp)
        self.fn.assign_add(fn)

    def result(self):
        return _compute(self.metric_name, self.params, tf.convert_to_tensor(self.tp),
                        tf.convert_to_tensor(self.fp), tf.convert_to_tensor(self.fn))

    def get_config(self) -> dict:
        return {"name": self.name, **self.params}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Recall(_StatScoresMetric):
    r"""Recall ``tp / (tp + fn)`` of thresholded predictions, streamed (see :mod:`spec.metrics`).

    Args:
        threshold: positive when ``p > threshold`` (``x > logit(threshold)`` for logits).
        from_logits: predictions are logits (the sparse-multilabel problem's ``Recall(from_logits)`` workaround, built
            in: no sigmoid is computed).
        average: ``"micro"``, ``"macro"`` or ``"none"`` over the last axis (classes).
        num_classes: size of the last axis; required for ``"macro"``/``"none"``.
        validate: check data values at update (NaN, 0/1 targets, probability range); eager only.
        name: Keras metric name (default ``"recall"``).
    """

    metric_name = "recall"

    def __init__(self, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, name=None):
        super().__init__(config=dict(threshold=threshold, from_logits=from_logits, average=average,
                                     num_classes=num_classes, validate=validate), name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Precision(_StatScoresMetric):
    r"""Precision ``tp / (tp + fp)`` of thresholded predictions, streamed (arguments: :class:`Recall`)."""

    metric_name = "precision"

    def __init__(self, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, name=None):
        super().__init__(config=dict(threshold=threshold, from_logits=from_logits, average=average,
                                     num_classes=num_classes, validate=validate), name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FBeta(_StatScoresMetric):
    r"""F-beta ``(1+β²) tp / ((1+β²) tp + β² fn + fp)`` of thresholded predictions, streamed.

    ``beta`` (>= 0, default 1: F1) weighs recall; ``beta=0`` is precision.
    """

    metric_name = "fbeta"

    def __init__(self, *, beta=1.0, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, name=None):
        super().__init__(config=dict(beta=beta, threshold=threshold, from_logits=from_logits,
                                     average=average, num_classes=num_classes, validate=validate),
                         name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class IoU(_StatScoresMetric):
    r"""IoU (Jaccard index) ``tp / (tp + fp + fn)`` of thresholded predictions, streamed
    (arguments: :class:`Recall`)."""

    metric_name = "iou"

    def __init__(self, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, name=None):
        super().__init__(config=dict(threshold=threshold, from_logits=from_logits, average=average,
                                     num_classes=num_classes, validate=validate), name=name)


def _document() -> None:
    """The metric classes and functions get their docstrings from :data:`spec.metrics.METRICS`."""
    from spec.docstrings import document_metrics

    document_metrics('keras', globals())


_document()

__all__ = ["Recall", "Precision", "FBeta", "IoU", "recall", "precision", "fbeta", "iou"]
