"""Scenario ``imbalanced`` (cost-sensitive problem): its data and local-table loader, the per-sample weight path
(Lightning and Keras), the NumPy evaluation, the ensemble's nested-vs-biased estimate, and (marked
``slow``) quick runs in both frameworks and the Lightning CLI config.

Training-step parity of its seven model/loss pairs (the sample-weighted one included) runs in
``test_training_parity.py`` from ``SCENARIO.parity_cases()``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from lossparity.scenarios import ensemble
from lossparity.scenarios import imbalanced as im
from lossparity.scenarios.base import RunConfig
from lossparity.scenarios.data import DataFormatError
from parity_tests.lightning_cli_runs import run_cli_commands

pytestmark = pytest.mark.project


# --------------------------------------------------------------------------- data (fast)
def test_generator_is_seeded_imbalanced_and_hard():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score

    x, y = im.generate()
    assert x.shape == (20000, 20) and set(np.unique(y)) == {0, 1}
    assert 0.22 < y.mean() < 0.30  # ~5k vs ~15k (flip_y moves a few labels both ways)
    x2, y2 = im.generate()
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # the minority is genuinely hard: an unweighted linear model finds less than half of it,
    # the balanced one more (the threshold moves toward the minority)
    d = im.split()
    plain = LogisticRegression().fit(d.x_train, d.y_train.ravel())
    balanced = LogisticRegression(class_weight="balanced").fit(d.x_train, d.y_train.ravel())
    r_plain = recall_score(d.y_test.ravel(), plain.predict(d.x_test))
    r_bal = recall_score(d.y_test.ravel(), balanced.predict(d.x_test))
    assert r_plain < 0.5 < r_bal


def test_split_is_stratified_standardized_and_quick_is_small():
    d = im.split()
    assert d.x_train.shape == (16000, 20) and d.x_test.shape == (4000, 20)
    assert d.y_train.shape == (16000, 1) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.float32
    assert abs(d.y_train.mean() - d.y_test.mean()) < 0.002  # stratified
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1, atol=1e-4)
    q = im.split(quick=True)
    assert len(q.x_train) == im.QUICK_TRAIN and len(q.x_test) == im.QUICK_TEST
    assert 0.2 < q.y_train.mean() < 0.32 and 0.2 < q.y_test.mean() < 0.32


def _table(rng, n=120, d=5):
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    return x, y


def test_local_csv_with_header_names_the_label_column(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _table(rng)
    path = tmp_path / "t.csv"
    with open(path, "w") as fh:  # the label in the middle, found by its name
        fh.write("f0,f1,Label,f2,f3,f4\n")
        for row, label in zip(x, y):
            cells = [f"{v:.17g}" for v in row]
            fh.write(",".join(cells[:2] + [str(label)] + cells[2:]) + "\n")
    table = im.load_table(path)
    np.testing.assert_array_equal(table["y"], y)
    np.testing.assert_array_equal(table["x"], x)
    data = im.SCENARIO.data(RunConfig(out=tmp_path, data=path))
    assert data.x_train.shape == (96, 5) and data.x_test.shape == (24, 5)
    assert data.info["source"].startswith("local table")
    # the same rows, standardized with the training statistics
    assert sorted(np.concatenate([data.y_train, data.y_test]).ravel().tolist()) == sorted(y.tolist())
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-6)
    lightning = im.lightning_data(data=str(path))
    np.testing.assert_array_equal(lightning["x_train"], data.x_train)
    assert lightning["w_train"].shape == (96,)


def test_local_csv_without_header_and_npz(tmp_path):
    rng = np.random.default_rng(1)
    x, y = _table(rng)
    np.savetxt(tmp_path / "plain.csv", np.column_stack([x, y]), delimiter=",")
    table = im.load_table(tmp_path / "plain.csv")
    np.testing.assert_allclose(table["x"], x, rtol=1e-15)
    np.testing.assert_array_equal(table["y"], y)
    np.savez(tmp_path / "xy.npz", x=x, y=y.astype(bool))
    np.testing.assert_array_equal(im.load_table(tmp_path / "xy.npz")["y"], y)
    np.savez(tmp_path / "splits.npz", x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:].reshape(-1, 1))
    data = im.split(data=tmp_path / "splits.npz")
    assert data.x_train.shape == (80, 5) and data.x_test.shape == (40, 5)
    np.testing.assert_array_equal(data.y_test.ravel(), y[80:])  # given splits are kept as they are


def test_local_table_errors(tmp_path):
    rng = np.random.default_rng(2)
    x, y = _table(rng, n=20)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        im.load_table(tmp_path / "absent.csv")
    np.savetxt(tmp_path / "labels.csv", np.column_stack([x, y + 1]), delimiter=",")
    with pytest.raises(DataFormatError, match="must be 0 or 1"):
        im.load_table(tmp_path / "labels.csv")
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,1\n")
    with pytest.raises(DataFormatError, match="row 2 has 2 cells"):
        im.load_table(tmp_path / "ragged.csv")
    (tmp_path / "empty_cell.csv").write_text("a,b,label\n1,,0\n2,3,1\n")
    with pytest.raises(DataFormatError, match="NaN, inf or empty"):
        im.load_table(tmp_path / "empty_cell.csv")
    (tmp_path / "text.csv").write_text("a,label\n1,0\nx,1\n")
    with pytest.raises(DataFormatError, match="non-numeric"):
        im.load_table(tmp_path / "text.csv")
    np.savez(tmp_path / "keys.npz", features=x, labels=y)
    with pytest.raises(DataFormatError, match="needs arrays 'x' and 'y'"):
        im.load_table(tmp_path / "keys.npz")
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataFormatError, match="unknown table format"):
        im.load_table(tmp_path / "t.parquet")
    np.savez(tmp_path / "one_class.npz", x=x, y=np.zeros(20))
    with pytest.raises(DataFormatError, match="both classes"):
        im.split(data=tmp_path / "one_class.npz")


# --------------------------------------------------------------------------- weights and evaluation (fast)
def test_balanced_sample_weight_is_sklearns_class_weight_per_sample():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 1, 0, 1, 0, 0])
    w = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(im.balanced_sample_weight(y.reshape(-1, 1).astype(np.float32)), w[y], rtol=1e-15)
    d = im.split(quick=True)
    two = im.job_arrays(d, 2, None)
    assert two.y_train.shape == (len(d.y_train), 2) and two.w_train is None
    np.testing.assert_array_equal(two.y_train.argmax(axis=1), d.y_train.ravel())
    weighted = im.job_arrays(d, 1, "balanced")
    assert weighted.as_dict()["w_train"].shape == (len(d.x_train),)
    assert weighted.subset(np.arange(5)).w_train.shape == (5,)
    with pytest.raises(ValueError, match="unknown weighting"):
        im.job_arrays(d, 1, "inverse")


def test_balanced_weights_are_pos_weight_times_a_constant():
    """Why ``balanced`` and ``pos_weight="auto"`` train alike: Σ w_y ℓ / N with w = N / (2 N_y) is
    ``w_0`` × weighted_bce(pos_weight = N_0 / N_1), exactly (and Adam ignores the factor)."""
    import spec

    rng = np.random.default_rng(0)
    y = (rng.random((500, 1)) < 0.25).astype(np.float64)
    x = rng.normal(size=(500, 1)) * 3
    w = im.balanced_sample_weight(y)
    n0, n1 = np.sum(y == 0), np.sum(y == 1)
    entry = spec.get("weighted_bce")
    weighted = entry.reference_reduced(x, y, sample_weight=w, pos_weight=1.0, from_logits=True)
    pos = entry.reference_reduced(x, y, pos_weight=n0 / n1, from_logits=True)
    assert weighted == pytest.approx(len(y) / (2 * n0) * pos, rel=1e-12)


def test_decisions_and_report_match_sklearn():
    from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    one = rng.normal(size=(300, 1)) + y[:, None]
    two = rng.normal(size=(300, 2)) + np.eye(2)[y]
    for outputs, expected in ((one, one[:, 0] > 0), (two, two[:, 1] > two[:, 0])):
        decided = im.decisions(outputs)
        np.testing.assert_array_equal(decided, expected)
        r = im.binary_report(y, decided)
        (tn, fp), (fn, tp) = confusion_matrix(y, decided)
        assert (r["tn"], r["fp"], r["fn"], r["tp"]) == (tn, fp, fn, tp)
        assert r["recall"] == pytest.approx(recall_score(y, decided), abs=1e-15)
        assert r["precision"] == pytest.approx(precision_score(y, decided), abs=1e-15)
        assert r["f1"] == pytest.approx(f1_score(y, decided), abs=1e-15)
    np.testing.assert_allclose(im.probabilities(one), 1 / (1 + np.exp(-one[:, 0])), rtol=1e-14)
    soft = np.exp(two) / np.exp(two).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(im.probabilities(two), soft[:, 1], rtol=1e-13)
    assert np.all(np.isfinite(im.probabilities(np.array([[-800.0], [800.0]]))))
    assert im.binary_report([0, 0, 1], [0, 0, 0])["precision"] == 0.0  # 0/0 → 0, as scikit-learn


# --------------------------------------------------------------------------- ensemble (fast)
def _noisy_models(rng, n, m, signal=0.8, noise=1.3):
    y = (rng.random(n) < 0.25).astype(int)
    z = (y - 0.25)[:, None] * signal * rng.uniform(0.5, 1.5, m) + rng.normal(0, noise, (n, m)) - 0.9
    return 1 / (1 + np.exp(-z)), y


def test_ensemble_f1_is_sklearns_f1_of_the_weighted_average():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    probs, y = _noisy_models(rng, 400, 4)
    w = rng.random(4)
    assert ensemble.ensemble_f1(probs, y, w) == pytest.approx(f1_score(y, probs @ (w / w.sum()) > 0.5), abs=1e-15)
    several = rng.random((4, 6))
    for j in range(6):
        assert ensemble.ensemble_f1(probs, y, several)[j] == ensemble.ensemble_f1(probs, y, several[:, j])
    np.testing.assert_allclose(ensemble.normalize_weights(np.zeros(4)), 0.25)


def test_differential_evolution_beats_equal_weights_and_every_single_model_where_it_tunes():
    rng = np.random.default_rng(1)
    probs, y = _noisy_models(rng, 600, 5)
    w = ensemble.optimize_weights(probs, y, seed=0, maxiter=60)
    assert w.shape == (5,) and w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    tuned = ensemble.ensemble_f1(probs, y, w)
    assert tuned >= ensemble.ensemble_f1(probs, y, np.ones(5))
    assert tuned >= max(ensemble.ensemble_f1(probs, y, np.eye(5)[j]) for j in range(5))


def test_seed_estimate_is_biased_upward_and_nested_is_not():
    """The seed's estimate (weights tuned on the fold they are scored on) exceeds the nested one
    on average; the nested one is honest: on fresh data from the same distribution, the weights
    tuned on all the held-out predictions score about what nested CV predicted, far below the
    seed's number."""
    biases, nested, biased, fresh = [], [], [], []
    for rep in range(4):
        rng = np.random.default_rng(100 + rep)
        probs, y = _noisy_models(rng, 1100, 6)
        tune, new = slice(0, 500), slice(500, None)
        est = ensemble.nested_vs_biased(probs[tune], y[tune], n_folds=5, seed=rep, maxiter=40)
        biases.append(est.bias)
        nested.append(est.nested.mean())
        biased.append(est.biased.mean())
        w = ensemble.optimize_weights(probs[tune], y[tune], seed=rep, maxiter=40)
        fresh.append(ensemble.ensemble_f1(probs[new], y[new], w))
        assert np.mean(est.biased >= est.nested) >= 0.6  # fold by fold, mostly
    assert np.mean(biases) > 0.03, biases
    # the question's estimate overshoots fresh data; nested CV does not (by much)
    assert np.mean(biased) - np.mean(fresh) > 0.03
    assert np.mean(nested) - np.mean(fresh) < 0.5 * (np.mean(biased) - np.mean(fresh))


