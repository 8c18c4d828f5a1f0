"""Scenario ``count_penalty`` (count above a threshold): its data, its committed Lightning config, the threshold
head in both frameworks, and the question's trap — a hard count has a gradient of exactly 0, so the
model trained with it has the plain-MSE model's weights bit for bit (in torch and in Keras), while
the soft count trains fewer outputs above the threshold. Runs that train are marked ``slow``."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lossparity.scenarios import count_penalty as cp
from lossparity.scenarios.base import Job, RunConfig

pytestmark = pytest.mark.project
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# --------------------------------------------------------------------------- data (fast)
def test_data_is_a_sparse_regression_with_targets_above_the_threshold():
    x, y = cp.generate(5000)
    x2, y2 = cp.generate(5000)
    np.testing.assert_array_equal(y, y2)  # fixed seed
    assert x.shape == (5000, cp.IN_FEATURES) and y.shape == (5000, cp.OUT_FEATURES)
    fraction = float(np.mean(y > cp.THRESHOLD))
    assert 0.15 < fraction < 0.3, fraction  # ~21 %: P(z > 0.8) for z ~ N(0, 1), blurred by the noise
    assert float(np.mean(np.abs(y) < 3 * cp.NOISE)) > 0.5  # most targets are noise around 0
    quick, full = cp.split(quick=True), cp.split()
    assert quick.x_train.shape == (cp.QUICK_TRAIN, cp.IN_FEATURES) and full.x_test.shape == (cp.N_TEST, cp.IN_FEATURES)
    np.testing.assert_array_equal(quick.x_test, full.x_test[: cp.QUICK_TEST])  # held-out rows never trained on
    assert quick.x_train.dtype == np.float32


def test_count_helpers_are_strict_and_inclusive():
    values = np.array([[0.5, 0.51, 0.2], [np.float32(0.5), 1.0, -1.0]], np.float32)
    assert cp.count_above(values) == 1.0  # strictly above (the question's tf.greater)
    assert cp.count_at_least(values) == 2.0
    a = [(np.ones((2, 3)), np.zeros(2))]
    b = [(np.ones((2, 3)), np.array([0.0, 2.5]))]
    assert cp.weight_difference(a, b) == 2.5 and not cp.weights_identical(a, b) and cp.weights_identical(a, a)


def test_lightning_config_is_the_scenarios_soft_count_job():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(cp.SCENARIO.config_path().read_text())
    net = config["model"]["net"]["init_args"]
    assert config["model"]["net"]["class_path"] == "torch_impl.lightning.MLP"
    assert net == cp.MODEL.kwargs()
    loss = cp.count_loss(0.1)
    assert config["model"]["loss"] == loss.name and config["model"]["loss_params"] == loss.kwargs()
    assert config["data"]["source"] == "lossparity.scenarios.count_penalty:lightning_data"
    assert config["data"]["batch_size"] == cp.BATCH_SIZE and config["trainer"]["max_epochs"] == cp.EPOCHS


# --------------------------------------------------------------------------- the mechanism (fast)
def test_hard_count_gradient_is_exactly_the_mse_gradient_in_both_frameworks():
    """The seed's count adds to the loss value but not to its gradient, bit for bit."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    import tf_impl
    import torch_impl

    rng = np.random.default_rng(3)
    pred = rng.normal(0.4, 0.6, size=(64, cp.OUT_FEATURES)).astype(np.float32)
    target = rng.normal(size=(64, cp.OUT_FEATURES)).astype(np.float32)
    params = cp.count_loss(0.0).kwargs()

    def torch_grad(loss):
        p = torch.tensor(pred, requires_grad=True)
        value = loss(p, torch.tensor(target))
        value.backward()
        return float(value), p.grad.numpy()

    def keras_grad(loss):
        p = tf.Variable(pred)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(target), p)
        return float(value), tape.gradient(value, p).numpy()

    for grad in ((torch_grad, torch_impl.get_loss), (keras_grad, tf_impl.get_loss)):
        fn, get = grad
        plain_value, plain_grad = fn(get("mean_squared_error"))
        hard_value, hard_grad = fn(get("mse_count_penalty", **params))
        soft_value, soft_grad = fn(get("mse_count_penalty", **cp.count_loss(0.1).kwargs()))
        np.testing.assert_array_equal(hard_grad, plain_grad)  # the trap: not one bit of gradient
        expected = cp.FACTOR * cp.count_above(pred)
        assert hard_value - plain_value == pytest.approx(expected, rel=1e-5)  # ... but the value moved
        assert np.max(np.abs(soft_grad - plain_grad)) > 1e-4  # the relaxation has a gradient


