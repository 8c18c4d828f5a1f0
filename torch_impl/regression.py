"""Regression losses: mean squared error, asymmetric exponential. (torch twins of :mod:`spec.regression`)."""
from __future__ import annotations

__all__: list[str] = []