def test_identical_models_have_no_bias():
    """When the weights cannot matter (every model predicts the same), tuning on the test fold
    gains nothing: biased == nested on every fold (the two are scored on the same folds)."""
    rng = np.random.default_rng(5)
    probs, y = _noisy_models(rng, 400, 1)
    est = ensemble.nested_vs_biased(np.repeat(probs, 4, axis=1), y, n_folds=4, seed=0, maxiter=10)
    np.testing.assert_array_equal(est.biased, est.nested)
    np.testing.assert_array_equal(est.biased, est.equal)
    assert est.bias == 0.0
    with pytest.raises(ValueError, match="probs must be"):
        ensemble.nested_vs_biased(probs[:10], y, n_folds=2)


# --------------------------------------------------------------------------- per-sample weights (fast)
@pytest.fixture
def torch_env():
    torch = pytest.importorskip("torch")
    pytest.importorskip("lightning.pytorch")
    from torch_impl import lightning as tl

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield torch, tl
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_datamodule_batches_carry_weights_and_the_module_uses_them(torch_env):
    torch, tl = torch_env
    import torch_impl

    d = im.job_arrays(im.split(quick=True), 1, "balanced")
    dm = tl.ArrayDataModule(arrays=d.as_dict(), batch_size=16, seed=3)
    dm.setup("fit")
    x, y, w = next(iter(dm.train_dataloader()))
    order = tl.epoch_permutation(len(d.x_train), 3, 0)[:16]
    np.testing.assert_array_equal(w.numpy(), d.w_train[order])
    assert len(next(iter(dm.val_dataloader()))) == 2  # evaluation batches stay (x, y)
    torch.manual_seed(0)
    module = tl.LossModule(tl.MLP(20, [8], 1), loss="weighted_bce", loss_params={"pos_weight": 1.0})
    with warnings.catch_warnings():  # self.log outside a Trainer
        warnings.simplefilter("ignore")
        step = module.training_step((x, y, w), 0).item()
        plain = module.training_step((x, y), 0).item()
    expected = torch_impl.get_loss("weighted_bce")(module(x), y, sample_weight=w).item()
    assert step == pytest.approx(expected, rel=1e-6)
    assert abs(step - plain) > 1e-4  # the weights changed the loss
    bad = dict(d.as_dict(), w_train=-d.w_train)
    with pytest.raises(ValueError, match="w_train must be"):
        tl.ArrayDataModule(arrays=bad)
    with pytest.raises(ValueError, match="w_train must be"):
        tl.ArrayDataModule(arrays=dict(d.as_dict(), w_train=d.w_train[:-1]))


