"""Registered, serializable ``keras.losses.Loss`` classes, one per spec entry.

Called ``loss(y_true, y_pred, sample_weight=None)`` (Keras order: truth first). ``__call__`` is
overridden so that the library's reduction contract and dtype rule hold (Keras' default casts
the loss to ``floatx`` and would compute float64 inputs in float32).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

import spec as _spec

from . import classification, keras_names, metric_learning, multiclass, overlap, regression, regularizers, sequence  # noqa: F401


from . import classification, divergence, keras_names, margin, multiclass, overlap, regression, regularizers  # noqa: F401
from ._core import LossCall, apply, split_params
from .distributed import scale_for_replicas

IMPLEMENTATIONS = _spec.core.Implementations("Keras", to_plain=lambda c: split_params(c)[0])
PACKAGE = "lossparity"


class SpecLoss(keras.losses.Loss):
    """Base class: validates the configuration against the spec entry ``spec_name``, once; the
    validated configuration is kept as a :class:`tf_impl._core.LossCall` (rebuilt if
    ``reduction`` or ``validate`` is reassigned)."""

    spec_name: ClassVar[str]
    per_sample: ClassVar[Callable[..., tf.Tensor]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        IMPLEMENTATIONS.register(cls.spec_name, cls)
        keras_names.register(cls, cls.spec_name)  # model.compile(loss="soft_dice") and keras.losses.get

    def __init__(self, *, name=None, **config: Any):
        entry = _spec.get(self.spec_name)
        self.params, reduction, self.validate = entry.validate_config(split_params(config)[0])
        super().__init__(name=name or self.spec_name, reduction=reduction)
        self._loss_call = LossCall(entry, type(self).per_sample, self.params, reduction, self.validate)

    def _call_plan(self, reduction: str) -> LossCall:
        plan = self._loss_call
        if plan.reduction != reduction or plan.validate is not self.validate:
            plan = plan.rebuilt(reduction, self.validate)
            if reduction == self.reduction:
                self._loss_call = plan
        return plan

    def __call__(self, y_true, y_pred, sample_weight=None):
        plan = self._call_plan(self.reduction)
        if tf.executing_eagerly():  # name scopes only name graph ops
            value = plan(y_true, y_pred, sample_weight)
        else:
            with tf.name_scope(self.name):
                value = plan(y_true, y_pred, sample_weight)
        # under tf.distribute, Keras divides mean losses by the replica count (see
        # scale_for_replicas); without it replica gradients would sum to R × the true one
        return scale_for_replicas(value) if self.reduction == "mean" else value

    def call(self, y_true, y_pred):
        """Unweighted per-sample losses (what Keras' ``Loss.call`` returns)."""
        return self._call_plan("none")(y_true, y_pred, None)

    def get_config(self) -> dict:
        params = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in self.params.items()}
        return {"name": self.name, "reduction": self.reduction, "validate": self.validate, **params}


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightedBCE(SpecLoss):
    """Keras form of :func:`tf_impl.classification.weighted_bce` (see its docstring)."""

    spec_name = "weighted_bce"
    per_sample = staticmethod(classification._weighted_bce_per_sample)

    def __init__(self, *, pos_weight=1.0, from_logits=True, reduction="mean", validate=True, name=None):
        super().__init__(pos_weight=pos_weight, from_logits=from_logits, reduction=reduction,
                         validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryFocal(SpecLoss):
    """Keras form of :func:`tf_impl.classification.binary_focal` (see its docstring)."""

    spec_name = "binary_focal"
    per_sample = staticmethod(classification._binary_focal_per_sample)

    def __init__(self, *, gamma=2.0, alpha=None, from_logits=True, reduction="mean", validate=True,
                 name=None):
        super().__init__(gamma=gamma, alpha=alpha, from_logits=from_logits, reduction=reduction,
                         validate=validate, name=name)


# ---------------------------------------------------------------- family: multiclass
@keras.saving.register_keras_serializable(package=PACKAGE)
class CategoricalCE(SpecLoss):
    """Keras form of :func:`tf_impl.multiclass.categorical_crossentropy` (classes on the last axis)."""

    spec_name = "categorical_crossentropy"
    per_sample = staticmethod(multiclass._categorical_crossentropy_per_sample)

    def __init__(self, *, from_logits=True, label_smoothing=0.0, class_weight=None, reduction="mean", validate=True,
                 name=None):
        super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, class_weight=class_weight,
                         reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SparseCategoricalCE(SpecLoss):
    """Keras form of :func:`tf_impl.multiclass.sparse_categorical_crossentropy` (integer ``y_true``
    of shape ``y_pred.shape[:-1]``)."""

    spec_name = "sparse_categorical_crossentropy"
    per_sample = staticmethod(multiclass._sparse_categorical_crossentropy_per_sample)

    def __init__(self, *, from_logits=True, label_smoothing=0.0, class_weight=None, ignore_index=None,
                 reduction="mean", validate=True, name=None):
        super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, class_weight=class_weight,
                         ignore_index=ignore_index, reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CostSensitiveCCE(SpecLoss):
    """Keras form of :func:`tf_impl.multiclass.cost_sensitive_cce`; ``cost_matrix`` is required."""

    spec_name = "cost_sensitive_cce"
    per_sample = staticmethod(multiclass._cost_sensitive_cce_per_sample)

    def __init__(self, *, cost_matrix=None, mode="argmax", from_logits=True, reduction="mean", validate=True,
                 name=None):
        super().__init__(cost_matrix=cost_matrix, mode=mode, from_logits=from_logits, reduction=reduction,
                         validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CategoricalFocalCE(SpecLoss):
    """Keras form of :func:`tf_impl.multiclass.categorical_focal_crossentropy` (classes on the last axis)."""

    spec_name = "categorical_focal_crossentropy"
    per_sample = staticmethod(multiclass._categorical_focal_crossentropy_per_sample)

    def __init__(self, *, alpha=0.25, gamma=2.0, from_logits=True, label_smoothing=0.0, reduction="mean",
                 validate=True, name=None):
        super().__init__(alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                         reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CategoricalGeneralizedCE(SpecLoss):
    """Keras form of :func:`tf_impl.multiclass.categorical_generalized_crossentropy` (integer ``y_true``
    of shape ``y_pred.shape[:-1]``)."""

    spec_name = "categorical_generalized_crossentropy"
    per_sample = staticmethod(multiclass._categorical_generalized_crossentropy_per_sample)

    def __init__(self, *, q=0.5, from_logits=True, reduction="mean", validate=True, name=None):
        super().__init__(q=q, from_logits=from_logits, reduction=reduction, validate=validate, name=name)


# ---------------------------------------------------------------- family: overlap
@keras.saving.register_keras_serializable(package=PACKAGE)
class SoftDice(SpecLoss):
    """Keras form of :func:`tf_impl.overlap.soft_dice` (one value per sample)."""

    spec_name = "soft_dice"
    per_sample = staticmethod(overlap._soft_dice_per_sample)

    def __init__(self, *, smooth=1.0, from_logits=True, reduction="mean", validate=True, name=None):
        super().__init__(smooth=smooth, from_logits=from_logits, reduction=reduction, validate=validate,
                         name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SoftJaccard(SpecLoss):
    """Keras form of :func:`tf_impl.overlap.soft_jaccard` (one value per sample)."""

    spec_name = "soft_jaccard"
    per_sample = staticmethod(overlap._soft_jaccard_per_sample)

    def __init__(self, *, smooth=1.0, from_logits=True, reduction="mean", validate=True, name=None):
        super().__init__(smooth=smooth, from_logits=from_logits, reduction=reduction, validate=validate,
                         name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Tversky(SpecLoss):
    """Keras form of :func:`tf_impl.overlap.tversky` (alpha on FP, beta on FN, as in the paper)."""

    spec_name = "tversky"
    per_sample = staticmethod(overlap._tversky_per_sample)

    def __init__(self, *, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, reduction="mean", validate=True,
                 name=None):
        super().__init__(alpha=alpha, beta=beta, smooth=smooth, from_logits=from_logits, reduction=reduction,
                         validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SoftFBeta(SpecLoss):
    """Keras form of :func:`tf_impl.overlap.soft_fbeta`; ``average="macro"``/``"micro"`` give one
    value per batch (reduction "mean" only), with ``sync=True`` summed over replicas."""

    spec_name = "soft_fbeta"
    per_sample = staticmethod(overlap._soft_fbeta_per_sample)

    def __init__(self, *, beta=1.0, epsilon=1e-7, average="samples", from_logits=True, sync=False,
                 reduction="mean", validate=True, name=None):
        super().__init__(beta=beta, epsilon=epsilon, average=average, from_logits=from_logits, sync=sync,
                         reduction=reduction, validate=validate, name=name)



# ---------------------------------------------------------------- family: regression
@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanSquaredError(SpecLoss):
    """Keras form of :func:`tf_impl.regression.mean_squared_error` (real targets)."""

    spec_name = "mean_squared_error"
    per_sample = staticmethod(regression._mean_squared_error_per_sample)

    def __init__(self, *, reduction="mean", validate=True, name=None):
        super().__init__(reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AsymmetricExponential(SpecLoss):
    """Keras form of :func:`tf_impl.regression.asymmetric_exponential` (real targets)."""

    spec_name = "asymmetric_exponential"
    per_sample = staticmethod(regression._asymmetric_exponential_per_sample)

    def __init__(self, *, reduction="mean", validate=True, name=None):
        super().__init__(reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanAbsoluteError(SpecLoss):
    """Keras form of :func:`tf_impl.regression.mean_absolute_error` (real targets)."""

    spec_name = "mean_absolute_error"
    per_sample = staticmethod(regression._mean_absolute_error_per_sample)

    def __init__(self, *, reduction="mean", validate=True, name=None):
        super().__init__(reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Huber(SpecLoss):
    """Keras form of :func:`tf_impl.regression.huber` (real targets)."""

    spec_name = "huber"
    per_sample = staticmethod(regression._huber_per_sample)

    def __init__(self, *, delta=1.0, reduction="mean", validate=True, name=None):
        super().__init__(delta=delta, reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogCosh(SpecLoss):
    """Keras form of :func:`tf_impl.regression.log_cosh` (real targets)."""

    spec_name = "log_cosh"
    per_sample = staticmethod(regression._log_cosh_per_sample)

    def __init__(self, *, reduction="mean", validate=True, name=None):
        super().__init__(reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanAbsolutePercentageError(SpecLoss):
    """Keras form of :func:`tf_impl.regression.mean_absolute_percentage_error` (real targets)."""

    spec_name = "mean_absolute_percentage_error"
    per_sample = staticmethod(regression._mean_absolute_percentage_error_per_sample)

    def __init__(self, *, epsilon=1e-7, reduction="mean", validate=True, name=None):
        super().__init__(epsilon=epsilon, reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanSquaredLogarithmicError(SpecLoss):
    """Keras form of :func:`tf_impl.regression.mean_squared_logarithmic_error` (real targets)."""

    spec_name = "mean_squared_logarithmic_error"
    per_sample = staticmethod(regression._mean_squared_logarithmic_error_per_sample)

    def __init__(self, *, epsilon=1e-7, reduction="mean", validate=True, name=None):
        super().__init__(epsilon=epsilon, reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Poisson(SpecLoss):
    """Keras form of :func:`tf_impl.regression.poisson` (counts >= 0 as targets)."""

    spec_name = "poisson"
    per_sample = staticmethod(regression._poisson_per_sample)

    def __init__(self, *, log_input=True, epsilon=1e-7, full=False, reduction="mean", validate=True, name=None):
        super().__init__(log_input=log_input, epsilon=epsilon, full=full, reduction=reduction, validate=validate,
                         name=name)


# ---------------------------------------------------------------- family: metric_learning
@keras.saving.register_keras_serializable(package=PACKAGE)
class Circle(SpecLoss):
    """Keras form of :func:`tf_impl.metric_learning.circle` (integer labels, embeddings)."""

    spec_name = "circle"
    per_sample = staticmethod(metric_learning._circle_per_sample)

    def __init__(self, *, gamma=80.0, margin=0.4, remove_diagonal=True, normalize=True, reduction="mean",
                 validate=True, name=None):
        super().__init__(gamma=gamma, margin=margin, remove_diagonal=remove_diagonal, normalize=normalize,
                         reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CosineSimilarity(SpecLoss):
    """Keras form of :func:`tf_impl.regression.cosine_similarity` (real targets)."""

    spec_name = "cosine_similarity"
    per_sample = staticmethod(regression._cosine_per_sample)

    def __init__(self, *, axis=-1, epsilon=1e-7, reduction="mean", validate=True, name=None):
        super().__init__(axis=axis, epsilon=epsilon, reduction=reduction, validate=validate, name=name)


# ---------------------------------------------------------------- family: sequence
@keras.saving.register_keras_serializable(package=PACKAGE)
class CTC(SpecLoss):
    """Keras form of :func:`tf_impl.sequence.ctc` (label rows, logits)."""

    spec_name = "ctc"
    per_sample = staticmethod(sequence._ctc_per_sample)

    def __init__(self, *, blank=0, zero_infinity=False, divide_by_target_length=False, reduction="mean",
                 validate=True, name=None):
        super().__init__(blank=blank, zero_infinity=zero_infinity, divide_by_target_length=divide_by_target_length,
                         reduction=reduction, validate=validate, name=name)


# ---------------------------------------------------------------- family: margin
@keras.saving.register_keras_serializable(package=PACKAGE)
class Hinge(SpecLoss):
    """Keras form of :func:`tf_impl.margin.hinge` (labels -1/1 or 0/1)."""

    spec_name = "hinge"
    per_sample = staticmethod(margin._hinge_per_sample)

    def __init__(self, *, reduction="mean", validate=True, name=None):
        super().__init__(reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SquaredHinge(SpecLoss):
    """Keras form of :func:`tf_impl.margin.squared_hinge` (labels -1/1 or 0/1)."""

    spec_name = "squared_hinge"
    per_sample = staticmethod(margin._squared_hinge_per_sample)

    def __init__(self, *, reduction="mean", validate=True, name=None):
        super().__init__(reduction=reduction, validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CategoricalHinge(SpecLoss):
    """Keras form of :func:`tf_impl.margin.categorical_hinge` (classes last, one-hot targets)."""

    spec_name = "categorical_hinge"
    per_sample = staticmethod(margin._categorical_hinge_per_sample)

    def __init__(self, *, zero_competitor=False, reduction="mean", validate=True, name=None):
        super().__init__(zero_competitor=zero_competitor, reduction=reduction, validate=validate, name=name)


# ---------------------------------------------------------------- family: divergence
@keras.saving.register_keras_serializable(package=PACKAGE)
class KLDivergence(SpecLoss):
    """Keras form of :func:`tf_impl.divergence.kl_divergence` (distributions on the last axis)."""

    spec_name = "kl_divergence"
    per_sample = staticmethod(divergence._kl_divergence_per_sample)

    def __init__(self, *, log_prediction=False, log_target=False, epsilon=0.0, class_reduction="sum",
                 reduction="mean", validate=True, name=None):
        super().__init__(log_prediction=log_prediction, log_target=log_target, epsilon=epsilon,
                         class_reduction=class_reduction, reduction=reduction, validate=validate, name=name)


# ---------------------------------------------------------------- family: regularizers
@keras.saving.register_keras_serializable(package=PACKAGE)
class MSECountPenalty(SpecLoss):
    """Keras form of :func:`tf_impl.regularizers.mse_count_penalty` (the count-above-a-threshold problem's first recipe)."""

    spec_name = "mse_count_penalty"
    per_sample = staticmethod(regularizers._mse_count_penalty_per_sample)

    def __init__(self, *, threshold=_spec.core.REQUIRED, factor=1.0, temperature=0.0, reduction="mean",
                 validate=True, name=None):
        super().__init__(threshold=threshold, factor=factor, temperature=temperature, reduction=reduction,
                         validate=validate, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CCECountPenalty(SpecLoss):
    """Keras form of :func:`tf_impl.regularizers.cce_count_penalty` (classes on the last axis)."""

    spec_name = "cce_count_penalty"
    per_sample = staticmethod(regularizers._cce_count_penalty_per_sample)

    def __init__(self, *, threshold=_spec.core.REQUIRED, factor=1.0, temperature=0.0, from_logits=True,
                 reduction="mean", validate=True, name=None):
        super().__init__(threshold=threshold, factor=factor, temperature=temperature, from_logits=from_logits,
                         reduction=reduction, validate=validate, name=name)


# the single-input penalties are Keras regularizers (``activity_regularizer=``), not losses
CountPenalty = keras.saving.register_keras_serializable(package=PACKAGE)(regularizers.CountPenalty)
KLSparsity = keras.saving.register_keras_serializable(package=PACKAGE)(regularizers.KLSparsity)
IMPLEMENTATIONS.register("count_penalty", CountPenalty)
IMPLEMENTATIONS.register("kl_sparsity", KLSparsity)
keras_names.register(CountPenalty, "count_penalty", "regularizers")  # activity_regularizer="count_penalty"
keras_names.register(KLSparsity, "kl_sparsity", "regularizers")


get_loss, register_impl, loss_classes, get_functional = _spec.api.framework_functions(
    IMPLEMENTATIONS, module=__name__, functional="tf_impl.functional", apply=apply, base=SpecLoss,
    truth_first=True, returns="a registered ``keras.losses.Loss`` called ``loss(y_true, y_pred, sample_weight=None)``")


def _document() -> None:
    """Every class, regularizer and functional form of the catalog gets its docstring from its spec entry."""
    from spec.docstrings import builtin_entries, document_all

    from . import functional

    document_all("keras", IMPLEMENTATIONS.classes(), functional, builtin_entries(),
                 kind_of=lambda cls: "regularizer" if issubclass(cls, regularizers.SpecRegularizer) else "class")


_document()

__all__ = ["SpecLoss", "get_loss", "get_functional", "register_impl", "loss_classes",
           *sorted(name for name, obj in list(globals().items())
                   if isinstance(obj, type) and obj is not SpecLoss
                   and (issubclass(obj, SpecLoss) or obj in IMPLEMENTATIONS.classes().values()))]
