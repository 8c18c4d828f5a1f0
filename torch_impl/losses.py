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

from . import classification, multiclass, overlap, regression, regularizers  # noqa: F401
from ._core import apply

IMPLEMENTATIONS = _spec.core.Implementations("torch")


class SpecLoss(nn.Module):
    """Base class: validates the configuration against the spec entry ``spec_name``."""

    spec_name: ClassVar[str]
    per_sample: ClassVar[Callable[..., torch.Tensor]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        IMPLEMENTATIONS.register(cls.spec_name, cls)

    def __init__(self, **config: Any):
        super().__init__()
        entry = _spec.get(self.spec_name)
        params, self.reduction, self.validate = entry.validate_config(config)
        self._scalar_params: dict[str, Any] = {}
        for key, value in params.items():
            if isinstance(value, np.ndarray):
                self.register_buffer(key, torch.as_tensor(value, dtype=torch.float64))
            else:
                self._scalar_params[key] = value
        self._param_names = tuple(params)

    @property
    def params(self) -> dict[str, Any]:
        return {k: self._scalar_params[k] if k in self._scalar_params else getattr(self, k)
                for k in self._param_names}

    def forward(self, input, target=None, sample_weight=None):
        return apply(self.spec_name, type(self).per_sample, input, target, sample_weight, self.params,
                     self.reduction, self.validate, checked=True)

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


# ---------------------------------------------------------------- family: overlap


# ---------------------------------------------------------------- family: regression


# ---------------------------------------------------------------- family: regularizers


def get_loss(name: str, **config: Any) -> SpecLoss:
    """``get_loss("weighted_bce", pos_weight=3.0, reduction="sum")`` → an ``nn.Module``."""
    return IMPLEMENTATIONS.create(name, **config)


def register_impl(name: str, cls: type) -> type:
    """Register a non-``SpecLoss`` implementation (e.g. a single-input regularizer) for ``get_loss``."""
    return IMPLEMENTATIONS.register(name, cls)


def loss_classes() -> dict[str, type]:
    return IMPLEMENTATIONS.classes()