def test_keras_sample_weight_equals_keras_class_weight():
    """Our per-sample path in Keras is exactly Keras' own ``class_weight=`` (the question's answer):
    the same weights after an epoch."""
    kt = pytest.importorskip("tf_impl.training")
    d = im.split(quick=True)
    x, y = d.x_train[:640], d.y_train[:640]
    sw = im.balanced_sample_weight(y).astype(np.float32)
    from spec.class_weights import balanced_class_weights

    class_weight = dict(enumerate(balanced_class_weights(y.ravel().astype(int)).tolist()))
    job = im.SCENARIO.job("balanced", RunConfig(out=Path(".")), 20)
    models = []
    for use_class_weight in (False, True):
        model = job.model.keras_model()
        job.model.set_keras_weights(model, job.model.init_weights(0))
        kt.compile_model(model, loss=kt.build_loss("weighted_bce", {"pos_weight": 1.0}), optimizer={"name": "adam"})
        if use_class_weight:
            batches = kt.ArrayBatches(x, y, batch_size=32, seed=0)
            model.fit(batches, epochs=1, shuffle=False, verbose=0, class_weight=class_weight,
                      callbacks=[kt.EpochSetter(batches)])
        else:
            kt.fit(model, x, y, epochs=1, batch_size=32, seed=0, verbose=0, sample_weight=sw)
        models.append(kt.torch_layout_weights(model))
    for (w1, b1), (w2, b2) in zip(*models):
        np.testing.assert_allclose(w1, w2, rtol=0, atol=1e-6)
        np.testing.assert_allclose(b1, b2, rtol=0, atol=1e-6)
    init = job.model.init_weights(0)
    assert np.max(np.abs(models[0][0][0] - init[0][0])) > 1e-3  # it trained
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        kt.ArrayBatches(x, y, batch_size=32, sample_weight=sw[:-1])


