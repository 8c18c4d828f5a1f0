"""Regression losses: mean squared error, asymmetric exponential."""
from __future__ import annotations
