"""Port check: a team's own Keras loss against its PyTorch port (or back), no NumPy reference needed.

    python -m parity_tests.port --keras PKG.MOD:FN --torch PKG.MOD:FN \\
        --prediction {logits,probabilities,real} --target {binary,onehot:C,sparse:C,real} \\
        [--shape N,...] [--reference PKG.MOD:FN] [--seed S] [--case ID ...] [--dtype float32|float64] \\
        [--junit-xml FILE] [--json FILE] [--list-cases]

or from Python: ``check_port(keras_fn, torch_fn, prediction=..., target=...) -> PortReport``
(functions or ``"pkg.mod:fn"`` strings).

Each side is called in its own framework's order: Keras ``fn(y_true, y_pred)``, torch
``fn(input, target)``; each returns a loss tensor. Seeded inputs are generated for the declared
domains (cases ``typical*``, ``extreme-*``, ``edge-*``; ``--list-cases`` prints them) and run in
float32 and float64. Values and gradients with respect to the prediction are compared (Keras
through ``tf.GradientTape``, torch through autograd).

Outputs are reduced the same way on both sides before comparing: a 0-d output is a scalar; an
output whose first axis is the batch is taken as per-sample values, first averaged over its
non-batch axes when it has any (``(N, H)`` → ``(N,)``). A scalar on one side and per-sample values
on the other is a mismatch (reported with both shapes and whether the mean of the per-sample
values would agree). The gradient is that of the scalar, or of ``Σ_i c_i ℓ_i`` for per-sample
values, with the fixed cotangent ``c = linspace(0.5, 1.5, N)`` on both sides.

Tolerances, elementwise ``|torch - Keras| <= atol·scale + rtol·|Keras|`` with
``scale = max(1, max|Keras|)`` (Keras is the expected side; the same with the reference as the
expected side for ``--reference``)::

    dtype     value rtol   value atol    gradient rtol   gradient atol
    float64   1e-10        1e-12·scale   1e-9            1e-12·scale
    float32   1e-5         1e-6·scale    1e-4            1e-6·scale

A float64 difference beyond the float64 tolerance is a mismatch: that is how a port that silently
computes in float32 is caught (the report says which side returned float32). Non-finite results:
NaN or inf on one side only, or infs of opposite signs, is a mismatch; the same inf on both sides
is equal; NaN on both sides counts as agreement and is listed as a note. A side that raises is a
mismatch; both sides raising is agreement (a note) on extreme and edge cases and a mismatch on
typical ones.

``--reference PKG.MOD:FN`` adds a NumPy function ``ref(y_true, y_pred)`` (float64, on the inputs
rounded to the case's dtype), reduced the same way and compared with both sides (values only).

Output: a table (case, dtype, value and gradient max abs / rel error, ok / MISMATCH; ``rel`` is
taken over elements with ``|expected| >= 1e-6·scale``), then for every mismatch the worst element
(index, both values) and a one-line command reproducing it (``--case ID --dtype DTYPE``). Exit
status 0 when everything agrees, 1 on any mismatch, 2 on a usage error. ``--junit-xml`` writes
one testcase per case × dtype, ``--json`` the whole report.

Frameworks are imported on first use, not with this module; needs numpy, torch and tensorflow.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shlex
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

PREDICTIONS = ("logits", "probabilities", "real")
TARGET_KINDS = ("binary", "onehot:C", "sparse:C", "real")
DTYPES = ("float32", "float64")
DEFAULT_SEED = 0
DEFAULT_BATCH = 8
DEFAULT_WIDTH = 5  # last axis of binary / real predictions when --shape is not given
#: (rtol, atol) per dtype and quantity; atol is multiplied by scale = max(1, max|expected|)
TOLERANCES = {
    "float64": {"value": (1e-10, 1e-12), "grad": (1e-9, 1e-12)},
    "float32": {"value": (1e-5, 1e-6), "grad": (1e-4, 1e-6)},
}
PROG = "python -m parity_tests.port"


class PortUsageError(ValueError):
    """Invalid arguments (unknown kind, bad shape, unknown case, an import path that fails)."""


# ----------------------------------------------------------------------------------- inputs
@dataclasses.dataclass(frozen=True)
class TargetKind:
    kind: str  # "binary", "onehot", "sparse" or "real"
    classes: int | None = None

    @classmethod
    def parse(cls, text: str) -> TargetKind:
        if isinstance(text, TargetKind):
            return text
        m = re.fullmatch(r"(binary|real)|(onehot|sparse):(\d+)", str(text).strip())
        if not m:
            raise PortUsageError(f"unknown target kind {text!r}; expected one of binary, onehot:C, "
                                 "sparse:C, real (C = number of classes, e.g. onehot:5)")
        if m.group(1):
            return cls(m.group(1))
        classes = int(m.group(3))
        if classes < 2:
            raise PortUsageError(f"target {text!r}: the number of classes must be at least 2")
        return cls(m.group(2), classes)

    @property
    def categorical(self) -> bool:
        return self.kind in ("onehot", "sparse")

    def __str__(self) -> str:
        return f"{self.kind}:{self.classes}" if self.categorical else self.kind


@dataclasses.dataclass(frozen=True)
class PortCase:
    """One generated input: ``prediction`` (float64) and ``target`` (float64, or int64 labels)."""

    id: str
    kind: str  # "typical", "extreme" or "edge"
    description: str
    prediction: np.ndarray
    target: np.ndarray


def parse_shape(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in (text.replace("x", ",").split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise PortUsageError(f"invalid shape {text!r}; expected comma-separated sizes such as 8,5") from None
    if not dims or any(d < 1 for d in dims):
        raise PortUsageError(f"invalid shape {text!r}; every size must be >= 1 (the first is the batch)")
    return dims


def resolve_shape(target: TargetKind, shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The prediction's shape: ``shape`` checked against the target kind, or the default
    ``(8, C)`` for class targets and ``(8, 5)`` otherwise."""
    if shape is None:
        return (DEFAULT_BATCH, target.classes if target.categorical else DEFAULT_WIDTH)
    if target.categorical:
        if len(shape) < 2:
            raise PortUsageError(f"--shape {','.join(map(str, shape))}: a {target} target needs a prediction "
                                 f"with a class axis, e.g. {shape[0]},{target.classes}")
        if shape[-1] != target.classes:
            raise PortUsageError(f"--shape {','.join(map(str, shape))}: the last axis must be the "
                                 f"{target.classes} classes of --target {target}")
    return tuple(shape)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _rng(seed: int, case_id: str) -> np.random.Generator:
    """Each case's data depends only on (seed, case id), so ``--case`` reproduces it exactly."""
    return np.random.default_rng([int(seed), zlib.crc32(case_id.encode())])


