"""The fast paths of the speed work: closed-form backward of the logit losses (torch ``autograd.Function``,
Keras ``tf.custom_gradient``), the framework-fused cross-entropy kernels, and the one-pass input
validation. Their values and gradients are checked by the generic parity suite like any other
implementation; these tests pin what makes them fast (which path runs, what backward keeps, how
many passes the checks make) and their fallbacks."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from lossparity import bench
from spec.validation import check_inputs

pytestmark = pytest.mark.project

LOGIT_LOSSES = [
    ("weighted_bce", {"pos_weight": 3.0}, "WeightedBCEWithLogits"),
    ("weighted_bce", {"pos_weight": np.array([0.5, 2.0, 27.0])}, "WeightedBCEWithLogits"),
    ("binary_focal", {"gamma": 2.0, "alpha": 0.25}, "BinaryFocalWithLogits"),
    ("binary_focal", {"gamma": 0.5}, "BinaryFocalWithLogits"),
    ("binary_focal", {"gamma": 0.0}, "BinaryFocalWithLogits"),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(LOGIT_LOSSES)]
#: the per-sample overlap family: one closed-form Function (counts + ratio) for every member
OVERLAP_LOSSES = [
    ("soft_dice", {}),
    ("soft_dice", {"smooth": 0.0, "from_logits": False}),
    ("soft_jaccard", {"smooth": 0.5}),
    ("tversky", {"alpha": 0.9, "beta": 0.1}),
    ("tversky", {"alpha": 0.3, "beta": 0.0, "smooth": 0.0}),
    ("soft_fbeta", {"beta": 2.0}),
]
OVERLAP_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(OVERLAP_LOSSES)]


def _inputs(torch, dtype, shape=(4, 5, 3), probabilities=False):
    g = torch.Generator().manual_seed(0)
    x = (3.0 * torch.randn(shape, generator=g, dtype=dtype))
    x.view(-1)[:11] = torch.tensor([-1e4, -89.0, -88.0, -40.0, -20.0, 0.0, 20.0, 40.0, 88.0, 89.0, 1e4], dtype=dtype)
    y = (torch.rand(shape, generator=g) < 0.3).to(dtype)
    y[1] = torch.rand(shape[1:], generator=g, dtype=dtype)  # soft targets in one sample
    if probabilities:
        x = torch.sigmoid(x)
    return x.requires_grad_(), y


#: every closed-form Function: the logit losses, then the overlap family (one Function for all)
CLOSED_FORMS = LOGIT_LOSSES + [(n, p, "OverlapWithCounts") for n, p in OVERLAP_LOSSES]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params,fn_name", CLOSED_FORMS, ids=IDS + OVERLAP_IDS)
def test_torch_closed_form_function_runs_and_saves_one_buffer(name, params, fn_name, dtype):
    torch = pytest.importorskip("torch")
    import torch_impl

    x, y = _inputs(torch, getattr(torch, dtype), probabilities=not params.get("from_logits", True))
    loss = torch_impl.get_loss(name, reduction="none", **params)
    out = loss(x, y)
    assert type(out.grad_fn).__name__ == f"{fn_name}Backward"
    # one input-sized buffer (the elementwise gradient; autograd of the overlap counts kept four);
    # validation records nothing
    step = lambda: torch.autograd.grad(loss(x, y).sum(), x)  # noqa: E731
    assert bench.saved_for_backward_bytes(step) == x.numel() * x.element_size()
    # the forward-only path (no gradient wanted) computes the same values, without the Function
    with torch.no_grad():
        plain = loss(x, y)
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, out.detach(), rtol=0, atol=0)
    # not twice differentiable: an error, never a silently wrong second derivative
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("name,param", [("weighted_bce", "pos_weight"), ("binary_focal", "alpha")])
def test_torch_parameter_requiring_grad_takes_the_autograd_path(name, param):
    torch = pytest.importorskip("torch")
    import torch_impl

    x, y = _inputs(torch, torch.float64)
    p = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    fn = torch_impl.get_functional(name)
    out = fn(x, y, reduction="none", **{param: p})
    assert "WithLogits" not in type(out.grad_fn).__name__
    gx, gp = torch.autograd.grad(out.sum(), (x, p))
    # the x-gradient equals the closed form's
    ref = fn(x, y, reduction="none", **{param: 0.3})
    (gx_fused,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(gx, gx_fused, rtol=1e-9, atol=1e-12)
    assert torch.isfinite(gp)


def _graph_has(out, node: str) -> bool:
    """Whether the autograd graph of ``out`` has a node named ``node``."""
    seen, todo = set(), [out.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ == node:
            return True
        todo.extend(f for f, _ in fn.next_functions)
    return False


def _overlap_cases():
    for name in ("soft_dice", "soft_jaccard", "tversky", "soft_fbeta"):
        for i, case in enumerate(spec.get(name).cases()):
            if case.params.get("average", "samples") == "samples":
                yield pytest.param(name, case, id=f"{name}-{case.id}")


@pytest.mark.parametrize("name,case", list(_overlap_cases()))
def test_torch_overlap_closed_form_equals_the_autograd_path(name, case):
    """On every spec case (typical, extreme, edge: empty masks, D = 0, saturated logits), the
    closed-form Function and the autograd path (taken when the target requires grad; twice
    differentiable) give the same values and prediction gradients, so the path a call takes never
    changes what it computes."""
    torch = pytest.importorskip("torch")
    import torch_impl

    x = torch.tensor(case.prediction, dtype=torch.float64, requires_grad=True)
    sw = None if case.sample_weight is None else torch.tensor(case.sample_weight, dtype=torch.float64)
    loss = torch_impl.get_loss(name, reduction="none", **case.params)
    results = []
    for target_needs_grad in (False, True):
        t = torch.tensor(case.target, dtype=torch.float64, requires_grad=target_needs_grad)
        out = loss(x, t, sample_weight=sw)
        assert _graph_has(out, "OverlapWithCountsBackward") is not target_needs_grad
        cot = torch.linspace(0.5, 2.0, out.numel(), dtype=torch.float64).reshape(out.shape)
        (gx,) = torch.autograd.grad(out, x, cot)
        results.append((out.detach(), gx))
    (v0, g0), (v1, g1) = results
    torch.testing.assert_close(v0, v1, rtol=1e-12, atol=0, equal_nan=True)
    scale = float(g1.abs().max()) if g1.numel() else 0.0
    torch.testing.assert_close(g0, g1, rtol=1e-9, atol=1e-12 * scale, equal_nan=True)


@pytest.mark.parametrize("name", ["weighted_bce", "binary_focal", "soft_dice", "tversky"])
def test_torch_func_transforms_take_the_autograd_path(name):
    """``torch.func.grad`` / ``vmap`` (per-sample gradients, e.g. DP-SGD) keep working: inside a
    transform the autograd path runs, with the closed form's gradient."""
    torch = pytest.importorskip("torch")
    import torch_impl

    x, y = _inputs(torch, torch.float64)
    fn = torch_impl.get_functional(name)
    (expected,) = torch.autograd.grad(fn(x, y), x)
    got = torch.func.grad(lambda x: fn(x, y))(x.detach())
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    per_sample = torch.func.vmap(torch.func.grad(lambda xi, yi: fn(xi[None], yi[None], validate=False)))(
        x.detach(), y)
    torch.testing.assert_close(per_sample, expected * x.shape[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["weighted_bce", "soft_dice", "kl_sparsity"])
def test_torch_closed_forms_apply_their_function_without_its_python_layer(name, monkeypatch):
    """The closed forms call their Function's C++ ``apply`` (``_fused.apply_eager``), not
    ``Function.apply``'s Python layer, and keep what that layer does outside transforms: a prediction
    left dead by a finished ``torch.func`` transform (leaked from inside it) is unwrapped, so the
    gradient reaches the tensor it wraps, as with ``Function.apply``; a dead target (no gradient) gives
    the loss and gradient of the tensor it wraps."""
    torch = pytest.importorskip("torch")
    import torch_impl

    def python_layer(*args, **kwargs):
        raise AssertionError("Function.apply's Python layer was called")

    x, y = _inputs(torch, torch.float64)
    loss = torch_impl.get_functional(name)
    if name == "kl_sparsity":
        x = torch.sigmoid(x).detach().flatten(1)

        def fn(x, y):
            return loss(x, target=0.1)
    else:
        fn = loss
    (expected,) = torch.autograd.grad(fn(x.requires_grad_(), y), x)
    leaked = {}

    def keep(t):
        leaked["x"] = t
        if name != "kl_sparsity":
            leaked["y"] = t.detach() * 0.0 + y  # a tensor of the transform's level that needs no gradient
        return t.sum()

    x_leaked = x.detach().requires_grad_()
    torch.func.grad(keep)(x_leaked)
    dead = leaked["x"]
    assert torch._C._functorch.is_functorch_wrapped_tensor(dead)
    monkeypatch.setattr(torch.autograd.Function, "apply", python_layer)
    fn(dead, y).backward()
    torch.testing.assert_close(x_leaked.grad, expected, rtol=1e-12, atol=1e-15)
    if name != "kl_sparsity":
        dead_y = leaked["y"]
        assert torch._C._functorch.is_functorch_wrapped_tensor(dead_y) and not dead_y.requires_grad
        (got,) = torch.autograd.grad(fn(x, dead_y), x)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["weighted_bce", "binary_focal", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy", "soft_dice"])
def test_torch_validation_adds_nothing_to_the_autograd_graph(name):
    torch = pytest.importorskip("torch")
    import torch_impl

    entry = spec.get(name)
    case = next(c for c in entry.cases() if c.kind == "typical")
    x = torch.tensor(case.prediction, dtype=torch.float32, requires_grad=True)
    t = torch.tensor(case.target, dtype=torch.int64 if case.target.dtype.kind in "iu" else torch.float32)
    saved = {}
    for validate in (True, False):
        loss = torch_impl.get_loss(name, validate=validate, **case.params)
        saved[validate] = bench.saved_for_backward_bytes(lambda: torch.autograd.grad(loss(x, t), x))
    assert saved[True] == saved[False]


class _Counting:
    """Wraps an adapter, counting the value reads ``check_inputs`` makes (and how many arrays a
    batched read covers)."""

    def __init__(self, ops):
        self.ops, self.calls = ops, []

    def __getattr__(self, name):
        attr = getattr(self.ops, name)
        if name in ("nonfinite_min_max", "has_nonfinite", "min_max", "nonfinite_min_max_many", "all_within"):
            def counted(x, _attr=attr, _name=name):
                self.calls.append((_name, len(x)) if _name in ("nonfinite_min_max_many", "all_within") else _name)
                return _attr(x)
            return counted
        return attr


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_validation_reads_each_floating_array_once(framework):
    if framework == "torch":
        torch = pytest.importorskip("torch")
        from torch_impl._core import OPS
        make = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    else:
        tf = pytest.importorskip("tensorflow")
        from tf_impl._core import OPS
        make = lambda a: tf.constant(a, dtype=tf.float32)  # noqa: E731
    entry = spec.get("weighted_bce")
    params = entry.validate_params({"from_logits": False})  # the prediction has a domain
    p = make(np.array([[0.2, 0.9, 0.5], [0.1, 0.4, 0.7]]))
    t = make(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    w = make(np.array([1.0, 2.0]))
    ops = _Counting(OPS)
    check_inputs(entry, params, p, t, w, ops)
    # prediction, target, sample_weight: one pass each (NaN/inf and the domain from it), read
    # together (one host read for the three): a valid call is one yes/no
    assert ops.calls == [("all_within", 3)]
    # an invalid one (a label of 2) is read once more, to find and word the failing check
    ops = _Counting(OPS)
    with pytest.raises(ValueError, match="target"):
        check_inputs(entry, params, p, make(np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])), w, ops)
    assert ops.calls == [("all_within", 3), ("nonfinite_min_max_many", 3)]
    # the same messages on invalid data (the whole catalog: parity_tests/test_errors.py)
    bad = make(np.array([[0.2, np.nan, 0.5], [0.1, 0.4, 0.7]]))
    with pytest.raises(ValueError, match="prediction"):
        check_inputs(entry, params, bad, t, None, OPS)
    inf = make(np.array([[0.2, 0.3, 0.5], [0.1, 0.4, np.inf]]))
    with pytest.raises(ValueError, match="target"):
        check_inputs(entry, params, p, inf, None, OPS)
    out = make(np.array([[0.2, 1.5, 0.5], [0.1, 0.4, 0.7]]))
    with pytest.raises(ValueError, match="1.5"):
        check_inputs(entry, params, out, t, None, OPS)


@pytest.mark.parametrize("name,params", [(n, p) for n, p, _ in LOGIT_LOSSES] + OVERLAP_LOSSES,
                         ids=IDS + OVERLAP_IDS)
def test_keras_closed_form_gradient_needs_no_autodiff_of_the_forward(name, params):
    """The Keras twin runs through ``tf.custom_gradient`` (an ``IdentityN`` with a gradient
    override in the traced graph) and its closed-form gradient is torch's, at x = 0 (the kink of
    the forward's relu/abs) and at saturation included, eagerly and under ``tf.function``."""
    tf = pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")
    import tf_impl
    import torch_impl

    x, y = _inputs(torch, torch.float64, probabilities=not params.get("from_logits", True))
    ours = torch_impl.get_loss(name, reduction="none", **params)
    (gt,) = torch.autograd.grad(ours(x, y).sum(), x)
    xk = tf.constant(x.detach().numpy())
    with tf.GradientTape() as tape:
        tape.watch(xk)
        out = tf.reduce_sum(tf_impl.get_loss(name, reduction="none", **params)(tf.constant(y.numpy()), xk))
    gk = tape.gradient(out, xk).numpy()
    np.testing.assert_allclose(gk, gt.numpy(), rtol=1e-11, atol=1e-300)
    # under tf.function the same gradient (the custom gradient is traced)
    @tf.function
    def graph_grad(xk):
        with tf.GradientTape() as tape:
            tape.watch(xk)
            out = tf.reduce_sum(tf_impl.get_loss(name, reduction="none", **params)(tf.constant(y.numpy()), xk))
        return tape.gradient(out, xk)

    np.testing.assert_allclose(graph_grad(xk).numpy(), gt.numpy(), rtol=1e-11, atol=1e-300)
    ops = {op.type for op in graph_grad.get_concrete_function(xk).graph.get_operations()}
    assert "IdentityN" in ops
    forward = tf.function(lambda xk: tf_impl.get_loss(name, **params)(tf.constant(y.numpy()), xk))
    assert any(op.type == "IdentityN" and op.get_attr("_gradient_op_type")
               for op in forward.get_concrete_function(xk).graph.get_operations())


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_torch_cross_entropy_uses_the_fused_kernel(name):
    torch = pytest.importorskip("torch")
    import torch_impl

    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 5, (4, 6), generator=g)
    y = labels if name.startswith("sparse") else torch.nn.functional.one_hot(labels, 5).double()
    out = torch_impl.get_loss(name, reduction="none")(x, y)
    names = []
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None:
            names.append(type(fn).__name__)
            stack += [f for f, _ in fn.next_functions]
    if name.startswith("sparse"):
        assert any(n.startswith("NllLoss") for n in names), names
    else:
        assert not any(n.startswith("Gather") for n in names), names
    # the same values as the log-softmax form
    logq = torch.log_softmax(x, dim=-1)
    yy = torch.nn.functional.one_hot(labels, 5).double()
    torch.testing.assert_close(out, -(yy * logq).sum(-1).mean(-1), rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,module,function,args", [
    ("weighted_bce", "classification", "WeightedBCEWithLogitsTotal", (1.0,)),
    ("weighted_bce", "classification", "WeightedBCEWithLogitsTotal", (3.0,)),
    ("cosine_similarity", "regression", "CosineSimilarityTotal", (1, 1e-7)),
    ("kl_divergence", "divergence", "KLDivergenceTotal", (False,)),
], ids=["weighted_bce", "weighted_bce-3", "cosine_similarity", "kl_divergence"])
def test_torch_closed_form_totals_give_the_closed_form_gradient_times_the_scale(name, module, function, args, dtype):
    """A reduced closed form saves its gradient unscaled and backward multiplies it by the cotangent times
    the reduction's scale c (one 0-d product): for a cotangent of 1 or a power of two (a loss scaler's)
    the gradient is ``fl(grad · c)`` times it, bit for bit, as when forward scaled the saved gradient."""
    torch = pytest.importorskip("torch")
    import importlib

    import torch_impl

    if name == "cosine_similarity" and dtype == "float64":
        pytest.skip("float64 cosine takes the scaled autograd form")
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 7, generator=g, dtype=dt)
    y = torch.rand(16, 7, generator=g, dtype=dt)
    if name == "kl_divergence":
        x, y = torch.softmax(x, dim=-1), torch.softmax(3 * y, dim=-1)
    fn = getattr(importlib.import_module(f"torch_impl.{module}"), function)
    _, grad = fn.fn(x, y, *args, True)
    c = 1.0 / (x.numel() if name != "cosine_similarity" else x.shape[0])
    expected = grad * torch.tensor(c, dtype=dt)
    params = {"pos_weight": args[0]} if name == "weighted_bce" else {}
    loss = torch_impl.get_loss(name, **params)
    xs = x.clone().requires_grad_()
    out = loss(xs, y)
    assert type(out.grad_fn).__name__.startswith(function), out.grad_fn
    for cotangent in (1.0, 2.0 ** 16, 2.0 ** -3):
        (got,) = torch.autograd.grad(out, xs, torch.tensor(cotangent, dtype=dt), retain_graph=True)
        assert torch.equal(got, expected * cotangent), (name, cotangent)


