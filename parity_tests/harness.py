"""Run one spec case through torch, Keras or the reference and compare. Shared by the tests, the
demo table and the golden-vector generator. Framework imports are lazy: importing this module
loads neither torch nor TensorFlow.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

import spec
from spec.core import Case, LossSpec, Tolerance

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NP_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclasses.dataclass(frozen=True)
class Result:
    value: np.ndarray
    grad: np.ndarray


def standard_cotangent(n: int) -> np.ndarray:
    """The cotangent used for ``reduction="none"`` gradients (deterministic, not all ones)."""
    return np.linspace(0.5, 1.5, n)


def rounded(a, dtype: str):
    """Inputs as the framework sees them: rounded to ``dtype``, back in float64 (integer
    labels are kept exactly)."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return a.astype(np.float64)
    return a.astype(NP_DTYPES[dtype]).astype(np.float64)


def is_integer(a) -> bool:
    return a is not None and np.asarray(a).dtype.kind in "iu"


def supports(entry: LossSpec, case: Case, reduction: str) -> bool:
    return reduction in entry.reductions(entry.validate_params(case.params))


def reference(entry: LossSpec, case: Case, dtype: str, reduction: str, params: Mapping | None = None) -> Result:
    params = dict(case.params if params is None else params)
    pred, tgt, sw = (rounded(case.prediction, dtype), rounded(case.target, dtype),
                     rounded(case.sample_weight, dtype))
    cot = standard_cotangent(pred.shape[0])
    value = entry.reference_reduced(pred, tgt, sample_weight=sw, reduction=reduction, **params)
    grad = entry.reference_grad(pred, tgt, sample_weight=sw, reduction=reduction, cotangent=cot, **params)
    return Result(np.asarray(value, np.float64), np.asarray(grad, np.float64))


def run_torch(entry: LossSpec, case: Case, dtype: str, reduction: str, *, device: str = "cpu",
              params: Mapping | None = None, functional: bool = False, compiled: bool = False) -> Result:
    """``compiled``: the loss module under ``torch.compile(fullgraph=True, dynamic=True)`` (inductor:
    the fused path; a graph break raises)."""
    import torch

    import torch_impl

    params = dict(case.params if params is None else params)
    tdtype = getattr(torch, dtype)
    x = torch.tensor(case.prediction, dtype=tdtype, device=device, requires_grad=True)
    t = None
    if case.target is not None:
        t = torch.tensor(case.target, dtype=torch.int64 if is_integer(case.target) else tdtype, device=device)
    sw = None if case.sample_weight is None else torch.tensor(case.sample_weight, dtype=tdtype, device=device)
    if entry.single_input:
        fn = torch_impl.get_functional(entry.name) if functional else \
            torch_impl.get_loss(entry.name, **params).to(device)
        if compiled and not functional:
            fn = torch.compile(fn, fullgraph=True, dynamic=True)
        out = fn(x, **params) if functional else fn(x)
    elif functional:
        fn = torch_impl.get_functional(entry.name)
        out = fn(x, t, sample_weight=sw, reduction=reduction, **params)
    else:
        loss = torch_impl.get_loss(entry.name, reduction=reduction, **params).to(device)
        if compiled:
            loss = torch.compile(loss, fullgraph=True, dynamic=True)
        out = loss(x, t, sample_weight=sw)
    if reduction == "none":
        out.backward(torch.tensor(standard_cotangent(x.shape[0]), dtype=out.dtype, device=device))
    else:
        out.backward()
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    return Result(out.detach().cpu().double().numpy(), grad.detach().cpu().double().numpy())


