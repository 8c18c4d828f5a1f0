"""TensorFlow/Keras implementations of the spec'd losses. Never imports torch.

>>> import tf_impl
>>> loss = tf_impl.get_loss("weighted_bce", pos_weight=3.0)
>>> round(float(loss([[1.0, 1.0]], [[0.0, 0.0]])), 6)  # truth first (Keras order)
2.079442
"""
from . import functional
from .losses import BinaryFocal, SpecLoss, WeightedBCE, get_functional, get_loss, loss_classes, register_impl

__all__ = ["functional", "get_functional", "get_loss", "loss_classes", "register_impl", "SpecLoss", "WeightedBCE", "BinaryFocal"]
from .class_weights import balanced_class_weights, pos_weight_from_labels  # noqa: E402,F401  (metrics: import tf_impl.metrics)
