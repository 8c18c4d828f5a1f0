"""Weighted-average ensembles tuned by SciPy's ``differential_evolution``, and how to score them.

Seed 003 (the ensemble question): several Keras models, the weights of their averaged predicted
probabilities found by ``differential_evolution`` maximizing a score **on the test fold**, and that
same maximized score reported as the ensemble's performance. The asker suspected the number is
biased toward the test data; it is: the weights were chosen to fit those very labels, so the
maximum is an optimistically selected value (the larger the search, the larger the optimism).

The unbiased way (:func:`nested_vs_biased`): split the held-out predictions into ``K`` outer
folds; for each outer fold, tune the weights on the other ``K − 1`` folds (the inner folds) and
score them on the outer fold, which played no part in choosing them. The seed's estimate on the
same outer fold (weights tuned *and* scored on it) is computed alongside, so
``bias = mean(biased) − mean(nested)`` compares like with like.

Everything here is framework-neutral NumPy/SciPy on predicted probabilities ``(n, M)`` (one column
per model) and 0/1 labels ``(n,)``; the ensemble predicts 1 when the weighted average of the
probabilities exceeds ``threshold`` (0.5), and the score is F1 of the positive (minority) class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

THRESHOLD = 0.5


def f1_columns(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 of class 1 for every column of the 0/1 decisions ``predicted`` ``(n, S)`` against ``y``
    ``(n,)``: ``2 tp / (2 tp + fp + fn)``, 0 when there is no positive at all (scikit-learn's
    ``zero_division=0``)."""
    y = np.asarray(y, bool).reshape(-1, 1)
    predicted = np.asarray(predicted, bool)
    tp = np.sum(predicted & y, axis=0)
    fp = np.sum(predicted & ~y, axis=0)
    fn = np.sum(~predicted & y, axis=0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def normalize_weights(weights: np.ndarray) -> np.ndarray:
    """Weights ``(M,)`` or ``(M, S)`` → divided by their sum along axis 0 (all-zero → equal)."""
    w = np.asarray(weights, np.float64)
    total = w.sum(axis=0, keepdims=True)
    equal = np.full_like(w, 1.0 / w.shape[0])
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), equal)


def ensemble_f1(probs: np.ndarray, y: np.ndarray, weights: np.ndarray, threshold: float = THRESHOLD):
    """F1 of ``weighted average of probs > threshold``; ``weights`` ``(M,)`` → a float, ``(M, S)`` →
    ``(S,)`` (one score per weight vector, for the vectorized search)."""
    w = normalize_weights(weights)
    scores = f1_columns(y, (np.asarray(probs, np.float64) @ w.reshape(w.shape[0], -1)) > threshold)
    return float(scores[0]) if np.ndim(weights) == 1 else scores


def optimize_weights(probs: np.ndarray, y: np.ndarray, *, seed: int = 0, maxiter: int = 100, popsize: int = 15,
                     tol: float = 1e-4, threshold: float = THRESHOLD) -> np.ndarray:
    """The seed's ``optimized_weights``: ``differential_evolution`` over weights in ``[0, 1]^M``
    maximizing the ensemble's F1 on ``(probs, y)``; returns the weights normalized to sum 1.

    F1 is piecewise constant in the weights, so the gradient polish (L-BFGS-B) is off; the
    population is evaluated in one vectorized call per generation."""
    from scipy.optimize import differential_evolution

    probs = np.asarray(probs, np.float64)
    m = probs.shape[1]

    def neg_f1(w):  # w: (M, S) with vectorized=True
        return -ensemble_f1(probs, y, w, threshold)

    with one_blas_thread():
        result = differential_evolution(neg_f1, [(0.0, 1.0)] * m, maxiter=maxiter, popsize=popsize, tol=tol,
                                        seed=np.random.default_rng(seed), polish=False, vectorized=True,
                                        updating="deferred")
    return normalize_weights(result.x)


