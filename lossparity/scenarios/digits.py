"""Scenario ``digits`` (problem: MNIST thresholding): MNIST preprocessing, the softmax-loss head, data selection.

The seed's notebook trains ``Flatten → Dense(128, relu) → Dense(128, relu) → Dense(10, sigmoid)``
with ``sparse_categorical_crossentropy`` on ``keras.utils.normalize(x, axis=1)`` images (3 epochs,
Adam), then tries binarized inputs (thresholds 0, .25, .4, .5, .6, .75), amplified inputs
(× 1.5, 2, 3, 5), and a data selection: keep the training images whose penultimate-layer features
(the 128-unit layer of a ``756-128`` network) are closest to their class mean (mean squared
distance below its 0.9 / 0.95 / 0.98 / 0.99 / 0.999 quantile), retrain for 5 epochs and compare
accuracy over 5 seeds.

Here, with the same steps in both frameworks:

* data: real MNIST when ``--data`` names a local ``mnist.npz`` or IDX folder, else
  scikit-learn's bundled 8×8 digits (1797 images, stratified 80/20 split; never the network).
  Preprocessing as the seed: ``keras.utils.normalize(x, axis=1)`` reproduced in NumPy (each pixel
  column of each image divided by its L2 norm), then flattened.
* head: the correct one is linear logits + ``sparse_categorical_crossentropy(from_logits=True)``.
  The seed's sigmoid head with ``from_logits=False`` is *rejected* by our loss: the rows of 10
  sigmoids do not sum to 1, and the error names the cause and the fix (``head_sigmoid/message``).
  Keras' own loss silently divides the sigmoids by their sum; ``head_sigmoid_normalized`` trains
  that model made explicit (sigmoid → row normalization → our loss on probabilities), which is
  what the seed actually trained. ``head_sigmoid_logits`` keeps the sigmoid but opts into logits
  (``from_logits=True``): accepted, since any real number is a logit, but the softmax of values in
  (0, 1) caps the true class's probability at e / (e + 9), so the loss cannot fall below
  log(1 + 9/e) ≈ 1.46 (``head_sigmoid_logits/loss_floor``): drop the activation instead.
* preprocessing sweep: each variant trained and tested on the transformed inputs, and the
  baseline model (trained on normalized inputs) tested on them too (``…/baseline_accuracy``, the
  seed's "model trained without thresholding").
* selection: a 756-128 model is trained on everything (``select_all``), its 128 penultimate
  features give each training image a squared distance to its class mean (averaged over the
  features, the seed's "mse"), and a fresh 756-128 model is trained on the images below each
  quantile. ``lossparity.report`` repeats the run over seeds (mean ± std; 5 seeds by default, as
  the seed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (Arrays, Backend, Job, Loss, Metric, MLP, Optimizer, ParityCase, Result, RunConfig,
                   Scenario, Table, fmt_value)
from .data import keras_normalize, load_digits_split, load_mnist

THRESHOLDS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75)
AMPLIFICATIONS = (1.5, 2.0, 3.0, 5.0)
QUANTILES = (0.9, 0.95, 0.98, 0.99, 0.999)
NUM_CLASSES = 10
PREP_HIDDEN, SELECT_HIDDEN = (128, 128), (756, 128)
#: epochs (preprocessing, selection): the seed's on MNIST; bundled digits are 40x smaller
EPOCHS = {"mnist": (3, 5), "digits": (20, 20)}
QUICK_EPOCHS = (2, 2)
QUICK_MNIST = (6000, 1000)  # training / test images used by --quick on MNIST
BATCH_SIZE = 32  # Keras' default, the seed's
SELECT_FLOAT32 = (
    "the selection network's 756-unit first layer has units whose bias gradient is a near-cancelling sum over "
    "the batch; float32 rounding in each framework's own matmul / bias-gradient kernels is a large relative "
    "error of those small components and Adam's m/sqrt(v) normalizes it up to a full-size step: after 10 Adam "
    "steps the first-layer bias (max |b| = 0.0099) differs by 1.3e-7 absolute (1.3e-5 relative) between torch "
    "and Keras, and each framework is that far from its own float64 trajectory (torch 4.8e-6, Keras 1.8e-5 "
    "relative; float64 torch vs Keras: 5e-15); the loss gradients themselves agree with float64 to 3e-9 in both. "
    "Rounding, not a different computation; SGD on the same case: 1.8e-7.")

METRICS = (Metric.of("accuracy", num_classes=NUM_CLASSES),)
LOGITS_LOSS = Loss.of("sparse_categorical_crossentropy", from_logits=True)
PROBS_LOSS = Loss.of("sparse_categorical_crossentropy", from_logits=False)


def images(cfg: RunConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Raw images ``(N, H, W)`` and labels, and a description of their source."""
    if cfg.data is not None:
        arrays = load_mnist(cfg.data)
        info = {"source": f"MNIST ({cfg.data})"}
        if cfg.quick:
            n_train, n_test = QUICK_MNIST
            arrays = {"x_train": arrays["x_train"][:n_train], "y_train": arrays["y_train"][:n_train],
                      "x_test": arrays["x_test"][:n_test], "y_test": arrays["y_test"][:n_test]}
        info["dataset"] = "mnist"
    else:
        arrays = load_digits_split()
        info = {"source": "scikit-learn load_digits (8x8, bundled)", "dataset": "digits"}
    return arrays, info


