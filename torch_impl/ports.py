"""``from_keras``: the torch twin of a Keras loss (the porting kit's Keras → torch half).

The mapping is the framework-neutral table :mod:`spec.ports`; this module reads a Keras object
without importing TensorFlow (:func:`spec.ports.read_keras`) and builds the twin: the catalog's own
class where the tensors need no change, else a :class:`PortedLoss` around it (torch's layout of
Keras' pooled Dice, a scale, class-index targets).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import spec
from spec import ports

from .losses import get_loss


class PortedLoss(nn.Module):
    """The twin of a framework loss that reads its tensors through a layout (:class:`spec.ports.Ported`):
    called ``loss(input, target, sample_weight=None)`` with the tensors the framework object took
    (Keras: ``(y_pred, y_true)``). ``ported`` says what it computes; ``loss`` is the catalog module."""

    def __init__(self, ported: ports.Ported):
        super().__init__()
        self.ported = ported
        self.loss = get_loss(ported.entry, reduction=_inner_reduction(ported), **ported.params)
        self.index_loss = None if ported.index_targets is None else from_ported(ported.index_targets)

    def forward(self, input, target, sample_weight=None):
        p = self.ported
        if self.index_loss is not None and not torch.is_floating_point(torch.as_tensor(target)):
            return self.index_loss(input, target, sample_weight)
        input, target = torch.as_tensor(input), torch.as_tensor(target)
        if p.layout == ports.POOLED:
            if sample_weight is not None:
                raise ValueError(spec.messages.port_pooled_weights(p.source))
            return self.loss(input.reshape(1, -1), target.reshape(1, -1)).reshape(()) * p.scale
        if p.layout == ports.CLASS_FIRST:
            if p.one_hot:
                target = F.one_hot(target.long(), input.shape[1]).to(input.dtype)  # classes last already
            elif target.ndim == input.ndim:
                target = target.movedim(1, -1)
            input = input.movedim(1, -1)
        elif p.layout == ports.SIGNED_TARGET:
            target = (target + 1) / 2
        elif p.layout == ports.SQUEEZE_TARGET and target.ndim == input.ndim and target.shape[-1] == 1:
            target = target[..., 0]
        p.check_axes(tuple(input.shape))
        if p.mean_over == ports.NONZERO:
            return _mean_over_nonzero(self.loss, input, target, sample_weight) * p.scale
        if p.mean_over == ports.LABEL_WEIGHT:
            return _mean_over_label_weight(self.loss, input, target, sample_weight, p.params) * p.scale
        value = self.loss(input, target, sample_weight)
        factor = p.scale * p.sum_count(tuple(input.shape))
        return value if factor == 1.0 else value * factor

    def extra_repr(self) -> str:
        return f"source={self.ported.source!r}, layout={self.ported.layout!r}, scale={self.ported.scale!r}"


def _inner_reduction(ported: ports.Ported) -> str:
    """The catalog module's reduction: per sample where the adapter divides by its own count."""
    if ported.mean_over:
        return "none"
    return "mean" if ported.layout == ports.POOLED else ported.reduction


def _mean_over_nonzero(loss: nn.Module, input, target, sample_weight) -> torch.Tensor:
    """Σ w ℓ over the samples whose loss is > 0, divided by their count (0 where there is none): Keras'
    mean of a loss that masks its zero values (``spec.ports.NONZERO``); ``loss`` gives one value per sample.
    The count is of the unweighted losses (a zero weight does not remove a sample from it)."""
    if sample_weight is None:
        per_sample = loss(input, target)
        weighted = per_sample
    else:
        with torch.no_grad():
            per_sample = loss(input, target)
        weighted = loss(input, target, sample_weight)
    count = (per_sample.detach() > 0).sum().clamp_min(1).to(weighted.dtype)
    return weighted.sum() / count


def _mean_over_label_weight(loss: nn.Module, input, target, sample_weight, params) -> torch.Tensor:
    """The (weighted) sum over every position of the per-position losses, divided by the class weights of the
    labels not ignored (their count without class weights; 0 where that is 0): torch's 'mean' of class indices
    and Keras' of ignore_class (``spec.ports.LABEL_WEIGHT``); ``loss`` gives the per-sample means."""
    per_sample = loss(input, target, sample_weight)
    labels = torch.as_tensor(target).long()
    positions = labels[0].numel() if labels.ndim else 1
    ignore, class_weight = params.get("ignore_index"), params.get("class_weight")
    valid = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
    if class_weight is None:
        weights = valid.to(per_sample.dtype)
    else:
        table = torch.as_tensor(class_weight, dtype=per_sample.dtype, device=per_sample.device)
        weights = torch.where(valid, table[torch.where(valid, labels, 0)], 0.0)
    total = weights.sum()
    value = per_sample.sum() * positions
    return torch.where(total > 0, value / torch.where(total > 0, total, 1.0), 0.0 * value)


def from_ported(ported: ports.Ported) -> nn.Module:
    """The torch module that computes ``ported``: the catalog's class, or a :class:`PortedLoss`."""
    if ported.plain:
        return get_loss(ported.entry, reduction=ported.reduction, **ported.params)
    return PortedLoss(ported)


def from_keras(loss) -> nn.Module:
    """The torch module that computes what the Keras loss ``loss`` computes, called ``(input, target)``
    with the tensors Keras took as ``(y_pred, y_true)``.

    ``loss``: a ``keras.losses`` object (built-in or a catalog loss of ``tf_impl``, read through
    ``get_config()``), a Keras loss function, its string name (``"mse"``, ``"binary_crossentropy"``;
    a catalog name such as ``"soft_dice"`` where Keras has none) or ``keras.losses.serialize(loss)``.
    TensorFlow is never imported here: a string or a dict is read without it.

    The mapping is :mod:`spec.ports` (``docs/porting.md`` shows it): ``keras.losses.Tversky(alpha=a,
    beta=b)`` becomes ``TverskyLoss(alpha=b, beta=a, smooth=0, from_logits=False)``, the weights where
    Keras really puts them. A class without a twin, or a configuration the twin cannot reproduce
    (``BinaryCrossentropy(label_smoothing=0.1)``), raises ``ValueError`` naming the class and the reason.

    >>> import torch, torch_impl
    >>> torch_impl.from_keras("mse")
    MeanSquaredErrorLoss(reduction='mean', validate=True)
    >>> float(torch_impl.from_keras("mse")(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])))
    2.5
    """
    return from_ported(ports.read_keras(loss))
