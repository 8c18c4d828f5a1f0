"""Identities declared by the spec entries (focal γ=0 is BCE, Tversky(½,½) is Dice, ...), checked
on the reference, torch and Keras for every case of the entry whose inputs fit both sides."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import harness, selection


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
