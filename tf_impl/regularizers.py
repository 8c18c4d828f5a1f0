"""Single-input penalties and count-penalised losses, TensorFlow twins of :mod:`spec.regularizers`:
``count_penalty``, ``mse_count_penalty``, ``cce_count_penalty``, ``kl_sparsity``, and the
registered Keras regularizers :class:`CountPenalty` and :class:`KLSparsity` (usable as
``activity_regularizer=``).

Argument order is Keras': ``(y_true, y_pred)``; the single-input penalties take one tensor.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

import spec as _spec
from spec.core import REQUIRED

from ._core import LossCall, apply, mean_nonbatch, reduce, split_params, traced_when_eager, with_total
from .distributed import scale_for_replicas, sync_sum
from .multiclass import _log_q

__all__ = ["count_penalty", "mse_count_penalty", "cce_count_penalty", "kl_sparsity"]


def _sum_nonbatch(elementwise: tf.Tensor) -> tf.Tensor:
    """Per-sample sum over every non-batch axis (a 1-D input is one element per sample)."""
    rank = elementwise.shape.rank
    return elementwise if rank == 1 else tf.reduce_sum(elementwise, axis=list(range(1, rank)))


def _count(x: tf.Tensor, threshold: float, temperature: float) -> tf.Tensor:
    """Elementwise ``1[x > t]`` (temperature 0) or ``σ((x - t)/τ)``.

    The hard count is an exact comparison; ``+ 0·sign(x)`` gives it an exact-zero gradient
    (``sign' = 0``) instead of ``None`` and lets a NaN input propagate — the same construction as
    in ``torch_impl``.
    """
    if temperature == 0.0:
        return tf.cast(x > threshold, x.dtype) + 0.0 * tf.sign(x)
    return tf.math.sigmoid((x - threshold) / temperature)


# --------------------------------------------------------------------------- count_penalty
@traced_when_eager
def _count_penalty_per_sample(x, y, *, threshold, factor, temperature):
    return factor * _sum_nonbatch(_count(x, threshold, temperature))


def count_penalty(x, *, threshold=REQUIRED, factor=1.0, temperature=0.0, sample_weight=None,
                  reduction="mean", validate=True):
    r"""factor × mean over samples of the number of elements above ``threshold`` (single input).

    .. math::
        P = \frac{\mathrm{factor}}{N}\sum_i \sum_j c(x_{ij}),\quad
        c(x) = \mathbb{1}[x > t]\ (\tau = 0),\quad c(x) = \sigma\big((x - t)/\tau\big)\ (\tau > 0)

    With ``temperature=0`` (the count-above-a-threshold problem's count) the gradient is exactly 0 everywhere: the penalty
    changes the reported loss but never the weights. ``temperature > 0`` is the sigmoid relaxation
    (``tf.math.sigmoid``, stable for every finite input). Same contract as the torch twin.
    """
    return apply("count_penalty", _count_penalty_per_sample, None, x, sample_weight,
                 {"threshold": threshold, "factor": factor, "temperature": temperature}, reduction, validate)


# --------------------------------------------------------------------------- mse_count_penalty
def _hard_count_total(x: tf.Tensor, threshold: float, scale: float) -> tf.Tensor:
    """``scale · Σ 1[x > t]`` in x's dtype: the hard count of a reduced loss whose other term carries
    the gradient and propagates NaN (the count's gradient is exactly 0 either way)."""
    return tf.reduce_sum(tf.cast(x > threshold, x.dtype)) * scale


def _mse_count_penalty_total(x, y, mean, *, threshold, factor, temperature):
    if temperature == 0.0:
        n = x.shape[0]
        sq = tf.square(y - x)
        mse = tf.reduce_mean(sq) if mean else tf.reduce_sum(sq) / (x.shape.num_elements() // n)
        return mse + _hard_count_total(x, threshold, factor / n if mean else factor)
    return reduce(_mse_count_penalty_per_sample(x, y, threshold=threshold, factor=factor, temperature=temperature),
                  None, "mean" if mean else "sum")


@with_total(_mse_count_penalty_total)
def _mse_count_penalty_per_sample(x, y, *, threshold, factor, temperature):
    return mean_nonbatch(tf.square(y - x)) + factor * _sum_nonbatch(_count(x, threshold, temperature))


def mse_count_penalty(y_true, y_pred, *, threshold=REQUIRED, factor=1.0, temperature=0.0, sample_weight=None,
                      reduction="mean", validate=True):
    r"""Mean squared error plus factor × the number of predictions above ``threshold``, per sample
    (``CountBasedRegularizationLoss`` of the count-above-a-threshold problem).

    .. math::
        \ell_i = \frac{1}{M}\sum_j (y_{ij} - \hat y_{ij})^2 + \mathrm{factor}\sum_j c(\hat y_{ij})

    ``c`` as in :func:`count_penalty`: the hard count adds to the value only (gradient exactly 0);
    ``temperature > 0`` relaxes it with a stable sigmoid.
    """
    return apply("mse_count_penalty", _mse_count_penalty_per_sample, y_true, y_pred, sample_weight,
                 {"threshold": threshold, "factor": factor, "temperature": temperature}, reduction, validate)


# --------------------------------------------------------------------------- cce_count_penalty
def _cce_count_penalty_total(x, y, mean, *, threshold, factor, temperature, from_logits):
    if temperature == 0.0 and from_logits and x.shape.rank is not None and x.shape.rank >= 2:
        # Σ_i ℓ_i = (Σ_rows CE + factor · Σ counts) / (R/N), over N when mean: one log-softmax for
        # the cross-entropy and the counted probabilities
        log_q = _log_q(x, from_logits)
        rows = x.shape.num_elements() // x.shape[-1]
        per = rows if mean else rows // x.shape[0]
        ce = tf.reduce_sum(y * log_q) * (-1.0 / per)
        return ce + _hard_count_total(tf.stop_gradient(tf.exp(log_q)), threshold, factor / per)
    return reduce(_cce_count_penalty_per_sample(x, y, threshold=threshold, factor=factor, temperature=temperature,
                                                from_logits=from_logits), None, "mean" if mean else "sum")


@with_total(_cce_count_penalty_total)
def _cce_count_penalty_per_sample(x, y, *, threshold, factor, temperature, from_logits):
    log_q = _log_q(x, from_logits)
    probs = tf.exp(log_q) if from_logits else x
    rows = (-tf.reduce_sum(y * log_q, axis=-1)
            + factor * tf.reduce_sum(_count(probs, threshold, temperature), axis=-1))
    return mean_nonbatch(rows)


def cce_count_penalty(y_true, y_pred, *, threshold=REQUIRED, factor=1.0, temperature=0.0, from_logits=True,
                      sample_weight=None, reduction="mean", validate=True):
    r"""Softmax cross-entropy plus factor × the number of classes whose probability is above
    ``threshold`` (``sparse_prediction_loss`` of the count-above-a-threshold problem); classes on the last axis.

    .. math::
        \ell_i = \frac{1}{R}\sum_r\Big[-\sum_c y_{rc}\log p_{rc}
                 + \mathrm{factor}\sum_c c(p_{rc})\Big],\quad p_r = \mathrm{softmax}(x_r)

    Stability: ``tf.nn.log_softmax`` for the cross-entropy and ``exp`` of it for the counted
    probabilities (the count is over probabilities, never logits); ``from_logits=False`` takes
    softmax rows (summing to 1) with ``log(max(p, 2**-126))``.
    """
    return apply("cce_count_penalty", _cce_count_penalty_per_sample, y_true, y_pred, sample_weight,
                 {"threshold": threshold, "factor": factor, "temperature": temperature,
                  "from_logits": from_logits}, reduction, validate)


# --------------------------------------------------------------------------- kl_sparsity
def _kl_sparsity_per_sample(x, y, *, target, weight, epsilon, sync, sample_weight=None):
    if x.shape.rank == 2:
        a = x
    elif x.shape.rank and x.shape[0] is not None:
        a = tf.reshape(x, [x.shape[0], -1])  # a static batch: no shape ops
    else:
        a = tf.reshape(x, [tf.shape(x)[0], -1])
    rho, rho_c = target, 1.0 - target
    # the constants as Python numbers in the compute dtype (the torch twin's _log_constants)
    log_rho, log_rho_c = _log_constants(target, a.dtype)
    if sample_weight is None and not sync and a.shape[0]:
        # count = N >= 1: per unit the batch means of a and of 1 - a (exact near a = 1: saturated
        # units keep their digits); no empty-batch branch, no products with ones (as the torch twin)
        n = float(a.shape[0])
        q = tf.clip_by_value(tf.reduce_sum(a, axis=0) / n, epsilon, 1.0 - epsilon)
        q_c = tf.clip_by_value(tf.reduce_sum(1.0 - a, axis=0) / n, epsilon, 1.0 - epsilon)
    else:
        m = tf.shape(a)[1]
        if sample_weight is None:
            stats = tf.concat([tf.reduce_sum(a, axis=0), tf.reduce_sum(1.0 - a, axis=0),
                               tf.cast(tf.shape(a)[:1], a.dtype)], axis=0)
        else:
            w = sample_weight[:, None]
            stats = tf.concat([tf.reduce_sum(w * a, axis=0), tf.reduce_sum(w * (1.0 - a), axis=0),
                               tf.reshape(tf.reduce_sum(sample_weight), [1])], axis=0)
        if sync:
            stats = sync_sum(stats)  # global-batch sums and count (with gradients) before dividing
        count = stats[-1]
        # the clamp's bounds take the identity branch (tf.clip_by_value passes the gradient at
        # equality; torch_impl._core.clip does the same); with no weighted sample the means are set to ρ and 1 - ρ
        has = count > 0
        safe = tf.where(has, count, tf.ones_like(count))
        q = tf.where(has, tf.clip_by_value(stats[:m] / safe, epsilon, 1.0 - epsilon), tf.constant(rho, a.dtype))
        q_c = tf.where(has, tf.clip_by_value(stats[m:2 * m] / safe, epsilon, 1.0 - epsilon),
                       tf.constant(rho_c, a.dtype))
    kl = rho * (log_rho - tf.math.log(q)) + rho_c * (log_rho_c - tf.math.log(q_c))
    return tf.reduce_sum(kl) * weight


_LOG_CONSTANTS: dict = {}


def _log_constants(target: float, dtype) -> tuple[float, float]:
    """``(log ρ, log(1 - ρ))`` as the compute dtype rounds them, cached per (ρ, dtype)."""
    key = (target, dtype)
    hit = _LOG_CONSTANTS.get(key)
    if hit is None:
        np_dtype = np.float64 if dtype == tf.float64 else np.float32
        rho = np.array([target, 1.0 - target], np_dtype)
        hit = _LOG_CONSTANTS[key] = tuple(float(v) for v in np.log(rho))
    return hit


def kl_sparsity(x, *, target=0.1, weight=1.0, epsilon=1e-7, sync=False, sample_weight=None,
                reduction="mean", validate=True):
    r"""Sparse-autoencoder penalty (the KL-sparsity problem, docs/problems.md): weight × Σ_j KL(ρ ‖ q_j), ``q_j`` the batch mean of
    unit ``j`` (every non-batch position is a unit), clamped to ``[ε, 1 - ε]``. One value per batch.

    .. math::
        P = w\sum_j \Big[\rho\log\frac{\rho}{q_j} + (1-\rho)\log\frac{1-\rho}{1-q_j}\Big],\quad
        q_j = \mathrm{clip}\Big(\frac{\sum_i s_i a_{ij}}{\sum_i s_i}, \epsilon, 1 - \epsilon\Big)

    Stability: the clamp keeps dead (q = 0) and saturated (q = 1) units finite with gradient 0
    (the KL-sparsity problem's code gives inf/NaN); ``1 - q`` is the batch mean of ``1 - a`` (exact for saturated
    units); activations outside [0, 1] are rejected. ``sync=True`` sums the per-unit sums and the
    sample count over ``tf.distribute`` replicas before dividing.
    """
    return apply("kl_sparsity", _kl_sparsity_per_sample, None, x, sample_weight,
                 {"target": target, "weight": weight, "epsilon": epsilon, "sync": sync}, reduction, validate)


# --------------------------------------------------------------------------- Keras regularizers
class SpecRegularizer(keras.regularizers.Regularizer):
    """A single-input spec entry as a Keras regularizer: ``reg(x)`` is the entry's value.

    As ``activity_regularizer=`` Keras divides a regularizer's value by the batch size (its
    convention for sum-type regularizers such as L1), so the model's loss gains ``value / N``;
    to add the value itself, scale ``factor``/``weight`` by the batch size or call
    ``self.add_loss(reg(h))`` in a layer. Under ``tf.distribute`` the value is divided by the
    number of replicas (as our mean-reduced losses are), so that the summed replica gradients
    equal the one-device ones. The subclasses are registered (serializable, package
    ``lossparity``) and exported by :mod:`tf_impl.losses`.

    ``sync=True`` under a multi-replica ``tf.distribute`` strategy cannot be an
    ``activity_regularizer``: Keras keeps a layer's added losses in one list shared by the replica
    threads, and the cross-replica sum inside the call lets one replica collect both replicas'
    penalties (measured: 1.5x the penalty with 2 replicas). That use raises ``ValueError``. Put the
    penalty on a model output instead: ``keras.Model(x, {"out": y, "code": h})`` compiled with
    ``loss={"out": ..., "code": KLSparsity(sync=True)}`` (called as ``reg(y_true, y_pred)`` the
    regularizer is a loss of ``y_pred`` and ignores ``y_true``: fit with any array of the batch's
    length for ``"code"``); there, as in the regularizer form, the value is divided by the replica
    count (Keras sums the replicas' gradients).
    """

    spec_name: ClassVar[str]
    per_sample: ClassVar[Callable[..., tf.Tensor]]

    def __init__(self, **config: Any):
        entry = _spec.get(self.spec_name)
        self.params, self.reduction, self.validate = entry.validate_config(split_params(config)[0])
        self._loss_call = LossCall(entry, type(self).per_sample, self.params, self.reduction, self.validate)

    def _call_plan(self) -> LossCall:
        plan = self._loss_call
        if plan.reduction != self.reduction or plan.validate is not self.validate:
            plan = self._loss_call = plan.rebuilt(self.reduction, self.validate)
        return plan

    def __call__(self, x, y_pred=None):
        if y_pred is not None:  # a compiled loss of a model output: (y_true, y_pred), y_true ignored
            return scale_for_replicas(self._call_plan()(None, y_pred, None))
        if self.params.get("sync") and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise ValueError(
                f"{self.spec_name}: sync=True is not supported as an activity_regularizer under a "
                f"tf.distribute strategy with several replicas (Keras shares a layer's added losses "
                f"between replica threads, and the cross-replica sum would count a replica's penalty "
                f"twice); compile the penalty as the loss of a model output instead: "
                f"loss={{'code': {type(self).__name__}(sync=True, ...)}}")
        return scale_for_replicas(self._call_plan()(None, x, None))

    def get_config(self) -> dict:
        return {**self.params, "reduction": self.reduction, "validate": self.validate}


class CountPenalty(SpecRegularizer):
    """Keras regularizer form of :func:`count_penalty`, for ``activity_regularizer=``. With
    ``temperature=0`` its gradient is exactly 0: it cannot train anything."""

    spec_name = "count_penalty"
    per_sample = staticmethod(_count_penalty_per_sample)

    def __init__(self, *, threshold=REQUIRED, factor=1.0, temperature=0.0, reduction="mean", validate=True):
        super().__init__(threshold=threshold, factor=factor, temperature=temperature, reduction=reduction,
                         validate=validate)


class KLSparsity(SpecRegularizer):
    """Keras regularizer form of :func:`kl_sparsity` (``activity_regularizer=`` on a layer whose
    outputs lie in [0, 1]); ``sync=True`` takes the batch means over every replica."""

    spec_name = "kl_sparsity"
    per_sample = staticmethod(_kl_sparsity_per_sample)

    def __init__(self, *, target=0.1, weight=1.0, epsilon=1e-7, sync=False, reduction="mean", validate=True):
        super().__init__(target=target, weight=weight, epsilon=epsilon, sync=sync, reduction=reduction,
                         validate=validate)
