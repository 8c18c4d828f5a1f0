"""Every torch loss under ``torch.compile`` gives the eager values and gradients; shape and
parameter errors still raise (at trace time) with the spec's text; data checks are skipped
inside compiled code (as with validate=False) instead of breaking the graph."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import harness, selection


def _tensors(entry, case):
    import torch

    x = torch.tensor(case.prediction, requires_grad=True)
    t = None if case.target is None else torch.tensor(
        case.target, dtype=torch.int64 if harness.is_integer(case.target) else torch.float64)
    return x, t


@pytest.mark.parametrize("name", selection.names())
def test_torch_compile_matches_eager(name):
    import torch

    import torch_impl

    entry = spec.get(name)
    case = entry.cases()[0]
    loss = torch_impl.get_loss(name, **case.params)
    compiled = torch.compile(loss, backend="aot_eager")
    results = []
    for fn in (loss, compiled):
        x, t = _tensors(entry, case)
        out = fn(x) if entry.single_input else fn(x, t)
        out.backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-15)


@pytest.mark.project
def test_torch_compile_inductor_weighted_bce():
    import torch

    import torch_impl

    entry = spec.get("weighted_bce")
    case = entry.cases()[0]
    loss = torch_impl.get_loss("weighted_bce", pos_weight=3.0)
    x, t = _tensors(entry, case)
    expected = loss(x, t)
    got = torch.compile(loss)(x, t)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


@pytest.mark.project
def test_shape_error_raises_inside_torch_compile():
    import torch

    import torch_impl

    compiled = torch.compile(torch_impl.get_loss("weighted_bce"), backend="aot_eager")
    with pytest.raises(ValueError, match="prediction and target must have the same shape"):
        compiled(torch.zeros(4, 3), torch.zeros(4, 2))
