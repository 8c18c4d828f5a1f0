"""The regression entries against the frameworks' own losses of the same math: our torch twin equals
the torch.nn loss, our Keras twin equals the Keras loss class, in float32 and float64, values and
gradients, on the spec's cases, with each peer's default reduction mapped to ours (torch's "mean"
over every element and Keras' "sum_over_batch_size" both equal our "mean": Σ_i ℓ_i / N of
per-sample means). Where a peer differs, the entry's ``peer_notes`` say so and a test here pins it."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

#: spec name → (params of the cases, the torch.nn peer built from them, the Keras peer built from them)
PEERS = {
    "mean_absolute_error": (lambda nn, p: nn.L1Loss(), lambda losses, p, dtype: losses.MeanAbsoluteError(dtype=dtype)),
    "huber": (lambda nn, p: nn.HuberLoss(delta=p["delta"]),
              lambda losses, p, dtype: losses.Huber(delta=p["delta"], dtype=dtype)),
}
DTYPES = ("float32", "float64")


def _cases(kinds=("typical", "extreme", "edge")):
    out = []
    for name in PEERS:
        for case in spec.get(name).cases():
            if case.kind in kinds and case.sample_weight is None:
                for dtype in case.dtypes:
                    out.append(pytest.param(name, case, dtype, id=f"{name}-{case.id}-{dtype}"))
    return out


def _tolerance(name, dtype, field):
    return getattr(spec.get(name).tolerances, field)[dtype]


def _assert_close(name, dtype, field, actual, expected):
    result = _tolerance(name, dtype, field).compare(actual, expected)
    assert result.ok, f"{field}: {result.detail}"


def _keras_ready(y_true, y_pred):
    """Keras' own losses reduce the last axis per call; a 1-D input is one element per sample for us:
    give Keras (N, 1)."""
    return (y_true[:, None], y_pred[:, None]) if y_pred.ndim == 1 else (y_true, y_pred)


@pytest.mark.parametrize("name,case,dtype", _cases())
def test_torch_twin_equals_the_torch_nn_loss(name, case, dtype):
    import torch

    import torch_impl

    tdtype = getattr(torch, dtype)
    params = spec.get(name).validate_params(case.params)
    x_peer = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    x_ours = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    y = torch.tensor(case.target, dtype=tdtype)
    peer = PEERS[name][0](torch.nn, params)(x_peer, y)
    ours = torch_impl.get_loss(name, **case.params)(x_ours, y)
    peer.backward()
    ours.backward()
    assert ours.dtype == peer.dtype == tdtype
    _assert_close(name, dtype, "value", ours.detach().double().numpy(), peer.detach().double().numpy())
    _assert_close(name, dtype, "grad", x_ours.grad.double().numpy(), x_peer.grad.double().numpy())


@pytest.mark.parametrize("name,case,dtype", _cases())
def test_keras_twin_equals_the_keras_loss(name, case, dtype):
    import tf_impl  # first: TensorFlow without the start-up log lines

    import keras
    import tensorflow as tf

    params = spec.get(name).validate_params(case.params)
    y_true, y_pred = _keras_ready(case.target, case.prediction)
    x = tf.constant(y_pred, dtype=dtype)
    y = tf.constant(y_true, dtype=dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        peer = PEERS[name][1](keras.losses, params, dtype)(y, x)
        ours = tf_impl.get_loss(name, **case.params)(y, x)
    assert ours.dtype == peer.dtype == tf.as_dtype(dtype)
    _assert_close(name, dtype, "value", ours.numpy(), peer.numpy())
    _assert_close(name, dtype, "grad", tape.gradient(ours, x).numpy(), tape.gradient(peer, x).numpy())


# ---------------------------------------------------------------- mean_absolute_error
def test_mean_absolute_error_subgradient_at_an_exact_fit_is_zero_everywhere():
    """grad_convention of mean_absolute_error: sign(0) = 0 at ŷ = y, in both twins and both peers."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    pred = np.array([[0.0, 1.5, -2.0], [3.0, 0.0, 1.0]])
    target = np.array([[0.0, 1.0, -2.0], [2.0, 0.0, 1.0]])  # ŷ = y at four elements
    at_kink = pred == target
    expected = spec.get("mean_absolute_error").reference_grad(pred, target)
    assert np.all(expected[at_kink] == 0.0)
    for dtype in DTYPES:
        for build in (lambda: torch_impl.get_loss("mean_absolute_error"), torch.nn.L1Loss):
            x = torch.tensor(pred, dtype=getattr(torch, dtype), requires_grad=True)
            build()(x, torch.tensor(target, dtype=getattr(torch, dtype))).backward()
            assert np.all(x.grad.numpy()[at_kink] == 0.0)
            np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
        x = tf.constant(pred, dtype=dtype)
        for loss in (tf_impl.get_loss("mean_absolute_error"), keras.losses.MeanAbsoluteError(dtype=dtype)):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(tf.constant(target, dtype=dtype), x)
            g = tape.gradient(value, x).numpy()
            assert np.all(g[at_kink] == 0.0)
            np.testing.assert_allclose(g, expected, rtol=1e-6)


