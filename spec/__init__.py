"""The framework-neutral spec: the single source of truth of every loss (NumPy + mpmath only).

>>> import spec
>>> spec.names()[:3]
['asymmetric_exponential', 'binary_focal', 'categorical_crossentropy']
>>> entry = spec.get("weighted_bce")
>>> round(float(entry.reference_reduced([[0.0]], [[1.0]])), 12)  # -log σ(0) = log 2
0.69314718056
"""
from __future__ import annotations

from . import classification, divergence, margin, metric_learning, multiclass, overlap, regression, regularizers, sequence  # noqa: F401  (register entries)
from . import api, messages, numerics, ports, validation
from .api import define, entry_point_failures, implementations, load_entry_points
from .core import (
    DEFAULT_TOLERANCES,
    DTYPES,
    REDUCTIONS,
    Case,
    Identity,
    Implementations,
    InvalidCase,
    LossSpec,
    Param,
    PeerNote,
    PerformanceNote,
    Tolerance,
    Tolerances,
    all_specs,
    get,
    names,
    per_sample_cotangent,
    reduce,
    register,
)

__all__ = [
    "DEFAULT_TOLERANCES", "DTYPES", "REDUCTIONS", "Case", "Identity", "Implementations", "InvalidCase", "LossSpec",
    "Param", "PeerNote", "PerformanceNote", "Tolerance", "Tolerances", "all_specs", "get", "names",
    "per_sample_cotangent", "reduce", "register", "messages", "numerics", "ports", "validation",
    "api", "define", "entry_point_failures", "implementations", "load_entry_points",
]
# installed packages' entries (group "lossparity.specs") load when the registry is first asked
