"""Scenario ``imbalanced`` (problem: cost-sensitive): a ~15k vs ~5k binary problem, seven ways to weigh the minority.

The seed's question: ~20,000 texts, ~5,000 true vs ~15,000 false, F1 "not bad" but only ~40 % of
the true samples found; scikit-learn's balanced ``class_weight`` "did not work very well since the
weight applied to all samples instead of the mis-classified ones"; the cost-sensitive
``w_categorical_crossentropy`` (a cost per (true, predicted) pair) was categorical and the binary
adaptation failed on the input dimension. The same thread asks about ``pos_weight``, F-score as a
loss, and (the ensemble question) weights of several models found by SciPy's
``differential_evolution`` on the test fold: "I think this accuracy is biased toward test data".

Here, in both frameworks from the same initial weights and batches:

* data: scikit-learn ``make_classification`` (seed 0): 20,000 samples, 20 features of which 4
  informative and 2 redundant, class weights 0.75 / 0.25, 6 % of the labels flipped at random
  (``flip_y``) and a class separation of 0.4, so the minority class is genuinely hard; a stratified
  80/20 split, features standardized with the training statistics. Or a local table with
  ``--data`` (``.csv``: features + a 0/1 label column named ``label``/``y``/``target``/``class``,
  else the last column; ``.npz``: ``x``, ``y`` or ``x_train``, ``y_train``, ``x_test``, ``y_test``),
  e.g. text embeddings. ``--quick``: 3,000 training and 1,000 held-out samples.
* one MLP 20-64-32 (ReLU) trained with Adam (Keras defaults), batch 32, 10 epochs, by:
  ``bce`` (``weighted_bce``, ``pos_weight=1``: the baseline); ``balanced`` (the seed's answer:
  ``balanced_class_weights`` → per-sample ``sample_weight`` ``w[y]``, ``N / (2 N_y)``);
  ``pos_weight`` (``"auto"`` = negatives / positives ≈ 3); ``cost_argmax`` and ``cost_soft``
  (``cost_sensitive_cce`` on a 2-column softmax head with costs ``[[1, 1], [5, 1]]``: a false
  negative costs 5x; ``argmax`` is the seed's mask, which weighs only the *misclassified*
  positives, ``soft`` its differentiable form); ``focal`` (``binary_focal``, γ = 2); ``fbeta``
  (``soft_fbeta``, β = 1, ``average="micro"``: one F1 pooled over the batch, since per-sample
  F-scores of a single output are meaningless).
* decisions on the held-out split: logit > 0 for the 1-column heads, argmax for the 2-column
  ones; minority (class 1) recall, precision, F1 and the confusion matrix, computed with NumPy from
  each framework's predictions (the 1-column jobs also log our torchmetrics / Keras metrics,
  ``…/framework_recall`` etc.).
* what to expect: plain BCE decides at p > 0.5 and has the lowest minority recall (the seed's
  complaint); reweighting the positives (``balanced``, ``pos_weight``, the 5x costs) moves the
  decision toward the minority, buying recall with precision, and the batch-pooled soft F1 does
  too. ``balanced`` and ``pos_weight`` are the *same* loss up to a constant factor
  (``w_1 / w_0 = N_0 / N_1`` = the auto ``pos_weight``), and Adam is invariant to the loss scale up
  to its ε, so their predictions agree almost everywhere (``balanced/agreement_with_pos_weight``):
  the seed's "class_weight did not work" is not a matter of per-sample versus per-class weights.
  The seed's cost-sensitive mask (``cost_argmax``) multiplies the loss of a positive by 5 only
  while it is predicted negative; ``cost_soft`` uses the expected cost under the softmax. Focal
  loss (γ = 2, no α) down-weights *easy* examples, not the minority, so it barely moves recall.
* ensemble: the held-out probabilities of the seven models, weights by ``differential_evolution``
  maximizing the F1 of their weighted average (:mod:`lossparity.scenarios.ensemble`), scored two ways
  on the same 5 stratified outer folds: the seed's (tuned and scored on the same fold,
  ``ensemble/biased_f1``) and nested (tuned on the other folds, ``ensemble/nested_f1``);
  ``ensemble/bias`` = biased − nested is the optimism of the seed's number, ``ensemble/equal_f1``
  the untuned average for reference.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .base import (Arrays, Backend, Job, Loss, Metric, MLP, Optimizer, ParityCase, Result, RunConfig,
                   Scenario, Table)
from .data import DataFormatError

N_SAMPLES = 20000
CLASS_WEIGHTS = (0.75, 0.25)
N_FEATURES, N_INFORMATIVE, N_REDUNDANT = 20, 4, 2
FLIP_Y, CLASS_SEP = 0.06, 0.4
TEST_FRACTION = 0.2
QUICK_TRAIN, QUICK_TEST = 3000, 1000
HIDDEN = (64, 32)
EPOCHS, QUICK_EPOCHS, BATCH_SIZE = 10, 2, 32
#: rows: true class, columns: predicted class; a false negative (true 1, predicted 0) costs 5x
COST_FN5 = ((1.0, 1.0), (5.0, 1.0))
ENSEMBLE_FOLDS = 5
ENSEMBLE_MAXITER, QUICK_ENSEMBLE_MAXITER = 100, 30
LABEL_COLUMNS = ("label", "y", "target", "class")
#: why the two class-balanced parity cases have a float32 tolerance of 1e-4 (float64: 1e-9 as every case)
BALANCED_FLOAT32 = (
    "balancing makes the positive and negative terms cancel in the gradient (at initialization the "
    "output-bias gradient is ~0 by construction), so float32 rounding is a large relative error of "
    "the small gradient components and Adam's m/sqrt(v) normalizes it up to a full-size step: after "
    "10 Adam steps the first-layer bias (max |b| = 0.009) differs by 3.5e-7 absolute (3.7e-5 relative) "
    "between torch and Keras, and each framework is as far from the float64 trajectory (torch 2.4e-7, "
    "Keras 1.1e-7): rounding, not a different computation. Unbalanced BCE on the same data: 1.1e-6; SGD: 2e-7.")

SOFT_F1_FLOAT32 = (
    "a batch statistic: F1 over the pooled counts of the whole batch, whose gradient per element is the "
    "difference of the count terms of TP, FP and FN; after 10 Adam steps the first-layer bias differs by "
    "1.4e-5 relative between torch and Keras, and torch's float32 run is as far from its float64 trajectory "
    "(1.2e-5; Keras 2.2e-6), float64 agreeing to 2.5e-15: rounding, not a different computation.")

METRICS_1COL = (Metric.of("recall", from_logits=True), Metric.of("precision", from_logits=True),
                Metric.of("f1", "fbeta", beta=1.0, from_logits=True))

#: key → (loss, output columns, per-sample weighting)
JOBS: dict[str, tuple[Loss, int, str | None]] = {
    "bce": (Loss.of("weighted_bce", pos_weight=1.0), 1, None),
    "balanced": (Loss.of("weighted_bce", pos_weight=1.0), 1, "balanced"),
    "pos_weight": (Loss.of("weighted_bce", pos_weight="auto"), 1, None),
    "cost_argmax": (Loss.of("cost_sensitive_cce", cost_matrix=COST_FN5, mode="argmax"), 2, None),
    "cost_soft": (Loss.of("cost_sensitive_cce", cost_matrix=COST_FN5, mode="soft"), 2, None),
    "focal": (Loss.of("binary_focal", gamma=2.0), 1, None),
    "fbeta": (Loss.of("soft_fbeta", beta=1.0, average="micro"), 1, None),
}
LABELS = {"bce": "BCE", "balanced": "balanced\nclass weights", "pos_weight": "pos_weight\n(auto)",
          "cost_argmax": "cost CCE\nargmax", "cost_soft": "cost CCE\nsoft", "focal": "focal γ=2",
          "fbeta": "soft F1\n(micro)"}


# --------------------------------------------------------------------------- data
def generate(n_samples: int = N_SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic ~75/25 problem: ``(x (n, 20) float64, y (n,) int64)``."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n_samples, n_features=N_FEATURES, n_informative=N_INFORMATIVE,
                               n_redundant=N_REDUNDANT, n_clusters_per_class=2, weights=list(CLASS_WEIGHTS),
                               flip_y=FLIP_Y, class_sep=CLASS_SEP, random_state=seed)
    return x, y.astype(np.int64)


def _binary_labels(y, path: Path, what: str) -> np.ndarray:
    y = np.asarray(y)
    try:
        yf = y.astype(np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: {what} must be 0/1 labels; got non-numeric values") from None
    if y.ndim == 2 and y.shape[1] != 1 or y.ndim > 2:
        raise DataFormatError(f"{path}: {what} must be one 0/1 label per row; got shape {y.shape}")
    if not np.all((yf == 0) | (yf == 1)):
        bad = np.unique(yf[(yf != 0) & (yf != 1)])[:5]
        raise DataFormatError(f"{path}: {what} must be 0 or 1 (a binary problem); got e.g. {bad.tolist()}")
    return yf.astype(np.int64)


def _features(x, path: Path, what: str) -> np.ndarray:
    try:
        x = np.asarray(x, np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: {what} must be numeric features") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataFormatError(f"{path}: {what} must be a (rows, features) table; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataFormatError(f"{path}: {what} contains NaN, inf or empty cells")
    return x


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataFormatError(f"{path}: empty CSV file")

    def numeric(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return False

    header = None if all(numeric(c) for c in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header else rows
    width = len(rows[0])
    if width < 2:
        raise DataFormatError(f"{path}: a CSV needs at least one feature column and a label column")
    bad = [i for i, r in enumerate(body) if len(r) != width]
    if bad:
        raise DataFormatError(f"{path}: row {bad[0] + (2 if header else 1)} has {len(body[bad[0]])} cells, "
                              f"the first row {width}")
    label_col = width - 1
    if header:
        lower = [h.lower() for h in header]
        named = [lower.index(n) for n in LABEL_COLUMNS if n in lower]
        label_col = named[0] if named else width - 1
    try:
        table = np.array([[float(c) if c.strip() else np.nan for c in r] for r in body], np.float64)
    except ValueError as err:
        raise DataFormatError(f"{path}: non-numeric cell ({err}); features and label must be numbers") from None
    if len(table) == 0:
        raise DataFormatError(f"{path}: the CSV has a header but no rows")
    features = np.delete(table, label_col, axis=1)
    return features, table[:, label_col]


def load_table(path) -> dict[str, np.ndarray]:
    """A local binary-classification table: ``.csv`` or ``.npz`` (see the module docstring).
    Returns ``{"x", "y"}`` or ``{"x_train", "y_train", "x_test", "y_test"}`` (float64 features, int64
    0/1 labels). Never downloads."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (give a local .csv or .npz of features and 0/1 labels; "
                                f"nothing is downloaded)")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                files = set(npz.files)
                if {"x_train", "y_train", "x_test", "y_test"} <= files:
                    keys = ("x_train", "y_train", "x_test", "y_test")
                elif {"x", "y"} <= files:
                    keys = ("x", "y")
                else:
                    raise DataFormatError(f"{path}: the .npz needs arrays 'x' and 'y' (or x_train, y_train, x_test, "
                                          f"y_test); got {sorted(files)}")
                raw = {k: np.asarray(npz[k]) for k in keys}
        except (OSError, ValueError) as err:
            if isinstance(err, DataFormatError):
                raise
            raise DataFormatError(f"{path}: not a readable .npz file ({err})") from None
    elif path.suffix.lower() in (".csv", ".txt"):
        x, y = _read_csv(path)
        raw = {"x": x, "y": y}
    else:
        raise DataFormatError(f"{path}: unknown table format {path.suffix!r}; expected .csv or .npz")
    out = {}
    for key, value in raw.items():
        out[key] = (_features(value, path, key) if key.startswith("x") else _binary_labels(value, path, key))
    for split in ("", "_train", "_test"):
        if f"x{split}" in out and len(out[f"x{split}"]) != len(out[f"y{split}"]):
            raise DataFormatError(f"{path}: x{split} has {len(out[f'x{split}'])} rows, y{split} "
                                  f"{len(out[f'y{split}'])}")
    if "x_test" in out and out["x_test"].shape[1] != out["x_train"].shape[1]:
        raise DataFormatError(f"{path}: x_train has {out['x_train'].shape[1]} features, x_test "
                              f"{out['x_test'].shape[1]}")
    return out


