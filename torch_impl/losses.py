"""``nn.Module`` losses: thin classes over the functional ops, one per spec entry.

Called ``loss(input, target, sample_weight=None)`` (torch order: prediction first). Parameters
are validated once, at construction; vector parameters (``pos_weight``) are buffers, so they
follow ``.to(device)`` and live in ``state_dict``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import spec as _spec

from . import (classification, divergence, margin, metric_learning, multiclass, overlap, regression,  # noqa: F401
               regularizers, sequence)
from ._core import LossCall, apply, split_params

IMPLEMENTATIONS = _spec.core.Implementations("torch", to_plain=lambda c: split_params(c)[0])


class SpecLoss(nn.Module):
    """Base class: validates the configuration against the spec entry ``spec_name``, once.

    The validated configuration is kept as a :class:`torch_impl._core.LossCall`: a call checks
    shapes, data values where that needs no device synchronization (CPU tensors; on accelerators
    only inside :func:`torch_impl.sync_value_checks`, see :mod:`spec.validation`) and computes.
    Assigning ``reduction`` or ``validate`` re-validates and rebuilds it."""

    spec_name: ClassVar[str]
    per_sample: ClassVar[Callable[..., torch.Tensor]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        IMPLEMENTATIONS.register(cls.spec_name, cls)

    def __init__(self, **config: Any):
        super().__init__()
        entry = _spec.get(self.spec_name)
        # tensors (any device, requiring grad or not) are validated through their CPU NumPy view
        params, reduction, validate = entry.validate_config(split_params(config)[0])
        self._scalar_params: dict[str, Any] = {}
        for key, value in params.items():
            if isinstance(value, np.ndarray):
                self.register_buffer(key, torch.as_tensor(value, dtype=torch.float64))
            else:
                self._scalar_params[key] = value
        self._param_names = tuple(params)
        self._vector_names = tuple(k for k in params if k not in self._scalar_params)
        self._config = (params, reduction, validate)
        self._call = LossCall(entry, type(self).per_sample, params, reduction, validate)

    def _rebuild(self, **change):
        params, reduction, validate = self._config
        self._call = self._call.rebuilt(change.get("reduction", reduction), change.get("validate", validate))
        self._config = (params, self._call.reduction, self._call.validate)

    @property
    def reduction(self) -> str:
        return self._config[1]

    @reduction.setter
    def reduction(self, value):
        self._rebuild(reduction=value)

    @property
    def validate(self) -> bool:
        return self._config[2]

    @validate.setter
    def validate(self, value):
        self._rebuild(validate=value)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_call", None)  # rebuilt from the entry (which holds functions) on unpickling
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        params, reduction, validate = self._config
        self._call = LossCall(_spec.get(self.spec_name), type(self).per_sample, params, reduction, validate)

    @property
    def params(self) -> dict[str, Any]:
        return {k: self._scalar_params[k] if k in self._scalar_params else getattr(self, k)
                for k in self._param_names}

    def forward(self, input, target=None, sample_weight=None):
        # the vector parameters are this module's buffers (they follow .to()): the call reads them by name
        return self._call(input, target, sample_weight, None, self._buffers if self._vector_names else None)

    def extra_repr(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self._scalar_params.items()]
        parts += [f"{k}=<buffer {tuple(getattr(self, k).shape)}>" for k in self._param_names
                  if k not in self._scalar_params]
        return ", ".join(parts + [f"reduction={self.reduction!r}", f"validate={self.validate}"])


class WeightedBCELoss(SpecLoss):
    """Module form of :func:`torch_impl.classification.weighted_bce` (see its docstring)."""

    spec_name = "weighted_bce"
    per_sample = staticmethod(classification._weighted_bce_per_sample)

    def __init__(self, *, pos_weight=1.0, from_logits=True, reduction="mean", validate=True):
        super().__init__(pos_weight=pos_weight, from_logits=from_logits, reduction=reduction,
                         validate=validate)


class BinaryFocalLoss(SpecLoss):
    """Module form of :func:`torch_impl.classification.binary_focal` (see its docstring)."""

    spec_name = "binary_focal"
    per_sample = staticmethod(classification._binary_focal_per_sample)

    def __init__(self, *, gamma=2.0, alpha=None, from_logits=True, reduction="mean", validate=True):
        super().__init__(gamma=gamma, alpha=alpha, from_logits=from_logits, reduction=reduction,
                         validate=validate)


# ---------------------------------------------------------------- family: multiclass
class CategoricalCELoss(SpecLoss):
    """Module form of :func:`torch_impl.multiclass.categorical_crossentropy` (classes on the LAST axis)."""

    spec_name = "categorical_crossentropy"
    per_sample = staticmethod(multiclass._categorical_crossentropy_per_sample)

    def __init__(self, *, from_logits=True, label_smoothing=0.0, class_weight=None, reduction="mean", validate=True):
        super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, class_weight=class_weight,
                         reduction=reduction, validate=validate)


class SparseCategoricalCELoss(SpecLoss):
    """Module form of :func:`torch_impl.multiclass.sparse_categorical_crossentropy` (classes LAST,
    integer targets of shape ``input.shape[:-1]``)."""

    spec_name = "sparse_categorical_crossentropy"
    per_sample = staticmethod(multiclass._sparse_categorical_crossentropy_per_sample)

    def __init__(self, *, from_logits=True, label_smoothing=0.0, class_weight=None, ignore_index=None,
                 reduction="mean", validate=True):
        super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, class_weight=class_weight,
                         ignore_index=ignore_index, reduction=reduction, validate=validate)


class CostSensitiveCCELoss(SpecLoss):
    """Module form of :func:`torch_impl.multiclass.cost_sensitive_cce`; ``cost_matrix`` (required)
    is a float64 buffer."""

    spec_name = "cost_sensitive_cce"
    per_sample = staticmethod(multiclass._cost_sensitive_cce_per_sample)

    def __init__(self, *, cost_matrix=None, mode="argmax", from_logits=True, reduction="mean", validate=True):
        super().__init__(cost_matrix=cost_matrix, mode=mode, from_logits=from_logits, reduction=reduction,
                         validate=validate)


class CategoricalFocalCELoss(SpecLoss):
    """Module form of :func:`torch_impl.multiclass.categorical_focal_crossentropy` (classes on the LAST axis)."""

    spec_name = "categorical_focal_crossentropy"
    per_sample = staticmethod(multiclass._categorical_focal_crossentropy_per_sample)

    def __init__(self, *, alpha=0.25, gamma=2.0, from_logits=True, label_smoothing=0.0, reduction="mean",
                 validate=True):
        super().__init__(alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                         reduction=reduction, validate=validate)


class CategoricalGeneralizedCELoss(SpecLoss):
    """Module form of :func:`torch_impl.multiclass.categorical_generalized_crossentropy` (classes LAST,
    integer targets of shape ``input.shape[:-1]``)."""

    spec_name = "categorical_generalized_crossentropy"
    per_sample = staticmethod(multiclass._categorical_generalized_crossentropy_per_sample)

    def __init__(self, *, q=0.5, from_logits=True, reduction="mean", validate=True):
        super().__init__(q=q, from_logits=from_logits, reduction=reduction, validate=validate)


# ---------------------------------------------------------------- family: overlap
class SoftDiceLoss(SpecLoss):
    """Module form of :func:`torch_impl.overlap.soft_dice` (one value per sample)."""

    spec_name = "soft_dice"
    per_sample = staticmethod(overlap._soft_dice_per_sample)

    def __init__(self, *, smooth=1.0, from_logits=True, reduction="mean", validate=True):
        super().__init__(smooth=smooth, from_logits=from_logits, reduction=reduction, validate=validate)


class SoftJaccardLoss(SpecLoss):
    """Module form of :func:`torch_impl.overlap.soft_jaccard` (one value per sample)."""

    spec_name = "soft_jaccard"
    per_sample = staticmethod(overlap._soft_jaccard_per_sample)

    def __init__(self, *, smooth=1.0, from_logits=True, reduction="mean", validate=True):
        super().__init__(smooth=smooth, from_logits=from_logits, reduction=reduction, validate=validate)


class TverskyLoss(SpecLoss):
    """Module form of :func:`torch_impl.overlap.tversky` (alpha on FP, beta on FN)."""

    spec_name = "tversky"
    per_sample = staticmethod(overlap._tversky_per_sample)

    def __init__(self, *, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, reduction="mean", validate=True):
        super().__init__(alpha=alpha, beta=beta, smooth=smooth, from_logits=from_logits, reduction=reduction,
                         validate=validate)


class SoftFBetaLoss(SpecLoss):
    """Module form of :func:`torch_impl.overlap.soft_fbeta`; ``average="macro"``/``"micro"`` give
    one value per batch (reduction "mean" only), with ``sync=True`` summed over DDP ranks."""

    spec_name = "soft_fbeta"
    per_sample = staticmethod(overlap._soft_fbeta_per_sample)

    def __init__(self, *, beta=1.0, epsilon=1e-7, average="samples", from_logits=True, sync=False,
                 reduction="mean", validate=True):
        super().__init__(beta=beta, epsilon=epsilon, average=average, from_logits=from_logits, sync=sync,
                         reduction=reduction, validate=validate)



# ---------------------------------------------------------------- family: regression
class MeanSquaredErrorLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.mean_squared_error` (real targets)."""

    spec_name = "mean_squared_error"
    per_sample = staticmethod(regression._mean_squared_error_per_sample)

    def __init__(self, *, reduction="mean", validate=True):
        super().__init__(reduction=reduction, validate=validate)


class AsymmetricExponentialLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.asymmetric_exponential` (real targets)."""

    spec_name = "asymmetric_exponential"
    per_sample = staticmethod(regression._asymmetric_exponential_per_sample)

    def __init__(self, *, reduction="mean", validate=True):
        super().__init__(reduction=reduction, validate=validate)


class MeanAbsoluteErrorLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.mean_absolute_error` (real targets)."""

    spec_name = "mean_absolute_error"
    per_sample = staticmethod(regression._mean_absolute_error_per_sample)

    def __init__(self, *, reduction="mean", validate=True):
        super().__init__(reduction=reduction, validate=validate)


class HuberLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.huber` (real targets)."""

    spec_name = "huber"
    per_sample = staticmethod(regression._huber_per_sample)

    def __init__(self, *, delta=1.0, reduction="mean", validate=True):
        super().__init__(delta=delta, reduction=reduction, validate=validate)


class LogCoshLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.log_cosh` (real targets)."""

    spec_name = "log_cosh"
    per_sample = staticmethod(regression._log_cosh_per_sample)

    def __init__(self, *, reduction="mean", validate=True):
        super().__init__(reduction=reduction, validate=validate)


class MeanAbsolutePercentageErrorLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.mean_absolute_percentage_error` (real targets)."""

    spec_name = "mean_absolute_percentage_error"
    per_sample = staticmethod(regression._mean_absolute_percentage_error_per_sample)

    def __init__(self, *, epsilon=1e-7, reduction="mean", validate=True):
        super().__init__(epsilon=epsilon, reduction=reduction, validate=validate)


class MeanSquaredLogarithmicErrorLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.mean_squared_logarithmic_error` (real targets)."""

    spec_name = "mean_squared_logarithmic_error"
    per_sample = staticmethod(regression._mean_squared_logarithmic_error_per_sample)

    def __init__(self, *, epsilon=1e-7, reduction="mean", validate=True):
        super().__init__(epsilon=epsilon, reduction=reduction, validate=validate)


class PoissonLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.poisson` (counts >= 0 as targets)."""

    spec_name = "poisson"
    per_sample = staticmethod(regression._poisson_per_sample)

    def __init__(self, *, log_input=True, epsilon=1e-7, full=False, reduction="mean", validate=True):
        super().__init__(log_input=log_input, epsilon=epsilon, full=full, reduction=reduction, validate=validate)


# ---------------------------------------------------------------- family: metric_learning
class CircleLoss(SpecLoss):
    """Module form of :func:`torch_impl.metric_learning.circle` (embeddings, integer labels)."""

    spec_name = "circle"
    per_sample = staticmethod(metric_learning._circle_per_sample)

    def __init__(self, *, gamma=80.0, margin=0.4, remove_diagonal=True, normalize=True, reduction="mean",
                 validate=True):
        super().__init__(gamma=gamma, margin=margin, remove_diagonal=remove_diagonal, normalize=normalize,
                         reduction=reduction, validate=validate)


class CosineSimilarityLoss(SpecLoss):
    """Module form of :func:`torch_impl.regression.cosine_similarity` (real targets)."""

    spec_name = "cosine_similarity"
    per_sample = staticmethod(regression._cosine_per_sample)

    def __init__(self, *, axis=-1, epsilon=1e-7, reduction="mean", validate=True):
        super().__init__(axis=axis, epsilon=epsilon, reduction=reduction, validate=validate)


# ---------------------------------------------------------------- family: sequence
class CTCLoss(SpecLoss):
    """Module form of :func:`torch_impl.sequence.ctc` (logits, label rows)."""

    spec_name = "ctc"
    per_sample = staticmethod(sequence._ctc_per_sample)

    def __init__(self, *, blank=0, zero_infinity=False, divide_by_target_length=False, reduction="mean",
                 validate=True):
        super().__init__(blank=blank, zero_infinity=zero_infinity, divide_by_target_length=divide_by_target_length,
                         reduction=reduction, validate=validate)


# ---------------------------------------------------------------- family: margin
class HingeLoss(SpecLoss):
    """Module form of :func:`torch_impl.margin.hinge` (labels -1/1 or 0/1)."""

    spec_name = "hinge"
    per_sample = staticmethod(margin._hinge_per_sample)

    def __init__(self, *, reduction="mean", validate=True):
        super().__init__(reduction=reduction, validate=validate)


class SquaredHingeLoss(SpecLoss):
    """Module form of :func:`torch_impl.margin.squared_hinge` (labels -1/1 or 0/1)."""

    spec_name = "squared_hinge"
    per_sample = staticmethod(margin._squared_hinge_per_sample)

    def __init__(self, *, reduction="mean", validate=True):
        super().__init__(reduction=reduction, validate=validate)


class CategoricalHingeLoss(SpecLoss):
    """Module form of :func:`torch_impl.margin.categorical_hinge` (classes last, one-hot targets)."""

    spec_name = "categorical_hinge"
    per_sample = staticmethod(margin._categorical_hinge_per_sample)

    def __init__(self, *, zero_competitor=False, reduction="mean", validate=True):
        super().__init__(zero_competitor=zero_competitor, reduction=reduction, validate=validate)


# ---------------------------------------------------------------- family: divergence
class KLDivergenceLoss(SpecLoss):
    """Module form of :func:`torch_impl.divergence.kl_divergence` (distributions on the last axis)."""

    spec_name = "kl_divergence"
    per_sample = staticmethod(divergence._kl_divergence_per_sample)

    def __init__(self, *, log_prediction=False, log_target=False, epsilon=0.0, class_reduction="sum",
                 reduction="mean", validate=True):
        super().__init__(log_prediction=log_prediction, log_target=log_target, epsilon=epsilon,
                         class_reduction=class_reduction, reduction=reduction, validate=validate)


# ---------------------------------------------------------------- family: regularizers
class CountPenalty(SpecLoss):
    """Module form of :func:`torch_impl.regularizers.count_penalty`, called ``penalty(x)`` (one
    input). With ``temperature=0`` its gradient is exactly 0: it cannot train anything."""

    spec_name = "count_penalty"
    per_sample = staticmethod(regularizers._count_penalty_per_sample)

    def __init__(self, *, threshold=_spec.core.REQUIRED, factor=1.0, temperature=0.0, reduction="mean",
                 validate=True):
        super().__init__(threshold=threshold, factor=factor, temperature=temperature, reduction=reduction,
                         validate=validate)

    def forward(self, input, sample_weight=None):
        return super().forward(input, None, sample_weight)


class MSECountPenaltyLoss(SpecLoss):
    """Module form of :func:`torch_impl.regularizers.mse_count_penalty` (the count-above-a-threshold problem's first recipe)."""

    spec_name = "mse_count_penalty"
    per_sample = staticmethod(regularizers._mse_count_penalty_per_sample)

    def __init__(self, *, threshold=_spec.core.REQUIRED, factor=1.0, temperature=0.0, reduction="mean",
                 validate=True):
        super().__init__(threshold=threshold, factor=factor, temperature=temperature, reduction=reduction,
                         validate=validate)


class CCECountPenaltyLoss(SpecLoss):
    """Module form of :func:`torch_impl.regularizers.cce_count_penalty` (classes on the LAST axis)."""

    spec_name = "cce_count_penalty"
    per_sample = staticmethod(regularizers._cce_count_penalty_per_sample)

    def __init__(self, *, threshold=_spec.core.REQUIRED, factor=1.0, temperature=0.0, from_logits=True,
                 reduction="mean", validate=True):
        super().__init__(threshold=threshold, factor=factor, temperature=temperature, from_logits=from_logits,
                         reduction=reduction, validate=validate)


class KLSparsity(SpecLoss):
    """Module form of :func:`torch_impl.regularizers.kl_sparsity`, called ``penalty(activations)``;
    one value per batch, with ``sync=True`` from the global batch under DDP."""

    spec_name = "kl_sparsity"
    per_sample = staticmethod(regularizers._kl_sparsity_per_sample)

    def __init__(self, *, target=0.1, weight=1.0, epsilon=1e-7, sync=False, reduction="mean", validate=True):
        super().__init__(target=target, weight=weight, epsilon=epsilon, sync=sync, reduction=reduction,
                         validate=validate)

    def forward(self, input, sample_weight=None):
        return super().forward(input, None, sample_weight)



get_loss, register_impl, loss_classes, get_functional = _spec.api.framework_functions(
    IMPLEMENTATIONS, module=__name__, functional="torch_impl.functional", apply=apply, base=SpecLoss,
    truth_first=False, returns="an ``nn.Module`` called ``loss(input, target, sample_weight=None)``")


def _document() -> None:
    """Every class and functional form of the catalog gets its docstring from its spec entry."""
    from spec.docstrings import builtin_entries, document_all

    from . import functional

    document_all("torch", IMPLEMENTATIONS.classes(), functional, builtin_entries())


_document()

__all__ = ["SpecLoss", "get_loss", "get_functional", "register_impl", "loss_classes",
           *sorted(name for name, obj in list(globals().items())
                   if isinstance(obj, type) and issubclass(obj, SpecLoss) and obj is not SpecLoss)]
