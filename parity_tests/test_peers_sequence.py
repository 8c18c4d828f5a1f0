"""The metric-learning and sequence entries against the frameworks' own losses of the same math, beyond the
port table: ``keras.losses.Circle`` and its twin (``torch_impl.from_keras``) are proven equal, values and
gradients, float32 and float64, every reduction, by ``test_framework_peers.py`` (row Circle of
:mod:`spec.ports`; torch.nn has no circle loss). Where a peer differs from the catalog's entry, the entry's
``peer_notes`` say so and a test here pins it."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

DTYPES = ("float32", "float64")


def _keras_circle(params, dtype, reduction):
    import keras

    return keras.losses.Circle(gamma=params["gamma"], margin=params["margin"],
                               remove_diagonal=params["remove_diagonal"], reduction=reduction, dtype=dtype)


def _assert_close(name, dtype, field, actual, expected):
    tol = getattr(spec.get(name).tolerances, field)[dtype]
    result = tol.compare(actual, expected)
    assert result.ok, f"{field}: {result.detail}"


def _keras_value_and_grad(loss, y_true, y_pred, dtype, sample_weight=None):
    import tensorflow as tf

    x = tf.constant(y_pred, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(tf.constant(y_true), x, sample_weight)
    return value, tape.gradient(value, x)


# ---------------------------------------------------------------- circle
def _circle_case(case_id):
    return next(c for c in spec.get("circle").cases() if c.id == case_id)


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_circle_mean_divides_by_the_samples_with_a_positive_loss(dtype):
    """PeerNote of circle: Keras' 'sum_over_batch_size' masks the samples whose loss is 0 (no positive or no
    negative pair) and divides by the others; ours divides by N: Keras' mean is ours × N / #{ℓ_i > 0}. (The
    twin of keras.losses.Circle() divides by that count: row Circle of spec.ports, test_framework_peers.)"""
    import tf_impl

    case = _circle_case("typical-unit")  # label 2 appears once: one sample without a positive pair
    params = spec.get("circle").validate_params(case.params)
    per_sample = spec.get("circle").reference(case.prediction, case.target, **params)
    positive = int(np.sum(per_sample > 0))
    assert 0 < positive < per_sample.size
    x = case.prediction.astype(dtype)
    keras_mean = float(_keras_circle(params, dtype, "sum_over_batch_size")(case.target, x))
    our_mean = float(tf_impl.get_loss("circle", **case.params)(case.target, x))
    assert our_mean == pytest.approx(float(np.mean(per_sample)), rel=1e-5)
    assert keras_mean == pytest.approx(our_mean * per_sample.size / positive, rel=1e-5)  # 8 / 7 apart


def test_keras_circle_merges_labels_that_round_to_the_same_float32():
    """Row Circle and circle's PeerNote: Keras casts the labels through its floatx (float32) to int32, so
    2**24 and 2**24 + 1 are one label there (a positive pair); the twin compares them as given (two labels)."""
    import keras
    import torch

    import torch_impl

    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.array([2**24, 2**24 + 1, 0, 0], np.int64)
    merged = np.array([7, 7, 0, 0], np.int64)
    peer = keras.losses.Circle(reduction=None)
    twin = torch_impl.from_keras(peer)
    keras_values = peer(labels, x).numpy()
    np.testing.assert_allclose(keras_values, peer(merged, x).numpy(), rtol=1e-6)
    ours = twin(torch.tensor(x), torch.tensor(labels)).numpy()
    np.testing.assert_allclose(twin(torch.tensor(x), torch.tensor(merged)).numpy(), keras_values, rtol=1e-5)
    assert np.all(ours[:2] == 0.0) and np.all(keras_values[:2] > 0.0)  # no positive pair here, one there


def test_keras_circle_takes_the_rows_as_they_are_ours_normalizes_by_default():
    """PeerNote of circle: keras.losses.Circle uses dot products of the rows as given; ours divides each
    row by its norm unless normalize=False. Ours(x) = Keras(x / |x|) in value; the gradients differ by the
    radial part x̂ (x̂·g), which ours removes (a UnitNormalization layer before Keras removes it too)."""
    import tf_impl

    import tensorflow as tf

    case = _circle_case("typical")  # raw Gaussian rows, norms ~2
    params = spec.get("circle").validate_params(case.params)
    unit = case.prediction / np.linalg.norm(case.prediction, axis=1, keepdims=True)
    keras_raw, _ = _keras_value_and_grad(_keras_circle(params, "float64", None), case.target, case.prediction,
                                         "float64")
    keras_unit, keras_grad = _keras_value_and_grad(_keras_circle(params, "float64", None), case.target, unit,
                                                   "float64")
    ours_raw = tf_impl.get_loss("circle", reduction="none", normalize=False, **case.params)(case.target,
                                                                                          case.prediction)
    ours, ours_grad = _keras_value_and_grad(tf_impl.get_loss("circle", reduction="none", **case.params),
                                            case.target, unit, "float64")
    _assert_close("circle", "float64", "value", ours_raw.numpy(), keras_raw.numpy())
    _assert_close("circle", "float64", "value", ours.numpy(), keras_unit.numpy())
    assert not np.allclose(keras_raw.numpy(), keras_unit.numpy(), rtol=1e-2)
    g = keras_grad.numpy()
    projected = g - unit * np.sum(unit * g, axis=1, keepdims=True)
    _assert_close("circle", "float64", "grad", ours_grad.numpy(), projected)
    assert np.max(np.abs(np.sum(unit * g, axis=1))) > 1.0  # Keras' gradient has a radial part
    # through keras.layers.UnitNormalization the parameter-side gradients agree
    x = tf.constant(case.prediction)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        keras_value = _keras_circle(params, "float64", None)(case.target, tf.keras.layers.UnitNormalization(dtype="float64")(x))
        ours_value = tf_impl.get_loss("circle", reduction="none", **case.params)(case.target, x)
    _assert_close("circle", "float64", "grad", tape.gradient(ours_value, x).numpy(),
                  tape.gradient(keras_value, x).numpy())


def test_keras_circle_computes_float64_inputs_in_float32_by_default():
    """PeerNote of circle: keras.losses.Circle() casts to floatx (float32); ours keeps float64."""
    import tf_impl

    import keras

    case = _circle_case("typical-unit")
    assert keras.losses.Circle()(case.target, case.prediction).dtype == "float32"
    assert tf_impl.get_loss("circle", normalize=False)(case.target, case.prediction).dtype == "float64"


@pytest.mark.parametrize("case_id", ["edge-no-positive", "edge-one-label", "edge-batch1"])
def test_circle_samples_without_a_pair_have_loss_zero_and_no_gradient(case_id):
    """grad_convention of circle: no positive or no negative pair → loss 0, gradient 0 (no NaN from the
    empty log-sum-exp), in both twins and in Keras."""
    import tf_impl

    import torch

    import torch_impl

    case = _circle_case(case_id)
    x = torch.tensor(case.prediction, requires_grad=True)
    value = torch_impl.get_loss("circle", reduction="none", **case.params)(x, torch.tensor(case.target))
    value.sum().backward()
    assert np.all(value.detach().numpy() == 0.0) and np.all(x.grad.numpy() == 0.0)
    kv, kg = _keras_value_and_grad(tf_impl.get_loss("circle", reduction="none", **case.params), case.target,
                                   case.prediction, "float64")
    assert np.all(kv.numpy() == 0.0) and np.all(kg.numpy() == 0.0)
    params = spec.get("circle").validate_params(case.params)
    pv, pg = _keras_value_and_grad(_keras_circle(params, "float64", None), case.target, case.prediction, "float64")
    assert np.all(pv.numpy() == 0.0) and np.all(np.isfinite(pg.numpy()))
