"""Layers and layer-level use of the single-input penalties, in both frameworks.

* ``ThresholdActivation`` (count above a threshold): values and gradients equal in torch and Keras, inputs exactly
  at 0 and at the threshold included; the shared invalid-threshold message; Keras config, Keras
  serialization and a saved ``.keras`` model round trip; torch state/repr/pickle.
* The Keras regularizers as ``activity_regularizer=``: what Keras adds to the model loss, saved
  models, and the hard count's exactly-zero gradient reaching the weights (torch and Keras).
* Sample weights of ``kl_sparsity`` (the generic harness calls single-input entries unweighted).
"""
from __future__ import annotations

import copy
import io

import numpy as np
import pytest

import spec
from spec.regularizers import ACTIVATION_THRESHOLD_DOMAIN

THRESHOLDS = [2.0, 0.75]  # exact in float32: the bound is the same number in every dtype


def _grid(t):
    """Inputs below, at and between the clip bounds, and next to them."""
    return np.array([[-3.0, -1e-30, -0.0, 0.0, 1e-30, 0.5 * t],
                     [t - 1e-3, t, t + 1e-3, 10.0 * t, 1e4, -1e4]])


def _expected(x, t):
    value = np.clip(x, 0.0, t)
    grad = ((x >= 0.0) & (x <= t)).astype(np.float64)  # identity branch on the closed interval
    return value, grad


def _torch_layer(x, t, dtype):
    import torch

    from torch_impl.layers import ThresholdActivation

    xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    out = ThresholdActivation(t)(xt)
    out.backward(torch.ones_like(out))
    return out.detach().double().numpy(), xt.grad.double().numpy(), out.dtype


def _keras_layer(x, t, dtype, compiled=None):
    import tensorflow as tf

    from tf_impl.layers import ThresholdActivation

    layer = ThresholdActivation(t, dtype=dtype)

    def run(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            out = layer(v)
        return out, tape.gradient(out, v)

    if compiled is not None:
        run = tf.function(run, jit_compile=compiled == "xla")
    out, grad = run(tf.constant(x, dtype=dtype))
    return out.numpy().astype(np.float64), grad.numpy().astype(np.float64), out.dtype


# ============================================================================ ThresholdActivation
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("t", THRESHOLDS)
def test_threshold_activation_values_and_gradients_at_the_bounds(t, dtype):
    x = _grid(t).astype(dtype).astype(np.float64)
    value, grad = _expected(x, t)
    tv, tg, t_dtype = _torch_layer(x, t, dtype)
    kv, kg, k_dtype = _keras_layer(x, t, dtype)
    assert str(t_dtype).endswith(dtype) and k_dtype.name == dtype
    np.testing.assert_array_equal(tv, value)
    np.testing.assert_array_equal(kv, value)
    np.testing.assert_array_equal(tg, grad)
    np.testing.assert_array_equal(kg, grad)
    # exactly at 0 and at t the gradient is 1 (identity branch), just outside it is 0
    assert grad[0, 3] == 1.0 and grad[1, 1] == 1.0 and grad[0, 1] == 0.0 and grad[1, 2] == 0.0


@pytest.mark.parametrize("compiled", ["graph", "xla"])
def test_threshold_activation_keras_compiled_same_convention(compiled):
    t = 2.0
    x = _grid(t)
    value, grad = _expected(x, t)
    kv, kg, _ = _keras_layer(x, t, "float64", compiled=compiled)
    np.testing.assert_array_equal(kv, value)
    np.testing.assert_array_equal(kg, grad)


def test_threshold_activation_seed_relu_is_a_value_no_op():
    """The count-penalty answer applies relu after the clip: same values; the relu would only zero the gradient
    at exactly x = 0, which our layer (documented) passes. At x = t the answer's gradient is
    torch.clamp's at a bound (1 up to torch 2.13, 0 from 2.14); ours is 1 on every torch."""
    import torch

    from torch_impl.layers import ThresholdActivation

    x = torch.tensor(_grid(2.0).ravel(), requires_grad=True)
    ours = ThresholdActivation(2.0)(x)
    seed = torch.relu(torch.clamp(x, 0.0, 2.0))
    torch.testing.assert_close(ours, seed, rtol=0, atol=0)
    (g_seed,) = torch.autograd.grad(seed.sum(), x)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    at_zero, at_t = x.detach() == 0, x.detach() == 2.0
    assert at_zero.any() and at_t.any()
    assert torch.all(g_seed[at_zero] == 0) and torch.all(g_ours[at_zero] == 1)
    assert torch.all(g_ours[at_t] == 1)
    off = ~(at_zero | at_t)
    torch.testing.assert_close(g_ours[off], g_seed[off], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "2", True, None, [1.0, 2.0]])
