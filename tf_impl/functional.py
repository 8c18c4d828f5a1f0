"""Functional losses (TensorFlow), one name per spec entry: ``fn(y_true, y_pred, *, ...)``."""
from .classification import binary_focal, weighted_bce

__all__ = ["binary_focal", "weighted_bce"]
