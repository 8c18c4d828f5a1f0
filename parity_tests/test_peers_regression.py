"""The regression entries not yet in the port table (:mod:`spec.ports`, proven by
``test_framework_peers.py``) against the frameworks' own losses of the same math: our torch twin equals
the torch.nn loss, our Keras twin equals the Keras loss class, in float32 and float64, values and
gradients, on the spec's cases, with each peer's default reduction mapped to ours (torch's "mean"
over every element and Keras' "sum_over_batch_size" both equal our "mean": Σ_i ℓ_i / N of
per-sample means). Where a peer differs, the entry's ``peer_notes`` say so and a test here pins it."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

#: spec name → (the torch.nn peer or None, the Keras peer), each built from the case's validated params
PEERS = {
    # torch.nn has no MAPE and no MSLE; Keras' epsilon is fixed (the backend epsilon): KERAS_FIXED
    "mean_absolute_percentage_error": (
        None, lambda losses, p, dtype: losses.MeanAbsolutePercentageError(dtype=dtype)),
    "mean_squared_logarithmic_error": (
        None, lambda losses, p, dtype: losses.MeanSquaredLogarithmicError(dtype=dtype)),
    "poisson": (lambda nn, p: nn.PoissonNLLLoss(log_input=p["log_input"], full=p["full"], eps=p["epsilon"]),
                lambda losses, p, dtype: losses.Poisson(dtype=dtype)),
    # torch.nn has a similarity module, not a loss: its negated mean (torch.nn.CosineEmbeddingLoss is another loss)
    "cosine_similarity": (
        lambda nn, p: lambda x, y: -nn.CosineSimilarity(dim=p["axis"], eps=p["epsilon"])(x, y).mean(),
        lambda losses, p, dtype: losses.CosineSimilarity(axis=p["axis"], dtype=dtype)),
}
#: parameters a Keras peer cannot change: only the cases with these values are compared with it
KERAS_FIXED = {"mean_absolute_percentage_error": {"epsilon": 1e-7}, "mean_squared_logarithmic_error": {"epsilon": 1e-7},
               "poisson": {"log_input": False, "epsilon": 1e-7, "full": False}, "cosine_similarity": {"epsilon": 1e-7}}
#: cases where a Keras peer differs by more than the tolerance, each pinned by its own test below
KERAS_DIFFERS = {
    # Keras' clamp in float64 is float32(1e-7) = 1.0000000116860974e-07 > 1e-7 = ŷ: gradient 0 where ours is the
    # ŷ >= ε branch (test_keras_msle_in_float64_clamps_at_a_float32_epsilon)
    ("mean_squared_logarithmic_error", "edge-at-epsilon", "float64"),
}
#: cases where the torch.nn peer differs by more than the tolerance, each pinned by its own test below
TORCH_DIFFERS = {
    # inside ‖ŷ‖ < ε F.cosine_similarity's backward is not the derivative of its forward
    # (test_torch_cosine_similarity_gradient_below_epsilon_differentiates_the_unclamped_norm)
    ("cosine_similarity", "edge-below-epsilon"), ("cosine_similarity", "epsilon-0.5-typical"),
}
DTYPES = ("float32", "float64")


def _cases(kinds=("typical", "extreme", "edge"), framework=1):
    out = []
    for name in (n for n, peers in PEERS.items() if peers[framework] is not None):
        entry = spec.get(name)
        fixed = KERAS_FIXED.get(name, {}) if framework == 1 else {}
        for case in entry.cases():
            params = entry.validate_params(case.params)
            if any(params[k] != v for k, v in fixed.items()):
                continue
            if case.kind in kinds and case.sample_weight is None:
                for dtype in case.dtypes:
                    if framework == 1 and (name, case.id, dtype) in KERAS_DIFFERS:
                        continue
                    if framework == 0 and (name, case.id) in TORCH_DIFFERS:
                        continue
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


@pytest.mark.parametrize("name,case,dtype", _cases(framework=0))
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


# ---------------------------------------------------------------- mean_absolute_percentage_error
def test_mean_absolute_percentage_error_targets_near_zero_divide_by_epsilon():
    """Keras' definition, ours by default: |y| <= 1e-7 divides by 1e-7 (both twins and
    keras.losses.MeanAbsolutePercentageError), and the subgradient at ŷ = y is 0."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    y = np.array([[0.0, 1e-8, -1e-7, 2.0, 3.0]])
    p = np.array([[1e-3, 0.0, 1e-7, 1.0, 3.0]])
    expected = 100 * np.array([1e-3 / 1e-7, 1e-8 / 1e-7, 2e-7 / 1e-7, 1.0 / 2.0, 0.0]).mean()
    expected_grad = 100 * np.array([[1 / 1e-7, -1 / 1e-7, 1 / 1e-7, -1 / 2.0, 0.0]]) / 5
    x = torch.tensor(p, requires_grad=True)
    t_value = torch_impl.get_loss("mean_absolute_percentage_error")(x, torch.tensor(y))
    t_value.backward()
    xt = tf.constant(p)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        ours = tf_impl.get_loss("mean_absolute_percentage_error")(tf.constant(y), xt)
        peer = keras.losses.MeanAbsolutePercentageError(dtype="float64")(tf.constant(y), xt)
    for value in (t_value.item(), float(ours), float(peer)):
        assert value == pytest.approx(expected, rel=1e-12)
    for grad in (x.grad.numpy(), tape.gradient(ours, xt).numpy(), tape.gradient(peer, xt).numpy()):
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)
        assert grad[0, -1] == 0.0


