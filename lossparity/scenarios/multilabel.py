"""Scenario ``multilabel`` (problem: sparse multilabel): 30 sparse binary labels, ``weighted_bce`` on logits.

The seed's question: a 30-label problem with ~1 positive per row; with ``binary_crossentropy``
the model predicts all zeros ("accuracy high, recall awful"). The answer: drop the sigmoid, train
on logits with ``weighted_cross_entropy_with_logits`` (our ``weighted_bce``) and ``pos_weight=27``;
the asker then noticed that ``pos_weight=1000`` predicts all ones.

Here: the seed's generator exactly (``numpy`` seed 0, 30000 × 30, ``y = rand <= 1/30``, a positive
label's feature set to 1 with probability 0.1, the random numbers drawn in the seed's loop order),
the first 80 % for training and the last 20 % held out; the seed's MLP 30-100-100-30 with a linear
(logit) head, Adam (Keras defaults), batch 10, 10 epochs; ``weighted_bce`` with ``pos_weight`` ∈
{1, 3, 10, 27, 100, 1000} and ``"auto"`` (``pos_weight_from_labels``: negatives / positives per
column, ≈ 29); recall, precision and F1 (our metrics, from logits, micro-averaged), and the
fraction of predicted ones.

Why the sweep looks the way it does (the Bayes decision): the features only ever reveal a
positive (``x_j = 1`` ⇒ ``y_j = 1``), 10 % of the time; otherwise ``P(y_j = 1 | x_j = 0) =
(1/30 · 0.9) / (1 − 1/30 · 0.1) ≈ 0.0301``. ``weighted_bce`` with weight ``w`` is minimized by
predicting 1 when ``w·p > 1 − p``, i.e. when ``p > 1 / (1 + w)``. So for ``w < (1 − p)/p ≈ 32.2``
the best model predicts 1 only for revealed positives (recall ≈ 0.1, precision ≈ 1) and for
``w > 32.2`` it predicts 1 everywhere (recall 1, precision ≈ 0.033). ``pos_weight=1`` is "near-zero
recall" (0.1 at best, 0 while the model has not yet learned the revealed positives), 1000 predicts
all ones, and 27 / auto (≈ 29) sit just below the switch, so finite training may land on either
side for some labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (Arrays, Backend, Job, Loss, Metric, MLP, Optimizer, ParityCase, Result, RunConfig,
                   Scenario, Table, fmt_value)

OUTPUT_NODES = 30
N_OBSERVATIONS = 30000
POS_WEIGHTS: tuple[float | str, ...] = (1, 3, 10, 27, 100, 1000, "auto")
TRAIN_FRACTION = 0.8
QUICK_TRAIN, QUICK_TEST = 3000, 2000

MODEL = MLP(OUTPUT_NODES, (100, 100), OUTPUT_NODES)
METRICS = (Metric.of("recall", from_logits=True), Metric.of("precision", from_logits=True),
           Metric.of("f1", "fbeta", beta=1.0, from_logits=True))


def generate(n_observations: int = N_OBSERVATIONS, output_nodes: int = OUTPUT_NODES, seed: int = 0):
    """The seed's ``get_dataset()`` with ``np.random.seed(seed)``, vectorized.

    The seed draws ``rand(n, 30)`` for ``y``, then one ``rand(1)`` per positive label in row-major
    order; the legacy generator gives the same numbers for one ``rand(k)`` call, so this returns
    the seed's arrays bit for bit (``parity_tests/test_scenarios.py`` checks it against the loop)."""
    rs = np.random.RandomState(seed)
    y = rs.rand(n_observations, output_nodes)
    y = (y <= (1 / output_nodes)).astype(int)
    rows, cols = np.nonzero(y)  # row-major: the seed's loop order
    x = np.zeros((n_observations, output_nodes))
    x[rows, cols] = (rs.rand(rows.size) > 0.9).astype(float)
    return x, y


def seed_loop_generate(n_observations: int, output_nodes: int = OUTPUT_NODES, seed: int = 0):
    """The seed's code verbatim (Python loops); used by the test of :func:`generate`."""
    np_random = np.random.RandomState(seed)
    y = np_random.rand(n_observations, output_nodes)
    y = (y <= (1 / output_nodes)).astype(int)
    x = np.zeros((n_observations, output_nodes))
    for i in range(len(y)):
        for j, feature in enumerate(y[i]):
            if feature == 1:
                x[i][j] = 1 if np_random.rand(1) > 0.9 else 0
    return x, y


def split(quick: bool = False) -> Arrays:
    x, y = generate()
    n_train = int(TRAIN_FRACTION * len(x))
    train, test = slice(0, n_train), slice(n_train, None)
    if quick:
        train, test = slice(0, QUICK_TRAIN), slice(len(x) - QUICK_TEST, None)
    x, y = x.astype(np.float32), y.astype(np.float32)
    info = {"source": "the question's generator (numpy seed 0)", "n_train": int(len(x[train])),
            "n_test": int(len(x[test])), "features": OUTPUT_NODES, "labels": OUTPUT_NODES}
    return Arrays(x[train], y[train], x[test], y[test], info)


def lightning_data(quick: bool = False) -> dict[str, np.ndarray]:
    """The arrays for ``ArrayDataModule(source="lossparity.scenarios.multilabel:lightning_data")``."""
    return split(quick).as_dict()


def job_key(pos_weight) -> str:
    return f"pos_weight_{pos_weight if isinstance(pos_weight, str) else fmt_value(pos_weight)}"


