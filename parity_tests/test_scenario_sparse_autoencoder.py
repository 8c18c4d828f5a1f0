"""Scenario ``sparse_autoencoder`` (KL sparsity problem): its data, its committed Lightning config, the one
objective of both frameworks (reconstruction MSE + ``kl_sparsity`` of the coding layer, undivided —
not Keras' ``activity_regularizer`` value divided by the batch size), the Keras model's round trip,
and (``slow``) quick runs in which the penalty puts the coding units' mean activations at 0.1."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lossparity.scenarios import sparse_autoencoder as sa

pytestmark = pytest.mark.project
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# --------------------------------------------------------------------------- data, helpers (fast)
def test_data_are_digits_in_unit_range_reconstructing_themselves():
    data = sa.images()
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == np.float32 and data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    np.testing.assert_array_equal(data.x_train, data.y_train)
    np.testing.assert_array_equal(data.x_test, data.y_test)
    assert data.y_train is not data.x_train  # the targets are a copy: nothing aliases the inputs
    from lossparity.scenarios.data import load_digits_split

    np.testing.assert_array_equal(data.x_test * 16, load_digits_split()["x_test"].reshape(360, 64))


def test_unit_statistics_and_kl_match_the_spec_penalty():
    from spec import get as spec_get

    rng = np.random.default_rng(0)
    codes = rng.beta(1, 6, size=(500, 7))
    stats = sa.unit_statistics(codes)
    q = codes.mean(axis=0)
    assert stats["mean_activation"] == pytest.approx(q.mean())
    assert stats["units_near_target"] == pytest.approx(np.mean(np.abs(q - 0.1) <= 0.05))
    # the reported KL is the spec's penalty with weight 1 (its batch = the whole test set)
    reference = float(spec_get("kl_sparsity").reference(codes, None, target=0.1, weight=1.0, epsilon=1e-7,
                                                        sync=False))
    assert stats["kl_divergence"] == pytest.approx(reference, rel=1e-12)
    assert sa.kl_divergence(np.full(4, 0.1)) == 0.0
    assert np.isfinite(sa.kl_divergence(np.array([0.0, 1.0])))  # dead / saturated units: clipped, finite


def test_lightning_config_is_the_scenarios_kl_job():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(sa.SCENARIO.config_path().read_text())
    assert config["model"]["net"]["init_args"] == sa.SPARSE.kwargs()
    assert config["model"]["net"]["init_args"]["activity_regularizer"] == {"name": "kl_sparsity", "target": 0.1,
                                                                          "weight": 0.2}
    assert config["model"]["loss"] == sa.LOSS.name and not config["model"].get("loss_params")
    assert config["model"]["optimizer"]["lr"] == sa.LR and config["data"]["batch_size"] == sa.BATCH_SIZE
    assert config["data"]["source"] == "lossparity.scenarios.sparse_autoencoder:lightning_data"


# --------------------------------------------------------------------------- one objective (fast)
def test_both_frameworks_minimize_mse_plus_undivided_kl():
    """Same weights, same batch (float64): torch's LossModule loss, Keras' compiled loss + the
    ActivityLoss layer's added loss, and the formula ``mse + kl_sparsity(codes)`` agree; Keras'
    own ``activity_regularizer=KLSparsity`` adds the penalty divided by the batch size."""
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    import tf_impl
    from tf_impl import training as kt
    from torch_impl import lightning as tl
    from torch_impl.regression import mean_squared_error
    from torch_impl.regularizers import kl_sparsity

    x = sa.images().x_train[:96].astype(np.float64)
    weights = sa.SPARSE.init_weights(1)

    net = tl.MLP(**sa.SPARSE.kwargs()).double()
    net.set_numpy_weights(weights)
    module = tl.LossModule(net, loss=sa.LOSS.name)
    xt = torch.as_tensor(x)
    torch_loss = float(module._loss(module(xt), xt).detach())
    codes = net.features(xt)
    penalty = float(kl_sparsity(codes, target=sa.TARGET, weight=sa.WEIGHT))
    assert penalty > 1.0  # the untrained codes sit near 0.5: far from the target
    assert torch_loss == pytest.approx(float(mean_squared_error(net(xt), xt)) + penalty, rel=1e-14)

    model = sa.SPARSE.keras_model(dtype="float64")
    sa.SPARSE.set_keras_weights(model, weights)
    assert [layer.name for layer in model.layers] == ["hidden_0", "activity", "output", "head"]
    kt.compile_model(model, loss=kt.build_loss(sa.LOSS.name))
    reconstruction = model(x, training=True)
    assert len(model.losses) == 1
    keras_penalty = float(model.losses[0])
    keras_loss = float(model.loss(x, reconstruction)) + keras_penalty
    assert keras_penalty == pytest.approx(penalty, rel=1e-12)
    assert keras_loss == pytest.approx(torch_loss, rel=1e-12)

    # the trap the ActivityLoss layer avoids: Keras divides activity regularizers by the batch size
    layer = keras.layers.Dense(sa.CODING_UNITS, activation="sigmoid", dtype="float64",
                               activity_regularizer=tf_impl.KLSparsity(target=sa.TARGET, weight=sa.WEIGHT))
    layer.build((None, sa.PIXELS))
    layer.set_weights([weights[0][0].T, weights[0][1]])
    layer(x)
    assert float(layer.losses[0]) == pytest.approx(penalty / len(x), rel=1e-12)


def test_penalty_changes_the_training_step():
    """Without the penalty the same initial weights take another step (the penalty is trained)."""
    torch = pytest.importorskip("torch")
    from torch_impl import lightning as tl

    x = torch.as_tensor(sa.images().x_train[:128].astype(np.float64))
    grads = []
    for model in (sa.SPARSE, sa.PLAIN):
        net = tl.MLP(**model.kwargs()).double()
        net.set_numpy_weights(sa.SPARSE.init_weights(0))
        module = tl.LossModule(net, loss=sa.LOSS.name)
        module._loss(module(x), x).backward()
        grads.append(net.hidden[0].weight.grad.clone())
    assert float((grads[0] - grads[1]).abs().max()) > 1e-3


def test_keras_model_with_the_penalty_saves_and_loads(tmp_path):
    kt = pytest.importorskip("tf_impl.training")
    x = sa.images().x_test[:64]
    model = sa.SPARSE.keras_model()
    sa.SPARSE.set_keras_weights(model, sa.SPARSE.init_weights(2))
    kt.compile_model(model, loss=kt.build_loss(sa.LOSS.name), metrics={"mse": {"kind": "mse"}})
    before = model.evaluate(x, x, verbose=0, return_dict=True)
    kt.save_model(model, tmp_path / "sae.keras")
    loaded = kt.load_model(tmp_path / "sae.keras")
    assert type(loaded.get_layer("activity")).__name__ == "ActivityLoss"
    assert loaded.get_layer("activity").penalty.get_config()["weight"] == sa.WEIGHT
    np.testing.assert_array_equal(kt.predict(loaded, x), kt.predict(model, x))
    after = loaded.evaluate(x, x, verbose=0, return_dict=True)
    assert after["loss"] == pytest.approx(before["loss"], rel=1e-6)
    assert after["loss"] > after["mse"] + 1.0  # the evaluated loss includes the (large, untrained) penalty
    np.testing.assert_allclose(kt.features(loaded, x), kt.features(model, x))


# --------------------------------------------------------------------------- quick runs (slow)
@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_quick_run_puts_the_units_mean_activation_at_the_target(quick_report, framework):
    """The report's ``lossparity.run sparse_autoencoder --quick`` run (conftest ``quick_report``)."""
    folder = quick_report / "runs" / "sparse_autoencoder" / framework / "seed0"
    m = json.loads((folder / "metrics.json").read_text())
    histories = json.loads((folder / "history.json").read_text())
    assert m["kl_sparsity/units_near_target"] >= 0.9
    assert abs(m["kl_sparsity/mean_activation"] - sa.TARGET) < 0.02
    assert m["no_penalty/units_near_target"] <= 0.1 and m["no_penalty/mean_activation"] > 0.3
    assert m["kl_sparsity/kl_divergence"] < 0.05 * m["no_penalty/kl_divergence"]
    assert m["kl_sparsity/reconstruction_mse"] > m["no_penalty/reconstruction_mse"]  # sparsity costs reconstruction
    assert m["no_penalty/reconstruction_mse"] < 0.03  # the plain autoencoder reconstructs
    # the evaluated loss is the reconstruction MSE plus the penalty on the test batch (none without it)
    assert m["no_penalty/loss"] == pytest.approx(m["no_penalty/reconstruction_mse"], rel=1e-5)
    assert m["kl_sparsity/loss"] > m["kl_sparsity/reconstruction_mse"]
    hist = histories["kl_sparsity"]["unit_mean_hist"]
    assert sum(hist) == sa.CODING_UNITS and len(histories["kl_sparsity"]["example_reconstruction"]) == 8 * 64
    assert {p.name for p in folder.glob("*.png")} == {
        "sparse_autoencoder_units.png", "sparse_autoencoder_metrics.png", "sparse_autoencoder_reconstructions.png",
        "sparse_autoencoder_curves.png"}
