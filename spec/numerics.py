"""Stable float64 NumPy building blocks and their mpmath twins, shared by the spec entries.

The one clamp of the library
----------------------------
Where a loss takes probabilities (``from_logits=False``) it needs ``log(q)`` for ``q`` that may be
exactly 0. We use ``clamped_log(q) = log(max(q, P_MIN))`` with ``P_MIN = 2**-126`` (the smallest
normal float32, ``log P_MIN = -87.3365...``), the same constant for every dtype so float32 and
float64 mean the same thing. Its gradient is ``1/q`` for ``q >= P_MIN`` (ties go to the identity
branch) and ``0`` below. Compared with the peers:

* Keras clips the *probability* to ``[1e-7, 1 - 1e-7]``: values differ from the true loss for
  every ``p < 1e-7`` (e.g. at ``p = 1e-8`` the true ``-log p`` is 18.42, Keras gives 16.12) and the
  gradient is 0 there.
* torch's ``binary_cross_entropy`` clamps ``log`` at ``-100`` (value 100 at ``p = 0``, ours 87.34)
  and its backward uses ``(p - y) / max(p (1 - p), 1e-12)``, which is not the derivative of its
  own forward for ``p (1 - p) < 1e-12``.

Ours equals the true loss for every ``p >= 2**-126`` and keeps ``1/p`` finite in float32.
"""
from __future__ import annotations

import importlib
import math

import numpy as np

class _LazyMpmath:
    """``mpmath``, imported on first use. Only the exact references (``LossSpec.exact``, the checks
    against mpmath and the golden vectors' makers) need it, and it comes with the ``dev`` extra: a
    ``[tf]``- or ``[torch]``-only install imports ``spec``, ``torch_impl`` and ``tf_impl`` without it."""

    _module = None

    def __getattr__(self, name):
        if _LazyMpmath._module is None:
            try:
                _LazyMpmath._module = importlib.import_module("mpmath")
            except ModuleNotFoundError as exc:
                raise ModuleNotFoundError(
                    "the exact (mpmath) references need mpmath: pip install mpmath "
                    "(or the lossparity[dev] extra)", name="mpmath") from exc
        return getattr(_LazyMpmath._module, name)


#: the mpmath module, loaded when first used (the family modules import it from here)
mp = _LazyMpmath()

P_MIN = 2.0 ** -126
LOG_P_MIN = math.log(P_MIN)
MP_DPS = 80
#: step of the high-precision central differences (far below any kink spacing in the cases)
FD_STEP_EXP = -40


def log_sigmoid(x):
    """``log σ(x) = -softplus(-x)``, exact for all finite x (no ``log(sigmoid(x))``)."""
    return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def sigmoid(x):
    """``σ(x)`` computed as ``exp(log σ(x))``: no overflow for large negative x."""
    return np.exp(log_sigmoid(x))


def log_softmax(x):
    """Log-softmax over the last axis, float64, with full relative accuracy.

    ``(x - m) - log1p(s)`` with ``m`` the row max and ``s = Σ_{c≠c*} exp(x_c - m)`` over every
    class but one argmax ``c*``: every term is <= 0, so ``-log_softmax`` is a sum of
    non-negative parts (no cancellation), and the loss of a confident correct row,
    ``log1p(s) ≈ s``, keeps its digits (``x - logsumexp(x)`` would round it to 0).
    """
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    d = x - m
    e = np.exp(d)
    np.put_along_axis(e, np.argmax(x, axis=-1)[..., None], 0.0, axis=-1)
    return d - np.log1p(e.sum(axis=-1, keepdims=True))


def softmax(x):
    return np.exp(log_softmax(x))


