"""torch and Keras against the reference (values and gradients, float32/float64, every
reduction, with and without sample weights), and against each other."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import spec
from parity_tests import harness

from parity_tests import selection

from .conftest import REDUCTIONS, case_params, dtype_params, get_case, reference_result

CASES = case_params()
DTYPES = dtype_params()


@functools.lru_cache(maxsize=None)
def torch_result(name, case_id, dtype, reduction):
    entry, case = get_case(name, case_id)
    return harness.run_torch(entry, case, dtype, reduction)


@functools.lru_cache(maxsize=None)
def keras_result(name, case_id, dtype, reduction):
    entry, case = get_case(name, case_id)
    return harness.run_keras(entry, case, dtype, reduction)


def _check(name, case_id, dtype, reduction, runner, label):
    entry, case = get_case(name, case_id)
    if dtype not in case.dtypes:
        pytest.skip(f"case not defined in {dtype}")
    if not harness.supports(entry, case, reduction):
        pytest.skip(f"{reduction!r} is not defined for this configuration (one value per batch)")
    actual = runner(name, case_id, dtype, reduction)
    assert np.all(np.isfinite(actual.grad)) or not np.all(np.isfinite(reference_result(name, case_id, dtype, reduction).grad))
    failures = harness.compare(actual, reference_result(name, case_id, dtype, reduction), entry, dtype, what=label)
    assert not failures, _report(entry, case, dtype, reduction, failures)


def _report(entry, case, dtype, reduction, failures):
    """Everything needed to reproduce a mismatch from the report alone."""
    params = {k: spec.messages.format_value(v) for k, v in case.params.items()}
    return "\n".join([f"loss {entry.name}, case {case.id} ({case.kind}), params {params}, dtype {dtype}, "
                      f"reduction {reduction!r}, gradient w.r.t. the prediction", *failures,
                      f"reproduce: {selection.repro(entry.name, case.id, dtype)}"])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,case_id", CASES)
def test_torch_matches_reference(name, case_id, dtype, reduction):
    _check(name, case_id, dtype, reduction, torch_result, "torch vs reference")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,case_id", CASES)
def test_keras_matches_reference(name, case_id, dtype, reduction):
    _check(name, case_id, dtype, reduction, keras_result, "keras vs reference")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,case_id", CASES)
def test_torch_matches_keras(name, case_id, dtype):
    entry, case = get_case(name, case_id)
    for reduction in entry.reductions(entry.validate_params(case.params)):
        failures = harness.compare(torch_result(name, case_id, dtype, reduction),
                                   keras_result(name, case_id, dtype, reduction), entry, dtype,
                                   what=f"torch vs keras [{reduction}]",
                                   reference=reference_result(name, case_id, dtype, reduction))
        assert not failures, _report(entry, case, dtype, reduction, failures)


def _first_case_per_params():
    seen, out = set(), []
    for p in CASES:
        name, case_id = p.values
        entry, case = get_case(name, case_id)
        key = (name, repr(sorted((k, repr(v)) for k, v in case.params.items())))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


PER_PARAMS = _first_case_per_params()


@pytest.mark.parametrize("name,case_id", PER_PARAMS)
def test_functional_equals_module(name, case_id):
    entry, case = get_case(name, case_id)
    for reduction in entry.reductions(entry.validate_params(case.params)):
        a = harness.run_torch(entry, case, "float64", reduction, functional=True)
        b = torch_result(name, case_id, "float64", reduction)
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_array_equal(a.grad, b.grad)
        c = harness.run_keras(entry, case, "float64", reduction, functional=True)
        d = keras_result(name, case_id, "float64", reduction)
        np.testing.assert_array_equal(c.value, d.value)
        np.testing.assert_array_equal(c.grad, d.grad)


@pytest.mark.parametrize("compiled", ["graph", "xla"])
@pytest.mark.parametrize("name,case_id", PER_PARAMS)
def test_keras_compiled_matches_reference(name, case_id, compiled):
    """Under tf.function and jit_compile=True (data checks are skipped there, shapes are not)."""
    entry, case = get_case(name, case_id)
    for dtype in selection.dtypes():
        actual = harness.run_keras(entry, case, dtype, "mean", compiled=compiled)
        failures = harness.compare(actual, reference_result(name, case_id, dtype, "mean"), entry, dtype,
                                   what=f"keras {compiled}")
        assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name,case_id", [p for p in PER_PARAMS])
def test_torch_gradcheck(name, case_id):
    import torch

    import torch_impl

    entry, case = get_case(name, case_id)
    reduction = entry.reductions(entry.validate_params(case.params))[-1]
    loss = torch_impl.get_loss(name, reduction=reduction, **case.params)
    x = torch.tensor(case.prediction, dtype=torch.float64, requires_grad=True)
    if entry.single_input:
        fn = loss
    else:
        t = torch.tensor(case.target, dtype=torch.int64 if harness.is_integer(case.target) else torch.float64)
        w = None if case.sample_weight is None else torch.tensor(case.sample_weight, dtype=torch.float64)

        def fn(a):
            return loss(a, t, w)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)