def test_parity_cases_cover_every_loss_and_a_weighted_case():
    cases = im.SCENARIO.parity_cases()
    assert {c.loss.name for c in cases} == {"weighted_bce", "cost_sensitive_cce", "binary_focal", "soft_fbeta"}
    assert {dict(c.loss.params).get("mode") for c in cases if c.loss.name == "cost_sensitive_cce"} == {"argmax", "soft"}
    weighted = [c for c in cases if c.sample_weight is not None]
    assert len(weighted) == 1 and len(set(np.round(weighted[0].sample_weight, 12))) == 2
    for c in cases:
        assert len(c.x) >= 10 * c.batch_size and c.y.shape[1] == c.model.out_features


# --------------------------------------------------------------------------- public commands (slow)
@pytest.fixture(scope="module")
def quick_runs(quick_report):
    """The report's ``lossparity.run imbalanced --quick`` runs (conftest ``quick_report``)."""
    folders = {f: quick_report / "runs" / "imbalanced" / f / "seed0" for f in ("torch", "keras")}
    return {f: json.loads((d / "metrics.json").read_text()) for f, d in folders.items()}, folders


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_quick_run(quick_runs, framework):
    runs, out = quick_runs
    m = runs[framework]
    # the one-minute budget of --quick is a speed target: lossparity.report flags runs over it (no timed test)
    assert m["seconds"] > 0
    for key in im.SCENARIO.headline:
        assert isinstance(m.get(key), float), key
    assert {p.name for p in out[framework].glob("*.png")} >= {
        "imbalanced_minority.png", "imbalanced_confusion.png", "imbalanced_ensemble.png", "imbalanced_curves.png"}
    for key in im.JOBS:
        assert m[f"{key}/tp"] + m[f"{key}/fn"] == round(m["data/positive_rate_test"] * m["data/n_test"])
        if im.JOBS[key][1] == 1:  # our framework metrics agree with the NumPy evaluation
            assert m[f"{key}/framework_recall"] == pytest.approx(m[f"{key}/recall"], abs=1e-9)
    # the question's observations: plain BCE misses most of the minority; reweighting finds more
    assert m["bce/recall"] < 0.5
    for key in ("balanced", "pos_weight", "cost_soft", "fbeta"):
        assert m[f"{key}/recall"] > m["bce/recall"] + 0.2, key
    assert m["balanced/agreement_with_pos_weight"] > 0.95
    assert 2.5 < m["pos_weight/value"] < 3.3
    # the question's ensemble estimate is optimistic
    assert m["ensemble/biased_f1"] > m["ensemble/nested_f1"]


