"""Overlap losses for segmentation and imbalanced multilabel: soft Dice, soft Jaccard (IoU), soft F-beta, Tversky. (torch twins of :mod:`spec.overlap`)."""
from __future__ import annotations

__all__: list[str] = []
