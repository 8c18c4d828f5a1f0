"""Identities declared by the spec entries (focal γ=0 is BCE, Tversky(½,½) is Dice, ...), checked
on the reference, torch and Keras for every case of the entry whose inputs fit both sides."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import harness, selection
from spec.core import Case


def _identity_params():
    out = []
    for entry in selection.entries():
        for k, ident in enumerate(entry.identities):
            out.append(pytest.param(entry.name, k, id=f"{entry.name}={ident.other}#{k}"))
    return out


IDENTITIES = _identity_params()


@pytest.mark.parametrize("name,k", IDENTITIES)
def test_identity(name, k):
    entry = spec.get(name)
    ident = entry.identities[k]
    other = spec.get(ident.other)
    checked = 0
    for case in entry.cases():
        if not harness.fits(entry, case.params, ident.params):
            continue
        domain = entry.prediction_domain(entry.validate_params(case.params))
        if other.prediction_domain(other.validate_params(ident.other_params)) != domain:
            continue
        for reduction in set(entry.reductions(entry.validate_params(ident.params))) & set(
                other.reductions(other.validate_params(ident.other_params))):
            runs = [
                (harness.reference(entry, case, "float64", reduction, params=ident.params),
                 harness.reference(other, case, "float64", reduction, params=ident.other_params), "reference"),
                (harness.run_torch(entry, case, "float64", reduction, params=ident.params),
                 harness.run_torch(other, case, "float64", reduction, params=ident.other_params), "torch"),
                (harness.run_keras(entry, case, "float64", reduction, params=ident.params),
                 harness.run_keras(other, case, "float64", reduction, params=ident.other_params), "keras"),
            ]
            for a, b, label in runs:
                np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-14, err_msg=f"{label} {case.id}")
                np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-14, err_msg=f"{label} {case.id}")
        checked += 1
    assert checked > 0, "the identity was checked on at least one case"


COUNT_ENTRIES = ("count_penalty", "mse_count_penalty", "cce_count_penalty")


# our catalog's count entries, when selected (a user selection leaves them out, as every generic test does)
@pytest.mark.parametrize("name", [e.name for e in selection.entries() if e.name in COUNT_ENTRIES])
def test_count_relaxation_approaches_the_hard_count(name):
    """``temperature → 0`` recovers the hard count: on inputs at least ``δ`` from the threshold
    the gap is at most factor · M · σ(-δ/τ) (reference, torch and Keras alike) and shrinks with τ."""
    entry = spec.get(name)
    rng = np.random.default_rng(0)
    t, delta = 0.3, 0.05
    if name == "cce_count_penalty":
        # softmax probabilities away from t by >= δ: resample the rows that come too close
        x = rng.normal(0.0, 2.0, size=(64, 5))
        p = np.exp(x - x.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        x = x[np.all(np.abs(p - t) >= delta, axis=-1)][:8]
        target = np.eye(5)[rng.integers(0, 5, size=x.shape[0])]
    else:
        x = rng.uniform(-1.0, 1.0, size=(8, 6))
        x = np.where(np.abs(x - t) < delta, t + np.sign(x - t + 1e-12) * delta, x)
        target = None if entry.single_input else rng.normal(size=x.shape)
    assert x.shape[0] >= 4
    case = Case("relaxation", "typical", {"threshold": t, "factor": 2.0}, x, target)
    m = x.shape[-1]
    gaps = []
    for tau in (1e-1, 1e-2, 1e-3):
        soft = {"threshold": t, "factor": 2.0, "temperature": tau}
        hard = {"threshold": t, "factor": 2.0}
        bound = 2.0 * m / (1.0 + np.exp(delta / tau))
        for run in (harness.reference, harness.run_torch, harness.run_keras):
            a = run(entry, case, "float64", "mean", params=soft).value
            b = run(entry, case, "float64", "mean", params=hard).value
            assert np.all(np.abs(a - b) <= bound + 1e-13 * np.abs(b)), (run.__name__, tau, np.abs(a - b).max(), bound)
        gaps.append(np.abs(a - b).max())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-12
