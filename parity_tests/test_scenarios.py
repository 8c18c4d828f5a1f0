"""The scenario framework (``lossparity/scenarios``, ``lossparity.run``, ``lossparity.report``,
``lossparity.lightning_cli``): data fidelity to the questions of docs/problems.md, the MNIST loader, batch order and
checkpoint-resume identity, Keras save/load, and (marked ``slow``) quick runs of every scenario in
both frameworks through the public commands.

No test touches the network: MNIST files are written by the tests, the digits data are
scikit-learn's bundled copy.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossparity import scenarios
from lossparity.scenarios import data as sdata
from lossparity.scenarios import digits, multilabel
from lossparity.scenarios.base import RunConfig

pytestmark = pytest.mark.project

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# --------------------------------------------------------------------------- seed data (fast)
def test_multilabel_generator_is_the_seeds_loop():
    fast = multilabel.generate(n_observations=400)
    loop = multilabel.seed_loop_generate(n_observations=400)
    np.testing.assert_array_equal(fast[0], loop[0])
    np.testing.assert_array_equal(fast[1], loop[1])
    assert fast[0].sum() > 0  # some revealed positives: the comparison is not of zeros


def test_multilabel_data_has_the_seeds_statistics():
    x, y = multilabel.generate()
    assert x.shape == y.shape == (30000, 30)
    assert set(np.unique(x)) == {0.0, 1.0} and set(np.unique(y)) == {0, 1}
    assert abs(y.sum(axis=1).mean() - 1.0) < 0.02  # ~1 positive per row
    assert np.all(y[x == 1] == 1)  # a feature only ever reveals a positive
    assert abs(x[y == 1].mean() - 0.1) < 0.01  # ... 10 % of the time
    split = multilabel.split()
    assert len(split.x_train) == 24000 and len(split.x_test) == 6000
    np.testing.assert_array_equal(split.x_test, x[24000:].astype(np.float32))


def test_keras_normalize_twin_matches_keras():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 28, 28)).astype(np.float64)
    x[0, :, 3] = 0  # a zero column: keras keeps it zero (norm replaced by 1)
    x[1] = 0
    for axis in (1, 2, -1):
        np.testing.assert_array_equal(sdata.keras_normalize(x, axis=axis), keras.utils.normalize(x, axis=axis))
    np.testing.assert_array_equal(sdata.keras_normalize(x[0], axis=-1, order=1),
                                  keras.utils.normalize(x[0], axis=-1, order=1))


def test_digits_preprocessing_follows_the_seed():
    data = digits.normalized(RunConfig(out=Path(".")))
    raw = sdata.load_digits_split()
    assert data.x_train.shape == (len(raw["x_train"]), 64) and data.x_train.dtype == np.float32
    # axis=1 of (N, 8, 8) images: every pixel column of every image has unit norm (or is zero)
    cols = np.linalg.norm(data.x_train.reshape(-1, 8, 8).astype(np.float64), axis=1)
    assert np.all((np.abs(cols - 1) < 1e-6) | (cols == 0))
    assert set(np.unique(digits.binarize(data.x_train, 0.5))) == {0.0, 1.0}
    np.testing.assert_allclose(digits.amplify(data.x_train, 3.0), 3.0 * data.x_train, rtol=1e-6)


def test_selection_rule_is_the_seeds():
    rng = np.random.default_rng(1)
    feats, labels = rng.normal(size=(60, 5)), rng.integers(0, 3, size=60)
    dist = digits.class_mean_sq_distance(feats, labels)
    for i in range(60):  # the question's compute_mse, one row at a time
        mean = feats[labels == labels[i]].mean(axis=0)
        assert dist[i] == pytest.approx(np.mean((feats[i] - mean) ** 2), rel=1e-12)
    kept = digits.select(dist, 0.9)
    assert set(kept) == set(np.flatnonzero(dist < np.quantile(dist, 0.9)))
    assert len(kept) == 54


# --------------------------------------------------------------------------- MNIST loader (fast)
def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return bytes([0, 0, code, array.ndim]) + dims + array.astype(sdata.IDX_TYPES[code]).tobytes()


def _tiny_mnist(rng, n_train=40, n_test=20):
    return {"x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
            "y_train": np.arange(n_train) % 10, "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
            "y_test": np.arange(n_test) % 10}


@pytest.mark.parametrize("compressed", [False, True], ids=["idx", "idx.gz"])
def test_mnist_loader_reads_idx_folders(tmp_path, compressed):
    arrays = _tiny_mnist(np.random.default_rng(0))
    for key, stem in sdata.MNIST_FILES.items():
        code, kind = (0x08, "idx3-ubyte") if key.startswith("x") else (0x08, "idx1-ubyte")
        raw = _idx_bytes(arrays[key], code)
        name = f"{stem}-{kind}"
        if compressed:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (tmp_path / name).write_bytes(raw)
    loaded = sdata.load_mnist(tmp_path)
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])
    assert loaded["x_train"].dtype == np.uint8 and loaded["y_train"].dtype == np.int64


def test_mnist_loader_reads_keras_npz_and_feeds_the_scenario(tmp_path):
    arrays = _tiny_mnist(np.random.default_rng(1))
    np.savez(tmp_path / "mnist.npz", **arrays)
    loaded = sdata.load_mnist(tmp_path / "mnist.npz")
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])
    data = digits.SCENARIO.data(RunConfig(out=tmp_path, data=tmp_path / "mnist.npz"))
    assert data.info["dataset"] == "mnist" and data.x_train.shape == (40, 784)
    expected = sdata.keras_normalize(arrays["x_test"].astype(np.float64), axis=1).reshape(20, 784)
    np.testing.assert_allclose(data.x_test, expected, rtol=1e-6)
    lightning = digits.lightning_data(data=str(tmp_path / "mnist.npz"))
    np.testing.assert_array_equal(lightning["x_train"], data.x_train)


def test_mnist_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        sdata.load_mnist(tmp_path / "absent.npz")
    (tmp_path / "bad-idx").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(sdata.DataFormatError, match="not an IDX file"):
        sdata.read_idx(tmp_path / "bad-idx")
    (tmp_path / "short-idx").write_bytes(_idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08)[:-1])
    with pytest.raises(sdata.DataFormatError, match="needs 12"):
        sdata.read_idx(tmp_path / "short-idx")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(sdata.DataFormatError, match="not an .npz file"):
        sdata.load_mnist(tmp_path / "text.npz")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 28, 28)))
    with pytest.raises(sdata.DataFormatError, match="lacks"):
        sdata.load_mnist(tmp_path / "partial.npz")
    with pytest.raises(FileNotFoundError, match="train-images"):
        sdata.load_mnist(tmp_path)  # a folder without the IDX files
    arrays = _tiny_mnist(np.random.default_rng(2))
    arrays["y_test"] = arrays["y_test"] + 5
    np.savez(tmp_path / "labels.npz", **arrays)
    with pytest.raises(sdata.DataFormatError, match="0-9"):
        sdata.load_mnist(tmp_path / "labels.npz")


# --------------------------------------------------------------------------- registry
def test_registry_lists_the_scenarios_and_their_configs():
    assert scenarios.names()[:2] == ["multilabel", "digits"]
    assert {"count_penalty", "sparse_autoencoder"} <= set(scenarios.names())
    for name in scenarios.names():
        scenario = scenarios.get(name)
        assert scenario.name == name and scenario.headline
        assert scenario.config_path().is_file(), f"no committed Lightning config for {name}"
    with pytest.raises(KeyError, match="unknown scenario"):
        scenarios.get("nope")


@pytest.mark.parametrize("framework,forbidden", [("keras", ("torch", "lightning")), ("torch", ("tensorflow", "keras"))])
def test_runner_imports_one_framework(framework, forbidden):
    code = (f"import sys; from lossparity.scenarios.backends import make_backend; make_backend({framework!r}); "
            f"import lossparity.run, lossparity.scenarios.digits as d; d.SCENARIO.data(d.RunConfig(out='.')); "
            f"bad = [m for m in {forbidden!r} if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


# --------------------------------------------------------------------------- Lightning (fast)
def _small_multilabel():
    x, y = multilabel.generate(n_observations=600)
    x, y = x.astype(np.float32), y.astype(np.float32)
    return {"x_train": x[:400], "y_train": y[:400], "x_test": x[400:], "y_test": y[400:]}


def _module(tl, seed):
    import torch

    torch.manual_seed(seed)
    net = tl.MLP(30, [16], 30)
    return tl.LossModule(net, loss="weighted_bce", loss_params={"pos_weight": "auto"},
                         metrics={"recall": {"kind": "recall", "from_logits": True},
                                  "f1": {"kind": "fbeta", "beta": 1.0, "from_logits": True}},
                         optimizer={"name": "adam", "lr": 3e-3})


def _trainer(L, root, epochs, **kw):
    return L.Trainer(max_epochs=epochs, default_root_dir=str(root), logger=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, deterministic=True, accelerator="cpu",
                     devices=1, **kw)


def test_resume_from_checkpoint_continues_identically(tmp_path, lightning_env):
    torch, L, tl = lightning_env
    from lightning.pytorch.callbacks import ModelCheckpoint

    arrays = _small_multilabel()
    full = _module(tl, seed=0)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    straight = _trainer(L, tmp_path / "a", 3, callbacks=[ckpt])
    straight.fit(full, datamodule=tl.ArrayDataModule(arrays=arrays, batch_size=25, seed=7))
    first_epoch = tmp_path / "ckpt" / "epoch=0.ckpt"
    assert first_epoch.is_file()

    resumed = _module(tl, seed=123)  # other initial weights: everything must come from the checkpoint
    again = _trainer(L, tmp_path / "b", 3)
    again.fit(resumed, datamodule=tl.ArrayDataModule(arrays=arrays, batch_size=25, seed=7), ckpt_path=str(first_epoch))

    assert again.global_step == straight.global_step == 3 * 16
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and "loss_fn.pos_weight" in a  # the 'auto' value is in the checkpoint
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa, sb = straight.optimizers[0].state_dict()["state"], again.optimizers[0].state_dict()["state"]
    for key in sa:
        for name in ("step", "m", "v"):
            assert torch.equal(sa[key][name], sb[key][name]), (key, name)
    for key in ("val_loss", "val_recall", "val_f1"):
        assert float(straight.callback_metrics[key]) == float(again.callback_metrics[key]), key
    # a checkpoint loads without a Trainer (the 'auto' pos_weight comes from the checkpoint)
    loaded = tl.LossModule.load_from_checkpoint(str(first_epoch), net=tl.MLP(30, [16], 30))
    assert torch.equal(loaded.loss_fn.pos_weight, a["loss_fn.pos_weight"])


def _case_module(tl, case, seed):
    import torch

    torch.manual_seed(seed)
    return tl.LossModule(case.model.torch_module(), loss=case.loss.name, loss_params=case.loss.kwargs(),
                         optimizer={"name": "adam", "lr": 1e-3})


@pytest.mark.parametrize("name", scenarios.names())
def test_every_scenario_resumes_identically(tmp_path, lightning_env, name):
    """Each scenario's network and loss (its first training-parity case, on its own data): two epochs
    straight, and one epoch then a resume from that epoch's checkpoint into a module with other
    initial weights, end bit-identical (weights, loss buffers, Adam's step / m / v)."""
    torch, L, tl = lightning_env
    from lightning.pytorch.callbacks import ModelCheckpoint

    case = scenarios.get(name).parity_cases()[0]
    arrays = case.arrays(4 * case.batch_size)  # four steps an epoch

    def data():
        return tl.ArrayDataModule(arrays=arrays, batch_size=case.batch_size, seed=3)

    full = _case_module(tl, case, seed=0)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    straight = _trainer(L, tmp_path / "a", 2, callbacks=[ckpt], limit_val_batches=0)
    straight.fit(full, datamodule=data())
    resumed = _case_module(tl, case, seed=1)
    again = _trainer(L, tmp_path / "b", 2, limit_val_batches=0)
    again.fit(resumed, datamodule=data(), ckpt_path=str(tmp_path / "ckpt" / "epoch=0.ckpt"))
    assert again.global_step == straight.global_step == 8
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert any(not torch.equal(v, _case_module(tl, case, seed=1).state_dict()[k]) for k, v in a.items())
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa, sb = straight.optimizers[0].state_dict()["state"], again.optimizers[0].state_dict()["state"]
    assert sa.keys() == sb.keys() and sa
    for key in sa:
        for field in ("step", "m", "v"):
            assert torch.equal(sa[key][field], sb[key][field]), (key, field)


class _RecordLosses:
    """Callback keeping every training step's loss (what LossModule logs, recomputed apart)."""

    def __init__(self):
        self.losses, self.sizes = [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        self.sizes.append(len(batch[0]))


@pytest.mark.parametrize("limits", [{}, {"limit_train_batches": 5}, {"max_steps": 23}],
                         ids=["full-epochs", "limit_train_batches", "max_steps-mid-epoch"])
def test_lossmodule_logs_step_losses_and_the_epoch_mean(tmp_path, lightning_env, limits):
    """train_loss is each epoch's batch-size-weighted mean of the step losses (an epoch cut short by
    max_steps included); train_loss_step reaches the logger on every log_every_n_steps-th step and on
    the epoch's last one, with that step's loss; EpochHistory holds the epoch means."""
    torch, L, tl = lightning_env
    import csv

    from lightning.pytorch import Callback
    from lightning.pytorch.loggers import CSVLogger

    arrays = _small_multilabel()  # 400 rows, batch 30: 13 full batches and one of 10 an epoch
    record = type("Record", (_RecordLosses, Callback), {})()
    history = tl.EpochHistory()
    trainer = L.Trainer(max_epochs=3, default_root_dir=str(tmp_path), logger=CSVLogger(tmp_path), log_every_n_steps=4,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        deterministic=True, accelerator="cpu", devices=1, callbacks=[record, history], **limits)
    trainer.fit(_module(tl, seed=0), datamodule=tl.ArrayDataModule(arrays=arrays, batch_size=30, seed=1))
    per_epoch = limits.get("limit_train_batches", 14)
    steps = min(3 * per_epoch, limits.get("max_steps", 10**9))
    assert len(record.losses) == steps
    epochs = [(record.losses[i:i + per_epoch], record.sizes[i:i + per_epoch]) for i in range(0, steps, per_epoch)]
    means = [float(np.dot(v, n) / np.sum(n)) for v, n in epochs]
    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    logged_means = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    np.testing.assert_allclose(logged_means, means, rtol=1e-6)
    assert float(trainer.callback_metrics["train_loss"]) == pytest.approx(means[-1], rel=1e-6)
    np.testing.assert_allclose(history.history["train_loss"], means, rtol=1e-6)
    logged_steps = {int(r["step"]): float(r["train_loss_step"]) for r in rows if r.get("train_loss_step")}
    expected = sorted({s for s in range(steps) if (s + 1) % 4 == 0})
    assert sorted(logged_steps) == expected
    for step in expected:
        assert logged_steps[step] == pytest.approx(record.losses[step], rel=1e-6), step


def test_lossmodule_auto_pos_weight_is_pos_weight_from_labels(tmp_path, lightning_env):
    torch, L, tl = lightning_env
    from spec.class_weights import pos_weight_from_labels

    arrays = _small_multilabel()
    module = _module(tl, seed=0)
    _trainer(L, tmp_path, 1, limit_train_batches=1, limit_val_batches=0).fit(
        module, datamodule=tl.ArrayDataModule(arrays=arrays, batch_size=25))
    np.testing.assert_allclose(module.loss_fn.pos_weight.numpy(), pos_weight_from_labels(arrays["y_train"]), rtol=1e-12)
    with pytest.raises(ValueError, match="needs the training labels"):
        tl.resolve_auto_params({"pos_weight": "auto"}, None)
    with pytest.raises(ValueError, match="only available"):
        tl.resolve_auto_params({"gamma": "auto"}, arrays["y_train"])


def test_torch_and_keras_see_the_same_batches(lightning_env):
    torch, L, tl = lightning_env
    kt = pytest.importorskip("tf_impl.training")
    x = np.arange(103, dtype=np.float32)[:, None]
    y = np.zeros((103, 1), np.float32)
    dm = tl.ArrayDataModule(arrays={"x_train": x, "y_train": y, "x_test": x, "y_test": y}, batch_size=10, seed=5)
    dm.setup("fit")
    loader = dm.train_dataloader()
    seen = []
    original = kt.ArrayBatches.__getitem__

    def recording(self, index):
        batch = original(self, index)
        seen.append((self.epoch, index, batch[0][:, 0].copy()))
        return batch

    kt.ArrayBatches.__getitem__ = recording
    try:
        model = kt.build_mlp(1, (2,), 1)
        kt.compile_model(model, loss=kt.build_loss("weighted_bce", {}), optimizer={"name": "sgd"})
        kt.fit(model, x, y, epochs=3, batch_size=10, seed=5, verbose=0, check_data=False)
    finally:
        kt.ArrayBatches.__getitem__ = original
    for epoch in range(3):
        loader.sampler.set_epoch(epoch)  # what Lightning does every epoch
        torch_batches = [xb[:, 0].numpy() for xb, _ in loader]
        # Keras may peek at batches to build its input signature; the epoch's batches are the last 11
        keras_batches = [b for e, i, b in seen if e == epoch][-len(torch_batches):]
        assert len(torch_batches) == 11
        for tb, kb in zip(torch_batches, keras_batches):
            np.testing.assert_array_equal(tb, kb)
    assert not np.array_equal(torch_batches[0], np.arange(10))  # shuffled


def test_keras_floatx_restores_the_float_type_and_the_dtype_policy():
    """A float64 model built inside ``kt.floatx("float64")`` leaves later default models float32
    (``set_floatx`` alone left Keras' cached global policy at float64: a later float32 model got
    float64 layers and a float64 activity penalty beside a float32 loss)."""
    kt = pytest.importorskip("tf_impl.training")
    import keras

    before = (keras.config.floatx(), keras.config.dtype_policy().name)
    with kt.floatx("float64"):
        inside = kt.build_mlp(4, (3,), 2)
        assert {w.dtype for w in inside.weights} == {"float64"}
    after = kt.build_mlp(4, (3,), 2)
    assert {w.dtype for w in after.weights} == {before[0]}
    assert (keras.config.floatx(), keras.config.dtype_policy().name) == before


def test_keras_model_saves_and_loads_with_our_custom_objects(tmp_path):
    kt = pytest.importorskip("tf_impl.training")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = (rng.random((64, 4)) < 0.3).astype(np.float32)
    y[0] = 1
    y[1] = 0
    model = kt.build_mlp(8, (6,), 4, head="sigmoid_normalized")
    model.compile(optimizer=kt.build_optimizer("adam"), loss=kt.build_loss("weighted_bce", {"pos_weight": "auto", "from_logits": False}, y),
                  metrics=[kt.build_metric({"kind": "fbeta", "beta": 2.0}, name="f2")])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    kt.save_model(model, tmp_path / "m.keras")
    loaded = kt.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(kt.predict(model, x), kt.predict(loaded, x))
    assert type(loaded.layers[-1]).__name__ == "RowNormalize"
    np.testing.assert_allclose(loaded.loss.params["pos_weight"], model.loss.params["pos_weight"])
    assert loaded.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "f2"}
    np.testing.assert_allclose(kt.features(loaded, x), np.maximum(x @ model.layers[0].get_weights()[0]
                                                                  + model.layers[0].get_weights()[1], 0), rtol=1e-5,
                               atol=1e-6)


def test_sigmoid_head_is_rejected_with_a_clear_error_in_both_frameworks():
    """The MNIST problem: a sigmoid head feeding sparse categorical cross-entropy on probabilities."""
    from lossparity.scenarios.backends import KerasBackend, TorchBackend

    cfg = RunConfig(out=Path("."))
    data = digits.SCENARIO.data(cfg)
    bad = digits.SCENARIO.job("head_sigmoid", data, cfg, head="sigmoid", loss=digits.PROBS_LOSS, epochs=1)
    good = digits.SCENARIO.job("head_sigmoid_normalized", data, cfg, head="sigmoid_normalized",
                               loss=digits.PROBS_LOSS, epochs=1)
    messages = []
    for backend in (TorchBackend(threads=None), KerasBackend(threads=None)):  # no global thread changes
        message = backend.rejection(bad, data)
        assert message is not None and "sigmoid" in message and "from_logits=True" in message, message
        assert backend.rejection(good, data) is None
        messages.append(message.split("got row sums")[0])
    assert messages[0] == messages[1]  # one spec, one message


# --------------------------------------------------------------------------- public commands (slow)
def _metrics(out, scenario, framework):
    return json.loads((out / "runs" / scenario / framework / "seed0" / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("name", scenarios.names())
def test_quick_run(quick_report, name, framework):
    folder = quick_report / "runs" / name / framework / "seed0"
    m = _metrics(quick_report, name, framework)
    assert m["scenario"] == name and m["framework"] == framework and m["quick"] is True
    # the one-minute budget of --quick is a speed target: lossparity.report flags runs over it (no timed test)
    assert m["seconds"] > 0
    for key in scenarios.get(name).headline:
        assert isinstance(m.get(key), float), key
    assert list(folder.glob("*.png")), "no plots"
    history = json.loads((folder / "history.json").read_text())
    assert history and all(h.get("loss") for h in history.values())
    if framework == "torch":
        assert list((folder / "lightning").glob("*/checkpoints/last.ckpt"))
    else:
        assert list((folder / "keras").glob("*.keras"))
    if name == "multilabel":
        # the question's observations: pos_weight 1 → (near) zero recall, 1000 → (nearly) all ones
        assert m["pos_weight_1/recall"] < 0.15
        assert m["pos_weight_1000/positive_rate"] > 0.95 and m["pos_weight_1000/recall"] > 0.95
        assert 20 < m["pos_weight_auto/value_mean"] < 40
    elif name == "digits":
        assert m["head_sigmoid/rejected"] == 1.0 and "sigmoid" in m["head_sigmoid/message"]
        assert m["normalized/accuracy"] > 0.5
        assert m["head_sigmoid_logits/loss"] >= m["head_sigmoid_logits/loss_floor"] - 1e-6
        assert m["select_0.9/n_train"] < m["select_0.999/n_train"] < m["select_all/n_train"]


@pytest.mark.slow
@pytest.mark.parametrize("name", scenarios.names())
def test_frameworks_agree_in_quick_runs(quick_report, name):
    """Same initial weights, same batches, same optimizer rule: final losses agree closely."""
    t, k = _metrics(quick_report, name, "torch"), _metrics(quick_report, name, "keras")
    losses = [key for key in t if key.endswith("/loss")]
    assert losses
    for key in losses:
        assert k[key] == pytest.approx(t[key], rel=0.05), key


@pytest.mark.slow
def test_report_is_written(quick_report):
    text = (quick_report / "report.md").read_text()
    for name in scenarios.names():
        assert f"## `{name}`" in text
    assert "| metric | torch | keras | difference |" in text
    assert "pos_weight_1000/positive_rate" in text and "select_0.9/accuracy" in text
    pngs = {p.name for p in quick_report.glob("*.png")}
    assert {"multilabel_sweep.png", "multilabel_curves.png", "digits_preprocessing.png", "digits_selection.png",
            "digits_curves.png", "frameworks.png"} <= pngs
    for png in pngs:
        assert f"]({png})" in text
    summary = json.loads((quick_report / "summary.json").read_text())
    assert summary["multilabel"]["torch"]["pos_weight_1000/positive_rate"][2] == 1  # n seeds


@pytest.mark.slow
@pytest.mark.parametrize("name", scenarios.names())
def test_lightning_cli_fit(lightning_cli_fits, name):
    """The committed config fits one quick epoch through ``python -m lossparity.lightning_cli fit``
    (checkpoint, CSV metrics and the saved config under ``--out``, nothing written elsewhere), and
    its last checkpoint tests through ``... test --ckpt_path``. The commands of every scenario run
    one after the other in one interpreter started at collection (``conftest.lightning_cli_fits``:
    each through the module's ``__main__`` with its own arguments, torch and Lightning imported
    once); this test reads its scenario's outcomes, outputs and stray files."""
    run = lightning_cli_fits[name]
    out = run["out"]
    for stage in ("fit", "test"):
        error, output, stray = run[stage]
        assert error is None, f"{stage}:\n{error}\n{output[-3000:]}"
        assert not stray, f"the CLI wrote outside --out during {stage}: {stray[:10]}"
    ckpts = list(out.glob("logs/version_*/checkpoints/last.ckpt"))
    assert out / "logs" / "version_0" / "checkpoints" / "last.ckpt" in ckpts, sorted(str(p) for p in out.rglob("*"))
    assert list(out.glob("logs/version_*/metrics.csv")) and list(out.glob("logs/version_*/config.yaml"))
    # the checkpoint tests through the same CLI
    assert "test_loss" in run["test"][1]


def test_report_flags_quick_runs_over_the_budget():
    """The one-minute budget of ``--quick`` is reported by ``lossparity.report``, not timed in a test."""
    from lossparity import report

    runs = {"digits": {"torch": {"metrics": [{"quick": True, "seed": 0, "seconds": 12.0}]},
                       "keras": {"metrics": [{"quick": True, "seed": 0, "seconds": report.QUICK_BUDGET_S + 1}]}},
            "multilabel": {"keras": {"metrics": [{"quick": False, "seed": 0, "seconds": 900.0}]}}}
    assert report.slow_quick_runs(runs) == [f"digits/keras/seed0: {report.QUICK_BUDGET_S + 1:.1f} s"]


def test_report_checks_agreement_within_the_seed_to_seed_spread():
    """report.md's agreement column: |Δ mean| ≤ the larger std over seeds (+ a rounding floor), only
    with two seeds or more a side; the scenario line counts the headline metrics within."""
    from lossparity import report
    from lossparity.scenarios.base import Stat

    table = {"torch": {"a": Stat(0.50, 0.02, 3), "b": Stat(0.50, 0.0, 3), "c": Stat(0.9, 0.01, 3),
                       "d": Stat(0.1, 0.0, 1)},
             "keras": {"a": Stat(0.53, 0.01, 3), "b": Stat(0.50 + 1e-9, 0.0, 3), "c": Stat(0.95, 0.01, 3),
                       "d": Stat(0.2, 0.0, 1)}}
    assert report.agreement(table["torch"]["a"], table["keras"]["a"])[2] is False  # 0.03 > 0.02
    assert report.agreement(table["torch"]["b"], table["keras"]["b"])[2] is True  # rounding of a fixed metric
    assert report.agreement(table["torch"]["d"], table["keras"]["d"]) is None  # one seed: no spread
    assert report.agreement(table["torch"]["a"], table["keras"]["a"], "bce/seconds") is None  # a wall time
    table["keras"]["a"] = Stat(0.515, 0.01, 3)
    assert report.agreement_summary(table, ["a", "b", "c", "d"], ["torch", "keras"]) == (2, 3, ["c"])
    lines = report.metric_table(table, ["a", "c", "d"], ["torch", "keras"])
    assert lines[0].endswith("| difference | spread | within |")
    assert lines[2].endswith("| 0.02 | ✓ |") and lines[3].endswith("| 0.01 | ✗ |") and lines[4].endswith("| — | — |")


def test_full_reports_run_the_seeds_a_scenario_asks_for():
    """digits asks for accuracy over 5 seeds: a full report runs 5 even with --seeds 3; quick
    reports (CI) run what is asked."""
    from lossparity import report

    full = report.parse_args(["--out", "x", "--seeds", "3"])
    quick = report.parse_args(["--out", "x", "--seeds", "1", "--quick"])
    assert scenarios.get("digits").full_seeds == 5
    assert report.seeds_of(full, "digits") == 5 and report.seeds_of(full, "multilabel") == 3
    assert report.seeds_of(full, "imbalanced") == 5  # the ensemble's small bias
    assert report.seeds_of(quick, "digits") == 1
