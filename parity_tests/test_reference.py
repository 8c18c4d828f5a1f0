"""The reference against truth: mpmath values at 80 digits, and the analytic gradient (vjp)
against high-precision central differences of the mpmath loss."""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

import spec
from spec.numerics import FD_STEP_EXP, MP_DPS, mp_array
from spec.validation import expected_message

from .conftest import CASES, get_case


@pytest.fixture(autouse=True)
def _precision():
    with mp.workdps(MP_DPS):
        yield


@pytest.mark.parametrize("name,case_id", CASES)
def test_reference_matches_mpmath(name, case_id):
    entry, case = get_case(name, case_id)
    params = entry.validate_params(case.params)
    ref = entry.reference(case.prediction, np.asarray(case.target, np.float64), **params)
    exact = np.array([float(v) for v in entry.exact(mp_array(case.prediction), case.target, **params)])
    result = entry.tolerances.exact_value.compare(ref, exact)
    assert result.ok, result.detail


@pytest.mark.parametrize("name,case_id", CASES)
def test_reference_gradient_matches_finite_differences(name, case_id):
    entry, case = get_case(name, case_id)
    if not case.smooth:
        pytest.skip("kink within the finite-difference step; convention tested in the parity tests")
    params = entry.validate_params(case.params)
    target = np.asarray(case.target, np.float64)
    cot = np.linspace(0.5, 1.5, case.prediction.shape[0])
    analytic = entry.reference_vjp(case.prediction, target, cot, **params)
    base = mp_array(case.prediction)
    h = mp.mpf(10) ** FD_STEP_EXP
    numeric = np.zeros(case.prediction.shape)
    rows = slice(None) if entry.batch_statistic else None
    for idx in np.ndindex(case.prediction.shape):
        i = idx[0]
        sel = rows if rows is not None else slice(i, i + 1)
        weights = cot[sel]
        plus, minus = base.copy(), base.copy()
        plus[idx] += h
        minus[idx] -= h
        f_plus = entry.exact(plus[sel], target[sel], **params)
        f_minus = entry.exact(minus[sel], target[sel], **params)
        numeric[idx] = float(sum(mp.mpf(float(w)) * (a - b) for w, a, b in zip(weights, f_plus, f_minus)) / (2 * h))
    result = entry.tolerances.exact_grad.compare(analytic, numeric)
    assert result.ok, result.detail


@pytest.mark.parametrize("name", spec.names())
def test_invalid_cases_are_rejected_by_the_spec(name):
    entry = spec.get(name)
    cases = entry.all_invalid_cases()
    assert cases, "every entry declares invalid inputs"
    for case in cases:
        message = expected_message(entry, case)
        assert message.startswith(f"{name}: "), message


@pytest.mark.parametrize("name", spec.names())
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
