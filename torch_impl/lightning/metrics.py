"""Metric descriptions → ``torchmetrics.Metric`` objects (twin: ``tf_impl.training.build_metric``).

A description is a dict: ``{"kind": "fbeta", "beta": 1.0, "from_logits": True}``; ``kind`` is one of

* ``recall``, ``precision``, ``fbeta``, ``iou``: our thresholded binary/multilabel metrics
  (:mod:`torch_impl.metrics`, equal to scikit-learn), the other keys are their arguments;
* ``accuracy``: multiclass accuracy of the argmax (``torchmetrics`` ``MulticlassAccuracy``,
  ``average="micro"``); needs ``num_classes``. Works on logits and on probabilities alike.
* ``mse``: mean squared error over every element (``torchmetrics`` ``MeanSquaredError``; twin of
  ``keras.metrics.MeanSquaredError``), for regression and reconstruction outputs; no arguments.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torchmetrics

from .. import metrics as _ours

KINDS = ("recall", "precision", "fbeta", "iou", "accuracy", "mse")
_OURS = {"recall": _ours.Recall, "precision": _ours.Precision, "fbeta": _ours.FBeta, "iou": _ours.IoU}


def build_metric(description: Mapping[str, Any], *, name: str = "") -> torchmetrics.Metric:
    params = dict(description)
    kind = params.pop("kind", name)
    if kind in _OURS:
        return _OURS[kind](**params)
    if kind == "accuracy":
        if "num_classes" not in params:
            raise ValueError(f"metric {name or kind!r}: accuracy needs num_classes")
        extra = sorted(set(params) - {"num_classes"})
        if extra:
            raise ValueError(f"metric {name or kind!r}: unknown accuracy arguments {extra}")
        return torchmetrics.classification.MulticlassAccuracy(num_classes=int(params["num_classes"]),
                                                              average="micro")
    if kind == "mse":
        if params:
            raise ValueError(f"metric {name or kind!r}: mse takes no arguments; got {sorted(params)}")
        return torchmetrics.MeanSquaredError()
    raise ValueError(f"metric {name!r}: unknown kind {kind!r}; expected one of {list(KINDS)}")


__all__ = ["build_metric", "KINDS"]