def test_torchmetrics_mape_is_ours_with_its_epsilon_over_100():
    """PeerNote of mean_absolute_percentage_error: torchmetrics' MeanAbsolutePercentageError is a fraction
    with epsilon 1.17e-6 (targets below it included): ours(epsilon=1.17e-6) / 100."""
    import torch
    from torchmetrics.functional import mean_absolute_percentage_error as torchmetrics_mape

    import torch_impl

    for case in spec.get("mean_absolute_percentage_error").cases():
        if case.sample_weight is not None or case.prediction.ndim < 2:
            continue
        x, y = torch.tensor(case.prediction), torch.tensor(case.target)
        ours = torch_impl.get_loss("mean_absolute_percentage_error", epsilon=1.17e-6)(x, y) / 100
        assert float(ours) == pytest.approx(float(torchmetrics_mape(x, y)), rel=1e-12), case.id


# ---------------------------------------------------------------- mean_squared_logarithmic_error
def test_keras_msle_loses_digits_of_small_values_where_ours_keeps_them():
    """PeerNote of mean_squared_logarithmic_error: Keras' log(x + 1) in float32 for ŷ = 3e-6, y = 1e-6 (true
    value (log1p(3e-6) - log1p(1e-6))² = 4.0e-12) is several percent off; ours (both twins) is right to float32
    precision; the absolute error stays far below the float32 tolerance's absolute part."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    p = np.array([[3e-6], [2e-4], [1e-5]], np.float32)
    y = np.array([[1e-6], [1e-4], [4e-6]], np.float32)
    exact = spec.get("mean_squared_logarithmic_error").reference(p.astype(np.float64), y.astype(np.float64),
                                                                          epsilon=1e-7)
    keras_each = keras.losses.MeanSquaredLogarithmicError(reduction=None)(y, p).numpy()
    ours = tf_impl.get_loss("mean_squared_logarithmic_error", reduction="none")(y, p).numpy()
    torch_each = torch_impl.get_loss("mean_squared_logarithmic_error", reduction="none")(
        torch.tensor(p), torch.tensor(y)).numpy()
    np.testing.assert_allclose(ours, exact, rtol=1e-5)
    np.testing.assert_allclose(torch_each, exact, rtol=1e-5)
    keras_rel = np.abs(keras_each - exact) / exact
    assert keras_rel[0] > 0.01, keras_rel
    assert np.abs(keras_each - exact).max() < 1e-10


def test_keras_msle_in_float64_clamps_at_a_float32_epsilon():
    """PeerNote of mean_squared_logarithmic_error: keras.losses.MeanSquaredLogarithmicError(dtype="float64")
    clamps at float32(1e-7) = 1.0000000116860974e-07: at ŷ = 1e-7 its gradient is 0 (clamped), ours is the
    ŷ >= ε branch; a target 1e-7 < y < float32(1e-7) is clamped by Keras only."""
    import tf_impl

    import keras
    import tensorflow as tf

    eps32 = float(np.float32(1e-7))
    assert eps32 == pytest.approx(1.0000000116860974e-07, rel=1e-15)
    p = tf.constant([[1e-7]], tf.float64)
    y = tf.constant([[2.0]], tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(p)
        ours = tf_impl.get_loss("mean_squared_logarithmic_error")(y, p)
        peer = keras.losses.MeanSquaredLogarithmicError(dtype="float64")(y, p)
    expected_grad = spec.get("mean_squared_logarithmic_error").reference_grad(np.array([[1e-7]]), np.array([[2.0]]))
    np.testing.assert_allclose(tape.gradient(ours, p).numpy(), expected_grad, rtol=1e-12)
    assert expected_grad[0, 0] < -1.0
    assert float(tape.gradient(peer, p)[0, 0]) == 0.0
    between = np.array([[1.00000001e-7]])
    assert float(keras.losses.MeanSquaredLogarithmicError(dtype="float64")(between, np.array([[0.0]]))) == 0.0
    assert float(tf_impl.get_loss("mean_squared_logarithmic_error")(between, np.array([[0.0]]))) > 0.0


# ---------------------------------------------------------------- poisson
def test_torch_poisson_full_is_stirling_not_log_factorial():
    """PeerNote of poisson: torch.nn.PoissonNLLLoss(full=True) adds Stirling's approximation of log y! for
    y > 1 (0.652 at y = 2, log 2! = 0.693), 0 for y <= 1; ours with full=True adds the same term."""
    import math

    import torch

    import torch_impl

    x = torch.zeros((1, 4), dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 2.0, 10.0]], dtype=torch.float64)
    per_element = (torch.nn.PoissonNLLLoss(full=True, reduction="none")(x, y)
                   - torch.nn.PoissonNLLLoss(full=False, reduction="none")(x, y))[0].numpy()
    stirling = [0.0, 0.0] + [v * math.log(v) - v + 0.5 * math.log(2 * math.pi * v) for v in (2.0, 10.0)]
    np.testing.assert_allclose(per_element, stirling, rtol=1e-14, atol=0)
    assert per_element[2] == pytest.approx(0.6518, abs=1e-4) and math.lgamma(3.0) == pytest.approx(0.6931, abs=1e-4)
    ours = (torch_impl.get_loss("poisson", full=True, reduction="sum")(x, y)
            - torch_impl.get_loss("poisson", full=False, reduction="sum")(x, y))
    assert float(ours) == pytest.approx(sum(stirling) / 4, rel=1e-14)


def test_poisson_keras_takes_rates_torch_log_rates():
    """keras.losses.Poisson() is poisson(log_input=False); torch.nn.PoissonNLLLoss() is the default
    poisson(log_input=True): the log-rate x and the rate e^x give the same loss, both twins."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 3))
    y = rng.poisson(2.0, size=(4, 3)).astype(np.float64)
    keras_value = float(keras.losses.Poisson(dtype="float64")(y, np.exp(x)))
    torch_value = float(torch.nn.PoissonNLLLoss()(torch.tensor(x), torch.tensor(y)))
    ours_rates = float(tf_impl.get_loss("poisson", log_input=False)(y, np.exp(x)))
    ours_log = float(torch_impl.get_loss("poisson")(torch.tensor(x), torch.tensor(y)))
    assert ours_rates == pytest.approx(keras_value, rel=1e-12)
    assert ours_log == pytest.approx(torch_value, rel=1e-12)
    # the rate form shifts log by epsilon: log(e^x + 1e-7) vs x, relative 1e-7 of the rate at most
    assert ours_rates == pytest.approx(ours_log, rel=1e-6)


