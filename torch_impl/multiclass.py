"""Multiclass classification losses (softmax heads): categorical / sparse categorical / cost-sensitive cross-entropy. (torch twins of :mod:`spec.multiclass`)."""
from __future__ import annotations

__all__: list[str] = []