def _stratified_split(x, y, seed: int = 0):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)


def split(quick: bool = False, data: Path | str | None = None) -> Arrays:
    """Training / held-out arrays: ``x`` standardized float32, ``y`` ``(N, 1)`` float32 0/1."""
    if data is None:
        x, y = generate()
        x_train, x_test, y_train, y_test = _stratified_split(x, y)
        info = {"source": (f"make_classification (seed 0): {N_SAMPLES} x {N_FEATURES}, {N_INFORMATIVE} informative, "
                           f"weights {list(CLASS_WEIGHTS)}, flip_y {FLIP_Y}, class_sep {CLASS_SEP}")}
    else:
        table = load_table(data)
        if "x" in table:
            if min(np.bincount(table["y"], minlength=2)) < 2:
                raise DataFormatError(f"{data}: both classes need at least 2 samples for a stratified split")
            x_train, x_test, y_train, y_test = _stratified_split(table["x"], table["y"])
        else:
            x_train, y_train, x_test, y_test = (table[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        info = {"source": f"local table {data}"}
    if quick:  # the split is already shuffled (stratified): the first rows are a random subset
        x_train, y_train = x_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN]
        x_test, y_test = x_test[:QUICK_TEST], y_test[:QUICK_TEST]
    for name, labels in (("training", y_train), ("held-out", y_test)):
        if labels.min() == labels.max():
            raise DataFormatError(f"{data or 'data'}: the {name} split has only class {int(labels[0])}; "
                                  f"both classes are needed")
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    x_train, x_test = ((a - mean) / std for a in (x_train, x_test))
    info.update(n_train=int(len(x_train)), n_test=int(len(x_test)), features=int(x_train.shape[1]),
                positive_rate_train=float(np.mean(y_train)), positive_rate_test=float(np.mean(y_test)))
    return Arrays(x_train.astype(np.float32), y_train.reshape(-1, 1).astype(np.float32),
                  x_test.astype(np.float32), y_test.reshape(-1, 1).astype(np.float32), info)


def balanced_sample_weight(y) -> np.ndarray:
    """The seed's ``compute_class_weight('balanced')`` as per-sample weights: ``w[y_i]`` with
    ``w_k = N / (2 N_k)`` (``spec.class_weights.balanced_class_weights``)."""
    from spec.class_weights import balanced_class_weights

    labels = np.asarray(y).reshape(-1).astype(np.int64)
    return balanced_class_weights(labels, num_classes=2)[labels]


def job_arrays(data: Arrays, columns: int, weighting: str | None) -> Arrays:
    """``data`` as a job trains on it: one-hot ``(N, 2)`` targets for a 2-column head; per-sample
    weights for ``weighting="balanced"``."""
    out = data
    if columns == 2:
        def onehot(y):
            return np.eye(2, dtype=np.float32)[np.asarray(y).reshape(-1).astype(np.int64)]
        out = Arrays(data.x_train, onehot(data.y_train), data.x_test, onehot(data.y_test), dict(data.info))
    if weighting == "balanced":
        out = out.with_sample_weight(balanced_sample_weight(data.y_train).astype(np.float32),
                                     sample_weight="balanced")
    elif weighting is not None:
        raise ValueError(f"unknown weighting {weighting!r}; expected None or 'balanced'")
    return out


def lightning_data(quick: bool = False, data: str | None = None, weighting: str | None = "balanced",
                   columns: int = 1) -> dict[str, np.ndarray]:
    """The arrays for ``ArrayDataModule(source="lossparity.scenarios.imbalanced:lightning_data")``;
    by default the config's job: balanced class weights as ``w_train``."""
    return job_arrays(split(quick, data), int(columns), weighting).as_dict()


# --------------------------------------------------------------------------- evaluation (NumPy)
def decisions(outputs: np.ndarray) -> np.ndarray:
    """Class-1 decisions: logit > 0 (1 column), argmax (2 columns; a tie goes to class 0)."""
    outputs = np.asarray(outputs, np.float64)
    return outputs[:, 0] > 0 if outputs.shape[1] == 1 else outputs[:, 1] > outputs[:, 0]


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """P(class 1): sigmoid of the logit, or the softmax's second column."""
    outputs = np.asarray(outputs, np.float64)
    z = outputs[:, 0] if outputs.shape[1] == 1 else outputs[:, 1] - outputs[:, 0]
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = sigmoid(z), no overflow


def binary_report(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Confusion counts and class-1 recall, precision, F1 (0/0 → 0), accuracy, class-0 recall."""
    y = np.asarray(y_true).reshape(-1).astype(bool)
    p = np.asarray(predicted).reshape(-1).astype(bool)
    tp, fp = float(np.sum(p & y)), float(np.sum(p & ~y))
    fn, tn = float(np.sum(~p & y)), float(np.sum(~p & ~y))

    def ratio(a, b):
        return a / b if b > 0 else 0.0

    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "recall": ratio(tp, tp + fn), "precision": ratio(tp, tp + fp),
            "f1": ratio(2 * tp, 2 * tp + fp + fn), "accuracy": ratio(tp + tn, len(y)),
            "specificity": ratio(tn, tn + fp), "positive_rate": ratio(tp + fp, len(y))}


# --------------------------------------------------------------------------- scenario
class Imbalanced(Scenario):
    name = "imbalanced"
    problem = "cost-sensitive"
    title = "Imbalanced binary classification: class weights, pos_weight, cost-sensitive, focal, soft F1; ensemble bias"
    summary = __doc__.split("\n\n", 1)[1]
    headline = (*(f"{k}/{m}" for k in JOBS for m in ("recall", "precision", "f1")),
                "balanced/agreement_with_pos_weight", "ensemble/biased_f1", "ensemble/nested_f1", "ensemble/bias",
                "ensemble/equal_f1")
    # the ensemble's bias (biased − nested F1, ~0.02) is a small effect on top of the models'
    # seed-to-seed spread (~0.003-0.006): five seeds, not three, to report it
    full_seeds = 5

    def data(self, cfg: RunConfig) -> Arrays:
        return split(cfg.quick, cfg.data)

    def job(self, key: str, cfg: RunConfig, in_features: int) -> Job:
        loss, columns, _ = JOBS[key]
        return Job(key, MLP(in_features, HIDDEN, columns), loss, METRICS_1COL if columns == 1 else (),
                   Optimizer("adam"), epochs=QUICK_EPOCHS if cfg.quick else EPOCHS, batch_size=BATCH_SIZE,
                   seed=cfg.seed)

    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result:
        from .ensemble import nested_vs_biased

        y_test = data.y_test.reshape(-1)
        result = Result(metrics={"data/n_train": len(data.x_train), "data/n_test": len(data.x_test),
                                 "data/positive_rate_train": float(data.y_train.mean()),
                                 "data/positive_rate_test": float(y_test.mean())})
        probs, decided = {}, {}
        for key, (_, columns, weighting) in JOBS.items():
            job = self.job(key, cfg, data.x_train.shape[1])
            trained = backend.train(job, job_arrays(data, columns, weighting), cfg)
            outputs = trained.predict(data.x_test)
            decided[key], probs[key] = decisions(outputs), probabilities(outputs)
            for name, value in binary_report(y_test, decided[key]).items():
                result.metrics[f"{key}/{name}"] = value
            for name, value in trained.metrics.items():  # loss, and our framework metrics (1 column)
                result.metrics[f"{key}/{name if name == 'loss' else 'framework_' + name}"] = value
            result.metrics[f"{key}/seconds"] = trained.seconds
            if key == "pos_weight":
                result.metrics["pos_weight/value"] = float(np.ravel(trained.loss_params["pos_weight"])[0])
            result.histories[key] = trained.history
        result.metrics["balanced/agreement_with_pos_weight"] = float(np.mean(decided["balanced"] == decided["pos_weight"]))

        est = nested_vs_biased(np.stack([probs[k] for k in JOBS], axis=1), y_test, n_folds=ENSEMBLE_FOLDS,
                               seed=cfg.seed, maxiter=QUICK_ENSEMBLE_MAXITER if cfg.quick else ENSEMBLE_MAXITER)
        result.metrics.update(est.metrics("ensemble", list(JOBS)))
        m = result.metrics
        result.notes.append(
            f"Plain BCE finds {m['bce/recall']:.0%} of the minority; balanced class weights "
            f"{m['balanced/recall']:.0%}, pos_weight=auto ({m['pos_weight/value']:.2f}) {m['pos_weight/recall']:.0%}: "
            f"the two agree on {m['balanced/agreement_with_pos_weight']:.1%} of the held-out decisions "
            f"(the same loss up to a constant factor).")
        result.notes.append(
            f"Ensemble of the {len(JOBS)} models, weights by differential_evolution maximizing F1: the seed's "
            f"estimate (tuned on the test fold) {m['ensemble/biased_f1']:.3f}, nested {m['ensemble/nested_f1']:.3f}: "
            f"bias {m['ensemble/bias']:+.3f} F1.")
        return result

    # ------------------------------------------------------------------ plots
    def plots(self, table: Table, curves, out: Path, subtitle: str) -> list[Path]:
        from . import plotting

        groups = [(k, LABELS[k].replace("\n", " ")) for k in JOBS]
        paths = [plotting.grouped_bars(
            table, groups, [("recall", "minority recall"), ("precision", "minority precision"), ("f1", "minority F1")],
            out / "imbalanced_minority.png", f"imbalanced: class-1 metrics on the held-out split — {subtitle}",
            "score")]
        paths.append(self._confusion_plot(table, out / "imbalanced_confusion.png", subtitle))
        paths.append(self._ensemble_plot(table, out / "imbalanced_ensemble.png", subtitle))
        curve = plotting.curves(curves, ["bce", "pos_weight", "cost_argmax", "fbeta"],
                                ["loss", "val_loss", "val_recall", "val_f1"],
                                out / "imbalanced_curves.png", "imbalanced: training curves")
        return paths + ([curve] if curve else [])

    @staticmethod
    def _confusion_plot(table: Table, path: Path, subtitle: str) -> Path:
        from . import plotting

        plt = plotting.pyplot()
        frameworks = sorted(table)
        fig, axes = plt.subplots(len(frameworks), len(JOBS), figsize=(2.3 * len(JOBS), 2.5 * len(frameworks) + 0.6),
                                 squeeze=False)
        for r, framework in enumerate(frameworks):
            stats = table[framework]
            for c, key in enumerate(JOBS):
                ax = axes[r][c]
                counts = np.array([[stats[f"{key}/{n}"].mean if f"{key}/{n}" in stats else np.nan for n in row]
                                   for row in (("tn", "fp"), ("fn", "tp"))])
                rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)  # per true class
                ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
                for i in range(2):
                    for j in range(2):
                        ax.text(j, i, f"{counts[i, j]:.0f}\n{rates[i, j]:.0%}", ha="center", va="center", fontsize=8,
                                color="white" if rates[i, j] > 0.6 else "black")
                ax.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize=7)
                ax.set_yticks([0, 1], ["true 0", "true 1"], fontsize=7)
                ax.set_title(f"{framework}: {LABELS[key]}", fontsize=8)
        fig.suptitle(f"imbalanced: held-out confusion matrices (rows: true class, % of the row) — {subtitle}")
        fig.tight_layout()
        return plotting.save(fig, path)

    @staticmethod
    def _ensemble_plot(table: Table, path: Path, subtitle: str) -> Path:
        from . import plotting

        plt = plotting.pyplot()
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
        frameworks = sorted(table)
        kinds = [("equal_f1", "equal weights\n(nothing tuned)"), ("nested_f1", "nested CV\n(tuned on other folds)"),
                 ("biased_f1", "seed's estimate\n(tuned on the test fold)")]
        width = 0.8 / len(frameworks)
        for i, framework in enumerate(frameworks):
            stats = table[framework]
            xs = np.arange(len(kinds)) + (i - (len(frameworks) - 1) / 2) * width
            means = [stats[f"ensemble/{k}"].mean if f"ensemble/{k}" in stats else np.nan for k, _ in kinds]
            stds = [stats[f"ensemble/{k}"].std if f"ensemble/{k}" in stats else 0.0 for k, _ in kinds]
            ax.bar(xs, means, width, yerr=stds, capsize=3, color=plotting.color(framework), alpha=0.8, label=framework)
            best = max((stats[f"{k}/f1"].mean for k in JOBS if f"{k}/f1" in stats), default=np.nan)
            ax.axhline(best, color=plotting.color(framework), linestyle=":", linewidth=1,
                       label=f"{framework}: best single model (whole split)")
            # per outer fold: nested vs biased, one line per fold
            n_folds = int(stats["ensemble/folds"].mean) if "ensemble/folds" in stats else 0
            for k in range(n_folds):
                b, n = stats.get(f"ensemble/fold{k}_biased_f1"), stats.get(f"ensemble/fold{k}_nested_f1")
                if b is not None and n is not None:
                    ax2.plot([0 + 0.05 * i, 1 + 0.05 * i], [n.mean, b.mean], "-o", color=plotting.color(framework),
                             alpha=0.7, label=framework if k == 0 else None)
            bias = stats.get("ensemble/bias")
            if bias is not None:
                ax.text(2 + (i - (len(frameworks) - 1) / 2) * width, 0.03 + 0.08 * i, f"{framework} bias\n{bias.mean:+.3f}",
                        ha="center", fontsize=7, color=plotting.color(framework))
        ax.set_xticks(np.arange(len(kinds)), [label for _, label in kinds], fontsize=8)
        ax.set_ylabel("minority F1 (mean over outer folds)")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title("ensemble F1 by differential_evolution weights")
        ax2.set_xticks([0, 1], ["nested", "biased"])
        ax2.set_xlim(-0.3, 1.4)
        ax2.set_ylabel("F1 on the outer fold")
        ax2.set_title("per outer fold: nested estimate vs the seed's (same fold)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
        fig.suptitle(f"imbalanced: the seed's ensemble estimate vs nested cross-validation — {subtitle}")
        fig.tight_layout()
        return plotting.save(fig, path)

    # ------------------------------------------------------------------ parity
    def parity_cases(self) -> list[ParityCase]:
        x, y = generate(n_samples=640)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        x, y = x[:320], y[:320]
        y1, y2 = y.reshape(-1, 1).astype(np.float64), np.eye(2)[y]
        auto = float(np.sum(y == 0) / np.sum(y == 1))
        one, two = MLP(N_FEATURES, HIDDEN, 1), MLP(N_FEATURES, HIDDEN, 2)
        return [
            ParityCase("imbalanced-bce", one, JOBS["bce"][0], x, y1),
            ParityCase("imbalanced-balanced-sample-weight", one, JOBS["balanced"][0], x, y1,
                       sample_weight=balanced_sample_weight(y), float32_rtol=1e-4, float32_reason=BALANCED_FLOAT32),
            ParityCase("imbalanced-pos-weight", one, Loss.of("weighted_bce", pos_weight=auto), x, y1,
                       float32_rtol=1e-4, float32_reason=BALANCED_FLOAT32),
            ParityCase("imbalanced-cost-argmax", two, JOBS["cost_argmax"][0], x, y2),
            ParityCase("imbalanced-cost-soft", two, JOBS["cost_soft"][0], x, y2),
            ParityCase("imbalanced-focal", one, JOBS["focal"][0], x, y1),
            ParityCase("imbalanced-soft-f1-micro", one, JOBS["fbeta"][0], x, y1, float32_rtol=1e-4,
                       float32_reason=SOFT_F1_FLOAT32),
        ]


SCENARIO = Imbalanced()
