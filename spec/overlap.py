"""Overlap losses for segmentation and imbalanced multilabel: soft Dice, soft Jaccard (IoU), soft F-beta, Tversky."""
from __future__ import annotations
