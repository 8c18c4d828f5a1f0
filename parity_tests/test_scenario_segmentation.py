"""Scenario ``segmentation`` (segmentation problem, ships): the synthetic ship generator, the U-Net
twins (one architecture, torch ``NCHW`` and Keras ``NHWC`` inside, ``(N, H, W)`` outside), the
torch → Keras weight copy (identical float64 forward passes), the collapse statistics, and (slow)
the question's observation: a per-image overlap loss drives every logit negative on data with empty
images, and learns the ships on images with ships only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lossparity.scenarios import segmentation as seg
from lossparity.scenarios.base import RunConfig
from lossparity.scenarios.unet import UNet, layer_plan

pytestmark = pytest.mark.project



# --------------------------------------------------------------------------- data
def test_generator_statistics():
    x, y = seg.generate(1000)
    assert x.shape == y.shape == (1000, seg.IMAGE_SIZE, seg.IMAGE_SIZE)
    assert x.dtype == y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, 1.0}
    assert 0.001 <= y.mean() <= 0.01, y.mean()  # ~0.1-1 % ship pixels
    per_image = y.reshape(1000, -1).sum(axis=1)
    empty = per_image == 0
    assert 0.4 < empty.mean() < 0.6  # about half the images have no ship
    assert per_image[~empty].min() >= 2  # every ship has at least 2 pixels
    # ships are small: at most two ships of at most ~7 x 2.4 px (plus the boundary pixels)
    assert per_image.max() <= 2 * 30
    # ships are bright on the sea, but the sea has bright pixels too (whitecaps): no global threshold
    ship, sea = x[y == 1], x[y == 0]
    assert ship.mean() - sea.mean() > 0.7
    assert (sea > np.quantile(ship, 0.25)).sum() > 0.1 * ship.size


def test_generator_is_reproducible_and_seeded():
    a, b = seg.generate(20), seg.generate(20)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = seg.generate(20, seed=1)
    assert not np.array_equal(a[0], c[0])


def test_ship_mask_is_a_rotated_rectangle():
    big = seg.ship_mask(64, 32.0, 32.0, 20.0, 6.0, 0.0)
    assert big.sum() == 20 * 6
    rows, cols = np.nonzero(big)
    assert np.ptp(cols) + 1 == 20 and np.ptp(rows) + 1 == 6  # long along x at angle 0
    upright = seg.ship_mask(64, 32.0, 32.0, 20.0, 6.0, np.pi / 2)
    np.testing.assert_array_equal(upright, big.T)  # a quarter turn swaps the axes
    tilted = seg.ship_mask(64, 32.0, 32.0, 20.0, 6.0, np.pi / 5)
    assert abs(int(tilted.sum()) - 120) <= 12  # area is kept by the rotation (up to rasterization)


def test_splits_and_ships_only():
    full, quick = seg.split(), seg.split(quick=True)
    assert full.x_train.shape == (seg.N_TRAIN, 32, 32) and full.x_test.shape == (seg.N_TEST, 32, 32)
    np.testing.assert_array_equal(quick.x_train, full.x_train[:seg.QUICK_TRAIN])  # quick = prefixes
    np.testing.assert_array_equal(quick.y_test, full.y_test[:seg.QUICK_TEST])
    ships = seg.ships_only(full)
    per_image = ships.y_train.reshape(len(ships.y_train), -1).sum(axis=1)
    assert per_image.min() > 0
    assert len(ships.x_train) == int((full.y_train.reshape(seg.N_TRAIN, -1).sum(axis=1) > 0).sum())
    np.testing.assert_array_equal(ships.x_test, full.x_test)  # evaluated on the same images
    arrays = seg.lightning_data(quick=True, ships_only_training=True)
    assert arrays["y_train"].reshape(len(arrays["y_train"]), -1).sum(axis=1).min() > 0
    stats = seg.data_statistics(full)
    assert stats["data/train_positive_pixels"] == pytest.approx(float(full.y_train.mean()))


def test_prediction_statistics_detect_collapse():
    _, y = seg.generate(50)
    n_true = int(y.sum())
    nothing = seg.prediction_statistics(np.full(y.shape, -5.0), y)
    assert nothing["collapsed"] == 1.0 and nothing["positive_ratio"] == 0 and nothing["iou_numpy"] == 0
    assert nothing["images_predicted"] == 0 and nothing["empty_clean"] == 1.0 and nothing["max_logit"] == -5.0
    perfect = seg.prediction_statistics(np.where(y > 0, 3.0, -3.0), y)
    assert perfect["collapsed"] == 0.0 and perfect["iou_numpy"] == 1.0 and perfect["positive_ratio"] == 1.0
    assert perfect["empty_clean"] == 1.0
    few = np.full(y.shape, -1.0)
    few.reshape(-1)[np.flatnonzero(y.reshape(-1))[: max(n_true // 200, 1)]] = 1.0  # < 1 % of the ships
    assert seg.prediction_statistics(few, y)["collapsed"] == 1.0
    everything = seg.prediction_statistics(np.ones(y.shape), y)
    assert everything["collapsed"] == 0.0 and everything["positive_ratio"] == pytest.approx(y.size / n_true)
    assert everything["empty_clean"] == 0.0


# --------------------------------------------------------------------------- U-Net twins
@pytest.fixture
def torch_mod():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def test_both_networks_are_built_from_the_one_plan(torch_mod):
    """torch modules and Keras layers: the plan's names, in its order, with its channels and kernels."""
    from tf_impl import unet as ku
    from torch_impl.lightning import unet as tu

    assert tu.layer_plan is ku.layer_plan is layer_plan  # spec.architectures.unet_layer_plan
    for widths, bottleneck in (((8, 16), 32), ((4,), 6), ((3, 5, 7), 9)):
        plan = layer_plan(widths, bottleneck)
        assert len(plan) == 5 * len(widths) + 3
        net = tu.UNet(32, 32, widths, bottleneck)
        assert net.layer_names() == [p[0] for p in plan]
        assert [tuple(w.shape) for w, _ in net.numpy_weights()] == [tu.torch_shape(*p[1:]) for p in plan]
        model = ku.build_unet(32, 32, widths, bottleneck)
        assert ku.weight_layer_names(model) == [p[0] for p in plan]
        for name, kind, c_in, c_out, k in plan:  # Keras kernels: (k, k, in, out) / transposed (k, k, out, in)
            kernel = model.get_layer(name).kernel
            assert tuple(kernel.shape) == ((k, k, c_in, c_out) if kind == "conv" else (k, k, c_out, c_in)), name
    assert [tuple(w.shape) for w, _ in tu.UNet(32, 32, (8, 16), 32).numpy_weights()] == \
        [w.shape for w, _ in seg.MODEL.init_weights(0)]
    for bad in (((), 4), ((8, 0), 4), ((8,), 0)):
        with pytest.raises(ValueError, match="widths must be positive"):
            layer_plan(*bad)