def _labels(rng, target: TargetKind, shape) -> np.ndarray:
    return rng.integers(0, target.classes, shape[:-1])


def _encode(target: TargetKind, labels: np.ndarray) -> np.ndarray:
    if target.kind == "sparse":
        return labels.astype(np.int64)
    return np.eye(target.classes)[labels]


def _typical_prediction(rng, prediction: str, target: TargetKind, shape) -> np.ndarray:
    z = rng.standard_normal(shape)
    if prediction == "logits":
        return 3.0 * z
    if prediction == "probabilities":
        return _softmax(z) if target.categorical else _sigmoid(z)
    return z


def _typical_target(rng, target: TargetKind, shape, *, soft: bool = False) -> np.ndarray:
    if target.categorical:
        return _encode(target, _labels(rng, target, shape))
    if target.kind == "binary":
        return rng.uniform(0.0, 1.0, shape) if soft else (rng.random(shape) < 0.5).astype(np.float64)
    return rng.standard_normal(shape)


def _grid_target(target: TargetKind, shape) -> np.ndarray:
    """Binary targets 0, 0, 1, 1, … (flat order): with predictions alternating high / low every
    combination of prediction side and label occurs."""
    return ((np.arange(math.prod(shape)) // 2) % 2).astype(np.float64).reshape(shape)


def _alternating(shape, a: float, b: float) -> np.ndarray:
    return np.where(np.arange(math.prod(shape)) % 2 == 0, a, b).astype(np.float64).reshape(shape)


def _hot_rows(rng, target: TargetKind, shape, labels, hot: float, cold: float) -> np.ndarray:
    """Rows with ``hot`` at one class, ``cold`` elsewhere: at the labelled class in half the rows,
    at another class in the others."""
    c = target.classes
    n_rows = math.prod(shape[:-1])
    flat = labels.reshape(n_rows)
    other = (flat + 1 + rng.integers(0, c - 1, n_rows)) % c
    at = np.where(np.arange(n_rows) % 2 == 0, flat, other)
    rows = np.full((n_rows, c), cold)
    rows[np.arange(n_rows), at] = hot
    return rows.reshape(shape)


def make_cases(prediction: str, target: str | TargetKind, shape: Sequence[int] | str | None = None,
               seed: int = DEFAULT_SEED) -> list[PortCase]:
    """The seeded typical / extreme / edge inputs for these domains (see ``--list-cases``)."""
    if prediction not in PREDICTIONS:
        raise PortUsageError(f"unknown prediction kind {prediction!r}; expected one of {', '.join(PREDICTIONS)}")
    target = TargetKind.parse(target)
    shape = resolve_shape(target, parse_shape(shape))
    cases: list[PortCase] = []

    def add(case_id, kind, description, make):
        rng = _rng(seed, case_id)
        pred, tgt = make(rng)
        cases.append(PortCase(case_id, kind, description, np.asarray(pred, np.float64),
                              np.asarray(tgt, np.int64 if target.kind == "sparse" else np.float64)))

    def typical(rng, shp=shape, soft=False):
        return _typical_prediction(rng, prediction, target, shp), _typical_target(rng, target, shp, soft=soft)

    pred_text = {"logits": "logits N(0, 3)", "real": "real N(0, 1)",
                 "probabilities": "softmax of N(0, 1)" if target.categorical else "sigmoid of N(0, 1)"}[prediction]
    tgt_text = {"binary": "labels in {0, 1}", "real": "real targets N(0, 1)",
                "onehot": f"one-hot rows of {target.classes} classes",
                "sparse": f"integer labels in [0, {target.classes})"}[target.kind]
    add("typical", "typical", f"{pred_text}; {tgt_text}", typical)
    if target.kind == "binary":
        add("typical-soft", "typical", f"{pred_text}; soft labels uniform in [0, 1]",
            lambda rng: typical(rng, soft=True))

    # ---- extreme
    if prediction == "logits":
        for text, mag in (("1e4", 1e4), ("88", 88.0), ("20", 20.0)):
            def make(rng, mag=mag):
                if target.kind == "binary":
                    return _alternating(shape, mag, -mag), _grid_target(target, shape)
                signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
                return mag * signs, _typical_target(rng, target, shape)
            add(f"extreme-logits-{text}", "extreme", f"logits ±{text}"
                + (" (every sign × label combination)" if target.kind == "binary" else " (random signs)"), make)
    elif prediction == "probabilities":
        for case_id, lo, hi, text in (("extreme-probs-0-1", 0.0, 1.0, "exactly 0 and 1"),
                                      ("extreme-probs-1e-7", 1e-7, 1.0 - 1e-7, "1e-7 and 1 - 1e-7")):
            def make(rng, lo=lo, hi=hi):
                if target.categorical:
                    labels = _labels(rng, target, shape)
                    hot = 1.0 - (target.classes - 1) * lo
                    return _hot_rows(rng, target, shape, labels, hot, lo), _encode(target, labels)
                tgt = _grid_target(target, shape) if target.kind == "binary" else _typical_target(rng, target, shape)
                return _alternating(shape, hi, lo), tgt
            add(case_id, "extreme", f"probabilities {text}"
                + (" (rows summing to 1, at the labelled class in half the rows)" if target.categorical else ""),
                make)
    else:
        for case_id, mag, text in (("extreme-real-huge", 1e15, "huge predictions ±1e15·U(1, 2)"),
                                   ("extreme-real-tiny", 1e-20, "tiny predictions ±1e-20·U(1, 2)")):
            def make(rng, mag=mag):
                signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
                return mag * signs * rng.uniform(1.0, 2.0, shape), _typical_target(rng, target, shape)
            add(case_id, "extreme", f"{text}; typical targets", make)

    # ---- edge
    add("edge-batch1", "edge", "a batch of one sample", lambda rng: typical(rng, (1, *shape[1:])))
    if target.categorical:
        def same_class(rng):
            labels = np.zeros(shape[:-1], np.int64)
            return _typical_prediction(rng, prediction, target, shape), _encode(target, labels)
        add("edge-same-class", "edge", "every sample labelled class 0", same_class)
    else:
        def signed(sign):
            def make(rng):
                pred = _typical_prediction(rng, prediction, target, shape)
                if target.kind == "binary":
                    return pred, np.full(shape, 1.0 if sign > 0 else 0.0)
                return pred, sign * (np.abs(rng.standard_normal(shape)) + 0.1)
            return make
        word = {"binary": ("every target 1", "every target 0"),
                "real": ("every target > 0", "every target < 0")}[target.kind]
        add("edge-all-positive", "edge", word[0], signed(1.0))
        add("edge-all-negative", "edge", word[1], signed(-1.0))

    def ties(rng):
        if prediction == "probabilities":
            pred = np.full(shape, 1.0 / target.classes if target.categorical else 0.5)
        else:  # one value per sample (a multiple of 1/2: exact in float32), repeated along the sample
            per_sample = np.round(2.0 * rng.standard_normal(shape[0])) / 2.0
            pred = np.broadcast_to(per_sample.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()
        tgt = pred.copy() if target.kind == "real" else _typical_target(rng, target, shape)
        return pred, tgt
    add("edge-ties", "edge", "exact ties: every prediction of a sample equal"
        + ("; targets equal to the predictions" if target.kind == "real" else ""), ties)
    if not (prediction == "probabilities" and target.categorical):
        def zeros(rng):
            tgt = np.zeros(shape) if target.kind == "real" else _typical_target(rng, target, shape)
            return np.zeros(shape), tgt
        add("edge-zeros", "edge", "zero predictions" + ("; zero targets" if target.kind == "real" else ""), zeros)
    return cases


# ---------------------------------------------------------------------------- frameworks
def _import_tensorflow():
    """``import tensorflow`` through ``tf_impl``, which loads it with its C++ start-up lines (absl,
    oneDNN) kept off stderr, shown only if the import fails (``TF_CPP_MIN_LOG_LEVEL=0`` shows them)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from tf_impl._quiet import import_tensorflow

    return import_tensorflow()


def _resolve(obj: Any, what: str) -> Callable:
    if obj is None:
        raise PortUsageError(f"{what}: missing (give a function or 'package.module:function')")
    if isinstance(obj, str):
        from spec.api import import_object

        try:
            obj = import_object(obj)
        except Exception as exc:
            raise PortUsageError(f"{what} {obj!r} cannot be imported: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise PortUsageError(f"{what}: {obj!r} is not callable")
    return obj


def _path_of(obj: Any) -> str:
    """``module:qualname`` of a function (for the reproduce command), else a placeholder."""
    if isinstance(obj, str):
        return obj
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and qualname and module != "__main__" and "<" not in qualname:
        return f"{module}:{qualname}"
    return "PKG.MOD:FN"


@dataclasses.dataclass
class SideResult:
    """One side's output on one case: per-sample (or scalar) values and the gradient, float64."""

    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    form: str = ""  # "scalar", "per-sample" or "shape (…)"
    raw_shape: tuple = ()
    out_dtype: str = ""
    has_grad: bool = True
    error: str | None = None

    def describe(self) -> str:
        if self.form == "scalar":
            return "a scalar (shape ())"
        if self.form == "per-sample":
            if len(self.raw_shape) > 1:
                return (f"per-sample values (its output of shape {self.raw_shape} averaged over the "
                        f"non-batch axes to {self.value.shape})")
            return f"per-sample values (shape {self.raw_shape})"
        return f"an output of shape {self.raw_shape}"


def _form(shape: tuple, n: int) -> str:
    if len(shape) == 0:
        return "scalar"
    if shape[0] == n:
        return "per-sample"
    return f"shape {shape}"


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}{'…' if len(text) > 300 else ''}"


def cotangent(n: int) -> np.ndarray:
    """The fixed cotangent of per-sample outputs: ``linspace(0.5, 1.5, N)`` (not all ones, so a
    permutation of samples is caught)."""
    return np.linspace(0.5, 1.5, n)


def run_keras(fn: Callable, case: PortCase, dtype: str) -> SideResult:
    """``fn(y_true, y_pred)`` eagerly under ``tf.GradientTape``."""
    tf = _import_tensorflow()
    n = case.prediction.shape[0]
    x = tf.constant(case.prediction, dtype=dtype)
    y = tf.constant(case.target, dtype="int64" if case.target.dtype.kind in "iu" else dtype)
    try:
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.convert_to_tensor(fn(y, x))
            raw_shape = tuple(out.shape.as_list())
            out_dtype = out.dtype.name
            if not out.dtype.is_floating:
                out = tf.cast(out, dtype)
            form = _form(raw_shape, n)
            if form == "per-sample" and len(raw_shape) > 1:
                out = tf.reduce_mean(out, axis=list(range(1, len(raw_shape))))
            if form == "scalar":
                objective = out
            elif form == "per-sample":
                objective = tf.reduce_sum(out * tf.constant(cotangent(n), dtype=out.dtype))
            else:
                objective = tf.reduce_sum(out)
        g = tape.gradient(objective, x)
    except Exception as exc:  # the user's code raised: reported as this side's result
        return SideResult(error=_error_text(exc))
    return SideResult(np.asarray(out.numpy(), np.float64),
                      np.zeros(case.prediction.shape) if g is None else np.asarray(g.numpy(), np.float64),
                      form, raw_shape, out_dtype, g is not None)


def run_torch(fn: Callable, case: PortCase, dtype: str) -> SideResult:
    """``fn(input, target)`` with autograd (``torch.autograd.grad``; module parameters keep no
    ``.grad``)."""
    import torch

    n = case.prediction.shape[0]
    tdtype = getattr(torch, dtype)
    x = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    y = torch.tensor(case.target, dtype=torch.int64 if case.target.dtype.kind in "iu" else tdtype)
    try:
        with torch.enable_grad():
            out = fn(x, y)
            if not isinstance(out, torch.Tensor):
                out = torch.as_tensor(out)
            raw_shape = tuple(out.shape)
            out_dtype = str(out.dtype).replace("torch.", "")
            if not out.is_floating_point():
                out = out.to(tdtype)
            form = _form(raw_shape, n)
            if form == "per-sample" and len(raw_shape) > 1:
                out = out.mean(dim=tuple(range(1, len(raw_shape))))
            if form == "scalar":
                objective = out
            elif form == "per-sample":
                objective = (out * torch.tensor(cotangent(n), dtype=out.dtype, device=out.device)).sum()
            else:
                objective = out.sum()
            g = None
            if objective.requires_grad:
                (g,) = torch.autograd.grad(objective, x, allow_unused=True)
    except Exception as exc:  # the user's code raised: reported as this side's result
        return SideResult(error=_error_text(exc))
    return SideResult(out.detach().cpu().double().numpy(),
                      np.zeros(case.prediction.shape) if g is None else g.detach().cpu().double().numpy(),
                      form, raw_shape, out_dtype, g is not None)


def _rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """Inputs as the frameworks see them, back in float64 (integer labels kept)."""
    if a.dtype.kind in "iu":
        return a.copy()
    return a.astype(dtype).astype(np.float64)


def run_reference(fn: Callable, case: PortCase, dtype: str) -> SideResult:
    """The NumPy reference ``fn(y_true, y_pred)`` in float64 on the inputs rounded to ``dtype``."""
    n = case.prediction.shape[0]
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(_rounded(case.target, dtype), _rounded(case.prediction, dtype)), np.float64)
    except Exception as exc:
        return SideResult(error=_error_text(exc))
    raw_shape = tuple(out.shape)
    form = _form(raw_shape, n)
    if form == "per-sample" and len(raw_shape) > 1:
        out = out.mean(axis=tuple(range(1, len(raw_shape))))
    return SideResult(out, None, form, raw_shape, "float64", False)


# ---------------------------------------------------------------------------- comparison
@dataclasses.dataclass(frozen=True)
class Comparison:
    """``actual`` vs ``expected`` under ``|a - e| <= atol·scale + rtol·|e|``, scale = max(1, max|e|)."""

    ok: bool
    max_abs: float  # inf when a non-finite value is on one side only
    max_rel: float  # over the elements with |expected| >= 1e-6·scale
    worst: tuple[int, ...] | None  # index of the worst element (largest excess over the bound)
    actual_at_worst: float | None
    expected_at_worst: float | None
    scale: float
    rtol: float
    atol: float
    one_sided: int = 0  # elements non-finite on one side only (or infs of opposite signs)
    both_nan: int = 0


def compare(actual, expected, *, rtol: float, atol: float) -> Comparison:
    """Elementwise comparison (same shapes). The same inf on both sides is equal; NaN on both
    sides agrees (counted in ``both_nan``); a non-finite value on one side only fails."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    if a.shape != e.shape:
        raise ValueError(f"compare: shapes {a.shape} and {e.shape} differ")
    if a.size == 0:
        return Comparison(True, 0.0, 0.0, None, None, None, 1.0, rtol, atol)
    both_nan = np.isnan(a) & np.isnan(e)
    same_inf = np.isinf(e) & (a == e)
    finite = np.isfinite(a) & np.isfinite(e)
    one_sided = ~finite & ~both_nan & ~same_inf
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(a - e), 0.0)
    diff = np.where(one_sided, np.inf, diff)
    abs_e = np.where(np.isfinite(e), np.abs(e), 0.0)
    scale = max(1.0, float(abs_e.max()))
    bound = atol * scale + rtol * abs_e
    bad = diff > bound
    ok = not bool(bad.any())
    if not ok:
        excess = np.where(one_sided, np.inf, np.where(bad, diff - bound, -np.inf))
        flat = int(np.argmax(excess))
    else:
        flat = int(np.argmax(diff)) if float(diff.max()) > 0 else None
    worst = None if flat is None else tuple(int(i) for i in np.unravel_index(flat, a.shape))
    significant = finite & (abs_e >= 1e-6 * scale)
    rel = diff[significant] / abs_e[significant]
    max_rel = math.inf if one_sided.any() else float(rel.max(initial=0.0))
    return Comparison(ok, float(diff.max()), max_rel, worst,
                      None if worst is None else float(a[worst]), None if worst is None else float(e[worst]),
                      scale, rtol, atol, int(one_sided.sum()), int(both_nan.sum()))


def _describe_failure(label: str, c: Comparison, actual: str, expected: str, dtype: str) -> str:
    where = "" if c.worst is None else (f"; worst at {c.worst if len(c.worst) else '()'}: "
                                        f"{expected} {c.expected_at_worst!r}, {actual} {c.actual_at_worst!r}")
    nonfinite = f"; {c.one_sided} element(s) non-finite on one side only" if c.one_sided else ""
    return (f"{label} ({dtype}): max abs err {_num(c.max_abs)}, max rel err {_num(c.max_rel)} "
            f"(tolerance rtol {c.rtol:g}, atol {c.atol:g}·scale, scale {c.scale:.4g}){nonfinite}{where}")


def _possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if math.isinf(x) or math.isnan(x):
        return str(x)
    return f"{x:.2e}"


# -------------------------------------------------------------------------------- report
@dataclasses.dataclass
class CaseResult:
    case: str
    kind: str
    description: str
    dtype: str
    ok: bool
    value: Comparison | None
    grad: Comparison | None
    reference: dict[str, Comparison]  # "keras" / "torch" → values vs the reference
    messages: list[str]  # why it mismatches (empty when ok)
    notes: list[str]  # informative (both NaN, no gradient, a side returning another dtype, …)
    reproduce: str
    seconds: float

    def to_dict(self) -> dict:
        def comp(c):
            if c is None:
                return None
            return {k: _json_number(v) if isinstance(v, float) else (list(v) if isinstance(v, tuple) else v)
                    for k, v in dataclasses.asdict(c).items()}
        return {"case": self.case, "kind": self.kind, "description": self.description, "dtype": self.dtype,
                "outcome": "ok" if self.ok else "mismatch", "ok": self.ok,
                "value": comp(self.value), "gradient": comp(self.grad),
                "reference": {k: comp(v) for k, v in self.reference.items()},
                "messages": self.messages, "notes": self.notes, "reproduce": self.reproduce,
                "seconds": round(self.seconds, 4)}


def _json_number(x: float):
    return x if math.isfinite(x) else str(x)


@dataclasses.dataclass
class PortReport:
    """Result of :func:`check_port`: ``ok``, ``results`` (one per case × dtype), ``mismatches``,
    ``format()`` (the printed table), ``to_dict()``, ``write_json(path)``, ``write_junit(path)``."""

    keras: str
    torch: str
    prediction: str
    target: str
    shape: tuple[int, ...]
    seed: int
    reference: str | None
    results: list[CaseResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def mismatches(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]

    def result(self, case: str, dtype: str) -> CaseResult:
        return next(r for r in self.results if r.case == case and r.dtype == dtype)

    def format(self) -> str:
        lines = [f"port check: Keras {self.keras}  vs  torch {self.torch}",
                 f"prediction {self.prediction}, target {self.target}, shape {','.join(map(str, self.shape))}, "
                 f"seed {self.seed}" + (f", reference {self.reference}" if self.reference else ""),
                 "tolerance |torch - Keras| <= atol·scale + rtol·|Keras|: float64 value 1e-10/1e-12, gradient "
                 "1e-9/1e-12; float32 value 1e-5/1e-6, gradient 1e-4/1e-6 (rtol/atol)", ""]
        width = max([len("case")] + [len(r.case) for r in self.results])
        head = (f"{'case':<{width}}  {'dtype':<7}  {'value abs':>9}  {'value rel':>9}  {'grad abs':>9}  "
                f"{'grad rel':>9}" + (f"  {'ref abs':>9}" if self.reference else "") + "  result")
        lines += [head, "-" * len(head)]
        for r in self.results:
            v, g = r.value, r.grad
            row = (f"{r.case:<{width}}  {r.dtype:<7}  {_num(v and v.max_abs):>9}  {_num(v and v.max_rel):>9}  "
                   f"{_num(g and g.max_abs):>9}  {_num(g and g.max_rel):>9}")
            if self.reference:
                ref = max((c.max_abs for c in r.reference.values()), default=None)
                row += f"  {_num(ref):>9}"
            lines.append(row + "  " + ("ok" if r.ok else "MISMATCH"))
        n_bad = len(self.mismatches)
        lines += ["", f"{len(self.results) - n_bad} of {len(self.results)} case × dtype checks agree"
                  + (f"; {n_bad} MISMATCH" if n_bad else "")]
        noted = [r for r in self.results if r.notes]
        if noted:
            lines += ["", "notes:"]
            for r in noted:
                lines += [f"  {r.case} {r.dtype}: {note}" for note in r.notes]
        for r in self.mismatches:
            lines += ["", f"MISMATCH {r.case} {r.dtype} ({r.description})"]
            lines += [f"  {m}" for m in r.messages]
            lines.append(f"  reproduce: {r.reproduce}")
        return "\n".join(lines)

    __str__ = format

    def to_dict(self) -> dict:
        return {"tool": "parity_tests.port", "ok": self.ok, "keras": self.keras, "torch": self.torch,
                "prediction": self.prediction, "target": self.target, "shape": list(self.shape),
                "seed": self.seed, "reference": self.reference,
                "tolerances": {d: {q: {"rtol": rt, "atol": at} for q, (rt, at) in t.items()}
                               for d, t in TOLERANCES.items()},
                "summary": {"checks": len(self.results), "mismatches": len(self.mismatches)},
                "results": [r.to_dict() for r in self.results]}

    def write_json(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, allow_nan=False)
            f.write("\n")

    def write_junit(self, path) -> None:
        """JUnit XML: one testsuite, one testcase per case × dtype, a ``<failure>`` per mismatch."""
        import xml.etree.ElementTree as ET

        total = sum(r.seconds for r in self.results)
        suites = ET.Element("testsuites", name="parity_tests.port", tests=str(len(self.results)),
                            failures=str(len(self.mismatches)), errors="0", time=f"{total:.3f}")
        suite = ET.SubElement(suites, "testsuite", name=f"port {self.keras} vs {self.torch}",
                              tests=str(len(self.results)), failures=str(len(self.mismatches)),
                              errors="0", skipped="0", time=f"{total:.3f}")
        props = ET.SubElement(suite, "properties")
        for key in ("keras", "torch", "prediction", "target", "seed", "reference"):
            ET.SubElement(props, "property", name=key, value=str(getattr(self, key)))
        ET.SubElement(props, "property", name="shape", value=",".join(map(str, self.shape)))
        for r in self.results:
            tc = ET.SubElement(suite, "testcase", classname=f"parity_tests.port.{self.prediction}-{self.target}",
                               name=f"{r.case}[{r.dtype}]", time=f"{r.seconds:.4f}")
            if not r.ok:
                failure = ET.SubElement(tc, "failure", message=r.messages[0] if r.messages else "mismatch",
                                        type="PortMismatch")
                failure.text = "\n".join([*r.messages, f"reproduce: {r.reproduce}"])
            if r.notes:
                ET.SubElement(tc, "system-out").text = "\n".join(r.notes)
        ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


# ---------------------------------------------------------------------------- the check
def _compare_sides(k: SideResult, t: SideResult, case: PortCase, dtype: str, messages, notes):
    """Keras (expected) vs torch; returns the value and gradient comparisons (None when not made)."""
    if k.error or t.error:
        if k.error and t.error:
            text = f"both sides raised: Keras {k.error}; torch {t.error}"
            if case.kind == "typical":
                messages.append(text + " (on typical inputs: nothing was compared)")
            else:
                notes.append(text + " (counted as agreement on an " + case.kind + " case)")
        else:
            side, err, other = ("Keras", k.error, t) if k.error else ("torch", t.error, k)
            messages.append(f"{side} raised {err}; the other side returned {other.describe()}")
        return None, None
    if k.form != t.form or k.value.shape != t.value.shape:
        text = f"output shapes differ: Keras returns {k.describe()}, torch returns {t.describe()}"
        if {k.form, t.form} == {"scalar", "per-sample"}:
            scalar, per_sample, s_name, p_name = \
                (k, t, "Keras", "torch") if k.form == "scalar" else (t, k, "torch", "Keras")
            mean = float(np.mean(per_sample.value))
            rtol, atol = TOLERANCES[dtype]["value"]
            agree = compare(np.asarray(mean), scalar.value, rtol=rtol, atol=atol).ok
            text += (f"; {_possessive(s_name)} scalar {scalar.value.item()!r} vs the mean of {_possessive(p_name)} "
                     f"per-sample values "
                     f"{mean!r}: " + ("these agree, only the reduction differs (return per-sample values on both "
                                      "sides, or a scalar on both)" if agree else "these differ too"))
        messages.append(text)
        return None, None
    value = compare(t.value, k.value, rtol=TOLERANCES[dtype]["value"][0], atol=TOLERANCES[dtype]["value"][1])
    grad = compare(t.grad, k.grad, rtol=TOLERANCES[dtype]["grad"][0], atol=TOLERANCES[dtype]["grad"][1])
    if not value.ok:
        messages.append(_describe_failure("value", value, "torch", "Keras", dtype))
    if not grad.ok:
        messages.append(_describe_failure("gradient w.r.t. the prediction", grad, "torch", "Keras", dtype))
    for side, res in (("Keras", k), ("torch", t)):
        if res.out_dtype != dtype:
            text = f"{side} returned {res.out_dtype} for {dtype} inputs"
            lower = res.out_dtype in ("float32", "float16", "bfloat16") and dtype == "float64"
            if lower and not (value.ok and grad.ok):
                messages.append(text + ": it computes in lower precision (a float32 cast, a float32 constant "
                                "or a Keras Loss object's float32 dtype)")
            else:
                notes.append(text)
        if not res.has_grad:
            notes.append(f"{side}: no gradient (the output does not depend on the prediction); compared as zeros")
    for label, c in (("value", value), ("gradient", grad)):
        if c.both_nan:
            notes.append(f"{label}: NaN on both sides at {c.both_nan} element(s) (counted as agreement)")
    return value, grad


def check_port(keras_fn: Callable | str, torch_fn: Callable | str, *, prediction: str, target: str,
               shape: Sequence[int] | str | None = None, reference: Callable | str | None = None,
               seed: int = DEFAULT_SEED, cases: Iterable[str] | None = None,
               dtypes: Iterable[str] | None = None) -> PortReport:
    """Compare a Keras loss ``keras_fn(y_true, y_pred)`` with its torch port ``torch_fn(input,
    target)`` (values and gradients, float32 and float64, seeded typical / extreme / edge inputs
    for the declared ``prediction`` and ``target`` kinds); see the module docstring for the
    reductions, the tolerances and the non-finite rules.

    ``keras_fn``, ``torch_fn`` and ``reference`` are callables or ``"pkg.mod:fn"`` strings;
    ``shape`` is the prediction's shape (default ``(8, C)`` for class targets, else ``(8, 5)``);
    ``cases`` / ``dtypes`` restrict the run. Raises :class:`PortUsageError` (a ``ValueError``) on
    invalid arguments; a mismatch is not an exception: see ``PortReport.ok``.
    """
    target_kind = TargetKind.parse(target)
    shape = resolve_shape(target_kind, parse_shape(shape))
    all_cases = make_cases(prediction, target_kind, shape, seed)
    if cases is not None:
        cases = [cases] if isinstance(cases, str) else list(cases)
        known = {c.id for c in all_cases}
        unknown = [c for c in cases if c not in known]
        if unknown:
            raise PortUsageError(f"unknown case id(s) {', '.join(unknown)} for --prediction {prediction} "
                                 f"--target {target_kind}; the cases are: {', '.join(c.id for c in all_cases)}")
        all_cases = [c for c in all_cases if c.id in cases]
    dtypes = list(DTYPES if dtypes is None else ([dtypes] if isinstance(dtypes, str) else dtypes))
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise PortUsageError(f"dtype(s) {bad or dtypes}: expected float32 and/or float64")

    keras_path, torch_path = _path_of(keras_fn), _path_of(torch_fn)
    ref_path = None if reference is None else _path_of(reference)
    _import_tensorflow()  # before the user's module imports Keras: quietly, on the TensorFlow backend
    keras_fn = _resolve(keras_fn, "--keras")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "tensorflow":
        raise PortUsageError(f"Keras runs on the {sys.modules['keras'].backend.backend()!r} backend; the port "
                             "check calls the Keras loss on TensorFlow (set KERAS_BACKEND=tensorflow)")
    torch_fn = _resolve(torch_fn, "--torch")
    ref_fn = None if reference is None else _resolve(reference, "--reference")

    base = [*PROG.split(), "--keras", keras_path, "--torch", torch_path, "--prediction", prediction,
            "--target", str(target_kind)]
    if shape != resolve_shape(target_kind, None):
        base += ["--shape", ",".join(map(str, shape))]
    if seed != DEFAULT_SEED:
        base += ["--seed", str(seed)]
    if ref_path:
        base += ["--reference", ref_path]

    results = []
    for case in all_cases:
        for dtype in dtypes:
            start = time.perf_counter()
            messages: list[str] = []
            notes: list[str] = []
            k = run_keras(keras_fn, case, dtype)
            t = run_torch(torch_fn, case, dtype)
            value, grad = _compare_sides(k, t, case, dtype, messages, notes)
            ref_comparisons = {}
            if ref_fn is not None:
                r = run_reference(ref_fn, case, dtype)
                rtol, atol = TOLERANCES[dtype]["value"]
                if r.error:
                    messages.append(f"the reference raised {r.error}")
                for side, res in (("keras", k), ("torch", t)):
                    if r.error or res.error:
                        continue
                    name = "Keras" if side == "keras" else "torch"
                    if res.form != r.form or res.value.shape != r.value.shape:
                        messages.append(f"{name} vs reference: {name} returns {res.describe()}, the reference "
                                        f"{r.describe()}")
                        continue
                    c = compare(res.value, r.value, rtol=rtol, atol=atol)
                    ref_comparisons[side] = c
                    if not c.ok:
                        messages.append(_describe_failure(f"{name} vs reference, value", c, name, "reference", dtype))
            repro = shlex.join([*base, "--case", case.id, "--dtype", dtype])
            results.append(CaseResult(case.id, case.kind, case.description, dtype, not messages, value, grad,
                                      ref_comparisons, messages, notes, repro, time.perf_counter() - start))
    return PortReport(keras_path, torch_path, prediction, str(target_kind), shape, seed, ref_path, results)


# ---------------------------------------------------------------------------------- CLI
def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras", metavar="PKG.MOD:FN", help="the Keras loss, called fn(y_true, y_pred)")
    parser.add_argument("--torch", metavar="PKG.MOD:FN", help="the torch port, called fn(input, target)")
    parser.add_argument("--prediction", required=True, choices=PREDICTIONS, help="the prediction's domain")
    parser.add_argument("--target", required=True, metavar="{binary,onehot:C,sparse:C,real}",
                        help="the target's kind (C: number of classes)")
    parser.add_argument("--shape", metavar="N,...", help="the prediction's shape (default 8,C for class "
                        "targets, else 8,5); a sparse target has this shape without the last axis")
    parser.add_argument("--reference", metavar="PKG.MOD:FN", help="a NumPy ref(y_true, y_pred) (float64) "
                        "compared with both sides, values only")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"input seed (default {DEFAULT_SEED})")
    parser.add_argument("--case", action="extend", nargs="+", metavar="CASE_ID", help="run only these cases")
    parser.add_argument("--dtype", choices=DTYPES, help="run only this dtype")
    parser.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--json", metavar="FILE", help="write a JSON report")
    parser.add_argument("--list-cases", action="store_true", help="print the cases of these domains and exit")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)  # a usage error exits with status 2
    try:
        if args.list_cases:
            for case in make_cases(args.prediction, args.target, args.shape, args.seed):
                print(f"{case.id:<22} {case.kind:<8} prediction {case.prediction.shape}, target "
                      f"{case.target.shape}: {case.description}")
            return 0
        missing = [f"--{side}" for side in ("keras", "torch") if not getattr(args, side)]
        if missing:
            parser.error(f"the following arguments are required: {', '.join(missing)}")
        report = check_port(args.keras, args.torch, prediction=args.prediction, target=args.target,
                            shape=args.shape, reference=args.reference, seed=args.seed, cases=args.case,
                            dtypes=[args.dtype] if args.dtype else None)
    except PortUsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    if args.json:
        report.write_json(args.json)
    if args.junit_xml:
        report.write_junit(args.junit_xml)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
