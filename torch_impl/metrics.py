r"""torchmetrics ``Metric`` classes: ``Recall``, ``Precision``, ``FBeta``, ``IoU``.

Binary / multilabel metrics of thresholded predictions, twins of :mod:`spec.metrics` (read its
docstring for the definitions: decision ``p > threshold`` or, with ``from_logits=True``,
``x > logit(threshold)``; ``average`` over the last axis; 0/0 → 0.0). torchmetrics style:

* ``_stat_scores_update(input, target, sample_weight, ...) -> (tp, fp, fn)``: the sufficient
  statistics of one batch, per class (float64, ``(C,)``);
* ``_compute(metric, params, tp, fp, fn)``: the score of accumulated statistics (the ratios of
  :func:`spec.metrics.ratio_terms`, shared with the reference and the Keras twin);
* a thin ``Metric`` whose states are those statistics, ``add_state(..., dist_reduce_fx="sum")``,
  so a DDP sync is a sum of statistics.

Call order is torch's: ``metric.update(input, target, sample_weight=None)``.

>>> import torch
>>> m = Recall(from_logits=True)
>>> m.update(torch.tensor([[3.0, -2.0], [-1.0, 0.5]]), torch.tensor([[1, 1], [0, 1]]))
>>> float(m.compute())  # 2 of the 3 positives are found
0.6666666666666666
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torchmetrics

from spec import metrics as _m

from ._core import TorchOps, as_tensor


class _MetricOps(TorchOps):
    def all_binary(self, x):
        return bool(((x == 0) | (x == 1)).all())

    def min_max(self, x):
        lo, hi = torch.aminmax(x.detach().to(torch.float64))
        return float(lo), float(hi)


_OPS = _MetricOps()


def _as_input(x, device=None) -> torch.Tensor:
    x = as_tensor(x, device).detach()
    return x.to(torch.uint8) if x.dtype == torch.bool else x


def _stat_scores_update(input, target, sample_weight=None, *, metric: str,
                        params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class ``(tp, fp, fn)`` (float64, ``(C,)``) of one batch, after the spec's checks."""
    input = _as_input(input)
    target = _as_input(target, input.device)
    sample_weight = None if sample_weight is None else _as_input(sample_weight, input.device)
    _m.check_metric_inputs(metric, params, input, target, sample_weight, _OPS)
    if input.dim() == 1:
        input, target = input[:, None], target[:, None]
    n, c = input.shape[0], input.shape[-1]
    # compared in float64: float32/half values are decided exactly as the reference decides them
    x = input.reshape(n, -1, c).to(torch.float64)
    pred = x > _m.decision_threshold(params["threshold"], params["from_logits"])
    true = target.reshape(n, -1, c).to(torch.float64) > 0.5
    if sample_weight is None:
        w = torch.ones((), dtype=torch.float64, device=x.device)
    else:
        w = sample_weight.to(torch.float64).reshape(n, 1, 1)
    tp = (w * (pred & true)).sum(dim=(0, 1))
    fp = (w * (pred & ~true)).sum(dim=(0, 1))
    fn = (w * (~pred & true)).sum(dim=(0, 1))
    return tp, fp, fn


