"""How much a float64 reference result may differ between machines: Monte Carlo arithmetic on its
elementary functions.

NumPy's ``exp``, ``log``, ``log1p``, ``expm1``, ``tanh``, ``logaddexp``, ``power`` … are not
correctly rounded: their SIMD and libm paths differ between CPUs (AVX2, AVX-512, NEON) and
library versions in the last bit or two. A stored reference value computed on one machine and
recomputed on another therefore differs by that rounding, amplified by the computation's
conditioning (an element that comes out of a cancellation, ``1 - p`` for ``p ≈ 1``, keeps only
the digits the cancellation leaves).

:func:`perturbed_elementary_functions` replaces those functions, for the duration of a ``with``
block, by versions whose every result is moved by a seeded random amount of up to ``ulps`` units
in the last place: another machine's libm, simulated. :func:`spread` runs a computation a few
times under it and returns, per element, how far the results moved: the element's sensitivity to
last-bit differences (Parker's Monte Carlo arithmetic; the CADNA / CESTAC idea). A comparison of
stored with fresh numbers allows ``SAFETY`` times that spread plus ``BASE_RTOL`` relative (the
rounding of the correctly rounded operations, whose order can change with FMA contraction and
BLAS kernels: a few ulps of a sum of same-sign terms): a real change of the math is still seen
in every element that the machine's rounding does not already blur.

Only functions looked up as ``numpy.<name>`` at call time are perturbed: the spec's references
call ``np.exp(...)`` etc. (the ``**`` operator and ``math`` functions on Python floats are not).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np

#: numpy functions whose results are not correctly rounded (or may be computed by a SIMD path)
ELEMENTARY = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp", "logaddexp2",
              "tanh", "sinh", "cosh", "sin", "cos", "tan", "arctan", "arctanh", "power", "float_power")
#: units in the last place the simulated libm may be off by (NumPy's SIMD exp/log are within ~3)
ULPS = 4
#: perturbed runs behind one spread estimate, and the factor on it
RUNS = 3
SAFETY = 4.0
#: relative allowance for the correctly rounded operations (sum order, FMA, BLAS)
BASE_RTOL = 1e-13
SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)

_ORIGINAL = {name: getattr(np, name) for name in ELEMENTARY}


class _Perturbed:
    """A ufunc whose float results are moved by up to ``ulps`` ulps (other attributes forwarded)."""

    def __init__(self, ufunc, rng: np.random.Generator, ulps: float):
        self._ufunc, self._rng, self._ulps = ufunc, rng, ulps

    def __call__(self, *args, **kwargs):
        result = self._ufunc(*args, **kwargs)
        return _nudge(result, self._rng, self._ulps)

    def __getattr__(self, attr):
        return getattr(self._ufunc, attr)


def _nudge(result, rng, ulps):
    if isinstance(result, tuple):
        return tuple(_nudge(r, rng, ulps) for r in result)
    arr = np.asarray(result)
    if arr.dtype.kind != "f":
        return result
    eps = np.finfo(arr.dtype).eps
    factor = 1.0 + ulps * eps * rng.uniform(-1.0, 1.0, size=arr.shape)
    moved = (arr * factor).astype(arr.dtype, copy=False)
    if isinstance(result, np.ndarray):
        if result.flags.writeable:  # results written to ``out=`` buffers stay in them
            result[...] = moved
            return result
        return moved
    return arr.dtype.type(moved)


@contextlib.contextmanager
def perturbed_elementary_functions(*, ulps: float = ULPS, seed: int = 0) -> Iterator[None]:
    """Within the block, ``np.exp``, ``np.log``, … return results moved by up to ``ulps`` ulps
    (seeded, uniform). Nested blocks perturb the original functions with their own seed."""
    rng = np.random.default_rng(seed)
    saved = {name: getattr(np, name) for name in ELEMENTARY}
    try:
        for name, ufunc in _ORIGINAL.items():
            setattr(np, name, _Perturbed(ufunc, rng, ulps))
        yield
    finally:
        for name, fn in saved.items():
            setattr(np, name, fn)


def spread(compute: Callable[[], Mapping[str, np.ndarray]], *, runs: int = RUNS, ulps: float = ULPS,
           baseline: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per key and element, the largest ``|perturbed - baseline|`` over ``runs`` perturbed runs of
    ``compute()`` (a mapping of float arrays; other entries are ignored)."""
    baseline = compute() if baseline is None else baseline
    out = {k: np.zeros(np.shape(v)) for k, v in baseline.items() if _is_float(v)}
    for run in range(runs):
        with perturbed_elementary_functions(ulps=ulps, seed=1_000 + run):
            moved = compute()
        for key in out:
            with np.errstate(invalid="ignore"):
                diff = np.abs(np.asarray(moved[key], np.float64) - np.asarray(baseline[key], np.float64))
            out[key] = np.fmax(out[key], np.where(np.isnan(diff), 0.0, diff))
    return out


def _is_float(value) -> bool:
    return np.asarray(value).dtype.kind == "f"


def allowance(fresh, spread_of_fresh) -> np.ndarray:
    """The machine-to-machine allowance per element: ``BASE_RTOL |fresh| + SAFETY spread`` plus the
    smallest normal float64 (below it float64 holds no relative accuracy)."""
    with np.errstate(invalid="ignore"):
        return BASE_RTOL * np.abs(np.asarray(fresh, np.float64)) + SAFETY * spread_of_fresh + SMALLEST_NORMAL


def within(stored, fresh, spread_of_fresh) -> np.ndarray:
    """Elementwise: ``stored`` equals ``fresh`` up to :func:`allowance` (NaN equals NaN, inf
    equals itself)."""
    stored = np.asarray(stored, np.float64)
    fresh = np.asarray(fresh, np.float64)
    if stored.shape != fresh.shape:
        return np.zeros(fresh.shape, bool)
    same = (stored == fresh) | (np.isnan(stored) & np.isnan(fresh))
    with np.errstate(invalid="ignore"):
        close = np.abs(stored - fresh) <= allowance(fresh, spread_of_fresh)
    return same | close