def test_threshold_head_in_both_frameworks_and_keras_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    kt = pytest.importorskip("tf_impl.training")
    from torch_impl import lightning as tl

    model = cp.THRESHOLD_MODEL
    weights = model.init_weights(5)
    net = tl.MLP(**model.kwargs()).double()
    net.set_numpy_weights(weights)
    keras_model = model.keras_model(dtype="float64")
    model.set_keras_weights(keras_model, weights)
    x = np.random.default_rng(0).normal(size=(256, cp.IN_FEATURES)) * 3
    with torch.no_grad():
        out_torch = net(torch.as_tensor(x)).numpy()
    out_keras = kt.predict(keras_model, x)
    np.testing.assert_allclose(out_torch, out_keras, rtol=1e-12, atol=1e-14)
    assert out_torch.min() == 0.0 and out_torch.max() == cp.THRESHOLD  # clipped at both ends
    assert 0 < np.mean(out_torch == cp.THRESHOLD) < 1
    kt.save_model(keras_model, tmp_path / "head.keras")
    loaded = kt.load_model(tmp_path / "head.keras", compile=False)
    np.testing.assert_array_equal(kt.predict(loaded, x), out_keras)
    assert type(loaded.layers[-1]).__name__ == "ThresholdActivation" and loaded.layers[-1].threshold == cp.THRESHOLD
    for build in (lambda **kw: tl.MLP(**kw), lambda **kw: kt.build_mlp(**kw)):
        with pytest.raises(ValueError, match="needs a threshold"):
            build(**{**model.kwargs(), "threshold": None})
        with pytest.raises(ValueError, match="only it takes one"):
            build(**{**cp.MODEL.kwargs(), "threshold": 0.5})


# --------------------------------------------------------------------------- the question's trap (slow)
def _backend(framework):
    if framework == "torch":
        pytest.importorskip("lightning.pytorch")
    else:
        pytest.importorskip("keras")
    from lossparity.scenarios.backends import make_backend

    return make_backend(framework, threads=None)  # no global thread changes in the test process


@pytest.fixture
def _restore_torch_flags():
    torch = pytest.importorskip("torch")
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(deterministic)  # undo Trainer(deterministic=True)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_quick_run_hard_count_is_bit_identical_and_soft_count_reduces_it(quick_report, framework):
    """The report's ``lossparity.run count_penalty --quick`` run (conftest ``quick_report``)."""
    folder = quick_report / "runs" / "count_penalty" / framework / "seed0"
    m = json.loads((folder / "metrics.json").read_text())
    histories = json.loads((folder / "history.json").read_text())
    n_test = cp.split(quick=True).y_test.size
    # the trap: the hard count never moved a weight differently from plain MSE ...
    assert m["hard_vs_plain/max_abs_weight_diff"] == 0.0 and m["hard_vs_plain/identical"] == 1.0
    assert m["hard_count/count_above"] == m["plain/count_above"] and m["hard_count/mse"] == m["plain/mse"]
    # ... it only raised the reported loss by factor × count
    assert m["hard_vs_plain/loss_difference"] == pytest.approx(m["hard_vs_plain/factor_times_count"], rel=1e-4)
    assert m["hard_vs_plain/loss_difference"] > 0.01
    # the soft count trains fewer outputs above the threshold, more so at low temperature, for some MSE
    plain = m["plain/count_above"]
    assert m[f"{cp.soft_key(0.1)}/count_above"] < 0.7 * plain
    assert m[f"{cp.soft_key(0.1)}/count_above"] < m[f"{cp.soft_key(1.0)}/count_above"] < plain
    assert m[f"{cp.soft_key(0.1)}/mse"] > m["plain/mse"]
    # the clip hides the count: nothing strictly above t, but outputs pinned at t
    assert m["threshold_head/count_above"] == 0.0 and m["threshold_head/max_prediction"] == cp.THRESHOLD
    assert m["threshold_head/count_at_least"] > 0.2
    assert {p.name for p in folder.glob("*.png")} == {
        "count_penalty_tradeoff.png", "count_penalty_predictions.png", "count_penalty_curves.png"}
    assert set(histories) == set(cp.JOB_KEYS)
    assert all(len(h["prediction_hist"]) == len(cp.HIST_EDGES) - 1 and sum(h["prediction_hist"]) == n_test
               for h in histories.values())


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_trained_weights_are_exposed_and_change(tmp_path, framework, _restore_torch_flags):
    """``Trained.weights`` returns the trained (not the initial) weights in torch layout."""
    data = cp.split(quick=True).subset(np.arange(256))
    job = Job("w", cp.MODEL, cp.PLAIN_LOSS, cp.METRICS, epochs=1, batch_size=32, seed=3, validate=False)
    trained = _backend(framework).train(job, data, RunConfig(out=tmp_path, quick=True, progress=False))
    after, before = trained.weights(), cp.MODEL.init_weights(3)
    assert [w.shape for w, _ in after] == [w.shape for w, _ in before]
    assert cp.weight_difference(after, [(w.astype(np.float32), b) for w, b in before]) > 1e-4
    w, b = after[-1]  # the output layer reproduces the predictions
    features = trained.features(data.x_test[:16]).astype(np.float64)
    np.testing.assert_allclose(features @ w.T + b, trained.predict(data.x_test[:16]), rtol=1e-5, atol=1e-5)