def test_poisson_rejects_negative_rates_where_keras_returns_nan():
    """PeerNote of poisson: keras.losses.Poisson takes a negative rate (log of a negative number: NaN); ours
    raises the spec's ValueError in both frameworks."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    y = np.array([[1.0, 2.0]])
    p = np.array([[0.5, -0.25]])
    assert np.isnan(float(keras.losses.Poisson()(y, p)))
    with pytest.raises(ValueError) as torch_error:
        torch_impl.get_loss("poisson", log_input=False)(torch.tensor(p), torch.tensor(y))
    with pytest.raises(ValueError) as keras_error:
        tf_impl.get_loss("poisson", log_input=False)(y, p)
    assert str(torch_error.value) == str(keras_error.value)
    assert "log_input=True" in str(torch_error.value)


# ---------------------------------------------------------------- cosine_similarity
def _cosine_peers(y, p, dtype, axis=-1, epsilon=1e-7):
    """``{name: (value, gradient)}`` of our two twins, Keras' CosineSimilarity and torch's negated
    F.cosine_similarity on (y, ŷ) in ``dtype``, reduction "mean"."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    import torch_impl

    out = {}
    x = tf.constant(p, dtype)
    for name, fn in (("ours keras", tf_impl.get_loss("cosine_similarity", axis=axis, epsilon=epsilon)),
                     ("keras", keras.losses.CosineSimilarity(axis=axis, dtype=dtype))):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(tf.constant(y, dtype), x)
        out[name] = (float(value), tape.gradient(value, x).numpy().astype(np.float64))
    for name, fn in (("ours torch", torch_impl.get_loss("cosine_similarity", axis=axis, epsilon=epsilon)),
                     ("torch", lambda a, b: -F.cosine_similarity(a, b, dim=axis, eps=epsilon).mean())):
        xt = torch.tensor(p, dtype=getattr(torch, dtype), requires_grad=True)
        value = fn(xt, torch.tensor(y, dtype=getattr(torch, dtype)))
        value.backward()
        out[name] = (value.item(), xt.grad.double().numpy())
    return out