def _safe_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` with 0/0 → 0.0 (scikit-learn ``zero_division=0``)."""
    positive = den > 0
    return torch.where(positive, num / torch.where(positive, den, torch.ones_like(den)),
                       torch.zeros_like(num))


def _reduce(score, tp, fp, fn, average: str) -> torch.Tensor:
    if average == "micro":
        return score(tp.sum(), fp.sum(), fn.sum())
    per_class = score(tp, fp, fn)
    # "none" with one class is a scalar: torchmetrics squeezes one-element results anyway
    return per_class.mean() if average == "macro" or per_class.numel() == 1 else per_class


def _compute(metric: str, params, tp, fp, fn) -> torch.Tensor:
    """The metric of accumulated statistics, reduced over classes as ``params["average"]`` says
    (the ratios are :func:`spec.metrics.ratio_terms`, 0/0 → 0)."""
    beta = params.get("beta", 1.0)
    return _reduce(lambda tp, fp, fn: _safe_divide(*_m.ratio_terms(metric, tp, fp, fn, beta=beta)),
                   tp, fp, fn, params["average"])


def _functional(metric: str, input, target, sample_weight, config) -> torch.Tensor:
    params = _m.get(metric).validate_params(config)
    tp, fp, fn = _stat_scores_update(input, target, sample_weight, metric=metric, params=params)
    return _compute(metric, params, tp, fp, fn)


# --------------------------------------------------------------------------- functional
def recall(input, target, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
           sample_weight=None, validate=True) -> torch.Tensor:
    r"""Recall of one batch of thresholded predictions (see :class:`Recall`).

    .. math:: R = \frac{tp}{tp + fn}\qquad (0/0 \to 0)
    """
    return _functional("recall", input, target, sample_weight,
                       dict(threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


def precision(input, target, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
              sample_weight=None, validate=True) -> torch.Tensor:
    r"""Precision of one batch of thresholded predictions (see :class:`Precision`).

    .. math:: P = \frac{tp}{tp + fp}\qquad (0/0 \to 0)
    """
    return _functional("precision", input, target, sample_weight,
                       dict(threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


def fbeta(input, target, *, beta=1.0, threshold=0.5, from_logits=False, average="micro",
          num_classes=None, sample_weight=None, validate=True) -> torch.Tensor:
    r"""F-beta of one batch of thresholded predictions (see :class:`FBeta`).

    .. math:: F_\beta = \frac{(1+\beta^2)\,tp}{(1+\beta^2)\,tp + \beta^2 fn + fp}\qquad (0/0 \to 0)
    """
    return _functional("fbeta", input, target, sample_weight,
                       dict(beta=beta, threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


def iou(input, target, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
        sample_weight=None, validate=True) -> torch.Tensor:
    r"""IoU (Jaccard index) of one batch of thresholded predictions (see :class:`IoU`).

    .. math:: J = \frac{tp}{tp + fp + fn}\qquad (0/0 \to 0)
    """
    return _functional("iou", input, target, sample_weight,
                       dict(threshold=threshold, from_logits=from_logits, average=average,
                            num_classes=num_classes, validate=validate))


# --------------------------------------------------------------------------- Metric classes
#: the ``torchmetrics.Metric`` options passed through ``**kwargs``
_TORCHMETRICS_OPTIONS = frozenset({"compute_on_cpu", "dist_sync_on_step", "process_group", "dist_sync_fn",
                                   "distributed_available_fn", "sync_on_compute", "compute_with_cache"})

class _StatScoresMetric(torchmetrics.Metric):
    """Base: float64 ``tp``/``fp``/``fn`` states, per class when ``num_classes`` is given
    (shape ``(C,)``), else pooled scalars (``average="micro"`` only)."""

    metric_name: ClassVar[str]
    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, *, config: dict[str, Any], **kwargs: Any):
        unexpected = sorted(set(kwargs) - _TORCHMETRICS_OPTIONS)
        if unexpected:  # what an explicit keyword-only signature raises (the Keras twin's behaviour)
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"{unexpected[0]!r}")
        params = _m.get(self.metric_name).validate_params(config)
        super().__init__(**kwargs)
        self.params = params
        shape = () if params["num_classes"] is None else (params["num_classes"],)
        for state in ("tp", "fp", "fn"):
            self.add_state(state, default=torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, input, target, sample_weight=None) -> None:
        tp, fp, fn = _stat_scores_update(input, target, sample_weight, metric=self.metric_name,
                                         params=self.params)
        if self.params["num_classes"] is None:
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        self.tp += tp.to(self.tp.device)
        self.fp += fp.to(self.fp.device)
        self.fn += fn.to(self.fn.device)

    def compute(self) -> torch.Tensor:
        return _compute(self.metric_name, self.params, self.tp, self.fp, self.fn)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.params.items())


class Recall(_StatScoresMetric):
    r"""Recall ``tp / (tp + fn)`` of thresholded predictions, streamed (see :mod:`spec.metrics`).

    Args:
        threshold: positive when ``p > threshold`` (``x > logit(threshold)`` for logits).
        from_logits: predictions are logits (the sparse-multilabel problem's ``Recall(from_logits)`` workaround, built
            in: no sigmoid is computed).
        average: ``"micro"``, ``"macro"`` or ``"none"`` over the last axis (classes).
        num_classes: size of the last axis; required for ``"macro"``/``"none"``.
        validate: check data values at update (NaN, 0/1 targets, probability range).
        **kwargs: torchmetrics ``Metric`` options (``sync_on_compute``, ...).
    """

    metric_name = "recall"

    def __init__(self, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, **kwargs: Any):
        super().__init__(config=dict(threshold=threshold, from_logits=from_logits, average=average,
                                     num_classes=num_classes, validate=validate), **kwargs)


class Precision(_StatScoresMetric):
    r"""Precision ``tp / (tp + fp)`` of thresholded predictions, streamed (arguments: :class:`Recall`)."""

    metric_name = "precision"

    def __init__(self, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, **kwargs: Any):
        super().__init__(config=dict(threshold=threshold, from_logits=from_logits, average=average,
                                     num_classes=num_classes, validate=validate), **kwargs)


class FBeta(_StatScoresMetric):
    r"""F-beta ``(1+β²) tp / ((1+β²) tp + β² fn + fp)`` of thresholded predictions, streamed.

    ``beta`` (>= 0, default 1: F1) weighs recall; ``beta=0`` is precision.
    """

    metric_name = "fbeta"

    def __init__(self, *, beta=1.0, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, **kwargs: Any):
        super().__init__(config=dict(beta=beta, threshold=threshold, from_logits=from_logits,
                                     average=average, num_classes=num_classes, validate=validate),
                         **kwargs)


class IoU(_StatScoresMetric):
    r"""IoU (Jaccard index) ``tp / (tp + fp + fn)`` of thresholded predictions, streamed
    (arguments: :class:`Recall`)."""

    metric_name = "iou"

    def __init__(self, *, threshold=0.5, from_logits=False, average="micro", num_classes=None,
                 validate=True, **kwargs: Any):
        super().__init__(config=dict(threshold=threshold, from_logits=from_logits, average=average,
                                     num_classes=num_classes, validate=validate), **kwargs)


def _document() -> None:
    """The metric classes and functions get their docstrings from :data:`spec.metrics.METRICS`."""
    from spec.docstrings import document_metrics

    document_metrics('torch', globals())


_document()

__all__ = ["Recall", "Precision", "FBeta", "IoU", "recall", "precision", "fbeta", "iou"]
