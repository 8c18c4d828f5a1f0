"""PyTorch implementations of the spec'd losses. Never imports TensorFlow.

>>> import torch, torch_impl
>>> loss = torch_impl.get_loss("weighted_bce", pos_weight=3.0)
>>> round(float(loss(torch.zeros(2, 3), torch.ones(2, 3))), 6)  # prediction first
2.079442
"""
from . import functional
from .losses import BinaryFocalLoss, SpecLoss, WeightedBCELoss, get_functional, get_loss, loss_classes, register_impl

__all__ = ["functional", "get_functional", "get_loss", "loss_classes", "register_impl", "SpecLoss", "WeightedBCELoss", "BinaryFocalLoss"]
from .class_weights import balanced_class_weights, pos_weight_from_labels  # noqa: E402,F401  (metrics: import torch_impl.metrics)