def test_cosine_similarity_keeps_float32_norms_past_1e19_where_keras_and_torch_give_zero():
    """PeerNotes of cosine_similarity: in float32 Σ x² overflows past ‖x‖ = 1.8e19; Keras' l2_normalize and
    torch's F.cosine_similarity then give value 0 and gradient 0 (the vector is lost); ours scales each vector by
    its largest |element| first: the true cosine and gradient, in both twins."""
    entry = spec.get("cosine_similarity")
    p = np.array([[3e19, -4e19, 1e19, 0.0], [1.0, 2.0, -1.0, 0.5]])
    y = np.array([[1.0, 2.0, 3.0, 4.0], [1e30, -2e30, 0.0, 5e29]])
    p32, y32 = (a.astype(np.float32).astype(np.float64) for a in (p, y))
    expected, expected_grad = entry.reference_reduced(p32, y32), entry.reference_grad(p32, y32)
    results = _cosine_peers(y, p, "float32")
    for name in ("ours keras", "ours torch"):
        value, grad = results[name]
        _assert_close("cosine_similarity", "float32", "value", value, expected)
        _assert_close("cosine_similarity", "float32", "grad", grad, expected_grad)
    # the peers: each overflowing vector counts as 0 (value 0 in its sample, no gradient to it)
    row_values = entry.reference(p32, y32, **entry.validate_params({}))
    assert abs(row_values[0]) > 0.05 and abs(row_values[1]) > 0.05  # the lost vectors carry real cosines
    for name in ("keras", "torch"):
        value, grad = results[name]
        assert value == 0.0, name
        assert not np.any(grad), name


def test_cosine_similarity_at_a_zero_vector_is_the_same_in_both_twins_and_both_peers():
    """grad_convention of cosine_similarity: a zero prediction vector has value 0 and gradient -m / (K ε),
    m = y / max(‖y‖, ε) (ŷ / ε is linear there); a zero target vector value 0 and gradient 0. Keras'
    l2_normalize (min(rsqrt(0), 1/ε) = 1/ε) and torch's F.cosine_similarity(eps) agree, in float32 and float64."""
    entry = spec.get("cosine_similarity")
    p = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    y = np.array([[1.0, 2.0, -2.0], [0.0, 0.0, 0.0]])
    expected_grad = entry.reference_grad(p, y)
    np.testing.assert_allclose(expected_grad[0], -np.array([1.0, 2.0, -2.0]) / 3.0 / 1e-7 / 2, rtol=1e-15)
    assert not np.any(expected_grad[1])
    for dtype in DTYPES:
        for name, (value, grad) in _cosine_peers(y, p, dtype).items():
            assert value == 0.0, (name, dtype)
            _assert_close("cosine_similarity", dtype, "grad", grad, expected_grad)


