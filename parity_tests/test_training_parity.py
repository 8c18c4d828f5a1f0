"""Training-step parity, driven by the scenario registry (``lossparity/scenarios``).

For every scenario's parity cases (its networks and losses, on its own data) and for SGD and Adam
with the same hyperparameters: build the network in torch, copy its initial weights into the Keras
twin, run ``STEPS`` optimizer steps on the same batches in the same order — torch through a real
``lightning.Trainer`` fitting ``LossModule`` on ``ArrayDataModule``, Keras through ``model.fit`` on
``ArrayBatches`` with our Keras loss — and compare every weight.

Tolerance: ``max|w_torch − w_keras| / max|w|`` per tensor after 10 steps: ≤ 1e-9 in float64
(measured ≤ 1.3e-14 for every case and both optimizers) and ≤ ``FLOAT32_RTOL`` = 1e-5 in float32
(measured ≤ 3.6e-7 with SGD and ≤ 2.4e-6 with Adam: float32 rounding of two kernel libraries,
amplified by Adam's ``m / sqrt(v)`` normalization); a case may declare its own float32 tolerance
together with the reason (``ParityCase.float32_rtol`` / ``float32_reason``: near-cancelling gradient
components, where each framework's float32 run is itself that far from its float64 run — digits-select,
the balanced imbalanced cases, the segmentation U-Nets). Adam is ``torch_impl.lightning.KerasAdam``
against ``keras.optimizers.Adam`` (``torch.optim.Adam`` is a different rule, see the last test). A new scenario
is tested here by adding its ``parity_cases``; no test code changes.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.project

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

from lossparity import scenarios  # noqa: E402
from lossparity.scenarios.base import Optimizer  # noqa: E402
from tf_impl import training as kt  # noqa: E402
from torch_impl import lightning as tl  # noqa: E402

STEPS = 10
FLOAT64_RTOL = 1e-9
FLOAT32_RTOL = 1e-5
OPTIMIZERS = {"sgd": Optimizer("sgd", lr=0.05), "adam": Optimizer("adam", lr=1e-3)}

CASES = [pytest.param(name, case.id, id=case.id) for name in scenarios.names()
         for case in scenarios.get(name).parity_cases()]


def _case(name, case_id):
    return next(c for c in scenarios.get(name).parity_cases() if c.id == case_id)


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread (small networks; faster on busy cores); restore the global torch flags that
    ``Trainer(deterministic=True)`` changes, so later tests run as they would alone."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _arrays(case):
    n = STEPS * case.batch_size
    assert len(case.x) >= n, f"{case.id}: needs {n} rows for {STEPS} steps"
    return case.arrays(n)  # with per-sample weights: batches (x, y, w) in both frameworks


def torch_steps(case, optimizer: Optimizer, dtype: str, seed: int = 0):
    """Initial weights (torch's own seeded init) and the weights after ``STEPS`` Trainer steps."""
    torch.manual_seed(seed)
    net = case.model.torch_module()
    initial = net.numpy_weights()
    module = tl.LossModule(net, loss=case.loss.name, loss_params=case.loss.kwargs(), optimizer=optimizer.config())
    dm = tl.ArrayDataModule(arrays=_arrays(case), batch_size=case.batch_size, seed=seed, dtype=dtype)
    trainer = L.Trainer(max_steps=STEPS, max_epochs=1, accelerator="cpu", devices=1,
                        precision="64-true" if dtype == "float64" else "32-true", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, deterministic=True)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == STEPS
    assert next(net.parameters()).dtype == getattr(torch, dtype)
    return initial, net.numpy_weights()


def keras_steps(case, optimizer: Optimizer, dtype: str, initial, seed: int = 0):
    with kt.floatx(dtype):  # float64 runs keep the learning rate in float64 too
        model = case.model.keras_model(dtype=dtype)
        case.model.set_keras_weights(model, initial)
        kt.compile_model(model, loss=kt.build_loss(case.loss.name, case.loss.kwargs()),
                         optimizer=optimizer.config())
        a = _arrays(case)
        sw = a.get("w_train")
        history = kt.fit(model, kt.cast_inputs(a["x_train"], dtype), kt.cast_targets(a["y_train"], dtype),
                         epochs=1, batch_size=case.batch_size, seed=seed, verbose=0,
                         sample_weight=None if sw is None else kt.cast_inputs(sw, dtype))
        assert int(model.optimizer.iterations.numpy()) == STEPS
        assert all(w.dtype == dtype for w in model.trainable_weights)
        assert np.isfinite(history.history["loss"]).all()
        return case.model.keras_weights(model)


def relative_errors(a, b):
    """``max|a − b| / max|a|`` for every weight and bias tensor."""
    out = []
    for (wa, ba), (wb, bb) in zip(a, b):
        for u, v in ((wa, wb), (ba, bb)):
            scale = max(np.max(np.abs(u)), 1e-30)
            out.append(float(np.max(np.abs(u - v)) / scale))
    return out


def _run(name, case_id, opt, dtype):
    case = _case(name, case_id)
    initial, after_torch = torch_steps(case, OPTIMIZERS[opt], dtype)
    after_keras = keras_steps(case, OPTIMIZERS[opt], dtype, initial)
    # the steps moved the weights (a comparison of untrained weights would prove nothing)
    moved = max(np.max(np.abs(w1 - w0)) for (w0, _), (w1, _) in zip(initial, after_torch))
    assert moved > 1e-4, f"{case_id}/{opt}: the weights barely moved ({moved:.2e})"
    return relative_errors(after_torch, after_keras)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name,case_id", CASES)
def test_training_steps_float64(name, case_id, opt):
    errors = _run(name, case_id, opt, "float64")
    assert max(errors) <= FLOAT64_RTOL, f"{case_id}/{opt} float64: max relative weight difference {max(errors):.3e}"


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name,case_id", CASES)
def test_training_steps_float32(name, case_id, opt):
    errors = _run(name, case_id, opt, "float32")
    case = _case(name, case_id)
    rtol = case.float32_rtol or FLOAT32_RTOL  # a case's own float32 tolerance comes with its reason
    assert case.float32_rtol is None or case.float32_reason, f"{case_id}: float32_rtol without float32_reason"
    assert max(errors) <= rtol, f"{case_id}/{opt} float32: max relative weight difference {max(errors):.3e}"


def test_every_scenario_has_parity_cases():
    for name in scenarios.names():
        cases = scenarios.get(name).parity_cases()
        assert cases, f"scenario {name!r} declares no training-parity case"
        assert len({c.id for c in cases}) == len(cases)


def test_torch_adam_differs_from_keras_adam():
    """Why ``KerasAdam`` exists: ``torch.optim.Adam`` with the same hyperparameters takes other steps
    (epsilon enters after the bias correction), far beyond the float64 tolerance."""
    case = scenarios.get(scenarios.names()[0]).parity_cases()[0]
    torch.manual_seed(0)
    net = tl.MLP(**case.model.kwargs()).double()
    twin = tl.MLP(**case.model.kwargs()).double()
    twin.load_state_dict(net.state_dict())
    loss = tl.LossModule(net, loss=case.loss.name, loss_params=case.loss.kwargs()).loss_fn
    ours = tl.KerasAdam(net.parameters(), lr=1e-3, epsilon=1e-7)
    theirs = torch.optim.Adam(twin.parameters(), lr=1e-3, eps=1e-7)
    x, y = torch.as_tensor(case.x[:32]), torch.as_tensor(case.y[:32])
    for model, opt in ((net, ours), (twin, theirs)):
        for _ in range(3):
            opt.zero_grad()
            loss(model(x), y).backward()
            opt.step()
    errors = relative_errors(net.numpy_weights(), twin.numpy_weights())
    assert max(errors) > 1e-6
