"""Benchmark inputs: a loss's layout (binary, classes, single), its shapes and seeded inputs in its domains."""
from __future__ import annotations

import math

import numpy as np

from .settings import LARGE_ELEMENTS, PERCALL_SEQUENCE_SHAPE, PERCALL_SHAPE, SHAPES, Settings, TINY_SHAPES, note


#: the largest batch of a loss whose samples are coupled pairwise (``couples_samples``): N² pair terms
PAIRWISE_MAX_BATCH = 4096


def layout(entry) -> str:
    """``binary`` | ``classes`` | ``single`` | ``sequence``, from the entry's contract and first case."""
    if entry.single_input:
        return "single"
    if entry.family == "sequence":
        return "sequence"
    if entry.target_shape is not None:
        return "classes"
    if entry.family in ("multiclass", "divergence"):  # distributions over the last axis
        return "classes"
    targets = [np.asarray(c.target, np.float64) for c in entry.cases()]
    one_hot = all(t.ndim >= 2 and t.shape[-1] > 1 and np.allclose(t.sum(-1), 1.0) and np.all((t == 0) | (t == 1))
                  for t in targets)
    return "classes" if one_hot else "binary"


def class_count(params) -> int | None:
    """The class count fixed by a square matrix parameter (``cost_matrix``), if any."""
    for value in params.values():
        a = np.asarray(value) if isinstance(value, (np.ndarray, list)) else None
        if a is not None and a.ndim == 2 and a.shape[0] == a.shape[1]:
            return int(a.shape[0])
    return None


def shapes_for(entry, params, settings: Settings) -> dict[str, tuple]:
    kind = layout(entry)
    table = (TINY_SHAPES if settings.tiny else SHAPES)[kind]
    out = {k: table[k] for k in settings.shapes if k in table}
    c = class_count(params) if kind == "classes" else None
    if c is not None:
        out = {k: (s[:-1] + (c,) if k != "large" else (math.ceil(LARGE_ELEMENTS / c), c)) for k, s in out.items()}
    if entry.couples_samples:  # pairwise losses: (N, D) embeddings, N × N pairs
        for k in list(out):
            if len(out[k]) != 2 or out[k][0] > PAIRWISE_MAX_BATCH:
                note(f"{entry.name}: skip shape {k} {out[k]}: pairwise over (N, D) with N <= {PAIRWISE_MAX_BATCH}")
                del out[k]
    for key, value in params.items():  # a per-class vector (pos_weight) fixes the last axis
        a = np.asarray(value) if isinstance(value, np.ndarray) else None
        if a is not None and a.ndim == 1 and a.size > 1:
            for k in list(out):
                if out[k][-1] != a.size:
                    note(f"{entry.name}: skip shape {k} {out[k]}: {key} has {a.size} entries")
                    del out[k]
    return out


def make_inputs(entry, params, shape, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 prediction and target (int64 labels for sparse entries) in the entry's domains."""
    kind = layout(entry)
    domain = entry.prediction_domain(params)
    if domain is None:
        x = rng.normal(0.0, 2.0, shape)
    elif kind == "classes":  # probabilities: softmax rows
        z = rng.normal(0.0, 1.0, shape)
        x = np.exp(z - z.max(-1, keepdims=True))
        x /= x.sum(-1, keepdims=True)
    else:
        lo, hi = domain
        hi = min(hi, lo + 4.0)  # unbounded above (rates >= 0): values up to 4
        x = rng.uniform(lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo), shape)
    if kind == "single":
        return x, None
    if entry.make_target is not None:
        return x, entry.make_target(rng, shape)
    if entry.target_shape is not None:
        return x, rng.integers(0, shape[-1], entry.target_shape(shape)).astype(np.int64)
    if kind == "classes":
        return x, np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    if entry.target_domain is None:
        return x, rng.normal(0.0, 1.0, shape)
    lo, hi = entry.target_domain
    if hi == np.inf:  # counts >= 0
        return x, rng.poisson(2.0, shape).astype(np.float64) + lo
    return x, np.where(rng.random(shape) < 0.3, hi, lo).astype(np.float64)


def percall_shape(entry, params) -> tuple:
    """:data:`PERCALL_SHAPE`, with the class count a parameter fixes (``cost_matrix``) or the length
    of a per-class vector parameter as the last axis."""
    if layout(entry) == "sequence":
        return PERCALL_SEQUENCE_SHAPE
    shape = PERCALL_SHAPE
    c = class_count(params) if layout(entry) == "classes" else None
    if c is not None:
        shape = shape[:-1] + (c,)
    for value in params.values():
        a = np.asarray(value) if isinstance(value, np.ndarray) else None
        if a is not None and a.ndim == 1 and a.size > 1:
            shape = shape[:-1] + (a.size,)
    return shape