def softmax_cross_entropy_grad(x, y):
    """``d/dx [-Σ_c y_c log softmax(x)_c] = softmax(x) Σ_c y_c - y`` over the last axis, float64,
    with full relative accuracy in every element.

    Written as ``q Σy - y``, the element of the most probable class ``k`` cancels: for a confident
    correct row ``q_k = 1/(1 + s)`` rounds to 1 and ``q_k - 1`` loses every digit of the true
    ``-s/(1 + s)`` (``s = Σ_{c≠k} exp(x_c - x_k)``, 2e-19 at a logit gap of 43; float64 returns 0,
    or last-bit noise of ``exp`` that differs between CPUs). Here that element is
    ``Σ_{c≠k} y_c - Σy · s/(1 + s)``: the complement ``1 - q_k`` is the sum of the other
    probabilities, never a difference. Every other class has ``q_c <= 1/2`` and keeps ``q_c Σy - y_c``
    (a cancellation only where the target itself is close to ``q_c Σy``: the data's conditioning).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    k = np.argmax(x, axis=-1)[..., None]  # the same class log_softmax leaves out of its sum
    e = np.exp(x - np.take_along_axis(x, k, axis=-1))
    np.put_along_axis(e, k, 0.0, axis=-1)
    s = e.sum(axis=-1, keepdims=True)
    y_rest = y.copy()
    np.put_along_axis(y_rest, k, 0.0, axis=-1)
    rest = y_rest.sum(axis=-1, keepdims=True)  # Σ_{c≠k} y_c without cancellation (y >= 0)
    total = rest + np.take_along_axis(y, k, axis=-1)
    grad = e / (1.0 + s) * total - y
    np.put_along_axis(grad, k, rest - total * (s / (1.0 + s)), axis=-1)
    return grad


def clamped_log(q):
    return np.log(np.maximum(np.asarray(q, np.float64), P_MIN))


def clamped_log1m(p):
    """``clamped_log(1 - p)`` computed as ``log1p(-p)``: accurate for tiny ``p`` too (``1 - p``
    rounds ``p < 2**-53`` away in float64 and ``p < 2**-24`` in float32, and ``-log(1 - p)``
    became 0 instead of ``p``). The clamp is the same: ``log P_MIN`` where ``1 - p < P_MIN``."""
    p = np.asarray(p, np.float64)
    keep = (1.0 - p) >= P_MIN
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(keep, np.log1p(-np.where(keep, p, 0.0)), LOG_P_MIN)


def clamped_log1m_grad(p):
    """d/dp of :func:`clamped_log1m`: ``-1/(1 - p)`` where ``1 - p >= P_MIN``, 0 below."""
    p = np.asarray(p, np.float64)
    keep = (1.0 - p) >= P_MIN
    return np.where(keep, -1.0 / np.where(keep, 1.0 - p, 1.0), 0.0)


def clamped_log_grad(q):
    q = np.asarray(q, np.float64)
    return np.where(q >= P_MIN, 1.0 / np.maximum(q, P_MIN), 0.0)


def safe_log(y):
    """``log y`` with ``log 0 = -inf`` and no warning (for constant targets only)."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(y, np.float64))


def mean_nonbatch(elementwise):
    """Per-sample mean over every non-batch axis; a 1-D input is one element per sample."""
    e = np.asarray(elementwise, np.float64)
    return e if e.ndim == 1 else e.reshape(e.shape[0], -1).mean(axis=1)


def spread_cotangent(cotangent, shape):
    """The cotangent of :func:`mean_nonbatch`: each element gets ``c_i / M``."""
    cot = np.asarray(cotangent, np.float64)
    m = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (cot / m).reshape((shape[0],) + (1,) * (len(shape) - 1))


# --------------------------------------------------------------------------- mpmath twins
MP_P_MIN_EXP = -126


def mp_log_sigmoid(x):
    return -mp.log1p(mp.exp(-x))


def mp_log_softmax(row):
    """mpmath twin of :func:`log_softmax` for one row (a list of mpf)."""
    m = max(row)
    k = row.index(m)
    lse1 = mp.log1p(mp.fsum(mp.exp(val - m) for j, val in enumerate(row) if j != k))
    return [val - m - lse1 for val in row]


def mp_clamped_log(q):
    p_min = mp.ldexp(1, MP_P_MIN_EXP)
    return mp.log(q if q >= p_min else p_min)


def mp_array(a):
    """float64 array → object array of exact mpf values."""
    a = np.asarray(a, np.float64)
    out = np.empty(a.shape, dtype=object)
    for idx, v in np.ndenumerate(a):
        out[idx] = mp.mpf(float(v))
    return out


def exact_elementwise_mean(elem, prediction, target, vector_params=(), **params):
    """Per-sample mean of an mpmath elementwise loss ``elem(x, y, **params)``.

    Parameters named in ``vector_params`` that are arrays are indexed by the last axis.
    """
    pred = np.asarray(prediction, dtype=object)
    tgt = np.asarray(target, np.float64)
    out = []
    for i in range(pred.shape[0]):
        total = mp.mpf(0)
        p_i = pred[i].reshape(-1) if pred.ndim > 1 else pred[i:i + 1]
        t_i = tgt[i].reshape(-1) if tgt.ndim > 1 else tgt[i:i + 1]
        last = pred.shape[-1] if pred.ndim > 1 else 1
        for k, (x, y) in enumerate(zip(p_i, t_i)):
            local = dict(params)
            for name in vector_params:
                v = params.get(name)
                if isinstance(v, np.ndarray):
                    local[name] = mp.mpf(float(v[k % last]))
                elif v is not None:
                    local[name] = mp.mpf(v)
            total += elem(mp.mpf(x), mp.mpf(float(y)), **local)
        out.append(total / len(p_i))
    return out