def test_cosine_embedding_loss_is_another_loss():
    """PeerNote of cosine_similarity: torch.nn.CosineEmbeddingLoss is 1 - cos for label 1 (= 1 + ours(axis=1),
    up to its 1e-12 inside the norms) and max(0, cos - margin) for label -1, which ours does not compute."""
    import torch

    import torch_impl

    rng = np.random.default_rng(11)
    x1, x2 = (torch.tensor(rng.normal(size=(5, 4))) for _ in range(2))
    ours = torch_impl.get_loss("cosine_similarity", axis=1, reduction="none")(x1, x2).numpy()
    same = torch.nn.CosineEmbeddingLoss(reduction="none")(x1, x2, torch.ones(5)).numpy()
    np.testing.assert_allclose(same, 1.0 + ours, rtol=1e-10)
    other = torch.nn.CosineEmbeddingLoss(margin=0.2, reduction="none")(x1, x2, -torch.ones(5)).numpy()
    np.testing.assert_allclose(other, np.maximum(0.0, -ours - 0.2), rtol=1e-10, atol=1e-15)
    assert np.any(other == 0.0) and not np.allclose(other, 1.0 + ours)


def test_keras_cosine_similarity_reduction_maps_to_ours():
    """PeerNote of cosine_similarity: on (N, T, D) Keras' reduction=None keeps (N, T), one cosine per position;
    ours "none" is their mean per sample, and Keras' default sum_over_batch_size is our "mean", with sample
    weights too (Keras takes them as (N, 1) there: its (N,) weights do not broadcast against (N, T))."""
    import tf_impl

    import keras

    rng = np.random.default_rng(12)
    y, p = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4))
    w = np.array([0.5, 0.0, 2.0])
    per_position = keras.losses.CosineSimilarity(reduction=None, dtype="float64")(y, p).numpy()
    assert per_position.shape == (3, 2)
    ours_none = tf_impl.get_loss("cosine_similarity", reduction="none")(y, p).numpy()
    np.testing.assert_allclose(ours_none, per_position.mean(axis=1), rtol=1e-12)
    with pytest.raises(Exception, match="Incompatible shapes"):
        keras.losses.CosineSimilarity(dtype="float64")(y, p, sample_weight=w)
    peer_mean = float(keras.losses.CosineSimilarity(dtype="float64")(y, p, sample_weight=w[:, None]))
    ours_mean = float(tf_impl.get_loss("cosine_similarity")(y, p, sample_weight=w))
    assert ours_mean == pytest.approx(peer_mean, rel=1e-12)


def test_torch_cosine_similarity_gradient_below_epsilon_differentiates_the_unclamped_norm():
    """PeerNote of cosine_similarity: F.cosine_similarity clamps the norms at eps without recording it, so for
    0 < ‖ŷ‖ < ε its forward is ŷ·m/ε but its backward -(m - (n·m)(‖ŷ‖/ε) n)/ε (the unclamped norm's derivative),
    not the -m/ε of that forward; ours (and Keras') is -m/ε. They agree at ŷ = 0 and for ‖ŷ‖ >= ε."""
    entry = spec.get("cosine_similarity")
    p = np.array([[3e-8, -4e-8, 0.0]])
    y = np.array([[2.0, 1.0, -3.0]])
    results = _cosine_peers(y, p, "float64")
    expected = entry.reference_grad(p, y)
    m = y / np.linalg.norm(y)
    n = p / np.linalg.norm(p)
    np.testing.assert_allclose(expected, -m / 1e-7, rtol=1e-12)
    torch_grad = -(m - np.sum(n * m) * (np.linalg.norm(p) / 1e-7) * n) / 1e-7
    np.testing.assert_allclose(results["torch"][1], torch_grad, rtol=1e-10)
    for name in ("ours torch", "ours keras", "keras"):
        np.testing.assert_allclose(results[name][1], expected, rtol=1e-10, err_msg=name)
    values = {name: value for name, (value, _) in results.items()}
    assert max(values.values()) - min(values.values()) < 1e-12 * abs(values["torch"])
