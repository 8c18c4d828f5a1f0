"""Seeded input generators shared by the spec entries, and the invalid inputs every loss rejects.

Every generator is deterministic (``numpy.random.default_rng(seed)``) so golden vectors are stable.
"""
from __future__ import annotations

import numpy as np

from .core import Case, InvalidCase

#: logits where float32 ``exp`` overflows (88/89), where naive focal gradients break (40), huge
EXTREME_LOGITS = (-1e4, -89.0, -88.0, -40.0, -20.0, 0.0, 20.0, 40.0, 88.0, 89.0, 1e4)
#: probabilities at and next to the ends of [0, 1]
EXTREME_PROBS = (0.0, 1e-12, 1e-7, 0.25, 0.5, 1.0 - 1e-7, 1.0)


def rng_for(name: str, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(abs(hash_name(name)) + salt)


def hash_name(name: str) -> int:
    """A stable (process-independent) hash for seeding."""
    h = 2166136261
    for ch in name.encode():
        h = (h ^ ch) * 16777619 % (1 << 32)
    return h


def binary_cases(name: str, params: dict, tag: str, *, from_logits: bool,
                 classes: int = 3) -> list[Case]:
    """Typical, extreme and edge cases of a binary/multilabel elementwise loss.

    ``classes`` is the size of the last axis (vector parameters broadcast over it).
    """
    rng = rng_for(name + tag)

    def pred(shape):
        if from_logits:
            return rng.normal(0.0, 3.0, size=shape)
        return rng.uniform(0.02, 0.98, size=shape)

    def hard(shape, p=0.3):
        return (rng.uniform(size=shape) < p).astype(np.float64)

    c = classes
    cases = [
        Case(f"{tag}-typical-hard", "typical", params, pred((6, c)), hard((6, c)),
             rng.uniform(0.2, 2.0, size=6)),
        Case(f"{tag}-typical-soft-3d", "typical", params, pred((2, 4, c)), rng.uniform(size=(2, 4, c))),
    ]
    values = EXTREME_LOGITS if from_logits else EXTREME_PROBS
    grid_x = np.repeat(np.asarray(values, np.float64)[:, None], c, axis=1)
    grid_y = np.tile(np.linspace(0.0, 1.0, c), (len(values), 1))
    cases.append(Case(f"{tag}-extreme-grid", "extreme", params, grid_x, grid_y,
                      note="every extreme prediction against targets 0 .. 1"))
    cases.append(Case(f"{tag}-extreme-weights", "extreme", params, pred((3, c)), hard((3, c), 0.5),
                      np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"))
    cases += [
        Case(f"{tag}-edge-batch1", "edge", params, pred((1, c)), hard((1, c), 0.5)),
        Case(f"{tag}-edge-all-zero", "edge", params, pred((4, c)), np.zeros((4, c))),
        Case(f"{tag}-edge-all-one", "edge", params, pred((4, c)), np.ones((4, c))),
    ]
    if not from_logits:
        tiny = np.tile(np.array([1e-9, 1e-12, 3e-8, 1e-20]), (2, (c + 3) // 4))[:, :c]
        cases.append(Case(f"{tag}-edge-tiny-probabilities", "edge", params, tiny, np.zeros_like(tiny),
                          note="-log(1 - p) = p for tiny p: 1 - p rounds p away (float32 below 6e-8), "
                               "log1p(-p) keeps it; found by the deep hypothesis run (focal, gamma 0.3)"))
    if not isinstance(params.get("pos_weight"), np.ndarray):
        cases.append(Case(f"{tag}-edge-1d", "edge", params, pred((5,)), hard((5,), 0.5),
                          note="1-D input: each element is a sample"))
    return cases


def softmax_head_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh inputs for a softmax head's invalid cases: logits of shape (2, 3), one-hot targets for
    them, and a sigmoid head's output (rows that do not sum to 1, the wrong probabilities)."""
    return (np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]]), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
            np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6]]))


def common_invalid_cases(example: Case, *, bounded_target: bool = True,
                         target_domain: tuple[float, float] | None = None,
                         free_target_length: bool = False) -> list[InvalidCase]:
    """Invalid calls every two-input loss must reject, built around one valid case. The out-of-range
    target is 2 (above [0, 1] and class labels), or 1 below a ``target_domain`` unbounded above (``hi = inf``).
    ``free_target_length``: the target's last axis may have any length (label sequences), so the
    shape mismatch is one sample fewer in the target."""
    p, t, params = example.prediction, example.target, dict(example.params)
    n = p.shape[0]
    bad_t = np.array(t, copy=True)
    nan_t = np.array(t, copy=True)
    if bad_t.dtype.kind in "iu":
        # integer class labels (target shape prediction.shape[:-1]): the first label out of
        # range is C = prediction.shape[-1]; a NaN needs a float array of the same labels
        bad_t.reshape(-1)[0] = p.shape[-1]
        nan_t = nan_t.astype(np.float64)
    elif target_domain is not None and target_domain[1] == np.inf:
        bad_t.reshape(-1)[0] = target_domain[0] - 1.0
    else:
        bad_t.reshape(-1)[0] = 2.0
    nan_p = np.array(p, copy=True)
    nan_p.reshape(-1)[0] = np.nan
    nan_t.reshape(-1)[-1] = np.nan
    return [
        InvalidCase("reduction-unknown", dict(params, reduction="avg")),
        InvalidCase("validate-not-bool", dict(params, validate="yes")),
        InvalidCase("param-unknown", dict(params, weights=1.0)),
        InvalidCase("shape-mismatch", params, p, t[..., :-1] if p.ndim > 1 and not free_target_length else t[:-1]),
        InvalidCase("no-batch-axis", params, np.float64(0.5) * np.ones(()), np.ones(())),
        *([InvalidCase("target-out-of-range", params, p, bad_t)] if bounded_target else []),
        InvalidCase("prediction-nan", params, nan_p, t),
        InvalidCase("target-nan", params, p, nan_t),
        InvalidCase("prediction-inf", params, np.where(np.arange(p.size).reshape(p.shape) == 0, np.inf, p), t),
        InvalidCase("sample-weight-shape", params, p, t, np.ones(n + 1)),
        InvalidCase("sample-weight-2d", params, p, t, np.ones((n, 1))),
        InvalidCase("sample-weight-negative", params, p, t, np.linspace(-1.0, 1.0, n)),
        InvalidCase("sample-weight-nan", params, p, t, np.full(n, np.nan)),
    ]
