"""No host synchronization on accelerators (torch): the rule of :mod:`spec.validation`.

A loss called on a tensor that is not on the CPU checks parameters (at construction) and shapes,
and reads no value: no ``item``/``tolist``/``bool``/``float``, no device→host copy, no
data-dependent output size, so a training step never waits for the device because of a loss.
``torch_impl.sync_value_checks()`` turns the value checks on there (one read per call, the same
messages). On a CPU-only machine the accelerator branch is emulated: ``torch_impl._core._on_host``
answers False for every tensor, and a ``TorchFunctionMode`` records every call that would read a
device tensor's values on the host; the ``cuda`` test runs a real training step under
``torch.cuda.set_sync_debug_mode("error")``.
"""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import selection
from lossparity import bench
from spec.validation import expected_message

torch = pytest.importorskip("torch")

from torch.overrides import TorchFunctionMode  # noqa: E402

import torch_impl  # noqa: E402
from torch_impl import _core  # noqa: E402

pytestmark = pytest.mark.project

#: calls that read a device tensor's values on the host (or size an output by its values)
HOST_READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "__complex__", "numpy", "cpu",
              "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "equal", "allclose",
              "is_nonzero", "bincount", "repeat_interleave", "__repr__", "__format__"}


class HostReads(TorchFunctionMode):
    """Records the torch calls that would synchronize with an accelerator: :data:`HOST_READS`, a
    copy to the CPU (``to("cpu")``), boolean-mask indexing, and tensors made from host data
    (``torch.tensor``/``as_tensor``: a host→device copy there)."""

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name in HOST_READS:
            self.reads.append(name)
        elif name == "to" and any(_is_cpu(a) for a in (*args[1:], kwargs.get("device"))):
            self.reads.append("to(cpu)")
        elif name == "__getitem__" and any(isinstance(a, torch.Tensor) and a.dtype == torch.bool
                                           for a in _flat(args[1:])):
            self.reads.append("boolean mask indexing")
        elif name in ("tensor", "as_tensor") and args and not isinstance(args[0], torch.Tensor):
            self.reads.append(f"torch.{name}(host data)")
        return func(*args, **kwargs)


def _is_cpu(a) -> bool:
    # an explicit copy to the host; ``like.device`` objects are the accelerator itself there
    return isinstance(a, str) and a.startswith("cpu")


def _flat(items):
    for a in items:
        if isinstance(a, (tuple, list)):
            yield from _flat(a)
        else:
            yield a


def _inputs(entry, params, requires_grad=True):
    shape = bench.percall_shape(entry, params)
    shape = (8,) + shape[1:]
    x, y = bench.make_inputs(entry, params, shape, np.random.default_rng(0))
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=requires_grad)
    if y is None:
        return xt, None
    return xt, torch.tensor(y, dtype=torch.int64 if np.issubdtype(y.dtype, np.integer) else torch.float32)


def _step(loss, x, y, sample_weight=None):
    """One forward + backward (the gradient w.r.t. the prediction)."""
    out = loss(x) if y is None else loss(x, y, sample_weight=sample_weight)
    return torch.autograd.grad(out, x)


def _params(entry):
    return entry.validate_params(entry.cases()[0].params)


@pytest.fixture
def accelerator(monkeypatch):
    """Every tensor counts as living on an accelerator for the checks."""
    monkeypatch.setattr(_core, "_on_host", lambda x: False)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("name", selection.names())
