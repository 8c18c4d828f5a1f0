"""Every torch loss under ``torch.compile`` gives the eager values and gradients; shape and
parameter errors still raise (at trace time) with the spec's text; data checks are skipped
inside compiled code (as with validate=False) instead of breaking the graph."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import harness, selection
from lossparity.bench import FUSED_LOSSES


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



@pytest.mark.parametrize("name", ["weighted_bce", "soft_dice", "kl_divergence", "cosine_similarity"])
def test_torch_compile_traces_the_closed_forms_as_functions(name):
    """Under ``torch.compile`` the closed forms' Functions are applied through ``Function.apply``
    (``_fused.run_fused``, ``_fused.run_fused_total``), which the compiler traces as a Function: one graph, no break (no host read
    of ``host_min_at_least`` either), and none of the eager call's argument unwrapping in it."""
    import torch

    import torch_impl

    x = torch.rand(8, 5, requires_grad=True)
    loss = torch_impl.get_loss(name)
    explained = torch._dynamo.explain(loss)(x, torch.rand(8, 5).round() if name != "kl_divergence" else
                                            torch.softmax(torch.rand(8, 5), dim=-1))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    targets = [node.target for node in explained.graphs[0].graph.nodes if node.op == "call_function"]
    assert any(type(t).__name__ == "AutogradFunctionApply" for t in targets), targets
    assert not any("unwrap_if_dead" in repr(t) for t in targets), targets

@pytest.mark.project
def test_shape_error_raises_inside_torch_compile():
    import torch

    import torch_impl

    compiled = torch.compile(torch_impl.get_loss("weighted_bce"), backend="aot_eager")
    with pytest.raises(ValueError, match="prediction and target must have the same shape"):
        compiled(torch.zeros(4, 3), torch.zeros(4, 2))


def _fused_cases(entry):
    """The fused path's cases: the first typical case, every extreme input grid (saturated logits,
    every parameter variant: where a compiler's vectorized exp/log would show) and the first
    extreme sample-weight case (the other weight cases run the same kernels with other weights;
    each case is a compilation, seconds on a CPU)."""
    cases = harness.cases_for(entry, ("typical", "extreme"))
    extreme = [c for c in cases if c.kind == "extreme"]
    weighted = [c for c in extreme if c.sample_weight is not None]
    return ([c for c in cases if c.kind == "typical"][:1] + [c for c in extreme if c.sample_weight is None]
            + weighted[:1])


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in selection.names() if n in FUSED_LOSSES])
def test_fused_path_matches_the_reference(name):
    """The fused path of the elementwise losses (the speed work: ``torch.compile`` with inductor, what
    ``lossparity.bench --fused`` times) against the float64 NumPy reference within the spec's float32
    tolerances (the training dtype, where a compiler's vectorized exp/log approximations would
    show), values and gradients: every fused case with reduction "mean", the first also with
    "none". ``fullgraph=True``: a graph break raises instead of running eager code; hitting the
    recompile limit raises too, so every case really runs compiled. (Each configuration is a
    compilation, seconds on a CPU: float64 and "sum" are left to the eager suite, whose code the
    compiler traces.)"""
    import torch
    import torch._dynamo

    entry = spec.get(name)
    failures, runs = [], 0
    cases = _fused_cases(entry)
    plan = [(c, "float32", "mean") for c in cases] + [(cases[0], "float32", "none")]
    with torch._dynamo.config.patch(recompile_limit=64, fail_on_recompile_limit_hit=True):
        torch._dynamo.reset()
        for case, dtype, reduction in plan:
            if not harness.supports(entry, case, reduction) or dtype not in case.dtypes:
                continue
            actual = harness.run_torch(entry, case, dtype, reduction, compiled=True)
            failures += harness.compare(actual, harness.reference(entry, case, dtype, reduction), entry, dtype,
                                        what=f"{case.id} [{reduction}]")
            runs += 1
        torch._dynamo.reset()
    assert runs >= 3
    assert not failures, "\n".join(failures)