def test_init_weights_are_keras_glorot_uniform():
    weights = seg.MODEL.init_weights(3)
    for (_, kind, c_in, c_out, k), (w, b) in zip(seg.MODEL.plan(), weights):
        limit = np.sqrt(6.0 / ((c_in + c_out) * k * k))
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.5 * limit
        assert np.all(b == 0)
    again, other = seg.MODEL.init_weights(3), seg.MODEL.init_weights(4)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(weights, again))
    assert not np.array_equal(weights[0][0], other[0][0])


def _random_weights(model: UNet, seed: int):
    """Initial weights with nonzero biases (zero biases would hide a bias mix-up)."""
    rng = np.random.default_rng(seed)
    return [(w, rng.normal(0.0, 0.1, size=b.shape)) for w, b in model.init_weights(seed)]


@pytest.mark.parametrize("model", [seg.MODEL, UNet(16, 24, (3, 5), 7), UNet(8, 8, (4,), 6)],
                         ids=["scenario", "rectangular-3-5-7", "one-level"])
def test_torch_to_keras_weight_copy_gives_identical_float64_outputs(torch_mod, model, tmp_path):
    torch = torch_mod
    keras = pytest.importorskip("keras")
    from tf_impl import training as kt

    weights = _random_weights(model, 0)
    net = model.torch_module().double()
    net.set_numpy_weights(weights)
    k = model.keras_model(dtype="float64")
    model.set_keras_weights(k, net.numpy_weights())
    x = np.random.default_rng(1).normal(size=(5, model.height, model.width))
    with torch.no_grad():
        out_t = net(torch.as_tensor(x)).numpy()
        feat_t = net.features(torch.as_tensor(x)).numpy()
    out_k = kt.predict(k, x)
    assert out_t.shape == out_k.shape == x.shape
    assert np.abs(out_t).max() > 1e-3  # not a comparison of zeros
    np.testing.assert_allclose(out_k, out_t, rtol=1e-12, atol=1e-13)
    # the bottleneck: Keras NHWC is torch NCHW with the channel axis moved last
    np.testing.assert_allclose(kt.features(k, x), feat_t.transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-13)
    # the round trip back to torch layout is exact
    for (a, b), (c, d) in zip(net.numpy_weights(), model.keras_weights(k)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # a .keras file of built-in layers loads without custom objects and predicts the same
    kt.save_model(k, tmp_path / "unet.keras")
    loaded = keras.saving.load_model(str(tmp_path / "unet.keras"), compile=False)
    np.testing.assert_array_equal(kt.predict(loaded, x), out_k)


def test_transposed_convolution_layouts_place_each_kernel_tap_alike(torch_mod):
    """One nonzero tap ``W[c_in, c_out, a, b]`` of the torch weight sends ``x[i, j]`` to
    ``out[2i + a, 2j + b]``; the transposed copy does the same in Keras (no kernel flip)."""
    torch = torch_mod
    pytest.importorskip("keras")
    from tf_impl.unet import TO_KERAS
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 3, 2))  # NHWC, 2 input channels
    for c_in, c_out, a, b in ((0, 0, 0, 1), (1, 2, 1, 0), (1, 1, 1, 1)):
        w = np.zeros((2, 3, 2, 2))
        w[c_in, c_out, a, b] = 1.0
        t = torch.nn.ConvTranspose2d(2, 3, 2, stride=2, bias=False).double()
        with torch.no_grad():
            t.weight.copy_(torch.as_tensor(w))
            out_t = t(torch.as_tensor(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
        layer = keras.layers.Conv2DTranspose(3, 2, strides=2, use_bias=False, dtype="float64")
        layer.build((1, 3, 3, 2))
        layer.set_weights([w.transpose(TO_KERAS)])
        out_k = np.asarray(layer(x))
        expected = np.zeros((1, 6, 6, 3))
        expected[0, a::2, b::2, c_out] = x[0, :, :, c_in]
        np.testing.assert_array_equal(out_t, expected)
        np.testing.assert_array_equal(out_k, expected)


def test_unet_shape_errors(torch_mod):
    torch = torch_mod
    from tf_impl.unet import build_unet
    from torch_impl.lightning.unet import UNet as TorchUNet

    net = TorchUNet(32, 32)
    with pytest.raises(ValueError, match=r"\(N, 32, 32\)"):
        net(torch.zeros(2, 1, 32, 32))  # NCHW with a channel axis: the data are (N, H, W)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*levels = 4"):
        TorchUNet(30, 32)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*levels = 4"):
        build_unet(30, 32)
    with pytest.raises(ValueError, match="got 1 \\(W, b\\) pairs"):
        net.set_numpy_weights(seg.MODEL.init_weights(0)[:1])


def test_backends_build_the_same_unet_from_the_description(torch_mod):
    """``TorchBackend.module`` / ``KerasBackend.model`` dispatch on the description: both start
    from ``UNet.init_weights(seed)`` and predict alike (float32)."""
    torch = torch_mod
    from lossparity.scenarios.backends import KerasBackend, TorchBackend

    cfg = RunConfig(out=Path("."), quick=True)
    job = seg.SCENARIO.job("soft_dice", cfg)
    data = seg.split(quick=True)
    module = TorchBackend(threads=None).module(job, data)
    for (a, b), (c, d) in zip(module.net.numpy_weights(), job.model.init_weights(job.seed)):
        np.testing.assert_allclose(a, c, rtol=1e-7)  # float32 copies of the float64 draw
    model = KerasBackend(threads=None).model(job, data)
    x = data.x_test[:8]
    with torch.no_grad():
        out_t = module(torch.as_tensor(x)).numpy()
    from tf_impl import training as kt

    np.testing.assert_allclose(kt.predict(model, x), out_t, rtol=1e-4, atol=1e-5)


def test_parity_cases_cover_every_loss():
    cases = seg.SCENARIO.parity_cases()
    assert {c.loss for c in cases} == {loss for loss, _ in seg.LOSSES.values()}
    for case in cases:
        assert len(case.x) >= 10 * case.batch_size and case.x.dtype == np.float64
        assert case.y[: 10 * case.batch_size].sum() > 0  # ships in the ten training batches


# --------------------------------------------------------------------------- the question's observation
@pytest.mark.slow
def test_overlap_loss_collapses_with_empty_images_and_learns_without(torch_mod):
    """The mechanism behind the question's all-zero masks, in a short torch run of the real
    ``LossModule``: soft Dice per image on data where half the images are empty drives every
    logit below 0 (an empty image's loss Σp/(Σp+1) is minimized by p → 0, then σ'(x) vanishes),
    while the same loss on the images with ships only starts finding them (2 epochs: 126 and 62
    steps; the full run's curves: IoU 0 for 10 epochs vs 0.35 after 2)."""
    L = pytest.importorskip("lightning.pytorch")
    from lossparity.scenarios.backends import TorchBackend

    backend = TorchBackend(threads=None)
    cfg = RunConfig(out=Path("."), quick=True, progress=False)
    data = seg.split()
    data.x_test, data.y_test = data.x_test[:150], data.y_test[:150]
    results = {}
    for key, arrays in (("with_empty", data), ("ships_only", seg.ships_only(data))):
        job = seg.SCENARIO.job("soft_dice", cfg)
        L.seed_everything(0, verbose=False)
        module, dm = backend.module(job), backend.datamodule(job, arrays)
        trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                            deterministic=True, accelerator="cpu", devices=1)
        trainer.fit(module, datamodule=dm)
        results[key] = seg.prediction_statistics(backend._forward(module, data.x_test), data.y_test)
    # collapsed, and deep in the sigmoid's flat tail: σ'(-10) = 4.5e-5 (measured over seeds 0-2: -86, -32, -57)
    assert results["with_empty"]["collapsed"] == 1.0 and results["with_empty"]["max_logit"] < -10, results
    # measured IoU over seeds 0-2: 0.38, 0.22, 0.20
    assert results["ships_only"]["collapsed"] == 0.0 and results["ships_only"]["iou_numpy"] > 0.15, results


@pytest.mark.slow
def test_quick_runs_agree_across_frameworks(quick_report):
    """``lossparity.run segmentation --quick`` in both frameworks (the report's runs): same metrics up
    to float32 rounding (same weights, same batches), the plots and the example predictions written."""
    metrics = {}
    for framework in ("torch", "keras"):
        out = quick_report / "runs" / "segmentation" / framework / "seed0"
        metrics[framework] = json.loads((out / "metrics.json").read_text())
        assert {"segmentation_iou.png", "segmentation_examples.png"} <= {p.name for p in out.glob("*.png")}
        with np.load(out / seg.EXAMPLES_FILE) as npz:
            assert set(npz.files) == {"images", "masks", *seg.QUICK_JOB_KEYS}
            assert npz["images"].shape == (seg.N_EXAMPLES, 32, 32)
    assert (quick_report / "segmentation_examples.png").is_file()
    t, k = metrics["torch"], metrics["keras"]
    for key in seg.SCENARIO.headline:
        assert isinstance(t[key], float) and isinstance(k[key], float), key
    for job in seg.QUICK_JOB_KEYS:
        assert k[f"{job}/loss"] == pytest.approx(t[f"{job}/loss"], rel=1e-3), job
        assert k[f"{job}/collapsed"] == t[f"{job}/collapsed"], job
        assert k[f"{job}/iou"] == pytest.approx(t[f"{job}/iou"], abs=0.02), job
        # our metric (trainer.test / evaluate) = the NumPy count on a second forward pass
        assert t[f"{job}/iou"] == pytest.approx(t[f"{job}/iou_numpy"], abs=0.01), job
    # 1000x positive weighting never predicts all zeros: it marks far too many pixels
    assert t["bce_pw1000/collapsed"] == 0.0 and t["bce_pw1000/positive_ratio"] > 5