def bayes_numbers(data: Arrays) -> dict[str, float]:
    """The numbers of the module docstring's argument, measured on the training data."""
    x, y = data.x_train, data.y_train
    p0 = float(y[x == 0].mean())
    return {"data/positive_rate": float(y.mean()),
            "data/revealed_fraction": float(x[y == 1].mean()),
            "data/p_positive_given_x0": p0,
            "data/critical_pos_weight": (1.0 - p0) / p0}


class Multilabel(Scenario):
    name = "multilabel"
    problem = "sparse-multilabel"
    title = "Sparse multilabel: weighted_bce on logits, pos_weight sweep"
    summary = __doc__.split("\n\n", 1)[1]
    headline = tuple(f"{job_key(w)}/{m}" for w in POS_WEIGHTS for m in ("recall", "precision", "f1", "positive_rate"))

    def data(self, cfg: RunConfig) -> Arrays:
        return split(cfg.quick)

    def job(self, pos_weight, cfg: RunConfig) -> Job:
        return Job(job_key(pos_weight), MODEL, Loss.of("weighted_bce", pos_weight=pos_weight, from_logits=True),
                   METRICS, Optimizer("adam"), epochs=2 if cfg.quick else 10, batch_size=10, seed=cfg.seed)

    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result:
        result = Result(metrics=bayes_numbers(data))
        for pos_weight in POS_WEIGHTS:
            job = self.job(pos_weight, cfg)
            trained = backend.train(job, data, cfg)
            logits = trained.predict(data.x_test)
            for key, value in trained.metrics.items():
                result.metrics[f"{job.key}/{key}"] = value
            result.metrics[f"{job.key}/positive_rate"] = float((logits > 0).mean())
            result.metrics[f"{job.key}/seconds"] = trained.seconds
            if pos_weight == "auto":
                w = np.asarray(trained.loss_params["pos_weight"], np.float64)
                result.metrics.update({f"{job.key}/value_mean": float(w.mean()),
                                       f"{job.key}/value_min": float(w.min()),
                                       f"{job.key}/value_max": float(w.max())})
            result.histories[job.key] = trained.history
        result.notes.append(
            f"Bayes switch: P(y=1 | x=0) = {result.metrics['data/p_positive_given_x0']:.4f}, so predicting all "
            f"ones minimizes weighted_bce once pos_weight > {result.metrics['data/critical_pos_weight']:.1f}.")
        return result

    # ------------------------------------------------------------------ plots
    @staticmethod
    def _x_positions(values: dict[str, float]) -> list[tuple[str, float]]:
        out = [(job_key(w), float(w)) for w in POS_WEIGHTS if not isinstance(w, str)]
        if "auto" in values:
            out.append((job_key("auto"), values["auto"]))
        return out

    def plots(self, table: Table, curves, out: Path, subtitle: str) -> list[Path]:
        from . import plotting

        plt = plotting.pyplot()
        fig, axes = plt.subplots(1, 4, figsize=(17, 4))
        for ax, metric in zip(axes, ("recall", "precision", "f1", "positive_rate")):
            for i, (framework, stats) in enumerate(sorted(table.items())):
                auto = stats.get(f"{job_key('auto')}/value_mean")
                points = self._x_positions({"auto": auto.mean} if auto else {})
                xs, ms, ss, labels = [], [], [], []
                for key, xpos in points:
                    s = stats.get(f"{key}/{metric}")
                    if s is not None:
                        xs.append(xpos * (1.04 if i else 1.0))
                        ms.append(s.mean)
                        ss.append(s.std)
                        labels.append(key)
                fixed = [j for j, k in enumerate(labels) if k != job_key("auto")]
                ax.errorbar([xs[j] for j in fixed], [ms[j] for j in fixed], yerr=[ss[j] for j in fixed],
                            marker="o", capsize=3, label=framework, color=plotting.color(framework))
                for j, k in enumerate(labels):
                    if k == job_key("auto"):
                        ax.errorbar([xs[j]], [ms[j]], yerr=[ss[j]], marker="*", markersize=12, capsize=3,
                                    linestyle="none", color=plotting.color(framework),
                                    label=f"{framework}: auto (mean {auto.mean:.1f})")
            ax.set_xscale("log")
            ax.set_xlabel("pos_weight")
            ax.set_title(metric)
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
        crit = next((s.get("data/critical_pos_weight") for s in table.values() if s.get("data/critical_pos_weight")), None)
        if crit is not None:
            for ax in axes:
                ax.axvline(crit.mean, color="gray", linestyle=":", label=f"Bayes switch ≈ {crit.mean:.1f}")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"multilabel: held-out metrics vs pos_weight — {subtitle}")
        fig.tight_layout()
        paths = [plotting.save(fig, out / "multilabel_sweep.png")]
        paths.append(plotting.curves(curves, ["pos_weight_1", "pos_weight_27", "pos_weight_1000"],
                                     ["loss", "val_recall", "val_precision"], out / "multilabel_curves.png",
                                     "multilabel: training curves"))
        return [p for p in paths if p is not None]

    # ------------------------------------------------------------------ parity
    def parity_cases(self) -> list[ParityCase]:
        from spec.class_weights import pos_weight_from_labels

        x, y = generate(n_observations=2000)
        auto = pos_weight_from_labels(y)
        x, y = x[:320], y[:320].astype(np.float64)
        return [ParityCase("multilabel-pw27", MODEL, Loss.of("weighted_bce", pos_weight=27.0), x, y, batch_size=32),
                ParityCase("multilabel-auto", MODEL, Loss.of("weighted_bce", pos_weight=tuple(auto.tolist())),
                           x, y, batch_size=32)]


SCENARIO = Multilabel()