def normalized(cfg: RunConfig) -> Arrays:
    """The seed's ``keras.utils.normalize(x, axis=1)``, flattened, float32."""
    raw, info = images(cfg)
    flat = {k: keras_normalize(raw[k].astype(np.float64), axis=1).reshape(len(raw[k]), -1).astype(np.float32)
            for k in ("x_train", "x_test")}
    info.update(n_train=len(flat["x_train"]), n_test=len(flat["x_test"]), features=flat["x_train"].shape[1],
                image_shape=list(raw["x_train"].shape[1:]), preprocessing="keras.utils.normalize(x, axis=1)")
    return Arrays(flat["x_train"], raw["y_train"], flat["x_test"], raw["y_test"], info)


def lightning_data(data: str | None = None, quick: bool = False) -> dict[str, np.ndarray]:
    """The arrays for ``ArrayDataModule(source="lossparity.scenarios.digits:lightning_data")``."""
    cfg = RunConfig(out=Path("."), quick=quick, data=None if data is None else Path(data))
    return normalized(cfg).as_dict()


def binarize(x: np.ndarray, threshold: float) -> np.ndarray:
    """The seed's ``(x > thresh).astype(int)`` (as float32 inputs)."""
    return (x > threshold).astype(np.float32)


def amplify(x: np.ndarray, factor: float) -> np.ndarray:
    return (x * factor).astype(np.float32)


