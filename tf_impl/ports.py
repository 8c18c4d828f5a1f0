"""``from_torch``: the Keras twin of a torch loss module (the porting kit's torch → Keras half).

The mapping is the framework-neutral table :mod:`spec.ports`; this module reads a torch module
without importing torch (:func:`spec.ports.read_torch`: duck-typed on its class and attributes) and
builds the twin: the catalog's own class where the tensors need no change, else a
:class:`PortedLoss` around it (torch's class axis 1, ±1 targets, SmoothL1Loss's scale ...).
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

import spec
from spec import ports

from .losses import PACKAGE, get_loss


@keras.saving.register_keras_serializable(package=PACKAGE)
class PortedLoss(keras.losses.Loss):
    """The twin of a framework loss that reads its tensors through a layout (:class:`spec.ports.Ported`):
    called ``loss(y_true, y_pred, sample_weight=None)`` with the tensors the framework object took
    (torch: ``(target, input)``). ``ported`` says what it computes; serializable (``get_config``)."""

    def __init__(self, ported: ports.Ported | dict[str, Any], name: str | None = None, **kwargs):
        ported = ported if isinstance(ported, ports.Ported) else ports.Ported.from_config(ported)
        super().__init__(name=name or f"ported_{ported.entry}", reduction=ported.reduction, **kwargs)
        self.ported = ported
        self.loss = get_loss(ported.entry, reduction=_inner_reduction(ported), **ported.params)
        self.index_loss = None if ported.index_targets is None else from_ported(ported.index_targets)

    def __call__(self, y_true, y_pred, sample_weight=None):
        p = self.ported
        y_true, y_pred = tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred)
        if self.index_loss is not None and not y_true.dtype.is_floating:
            return self.index_loss(y_true, y_pred, sample_weight)
        if p.layout == ports.POOLED:
            if sample_weight is not None:
                raise ValueError(spec.messages.port_pooled_weights(p.source))
            value = self.loss(tf.reshape(y_true, (1, -1)), tf.reshape(y_pred, (1, -1)))
            return tf.reshape(value, ()) * tf.cast(p.scale, value.dtype)
        if p.layout == ports.CLASS_FIRST:
            if p.one_hot:
                y_true = tf.one_hot(tf.cast(y_true, tf.int64), tf.shape(y_pred)[1], dtype=y_pred.dtype)
            elif y_true.shape.rank == y_pred.shape.rank:
                y_true = tf.experimental.numpy.moveaxis(y_true, 1, -1)
            y_pred = tf.experimental.numpy.moveaxis(y_pred, 1, -1)
        elif p.layout == ports.SIGNED_TARGET:
            y_true = (y_true + 1) / 2
        elif (p.layout == ports.SQUEEZE_TARGET and y_true.shape.rank == y_pred.shape.rank
              and y_true.shape[-1] == 1):
            y_true = y_true[..., 0]
        p.check_axes(tuple(y_pred.shape))
        if p.mean_over in (ports.NONZERO, ports.LABEL_WEIGHT):
            value = (_mean_over_nonzero(self.loss, y_true, y_pred, sample_weight) if p.mean_over == ports.NONZERO
                     else _mean_over_label_weight(self.loss, y_true, y_pred, sample_weight, p.params))
            return value if p.scale == 1.0 else value * tf.cast(p.scale, value.dtype)
        value = self.loss(y_true, y_pred, sample_weight)
        factor = p.scale * p.sum_count(tuple(y_pred.shape))
        return value if factor == 1.0 else value * tf.cast(factor, value.dtype)

    def call(self, y_true, y_pred):
        raise NotImplementedError("PortedLoss computes in __call__")

    def get_config(self) -> dict:
        return {"name": self.name, "ported": self.ported.to_config()}


def _inner_reduction(ported: ports.Ported) -> str:
    """The catalog loss's reduction: per sample where the adapter divides by its own count."""
    if ported.mean_over:
        return "none"
    return "mean" if ported.layout == ports.POOLED else ported.reduction


def _mean_over_nonzero(loss: keras.losses.Loss, y_true, y_pred, sample_weight):
    """Σ w ℓ over the samples whose loss is > 0, divided by their count (0 where there is none): Keras'
    mean of a loss that masks its zero values (``spec.ports.NONZERO``); ``loss`` gives one value per sample.
    The count is of the unweighted losses (a zero weight does not remove a sample from it)."""
    per_sample = loss(y_true, y_pred)
    weighted = per_sample if sample_weight is None else loss(y_true, y_pred, sample_weight)
    per_sample = tf.stop_gradient(per_sample)
    count = tf.maximum(tf.reduce_sum(tf.cast(per_sample > 0, weighted.dtype)), tf.cast(1, weighted.dtype))
    return tf.reduce_sum(weighted) / count


def _mean_over_label_weight(loss: keras.losses.Loss, y_true, y_pred, sample_weight, params):
    """The (weighted) sum over every position of the per-position losses, divided by the class weights of the
    labels not ignored (their count without class weights; 0 where that is 0): torch's 'mean' of class indices
    and Keras' of ignore_class (``spec.ports.LABEL_WEIGHT``); ``loss`` gives the per-sample means."""
    per_sample = loss(y_true, y_pred, sample_weight)
    labels = tf.cast(y_true, tf.int64)
    positions = tf.cast(tf.reduce_prod(tf.shape(labels)[1:]), per_sample.dtype)
    ignore, class_weight = params.get("ignore_index"), params.get("class_weight")
    valid = tf.not_equal(labels, ignore) if ignore is not None else tf.ones_like(labels, dtype=tf.bool)
    if class_weight is None:
        weights = tf.cast(valid, per_sample.dtype)
    else:
        table = tf.constant(class_weight, dtype=per_sample.dtype)
        weights = tf.where(valid, tf.gather(table, tf.where(valid, labels, tf.zeros_like(labels))), 0.0)
    total = tf.reduce_sum(weights)
    return tf.math.divide_no_nan(tf.reduce_sum(per_sample) * positions, total)


def from_ported(ported: ports.Ported) -> keras.losses.Loss:
    """The Keras loss that computes ``ported``: the catalog's class, or a :class:`PortedLoss`."""
    if ported.plain:
        return get_loss(ported.entry, reduction=ported.reduction, **ported.params)
    return PortedLoss(ported)


def from_torch(loss) -> keras.losses.Loss:
    """The Keras loss that computes what the torch loss module ``loss`` computes, called
    ``(y_true, y_pred)`` with the tensors torch took as ``(target, input)``.

    ``loss``: a ``torch.nn`` loss module (read through its attributes: ``reduction``, ``weight``,
    ``pos_weight``, ``ignore_index``, ``label_smoothing``, ``delta``, ``beta`` ...) or a catalog loss of
    ``torch_impl``. torch is never imported here: the module is read by its class and attributes.

    The mapping is :mod:`spec.ports` (``docs/porting.md`` shows it): ``torch.nn.CrossEntropyLoss()``
    reads its class axis 1 and takes probabilities or class indices, ``SmoothL1Loss(beta)`` is
    ``huber(delta=beta) / beta``. A class without a twin, or a configuration the twin cannot reproduce
    (``BCEWithLogitsLoss(weight=w)``, an elementwise weight), raises ``ValueError`` naming the class and the
    reason.
    """
    return from_ported(ports.read_torch(loss))