def test_threshold_activation_rejects_bad_thresholds_with_one_message(bad):
    from tf_impl.layers import ThresholdActivation as KerasLayer
    from torch_impl.layers import ThresholdActivation as TorchLayer

    expected = spec.messages.invalid_param("ThresholdActivation", "threshold", bad, ACTIVATION_THRESHOLD_DOMAIN)
    with pytest.raises(ValueError) as torch_err:
        TorchLayer(bad)
    with pytest.raises(ValueError) as keras_err:
        KerasLayer(bad)
    assert str(torch_err.value) == str(keras_err.value) == expected


def test_threshold_activation_keras_config_and_serialization_round_trip():
    import keras
    import tensorflow as tf

    from tf_impl.layers import ThresholdActivation

    layer = ThresholdActivation(0.75, name="clip")
    config = layer.get_config()
    assert config["threshold"] == 0.75 and config["name"] == "clip"
    clone = ThresholdActivation.from_config(config)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is ThresholdActivation and revived.threshold == 0.75
    x = tf.constant(_grid(0.75), tf.float32)
    for other in (clone, revived):
        np.testing.assert_array_equal(other(x).numpy(), layer(x).numpy())


def test_threshold_activation_saved_keras_model_round_trip(tmp_path):
    import keras

    from tf_impl.layers import ThresholdActivation

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), ThresholdActivation(2.0),
                              keras.layers.Dense(1)])
    x = np.random.default_rng(0).normal(0.0, 3.0, size=(5, 6)).astype("float32")
    path = tmp_path / "threshold.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], ThresholdActivation) and loaded.layers[1].threshold == 2.0
    hidden = keras.Model(loaded.inputs[0], loaded.layers[1].output)(x).numpy()
    assert hidden.min() >= 0.0 and hidden.max() <= 2.0 and (hidden == 2.0).any() and (hidden == 0.0).any()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_threshold_activation_torch_state_repr_and_pickle():
    import torch

    from torch_impl.layers import ThresholdActivation

    layer = ThresholdActivation(0.75)
    assert repr(layer) == "ThresholdActivation(threshold=0.75)"
    assert layer.state_dict() == {}  # nothing to learn; the threshold is configuration
    layer.load_state_dict({})
    x = torch.tensor(_grid(0.75))
    buf = io.BytesIO()
    torch.save(layer, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    for other in (loaded, copy.deepcopy(layer)):
        assert repr(other) == repr(layer)
        torch.testing.assert_close(other(x), layer(x), rtol=0, atol=0)
    # half precision: the bound is rounded to the input's dtype, the output keeps it
    half = layer(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and float(half.max()) == float(torch.tensor(0.75, dtype=torch.bfloat16))


# ============================================================================ penalties on layers
def test_keras_activity_regularizer_adds_the_penalty_over_the_batch_size(tmp_path):
    """As ``activity_regularizer=`` Keras divides the value by the batch size (documented in the
    class); the regularizer survives a saved ``.keras`` model."""
    import keras
    import tensorflow as tf

    import tf_impl

    entry = spec.get("kl_sparsity")
    params = {"target": 0.05, "weight": 0.2}
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    hidden = keras.layers.Dense(6, activation="sigmoid", activity_regularizer=tf_impl.get_loss(
        "kl_sparsity", **params))(inp)
    model = keras.Model(inp, keras.layers.Dense(1)(hidden))
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    model(tf.constant(x))
    acts = keras.Model(inp, hidden)(x).numpy().astype(np.float64)
    expected = float(entry.reference_reduced(acts, None, **params))
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), expected / 8, rtol=1e-5)
    path = tmp_path / "kl.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    reg = loaded.layers[1].activity_regularizer
    assert type(reg) is tf_impl.KLSparsity and reg.get_config() == dict(entry.validate_params(params),
                                                                         reduction="mean", validate=True)
    loaded(tf.constant(x))
    np.testing.assert_allclose(float(loaded.losses[0]), float(model.losses[0]), rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_hard_count_gives_the_weights_exactly_zero_gradient(temperature):
    """The count-above-a-threshold answer's count does nothing to the weights (temperature 0): exactly-zero parameter
    gradients in torch and Keras; the relaxation (temperature > 0) moves them."""
    import tensorflow as tf
    import torch

    import tf_impl
    import torch_impl

    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(8, 5)), rng.normal(size=(5, 3))
    params = {"threshold": 0.25, "factor": 2.0, "temperature": temperature}

    wt = torch.tensor(w, requires_grad=True)
    value_t = torch_impl.get_loss("count_penalty", **params)(torch.tensor(x) @ wt)
    value_t.backward()
    wk = tf.Variable(w)
    with tf.GradientTape() as tape:
        value_k = tf_impl.get_loss("count_penalty", **params)(tf.constant(x) @ wk)
    gk = tape.gradient(value_k, wk)
    assert gk is not None  # an exact zero, not a disconnected graph
    expected = float(spec.get("count_penalty").reference_reduced(x @ w, None, **params))
    np.testing.assert_allclose([float(value_t.detach()), float(value_k)], expected, rtol=1e-12)
    if temperature == 0.0:
        assert expected > 0 and np.all(wt.grad.numpy() == 0.0) and np.all(gk.numpy() == 0.0)
    else:
        assert np.abs(wt.grad.numpy()).max() > 1e-3
        np.testing.assert_allclose(gk.numpy(), wt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_kl_sparsity_sample_weights_in_both_frameworks():
    """Weighted batch means (``sample_weight`` of the functional forms and the torch module), and
    all-zero weights: penalty 0, gradient 0."""
    import tensorflow as tf
    import torch

    import tf_impl
    import torch_impl

    entry = spec.get("kl_sparsity")
    rng = np.random.default_rng(3)
    a = 1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.5, size=(6, 4))))
    a[:, 3] = 0.0  # a dead unit: clamped, gradient 0
    params = {"target": 0.2, "weight": 0.5}
    for sw in (np.array([0.5, 2.0, 0.0, 1.0, 3.0, 0.25]), np.zeros(6)):
        expected = entry.reference_reduced(a, None, sample_weight=sw, **params)
        expected_grad = entry.reference_grad(a, None, sample_weight=sw, **params)
        for call in (lambda x: torch_impl.functional.kl_sparsity(x, sample_weight=torch.tensor(sw), **params),
                     lambda x: torch_impl.get_loss("kl_sparsity", **params)(x, torch.tensor(sw))):
            x = torch.tensor(a, requires_grad=True)
            value = call(x)
            value.backward()
            np.testing.assert_allclose(float(value), expected, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(x.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-14)
        x = tf.constant(a)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf_impl.functional.kl_sparsity(x, sample_weight=tf.constant(sw), **params)
        np.testing.assert_allclose(float(value), expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(tape.gradient(value, x).numpy(), expected_grad, rtol=1e-10, atol=1e-14)
    assert float(entry.reference_reduced(a, None, sample_weight=np.zeros(6), **params)) == 0.0


def test_single_input_penalties_take_no_target():
    """The torch modules are called ``penalty(x)`` / ``penalty(x, sample_weight)``; a target
    passed by keyword is a TypeError, not silently ignored."""
    import torch

    import torch_impl

    penalty = torch_impl.get_loss("count_penalty", threshold=0.5)
    x = torch.tensor([[0.2, 0.9], [1.5, -0.3]])
    assert float(penalty(x)) == pytest.approx(1.0)
    with pytest.raises(TypeError):
        penalty(x, target=x)
    with pytest.raises(ValueError, match="missing required parameter `threshold`"):
        torch_impl.get_loss("count_penalty")