def _through_function(torch, loss, x, y, fn_name):
    """``loss(x, y)`` with x needing a gradient: the value (from the closed-form Function ``fn_name``,
    asserted) and the gradient of its sum."""
    xs = x.clone().requires_grad_()
    out = loss(xs, y)
    assert type(out.grad_fn).__name__.startswith(fn_name), out.grad_fn
    (grad,) = torch.autograd.grad(out.sum(), xs)
    return out, grad


def _assert_one_buffer_function(torch, loss, x, y):
    """What every closed-form Function keeps: one input-sized buffer saved for backward, the same
    values without a gradient (no Function then), and a second derivative that raises instead of
    being silently wrong."""
    step = lambda: torch.autograd.grad(loss(x, y).sum(), x)  # noqa: E731
    assert bench.saved_for_backward_bytes(step) == x.numel() * x.element_size()
    with torch.no_grad():
        plain = loss(x, y)
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, loss(x, y).detach(), rtol=0, atol=0, equal_nan=True)
    (g1,) = torch.autograd.grad(loss(x, y).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g1.sum(), x)


def _ops_of(torch, run) -> list[str]:
    """The ATen ops ``run()`` dispatches, by name (``aten.masked_fill_.Scalar`` -> ``masked_fill_.Scalar``)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    with Ops() as ops:
        run()
    return ops.names


@pytest.mark.parametrize("tiny", [True, False], ids=["norms-below-epsilon", "none-below"])
@pytest.mark.parametrize("shape,axis", [((6, 5), -1), ((3, 4, 5), -1), ((3, 4, 5), 1)])
def test_torch_cosine_closed_form_in_float64_equals_the_scaled_autograd_path(shape, axis, tiny):
    """float32 cosine similarity is one Function computed in float64 (no scaling: every float32 square
    is exact there); it saves one buffer, and its value and gradient equal the scaled autograd form
    (float64 inputs) on vectors that overflow a float32 norm (1e30), sit below ε (1e-9) or are 0;
    without a prediction norm below ε the CPU skips the mask (same values)."""
    torch = pytest.importorskip("torch")
    import torch_impl

    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g, dtype=torch.float32)
    y = torch.randn(shape, generator=g, dtype=torch.float32)
    x[0] *= 1e30
    if tiny:
        x[1] *= 1e-9
        x[2] = 0.0
    y[-1] *= 1e-30
    for reduction in ("none", "mean", "sum"):
        loss = torch_impl.get_loss("cosine_similarity", axis=axis, reduction=reduction)
        out, grad = _through_function(torch, loss, x, y, "CosineSimilarity")
        xd = x.double().requires_grad_()
        ref = loss(xd, y.double())
        assert "CosineSimilarity" not in type(ref.grad_fn).__name__
        (ref_grad,) = torch.autograd.grad(ref.sum(), xd)
        torch.testing.assert_close(out.double(), ref.detach(), rtol=2e-7, atol=1e-7)
        torch.testing.assert_close(grad.double(), ref_grad, rtol=2e-6, atol=1e-37)
    _assert_one_buffer_function(torch, torch_impl.get_loss("cosine_similarity", axis=axis, reduction="none"),
                                x.clone().requires_grad_(), y)
    ops = _ops_of(torch, lambda: torch_impl.get_loss("cosine_similarity", axis=axis)(
        x.clone().requires_grad_(), y).backward())
    assert any(name.startswith("ge.") for name in ops) is tiny  # the mask's compare


@pytest.mark.parametrize("tiny", [True, False], ids=["entries-below-P_MIN", "none-below"])
@pytest.mark.parametrize("class_reduction", ["sum", "mean"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5)])
def test_torch_kl_divergence_closed_form_is_one_function(shape, class_reduction, tiny):
    """KL of probability rows is one Function (the gradient -y/q from the forward pass, one saved
    buffer) equal to its autograd form (taken when the target needs a gradient), its clamp's
    subgradient included: 0 below P_MIN, 1 on it; without entries below P_MIN the CPU skips the
    mask, with the same values."""
    torch = pytest.importorskip("torch")
    import torch_impl
    from spec.numerics import P_MIN

    g = torch.Generator().manual_seed(2)
    x = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), dim=-1)
    y = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), dim=-1)
    x.view(-1)[:3] = torch.tensor([0.0, P_MIN, P_MIN / 4] if tiny else [1e-30, P_MIN, 1.0], dtype=torch.float64)
    y.view(-1)[3] = 0.0
    for reduction in ("none", "mean", "sum"):
        loss = torch_impl.get_loss("kl_divergence", class_reduction=class_reduction, reduction=reduction,
                                   validate=False)
        out, grad = _through_function(torch, loss, x, y, "KLDivergence")
        xa, ya = x.clone().requires_grad_(), y.clone().requires_grad_()  # the target's gradient: autograd
        ref = loss(xa, ya)
        assert "KLDivergence" not in type(ref.grad_fn).__name__
        (ref_grad,) = torch.autograd.grad(ref.sum(), xa)
        torch.testing.assert_close(out, ref.detach(), rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-13, atol=0)
        if tiny:
            assert grad.view(-1)[0] == 0 and grad.view(-1)[2] == 0 and grad.view(-1)[1] != 0
        else:
            assert (grad.view(-1)[:3] != 0).all(), grad.view(-1)[:4]
    # the mask's compare and fill run only where an entry is below P_MIN (CPU)
    ops = _ops_of(torch, lambda: torch_impl.get_loss("kl_divergence", class_reduction=class_reduction)(
        x.clone().requires_grad_(), y).backward())
    assert any(name.startswith("masked_fill") for name in ops) is tiny
    _assert_one_buffer_function(torch, torch_impl.get_loss("kl_divergence", class_reduction=class_reduction,
                                                           reduction="none"), x.clone().requires_grad_(), y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_msle_closed_form_is_one_function(dtype):
    """MSLE is one Function (the gradient 2 u sign(a - b) / (1 + a) from the forward pass, one saved
    buffer) whose values equal its autograd form bit for bit and whose gradient matches it, the
    clip's subgradient included (0 below ε, 1 on it; 0 where the clipped values tie)."""
    torch = pytest.importorskip("torch")
    import torch_impl

    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 7, generator=g, dtype=dt) * 20
    y = torch.rand(6, 7, generator=g, dtype=dt) * 20
    x.view(-1)[:5] = torch.tensor([0.0, -3.0, 1e-7, 2.0, 1e-12], dtype=dt)
    y.view(-1)[:5] = torch.tensor([4.0, 0.5, 1e-7, 2.0, 0.0], dtype=dt)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    for reduction in ("none", "mean", "sum"):
        loss = torch_impl.get_loss("mean_squared_logarithmic_error", reduction=reduction, validate=False)
        out, grad = _through_function(torch, loss, x, y, "MeanSquaredLogarithmicError")
        xa, ya = x.clone().requires_grad_(), y.clone().requires_grad_()  # a target needing grad: autograd
        ref = loss(xa, ya)
        (ref_grad,) = torch.autograd.grad(ref.sum(), xa)
        torch.testing.assert_close(out, ref.detach(), rtol=rtol, atol=0)
        torch.testing.assert_close(grad, ref_grad, rtol=rtol, atol=0)
        assert (grad.view(-1)[:2] == 0).all() and grad.view(-1)[4] == 0  # below ε
        assert grad.view(-1)[3] == 0  # tie
    _assert_one_buffer_function(torch, torch_impl.get_loss("mean_squared_logarithmic_error", reduction="none"),
                                x.clamp_min(0.0).requires_grad_(), y)


