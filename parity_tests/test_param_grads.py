"""Gradients w.r.t. differentiable parameters (``Param(differentiable=True)``: pos_weight,
alpha, ...) given as tensors / variables: torch autograd and Keras GradientTape against central
differences of the float64 reference."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import selection


def _params():
    out = []
    for entry in selection.entries():
        for p in entry.params:
            if not p.differentiable:
                continue
            for case in entry.cases():
                value = entry.validate_params(case.params)[p.name]
                if case.kind == "typical" and value is not None:
                    out.append(pytest.param(entry.name, case.id, p.name, id=f"{entry.name}-{case.id}-{p.name}"))
    return out


PARAMS = _params()


def _numeric_grad(entry, case, name):
    params = entry.validate_params(case.params)
    base = np.atleast_1d(np.asarray(params[name], np.float64))
    grad = np.zeros_like(base)
    for k in range(base.size):
        h = 1e-6 * max(1.0, abs(base[k]))
        vals = []
        for sign in (1, -1):
            moved = base.copy()
            moved[k] += sign * h
            p = dict(params, **{name: moved if np.ndim(params[name]) else moved.item()})
            vals.append(float(entry.reference_reduced(case.prediction, case.target,
                                                      sample_weight=case.sample_weight, **p)))
        grad[k] = (vals[0] - vals[1]) / (2 * h)
    return grad.reshape(np.shape(params[name]))


@pytest.mark.parametrize("name,case_id,param", PARAMS)
def test_parameter_gradient(name, case_id, param):
    import tensorflow as tf
    import torch

    import tf_impl
    import torch_impl

    entry = spec.get(name)
    case = next(c for c in entry.cases() if c.id == case_id)
    params = entry.validate_params(case.params)
    expected = _numeric_grad(entry, case, param)

    p_t = torch.tensor(params[param], dtype=torch.float64, requires_grad=True)
    fn = torch_impl.get_functional(name)
    sw = None if case.sample_weight is None else torch.tensor(case.sample_weight)
    out = fn(torch.tensor(case.prediction), torch.tensor(case.target), sample_weight=sw,
             **dict(params, **{param: p_t}))
    out.backward()
    np.testing.assert_allclose(p_t.grad.numpy(), expected, rtol=1e-6, atol=1e-9)

    p_k = tf.Variable(np.asarray(params[param], np.float64))
    with tf.GradientTape() as tape:
        out_k = tf_impl.get_functional(name)(
            tf.constant(case.target), tf.constant(case.prediction),
            sample_weight=None if case.sample_weight is None else tf.constant(case.sample_weight),
            **dict(params, **{param: p_k}))
    np.testing.assert_allclose(tape.gradient(out_k, p_k).numpy(), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out_k.numpy(), out.detach().numpy(), rtol=1e-12)
