"""Functional losses (torch), one name per spec entry: ``fn(input, target, *, ...)``."""
from .classification import binary_focal, weighted_bce

__all__ = ["binary_focal", "weighted_bce"]