def run_keras(entry: LossSpec, case: Case, dtype: str, reduction: str, *, params: Mapping | None = None,
              functional: bool = False, compiled: str | None = None) -> Result:
    """``compiled``: None (eager), "graph" (tf.function) or "xla" (jit_compile=True)."""
    import tf_impl  # first: it loads TensorFlow without the start-up log lines

    import tensorflow as tf

    params = dict(case.params if params is None else params)
    x = tf.constant(case.prediction, dtype=dtype)
    t = None
    if case.target is not None:
        t = tf.constant(case.target, dtype="int64" if is_integer(case.target) else dtype)
    sw = None if case.sample_weight is None else tf.constant(case.sample_weight, dtype=dtype)
    if entry.single_input:
        single = tf_impl.get_functional(entry.name) if functional else tf_impl.get_loss(entry.name, **params)

        def call(y_true, y_pred, w):
            return single(y_pred, **params) if functional else single(y_pred)
    elif functional:
        fn = tf_impl.get_functional(entry.name)

        def call(y_true, y_pred, w):
            return fn(y_true, y_pred, sample_weight=w, reduction=reduction, **params)
    else:
        call = tf_impl.get_loss(entry.name, reduction=reduction, **params)
    cot = tf.constant(standard_cotangent(case.prediction.shape[0]), dtype=dtype)

    def value_and_grad(y_true, y_pred, w):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            out = call(y_true, y_pred, w)
        g = tape.gradient(out, y_pred, output_gradients=tf.cast(cot, out.dtype) if reduction == "none" else None)
        return out, (tf.zeros_like(y_pred) if g is None else g)

    if compiled is not None:
        value_and_grad = tf.function(value_and_grad, jit_compile=(compiled == "xla"))
    out, g = value_and_grad(t, x, sw)
    return Result(np.asarray(out.numpy(), np.float64), np.asarray(g.numpy(), np.float64))


def compare(actual: Result, expected: Result, entry: LossSpec, dtype: str, *, what: str,
            reference: Result | None = None) -> list[str]:
    """Human-readable failures (empty when within the entry's tolerances): the worst element's
    index, both values, the reference value there (when given) and the relative error."""
    out = []
    for field, tol in (("value", entry.tolerances.value[dtype]), ("grad", entry.tolerances.grad[dtype])):
        c = tol.compare(getattr(actual, field), getattr(expected, field))
        if not c.ok:
            ref = ""
            if reference is not None and c.worst_index is not None:
                ref_arr = np.asarray(getattr(reference, field))
                ref = f"; reference there {ref_arr[c.worst_index] if ref_arr.ndim else ref_arr.item()!r}"
            label = "value" if field == "value" else "gradient w.r.t. the prediction"
            out.append(f"{what} {label} ({dtype}): max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g}; "
                       f"{c.detail}{ref} (tolerance rtol {tol.rtol:g}, atol {tol.atol:g}·scale)")
    return out


def errors(actual: Result, expected: Result) -> tuple[float, float, float, float]:
    """For the demo table, per value and gradient: ``max|Δ| / scale`` (scale = max(1, max|expected|))
    and the max relative error over the significant elements (``|expected| >= 1e-6 · scale``)."""
    res = []
    for field in ("value", "grad"):
        a = np.asarray(getattr(actual, field), np.float64)
        e = np.asarray(getattr(expected, field), np.float64)
        finite = np.isfinite(e) & np.isfinite(a)
        both_same = (a == e) | ~finite & (a == e)
        diff = np.where(both_same, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), np.inf, diff)
        scale = max(1.0, float(np.abs(np.where(finite, e, 0.0)).max(initial=0.0)))
        significant = finite & (np.abs(e) >= 1e-6 * scale)
        rel = diff[significant] / np.abs(e[significant])
        res += [float(diff.max(initial=0.0)) / scale, float(rel.max(initial=0.0))]
    return tuple(res)


def cases_for(entry: LossSpec, kinds: tuple[str, ...] = ("typical", "extreme", "edge")) -> list[Case]:
    return [c for c in entry.cases() if c.kind in kinds]


def fits(entry: LossSpec, case_params: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether inputs generated for ``case_params`` are valid for ``params`` (same domains)."""
    a = entry.validate_params(case_params)
    b = entry.validate_params(params)
    return entry.prediction_domain(a) == entry.prediction_domain(b)
