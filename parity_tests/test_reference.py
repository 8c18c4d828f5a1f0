"""The reference against truth: mpmath values at 80 digits, and the analytic gradient (vjp)
against high-precision central differences of the mpmath loss."""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

import spec
from spec.numerics import FD_STEP_EXP, MP_DPS, mp_array
from spec.validation import expected_message

from parity_tests import selection

from .conftest import case_params, get_case

CASES = case_params()


def _f64(a):
    return None if a is None else np.asarray(a, np.float64)


@pytest.fixture(autouse=True)
def _precision():
    with mp.workdps(MP_DPS):
        yield


@pytest.mark.parametrize("name,case_id", CASES)
def test_reference_matches_mpmath(name, case_id):
    entry, case = get_case(name, case_id)
    if not entry.has_exact:
        pytest.skip("the entry provides no mpmath exact")
    params = entry.validate_params(case.params)
    target = _f64(case.target)
    extra = {"sample_weight": _f64(case.sample_weight)} if entry.is_batch_statistic(params) else {}
    ref = np.atleast_1d(entry.reference(case.prediction, target, **extra, **params))
    exact = np.array([float(v) for v in entry.exact(mp_array(case.prediction), target, **extra, **params)])
    result = entry.tolerances.exact_value.compare(ref, exact)
    assert result.ok, result.detail


@pytest.mark.parametrize("name,case_id", CASES)
def test_reference_gradient_matches_finite_differences(name, case_id):
    entry, case = get_case(name, case_id)
    if not entry.has_exact:
        pytest.skip("the entry provides no mpmath exact")
    if not case.smooth:
        pytest.skip("kink within the finite-difference step; convention tested in the parity tests")
    params = entry.validate_params(case.params)
    target = _f64(case.target)
    batch = entry.is_batch_statistic(params)
    if batch:  # one value per batch: scalar cotangent, every row moves the value
        cot = np.ones(1)
        extra = {"sample_weight": _f64(case.sample_weight)}
        analytic = entry.reference_vjp(case.prediction, target, 1.0, **extra, **params)
    else:
        cot = np.linspace(0.5, 1.5, case.prediction.shape[0])
        extra = {}
        analytic = entry.reference_vjp(case.prediction, target, cot, **params)
    base = mp_array(case.prediction)
    h = mp.mpf(10) ** FD_STEP_EXP
    numeric = np.zeros(case.prediction.shape)
    for idx in np.ndindex(case.prediction.shape):
        sel = slice(None) if batch else slice(idx[0], idx[0] + 1)
        weights = cot if batch else cot[sel]
        plus, minus = base.copy(), base.copy()
        plus[idx] += h
        minus[idx] -= h
        t_sel = None if target is None else target[sel]
        f_plus = entry.exact(plus[sel], t_sel, **extra, **params)
        f_minus = entry.exact(minus[sel], t_sel, **extra, **params)
        numeric[idx] = float(sum(mp.mpf(float(w)) * (a - b) for w, a, b in zip(weights, f_plus, f_minus)) / (2 * h))
    result = entry.tolerances.exact_grad.compare(analytic, numeric)
    assert result.ok, result.detail


@pytest.mark.parametrize("name", selection.names())
def test_invalid_cases_are_rejected_by_the_spec(name):
    entry = spec.get(name)
    cases = entry.all_invalid_cases()
    assert cases, "every entry declares invalid inputs"
    for case in cases:
        message = expected_message(entry, case)
        assert message.startswith(f"{name}: "), message


@pytest.mark.parametrize("name", selection.names())
def test_entry_is_complete(name):
    entry = spec.get(name)
    assert entry.formula and entry.grad_convention and entry.stability and entry.summary
    kinds = {c.kind for c in entry.cases()}
    assert {"typical", "extreme", "edge"} <= kinds
    ids = [c.id for c in entry.cases()]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert entry.torch_class and entry.keras_class


def test_reduction_contract():
    per_sample = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([0.0, 1.0, 2.0, 0.5])
    assert spec.reduce(per_sample, w, "sum") == pytest.approx(10.0)
    assert spec.reduce(per_sample, w, "mean") == pytest.approx(10.0 / 4)  # Σ w ℓ / N, not / Σ w
    np.testing.assert_allclose(spec.reduce(per_sample, w, "none"), per_sample * w)
    np.testing.assert_allclose(spec.per_sample_cotangent(4, w, "mean"), w / 4)