def class_mean_sq_distance(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per sample: mean over features of the squared difference to its class's mean feature
    vector (the seed's ``compute_mse``), vectorized."""
    features = np.asarray(features, np.float64)
    out = np.empty(len(features))
    for c in np.unique(labels):
        rows = labels == c
        out[rows] = np.mean((features[rows] - features[rows].mean(axis=0)) ** 2, axis=1)
    return out


def select(distance: np.ndarray, quantile: float) -> np.ndarray:
    """Indices kept by the seed's rule: ``distance < quantile(distance, q)`` (pandas' default
    linear interpolation, as ``Series.quantile``)."""
    return np.flatnonzero(distance < np.quantile(distance, quantile))


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


class Digits(Scenario):
    name = "digits"
    problem = "mnist-thresholding"
    title = "Digits: normalization, binarization, amplification, softmax head, data selection"
    summary = __doc__.split("\n\n", 1)[1]
    headline = ("normalized/accuracy", "normalized/loss", "head_sigmoid_normalized/accuracy",
                "head_sigmoid_logits/accuracy", "head_sigmoid_logits/loss",
                *(f"binarize_{fmt_value(t)}/accuracy" for t in THRESHOLDS),
                *(f"amplify_{fmt_value(a)}/accuracy" for a in AMPLIFICATIONS),
                "select_all/accuracy", *(f"select_{fmt_value(q)}/accuracy" for q in QUANTILES))
    full_seeds = 5  # the seed's "accuracy over 5 seeds"

    def data(self, cfg: RunConfig) -> Arrays:
        return normalized(cfg)

    def _epochs(self, data: Arrays, cfg: RunConfig) -> tuple[int, int]:
        return QUICK_EPOCHS if cfg.quick else EPOCHS[data.info.get("dataset", "digits")]

    def job(self, key: str, data: Arrays, cfg: RunConfig, *, hidden=PREP_HIDDEN, head="linear", loss=LOGITS_LOSS,
            epochs: int, validate: bool = False) -> Job:
        model = MLP(int(data.x_train.shape[1]), hidden, NUM_CLASSES, head=head)
        return Job(key, model, loss, METRICS, Optimizer("adam"), epochs=epochs, batch_size=BATCH_SIZE,
                   seed=cfg.seed, validate=validate)

    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result:
        result = Result(metrics={"data/n_train": data.x_train.shape[0], "data/n_test": data.x_test.shape[0],
                                 "data/features": data.x_train.shape[1]})
        prep_epochs, select_epochs = self._epochs(data, cfg)

        def train(job: Job, arrays: Arrays):
            trained = backend.train(job, arrays, cfg)
            for key, value in trained.metrics.items():
                result.metrics[f"{job.key}/{key}"] = value
            result.metrics[f"{job.key}/seconds"] = trained.seconds
            result.histories[job.key] = trained.history
            return trained

        # the correct head (logits + from_logits=True), on the seed's normalized inputs
        baseline = train(self.job("normalized", data, cfg, epochs=prep_epochs, validate=True), data)

        # the seed's sigmoid head with a softmax loss on probabilities: rejected by our loss
        message = backend.rejection(self.job("head_sigmoid", data, cfg, head="sigmoid", loss=PROBS_LOSS,
                                             epochs=prep_epochs), data)
        result.metrics["head_sigmoid/rejected"] = 0.0 if message is None else 1.0
        result.metrics["head_sigmoid/message"] = message or ""
        if message:
            result.notes.append(f"sigmoid head + sparse_categorical_crossentropy(from_logits=False) "
                                f"rejected: {message}")
        # what Keras' own loss silently trains instead: sigmoids divided by their row sum
        train(self.job("head_sigmoid_normalized", data, cfg, head="sigmoid_normalized", loss=PROBS_LOSS,
                       epochs=prep_epochs), data)
        # opting into logits while keeping the sigmoid: accepted (any real is a logit), but the
        # softmax of values in (0, 1) is at most e / (e + C - 1), so the loss cannot go below
        # log(1 + (C - 1) / e) (1.46 for 10 classes)
        train(self.job("head_sigmoid_logits", data, cfg, head="sigmoid", loss=LOGITS_LOSS, epochs=prep_epochs), data)
        result.metrics["head_sigmoid_logits/loss_floor"] = float(np.log1p((NUM_CLASSES - 1) / np.e))

        # preprocessing sweeps: each trained on its inputs; the baseline model tested on them too
        variants = [(f"binarize_{fmt_value(t)}", lambda x, t=t: binarize(x, t)) for t in THRESHOLDS]
        variants += [(f"amplify_{fmt_value(a)}", lambda x, a=a: amplify(x, a)) for a in AMPLIFICATIONS]
        for key, transform in variants:
            arrays = data.with_inputs(transform(data.x_train), transform(data.x_test), preprocessing=key)
            train(self.job(key, arrays, cfg, epochs=prep_epochs), arrays)
            result.metrics[f"{key}/baseline_accuracy"] = accuracy(baseline.predict(arrays.x_test), data.y_test)

        # data selection by distance of penultimate features to their class mean
        full = train(self.job("select_all", data, cfg, hidden=SELECT_HIDDEN, epochs=select_epochs,
                              validate=True), data)
        distance = class_mean_sq_distance(full.features(data.x_train), data.y_train)
        result.metrics["select_all/n_train"] = data.x_train.shape[0]
        for q in QUANTILES:
            key = f"select_{fmt_value(q)}"
            kept = select(distance, q)
            train(self.job(key, data, cfg, hidden=SELECT_HIDDEN, epochs=select_epochs), data.subset(kept))
            result.metrics[f"{key}/n_train"] = int(kept.size)
            result.metrics[f"{key}/distance_threshold"] = float(np.quantile(distance, q))
        return result

    # ------------------------------------------------------------------ plots
    def plots(self, table: Table, curves, out: Path, subtitle: str) -> list[Path]:
        from . import plotting

        prep = [("normalized", "normalized"), ("head_sigmoid_normalized", "sigmoid/sum head"),
                ("head_sigmoid_logits", "sigmoid as logits")]
        prep += [(f"binarize_{fmt_value(t)}", f"x > {fmt_value(t)}") for t in THRESHOLDS]
        prep += [(f"amplify_{fmt_value(a)}", f"x · {fmt_value(a)}") for a in AMPLIFICATIONS]
        paths = [plotting.grouped_bars(
            table, prep, [("accuracy", "trained on these inputs"), ("baseline_accuracy", "baseline model")],
            out / "digits_preprocessing.png", f"digits: test accuracy per preprocessing — {subtitle}", "accuracy")]
        sel = [("select_all", "all")] + [(f"select_{fmt_value(q)}", f"q < {fmt_value(q)}") for q in QUANTILES]
        paths.append(plotting.grouped_bars(table, sel, [("accuracy", "test accuracy")], out / "digits_selection.png",
                                           f"digits: data selection by feature distance — {subtitle}", "accuracy",
                                           ylim=None))
        curve = plotting.curves(curves, ["normalized", "select_all"], ["loss", "val_loss", "val_accuracy"],
                                out / "digits_curves.png", "digits: training curves")
        return paths + ([curve] if curve else [])

    # ------------------------------------------------------------------ parity
    def parity_cases(self) -> list[ParityCase]:
        data = normalized(RunConfig(out=Path(".")))
        x, y = data.x_train[:320].astype(np.float64), data.y_train[:320]
        d = x.shape[1]
        return [ParityCase("digits-logits", MLP(d, PREP_HIDDEN, NUM_CLASSES), LOGITS_LOSS, x, y),
                ParityCase("digits-sigmoid-normalized", MLP(d, PREP_HIDDEN, NUM_CLASSES, head="sigmoid_normalized"),
                           PROBS_LOSS, x, y),
                ParityCase("digits-select", MLP(d, SELECT_HIDDEN, NUM_CLASSES), LOGITS_LOSS, x, y,
                           float32_rtol=5e-5, float32_reason=SELECT_FLOAT32)]


SCENARIO = Digits()