def test_accelerator_call_reads_no_value(name, weighted, accelerator):
    """Forward and backward of every registered loss (module and functional form, default
    arguments, with and without sample weights) on the emulated accelerator: not one host read.
    The same step on the CPU does read (the detector sees the value checks)."""
    entry = spec.get(name)
    params = _params(entry)
    x, y = _inputs(entry, params)
    w = torch.linspace(0.5, 1.5, x.shape[0]) if weighted else None
    module = torch_impl.get_loss(name, **params)
    fn = torch_impl.get_functional(name)

    def functional(x, y=None, sample_weight=None):
        if y is None:
            return fn(x, sample_weight=sample_weight, **params)
        return fn(x, y, sample_weight=sample_weight, **params)

    for loss in (module, functional):
        _step(loss, x, y, w)  # warm-up: per-dtype constants are made once, not per call
        with HostReads() as mode:
            _step(loss, x, y, w)
        assert mode.reads == [], f"{name}: host reads on an accelerator: {mode.reads}"
    with HostReads() as mode, pytest.MonkeyPatch.context() as mp:
        mp.setattr(_core, "_on_host", lambda x: True)
        _step(module, x, y, w)
    assert mode.reads, f"{name}: the CPU step reads no value (the detector sees nothing)"


@pytest.mark.parametrize("name", selection.names())
def test_sync_value_checks_reads_once_and_gives_the_messages(name, accelerator):
    """Inside ``sync_value_checks()`` an accelerator call checks values with one stacked read
    (``tolist``) and raises the spec's messages; outside it, every invalid call case raises what
    it raises on the CPU with ``validate=False`` (shapes, parameters) and nothing more."""
    entry = spec.get(name)
    params = _params(entry)
    x, y = _inputs(entry, params)
    module = torch_impl.get_loss(name, **params)
    _step(module, x, y)
    with torch_impl.sync_value_checks(), HostReads() as mode:
        _step(module, x, y)
    assert mode.reads == ["tolist"], mode.reads
    for case in entry.all_invalid_cases():
        if case.prediction is None:
            continue
        call_params = {k: v for k, v in case.params.items() if k not in ("reduction", "validate")}
        loss = torch_impl.get_loss(name, **call_params)
        pred = torch.tensor(case.prediction, dtype=torch.float64)
        tgt = None if case.target is None else torch.tensor(
            case.target, dtype=torch.int64 if np.issubdtype(np.asarray(case.target).dtype, np.integer) else torch.float64)
        sw = None if case.sample_weight is None else torch.tensor(case.sample_weight, dtype=torch.float64)

        def call(loss=loss, pred=pred, tgt=tgt, sw=sw):
            return loss(pred, sample_weight=sw) if entry.single_input else loss(pred, tgt, sample_weight=sw)

        with torch_impl.sync_value_checks(), pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == expected_message(entry, case), case.id
        # what the CPU raises without data checks, the accelerator raises by default; a data-value
        # error (none of that) is not checked there, and nothing is read
        unchecked = torch_impl.get_loss(name, validate=False, **call_params)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_core, "_on_host", lambda x: True)
            cpu_error = _raised(lambda: unchecked(pred, sample_weight=sw) if entry.single_input
                                else unchecked(pred, tgt, sample_weight=sw))
        with HostReads() as mode:
            accelerator_error = _raised(call)
        assert accelerator_error == cpu_error, case.id
        assert not any(r in ("item", "tolist") for r in mode.reads), (case.id, mode.reads)


def _raised(fn):
    """``(type, message)`` of what ``fn()`` raises (None if nothing)."""
    try:
        fn()
    except (ValueError, RuntimeError, IndexError) as exc:
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.cuda
@pytest.mark.parametrize("name", selection.names())
def test_cuda_training_step_makes_no_host_sync(name):
    """A training step (forward, backward, SGD update of the prediction) of every loss on a CUDA
    tensor under ``torch.cuda.set_sync_debug_mode("error")``: any synchronizing call raises."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    entry = spec.get(name)
    params = _params(entry)
    x, y = _inputs(entry, params, requires_grad=False)
    x = x.cuda().requires_grad_(True)
    y = None if y is None else y.cuda()
    loss = torch_impl.get_loss(name, **params).cuda()

    def step():
        (g,) = _step(loss, x, y)
        with torch.no_grad():
            x.sub_(0.01 * g)

    step()  # warm-up: per-device constants, CUDA context and kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
