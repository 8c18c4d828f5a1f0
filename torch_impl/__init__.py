"""PyTorch implementations of the spec'd losses. Never imports TensorFlow.

>>> import torch, torch_impl
>>> loss = torch_impl.get_loss("weighted_bce", pos_weight=3.0)
>>> round(float(loss(torch.zeros(2, 3), torch.ones(2, 3))), 6)  # prediction first
2.079442

Every loss class (``WeightedBCELoss``, ``SoftDiceLoss``, ...) is exported here; metrics live in
:mod:`torch_impl.metrics` (imported on demand: torchmetrics is slow to import), layers in
:mod:`torch_impl.layers`, Lightning modules in :mod:`torch_impl.lightning`.

Porting from Keras: :func:`from_keras` turns a Keras loss (object, string name or config) into
the torch module that computes the same (the table is :mod:`spec.ports`).

Writing your own loss (see ``examples/user_loss``): subclass :class:`SpecLoss` (or call
:func:`register_impl`) and build the per-sample loss with :func:`mean_nonbatch` (the mean over
every non-batch axis); :func:`reduce_weighted` applies ``sample_weight`` and the reduction the
way every loss here does (``"mean"``: Σ wᵢ ℓᵢ / N).

Data checks (``validate=True``) read values of CPU tensors only: a call on a GPU tensor checks
parameters and shapes and never waits for the device; :func:`sync_value_checks` checks values
there too, for one device→host read per call (see :mod:`spec.validation`).
"""
from . import functional, losses
from .class_weights import balanced_class_weights, pos_weight_from_labels
from ._core import mean_nonbatch, sync_value_checks
from ._core import reduce as reduce_weighted
from .losses import *  # noqa: F401,F403  (every loss class, get_loss, get_functional, register_impl)
from .ports import PortedLoss, from_keras

__all__ = ["functional", "balanced_class_weights", "from_keras", "mean_nonbatch", "pos_weight_from_labels",
           "PortedLoss", "reduce_weighted", "sync_value_checks", *losses.__all__]