def one_blas_thread():
    """The products here are tiny (n × M by M × population): a multi-threaded BLAS on busy cores
    made each generation 25x slower than one thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of ``n_folds`` stratified folds (scikit-learn ``StratifiedKFold``, shuffled)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y).reshape(-1).astype(int)
    return [test for _, test in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)]


@dataclass
class EnsembleEstimate:
    """Per outer fold: the seed's biased F1, the nested F1, equal weights' F1, and the weights."""

    biased: np.ndarray  # (K,) weights tuned on the fold, scored on the same fold
    nested: np.ndarray  # (K,) weights tuned on the other folds, scored on the fold
    equal: np.ndarray  # (K,) equal weights (nothing tuned), scored on the fold
    nested_weights: np.ndarray  # (K, M)
    biased_weights: np.ndarray  # (K, M)
    extra: dict = field(default_factory=dict)

    @property
    def bias(self) -> float:
        return float(self.biased.mean() - self.nested.mean())

    def metrics(self, prefix: str = "ensemble", names: list[str] | None = None) -> dict[str, float]:
        out = {f"{prefix}/biased_f1": float(self.biased.mean()), f"{prefix}/nested_f1": float(self.nested.mean()),
               f"{prefix}/equal_f1": float(self.equal.mean()), f"{prefix}/bias": self.bias,
               f"{prefix}/folds": float(len(self.biased))}
        for k in range(len(self.biased)):
            out[f"{prefix}/fold{k}_biased_f1"] = float(self.biased[k])
            out[f"{prefix}/fold{k}_nested_f1"] = float(self.nested[k])
        for j, name in enumerate(names or range(self.nested_weights.shape[1])):
            out[f"{prefix}/weight_{name}"] = float(self.nested_weights[:, j].mean())
        return out


def nested_vs_biased(probs: np.ndarray, y: np.ndarray, *, n_folds: int = 5, seed: int = 0, maxiter: int = 100,
                     popsize: int = 15, threshold: float = THRESHOLD) -> EnsembleEstimate:
    """Score ``differential_evolution``-tuned ensemble weights two ways on the same outer folds.

    * biased (the seed's): for outer fold ``k``, tune on fold ``k`` and report the F1 reached there;
    * nested: tune on the other folds (the inner folds), report the F1 on fold ``k``.

    ``probs``: ``(n, M)`` predicted probabilities of class 1 (one column per model) on data none of
    the models was trained on; ``y``: ``(n,)`` 0/1 labels."""
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y).reshape(-1).astype(int)
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError(f"nested_vs_biased: probs must be (n, M) with n = len(y) = {len(y)}; got {probs.shape}")
    folds = stratified_folds(y, n_folds, seed)
    equal_w = np.full(probs.shape[1], 1.0 / probs.shape[1])
    biased, nested, equal, bw, nw = [], [], [], [], []
    for k, test in enumerate(folds):
        inner = np.setdiff1d(np.arange(len(y)), test)
        w_in = optimize_weights(probs[inner], y[inner], seed=seed * 1000 + 2 * k, maxiter=maxiter, popsize=popsize,
                                threshold=threshold)
        w_on = optimize_weights(probs[test], y[test], seed=seed * 1000 + 2 * k + 1, maxiter=maxiter, popsize=popsize,
                                threshold=threshold)
        nested.append(ensemble_f1(probs[test], y[test], w_in, threshold))
        biased.append(ensemble_f1(probs[test], y[test], w_on, threshold))
        equal.append(ensemble_f1(probs[test], y[test], equal_w, threshold))
        nw.append(w_in)
        bw.append(w_on)
    return EnsembleEstimate(np.array(biased), np.array(nested), np.array(equal), np.array(nw), np.array(bw))


__all__ = ["f1_columns", "normalize_weights", "ensemble_f1", "optimize_weights", "stratified_folds",
           "EnsembleEstimate", "nested_vs_biased", "one_blas_thread", "THRESHOLD"]