def test_keras_mean_absolute_error_computes_float64_inputs_in_float32_by_default():
    """PeerNote of mean_absolute_error: keras.losses.MeanAbsoluteError() casts to floatx (float32);
    ours keeps float64."""
    import tf_impl

    import keras

    y = np.array([[0.0]])
    p = np.array([[0.1]])
    assert keras.losses.MeanAbsoluteError()(y, p).dtype == "float32"
    ours = tf_impl.get_loss("mean_absolute_error")(y, p)
    assert ours.dtype == "float64" and float(ours) == 0.1


# ---------------------------------------------------------------- huber
@pytest.mark.parametrize("case", [c for c in spec.get("huber").cases() if c.sample_weight is None],
                         ids=lambda c: c.id)
def test_torch_smooth_l1_is_huber_divided_by_beta(case):
    """PeerNote of huber: torch.nn.SmoothL1Loss(beta) = huber(delta=beta) / beta, values and gradients."""
    import torch

    import torch_impl

    delta = spec.get("huber").validate_params(case.params)["delta"]
    x_peer = torch.tensor(case.prediction, requires_grad=True)
    x_ours = torch.tensor(case.prediction, requires_grad=True)
    y = torch.tensor(case.target)
    peer = torch.nn.SmoothL1Loss(beta=delta)(x_peer, y)
    ours = torch_impl.get_loss("huber", delta=delta)(x_ours, y) / delta
    peer.backward()
    ours.backward()
    _assert_close("huber", "float64", "value", ours.detach().numpy(), peer.detach().numpy())
    _assert_close("huber", "float64", "grad", x_ours.grad.numpy(), x_peer.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_at_the_boundary_both_branches_agree_exactly(dtype):
    """grad_convention of huber: at |d| = δ torch's kernel (linear branch) and the Keras twin
    (quadratic branch, as keras.losses.Huber) give the same value δ²/2 and gradient ±δ, bit for bit."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    delta = 0.25
    pred = np.array([[0.25, -0.25, 1.25, 0.75]])
    target = np.array([[0.0, 0.0, 1.0, 1.0]])  # d = ±δ exactly, in float32 too
    x = torch.tensor(pred, dtype=getattr(torch, dtype), requires_grad=True)
    t_value = torch_impl.get_loss("huber", delta=delta, reduction="sum")(x, torch.tensor(target, dtype=x.dtype))
    t_value.backward()
    xt = tf.constant(pred, dtype=dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        k_value = tf_impl.get_loss("huber", delta=delta, reduction="sum")(tf.constant(target, dtype=dtype), xt)
        peer = keras.losses.Huber(delta=delta, reduction="sum", dtype=dtype)(tf.constant(target, dtype=dtype), xt)
    expected_grad = np.array([[0.25, -0.25, 0.25, -0.25]]) / 4
    assert t_value.item() == float(k_value) == float(peer) == 0.03125  # one sample: δ²/2 per element, mean of 4
    np.testing.assert_array_equal(x.grad.numpy(), expected_grad)
    np.testing.assert_array_equal(tape.gradient(k_value, xt).numpy(), expected_grad)
    np.testing.assert_array_equal(tape.gradient(peer, xt).numpy(), expected_grad)