@pytest.mark.parametrize("name,fn_name", [("hinge", "Hinge"), ("squared_hinge", "SquaredHinge")])
def test_torch_hinge_closed_forms_equal_their_autograd_form_bit_for_bit(name, fn_name):
    """The hinges are one Function each (gradient -t on the closed interval m >= 0, -2 t max(0, m) for
    the square): values and gradients equal to the autograd form bit for bit, at the kink (m = 0),
    on both label conventions and with a NaN prediction; one saved buffer."""
    torch = pytest.importorskip("torch")
    import torch_impl

    g = torch.Generator().manual_seed(6)
    x = torch.randn(6, 9, generator=g, dtype=torch.float64) * 2
    y = (torch.rand(6, 9, generator=g) < 0.5).double()
    y[1] = y[1] * 2 - 1  # -1/1 labels in one sample
    x.view(-1)[:4] = torch.tensor([1.0, -1.0, 0.0, float("nan")], dtype=torch.float64)
    y.view(-1)[:4] = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    for reduction in ("none", "mean", "sum"):
        loss = torch_impl.get_loss(name, reduction=reduction, validate=False)
        out, grad = _through_function(torch, loss, x, y, fn_name)
        xa, ya = x.clone().requires_grad_(), y.clone().requires_grad_()
        ref = loss(xa, ya)
        assert not type(ref.grad_fn).__name__.startswith(fn_name)
        (ref_grad,) = torch.autograd.grad(ref.sum(), xa)
        torch.testing.assert_close(out, ref.detach(), rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0, equal_nan=True)
    _assert_one_buffer_function(torch, torch_impl.get_loss(name, reduction="none"), x.nan_to_num(0.0).requires_grad_(), y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_kl_sparsity_is_one_function_saving_one_value_per_unit(dtype, monkeypatch):
    """The KL-sparsity penalty of an unweighted batch is one Function that saves one gradient value
    per unit (expanded over the batch in backward) and equals the autograd form: the value bit for
    bit, the gradient to rounding, the clamp's subgradient included (dead and saturated units: 0)."""
    torch = pytest.importorskip("torch")
    import torch_impl
    import torch_impl.regularizers as regularizers

    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(7)
    a = torch.rand(16, 5, 3, generator=g, dtype=dt)
    a[:, 0, 0], a[:, 1, 0] = 0.0, 1.0
    loss = torch_impl.get_loss("kl_sparsity", target=0.05, weight=2.0)
    x = a.clone().requires_grad_()
    out = loss(x)
    assert type(out.grad_fn).__name__ == "KLSparsityBackward"
    (grad,) = torch.autograd.grad(out, x)
    step = lambda: torch.autograd.grad(loss(x), x)  # noqa: E731
    assert bench.saved_for_backward_bytes(step) == 15 * a.element_size()  # one value per unit
    # (N, units) activations, as a coding layer gives them, go to the Function as they are: no view
    # of the same shape between it and the activations (an autograd node more every step)
    flat = a.reshape(16, 15).clone().requires_grad_()
    (edge,) = loss(flat).grad_fn.next_functions[:1]
    assert type(edge[0]).__name__ == "AccumulateGrad" and edge[0].variable is flat
    monkeypatch.setattr(regularizers, "needs_fused_grad", lambda *t: False)  # the autograd form
    xa = a.clone().requires_grad_()
    ref = loss(xa)
    assert type(ref.grad_fn).__name__ != "KLSparsityBackward"
    (ref_grad,) = torch.autograd.grad(ref, xa)
    assert torch.equal(out.detach(), ref.detach())
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6 if dtype == "float32" else 1e-14, atol=0)
    assert (grad[:, 0, 0] == 0).all() and (grad[:, 1, 0] == 0).all()


