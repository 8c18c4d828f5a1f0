"""dtype rules (both sides): float64 stays float64; half precision and float32 compute and return
float32, under torch.autocast and Keras mixed-precision policies too; results stay within the
low-precision tolerance of the float32 reference and finite on the extreme cases."""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import harness, selection

NAMES = [e.name for e in selection.entries()]
LOW_PRECISION = spec.Tolerance(rtol=1e-2, atol=1e-2)


def _torch_call(entry, params, x, t):
    """torch order ``(input, target)``; single-input entries (penalties) take the input only."""
    import torch_impl

    loss = torch_impl.get_loss(entry.name, **params)
    return loss(x) if entry.single_input else loss(x, t)


def _keras_call(entry, params, t, x):
    """Keras order ``(y_true, y_pred)``; single-input entries take ``y_pred`` only."""
    import tf_impl

    loss = tf_impl.get_loss(entry.name, **params)
    return loss(x) if entry.single_input else loss(t, x)


def _torch_target(case, dtype):
    import torch

    if case.target is None:
        return None
    return torch.tensor(case.target, dtype=torch.int64 if harness.is_integer(case.target) else dtype)


def _inputs(entry, case):
    return case.prediction, case.target


@pytest.mark.parametrize("half", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", NAMES)
def test_torch_half_inputs_compute_in_float32(name, half):
    import torch

    import torch_impl

    entry = spec.get(name)
    for case in entry.cases():
        x = torch.tensor(case.prediction, dtype=getattr(torch, half), requires_grad=True)
        t = _torch_target(case, getattr(torch, half))
        out = _torch_call(entry, case.params, x, t)
        assert out.dtype == torch.float32
        out.backward()
        assert x.grad.dtype == getattr(torch, half)
        # the same inputs (rounded to half) in float32 give the same loss
        x32 = x.detach().float().requires_grad_(True)
        ref = _torch_call(entry, case.params, x32, t if t is None or t.dtype == torch.int64 else t.float())
        ref.backward()
        # finite wherever the float32 value is (kl_sparsity with epsilon=0 at q = 0 is +inf: the
        # spec's convention there, the same in half precision)
        assert torch.isfinite(out) or not torch.isfinite(ref), case.id
        assert LOW_PRECISION.compare(out.item(), ref.item()).ok or out.item() == ref.item(), case.id
        # the gradient is finite wherever its float32 value is representable in the half dtype
        fits = torch.isfinite(x32.grad) & (x32.grad.abs() < torch.finfo(getattr(torch, half)).max / 2)
        assert torch.isfinite(x.grad.float()[fits]).all(), case.id


@pytest.mark.parametrize("name", NAMES)
def test_torch_autocast_cpu_bfloat16(name):
    import torch

    import torch_impl

    entry = spec.get(name)
    case = entry.cases()[0]
    torch.manual_seed(0)
    layer = torch.nn.Linear(case.prediction.shape[-1], case.prediction.shape[-1]).double()
    with torch.no_grad():
        layer.weight.copy_(torch.eye(case.prediction.shape[-1]))
        layer.bias.zero_()
    x = torch.tensor(case.prediction, dtype=torch.float32)
    t = _torch_target(case, torch.float32)
    layer = layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        assert logits.dtype == torch.bfloat16
        out = _torch_call(entry, case.params, logits, t)
    assert out.dtype == torch.float32
    out.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    ref = float(entry.reference_reduced(logits.detach().double().numpy(), case.target, **case.params))
    assert LOW_PRECISION.compare(out.item(), ref).ok


@pytest.mark.parametrize("name", NAMES)
def test_keras_float64_is_not_downcast(name):
    import tensorflow as tf

    import tf_impl

    entry = spec.get(name)
    case = entry.cases()[0]
    t = None if case.target is None else tf.constant(
        case.target, dtype="int64" if harness.is_integer(case.target) else "float64")
    out = _keras_call(entry, case.params, t, tf.constant(case.prediction, tf.float64))
    assert out.dtype == tf.float64
    expected = entry.reference_reduced(case.prediction, case.target, sample_weight=None, **case.params)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_keras_mixed_precision_computes_in_float32(name, policy):
    import keras
    import tensorflow as tf

    import tf_impl

    entry = spec.get(name)
    case = entry.cases()[0]
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        inp = keras.Input(shape=case.prediction.shape[1:])
        out_layer = keras.layers.Identity()(keras.layers.Activation("linear")(inp))
        model = keras.Model(inp, out_layer)
        pred = model(tf.constant(case.prediction, tf.float32))
        assert pred.dtype in (tf.float16, tf.bfloat16)
        t = None if case.target is None else tf.constant(
            case.target, dtype="int64" if harness.is_integer(case.target) else "float32")
        with tf.GradientTape() as tape:
            tape.watch(pred)
            value = _keras_call(entry, case.params, t, pred)
        grad = tape.gradient(value, pred)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert value.dtype == tf.float32
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(grad.numpy().astype(np.float32)))
    ref = float(entry.reference_reduced(np.asarray(pred.numpy(), np.float64), case.target, **case.params))
    assert LOW_PRECISION.compare(float(value), ref).ok


@pytest.mark.project
def test_keras_fit_with_our_loss_eager_graph_and_xla():
    import keras

    import tf_impl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, :3] > 0).astype("float32")
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=tf_impl.WeightedBCE(pos_weight=2.0),
                      jit_compile=jit)
        hist = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
        losses = hist.history["loss"]
        assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
