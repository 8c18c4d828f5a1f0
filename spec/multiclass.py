"""Multiclass classification losses (softmax heads): categorical / sparse categorical / cost-sensitive cross-entropy."""
from __future__ import annotations