@pytest.mark.slow
def test_frameworks_agree_in_quick_runs(quick_runs):
    """Same initial weights, batches and optimizer rule: the same held-out confusion matrices
    (a few decisions may flip by float32 rounding) and close losses."""
    (runs, _) = quick_runs
    t, k = runs["torch"], runs["keras"]
    for key in im.JOBS:
        assert k[f"{key}/loss"] == pytest.approx(t[f"{key}/loss"], rel=0.02), key
        for cell in ("tp", "fp", "fn", "tn"):
            assert abs(k[f"{key}/{cell}"] - t[f"{key}/{cell}"]) <= 5, (key, cell)


@pytest.mark.slow
def test_lightning_cli_config_and_its_documented_variant(tmp_path):
    """The committed config (balanced class weights as per-sample weights) and the cost-sensitive
    variant its comment documents both fit through ``python -m lossparity.lightning_cli`` (the two
    command lines in one interpreter, each through the module's ``__main__`` with its own arguments:
    :func:`parity_tests.lightning_cli_runs.run_cli_commands`); the generic fit + test of every
    config is ``test_scenarios.py::test_lightning_cli_fit``."""
    config = im.SCENARIO.config_path()
    assert "weighting: balanced" in config.read_text()
    base = ["fit", "--config", str(config), "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
    variants = {
        "balanced": ["--data.source_args", "{quick: true}"],
        "cost_argmax": ["--data.source_args", "{quick: true, weighting: null, columns: 2}",
                        "--model.net.init_args.out_features", "2", "--model.loss", "cost_sensitive_cce",
                        "--model.loss_params", "{cost_matrix: [[1, 1], [5, 1]], mode: argmax}", "--model.metrics", "{}",
                        "--trainer.callbacks.monitor", "val_loss", "--trainer.callbacks.mode", "min"],
    }
    proc, outputs = run_cli_commands([base + ["--out", str(tmp_path / name)] + extra for name, extra in variants.items()])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(outputs) == len(variants), proc.stdout[-3000:]
    for name in variants:
        out = tmp_path / name
        assert list(out.glob("logs/version_*/checkpoints/last.ckpt"))
        header = next(out.glob("logs/version_*/metrics.csv")).read_text().splitlines()[0]
        assert ("val_recall" in header) == (name == "balanced") and "val_loss" in header
        saved = next(out.glob("logs/version_*/config.yaml")).read_text()
        assert ("cost_sensitive_cce" in saved) == (name == "cost_argmax")