@pytest.mark.parametrize("gamma", [2.0, 0.5, 0.0])
def test_torch_categorical_focal_closed_form_keeps_the_digits_of_confident_rows(gamma, monkeypatch):
    """The softmax focal loss of logits is one Function (one saved buffer) with the autograd form's
    values bit for bit, and a gradient that keeps the digits of confident rows where log q of the
    argmax rounds to 0: for a hard label on the argmax, dℓ/dx_c* = -α (1 + γ) ε^(1+γ) and dℓ/dx_j =
    α (1 + γ) ε^γ q_j (ε = 1 - q_c*, to first order), where the autograd form loses the γ terms."""
    torch = pytest.importorskip("torch")
    import torch_impl
    import torch_impl.multiclass as multiclass

    g = torch.Generator().manual_seed(8)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    x[0] = torch.tensor([50.0, 0.0, -3.0, 1.0, 2.0], dtype=torch.float64)  # ε = 2.5e-21: log q_c* rounds to 0
    y = torch.nn.functional.one_hot(torch.randint(0, 5, (7,), generator=g), 5).double()
    y[0] = torch.nn.functional.one_hot(torch.tensor(0), 5).double()
    y[1] = torch.softmax(torch.randn(5, generator=g, dtype=torch.float64), dim=-1)  # a soft row
    alpha = 0.25
    loss = torch_impl.get_loss("categorical_focal_crossentropy", gamma=gamma, alpha=alpha, reduction="none")
    out, grad = _through_function(torch, loss, x, y, "CategoricalFocal")
    q = torch.softmax(x[0], dim=-1)
    eps = q[1:].sum()
    expected = torch.cat([-(1 + gamma) * eps ** (1 + gamma) * alpha * torch.ones(1, dtype=x.dtype),
                          alpha * (1 + gamma) * eps ** gamma * q[1:]])
    torch.testing.assert_close(grad[0], expected, rtol=1e-9, atol=0)
    monkeypatch.setattr(multiclass, "needs_fused_grad", lambda *t: False)  # the autograd form
    xa = x.clone().requires_grad_()
    ref = loss(xa, y)
    (ref_grad,) = torch.autograd.grad(ref.sum(), xa)
    assert torch.equal(out.detach(), ref.detach())
    torch.testing.assert_close(grad[1:], ref_grad[1:], rtol=1e-12, atol=1e-15)
    if gamma:
        assert ref_grad[0, 0] == 0  # what the autograd form gives there
    monkeypatch.undo()
    _assert_one_buffer_function(torch, torch_impl.get_loss("categorical_focal_crossentropy", gamma=gamma,
                                                           reduction="none"), x.clone().requires_grad_(), y)
