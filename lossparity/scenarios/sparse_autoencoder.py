"""Scenario ``sparse_autoencoder`` (problem: KL sparsity): a KL sparsity penalty on a sigmoid coding layer.

The seed (a textbook's sparse autoencoder): measure each coding unit's mean activation ``q_j`` over
the training batch and add ``sparsity_weight · Σ_j KL(p ‖ q_j)`` (target sparsity ``p = 0.1``,
weight 0.2) to the reconstruction MSE, so that each unit is active about 10 % of the time. Its
traps: ``KL`` of a dead (``q = 0``) or saturated (``q = 1``) unit is inf/NaN (our ``kl_sparsity``
clamps ``q`` to ``[ε, 1 − ε]``, gradient 0 there); the batch must not be too small (the mean is a
batch statistic); and, in Keras, ``Dense(activity_regularizer=...)`` — the idiomatic place for such
a penalty — adds the regularizer's value *divided by the batch size* (Keras' convention for
sum-type regularizers like L1), so a Keras model with ``activity_regularizer=KLSparsity(weight=0.2)``
trains with an effective weight of ``0.2 / batch_size``, a different objective than the seed's
(and than torch's). Here both frameworks optimize the seed's objective exactly: the framework-neutral
network (``MLP(..., activity_regularizer=Loss.of("kl_sparsity", ...))``) puts the registered
``tf_impl.KLSparsity`` regularizer in an ``ActivityLoss`` layer after the coding layer, which calls
``add_loss(penalty)`` undivided, and torch's ``MLP`` an ``ActivityPenalty`` module whose value
``LossModule`` adds to the loss (train, validation and test alike).

Data: scikit-learn's bundled 8×8 digits (1797 images, stratified 80/20 split, pixels / 16 in
[0, 1]; no network). Network 64-64-64: a sigmoid coding layer of 64 units (the seed's ``hidden1``),
sigmoid outputs, the same initial weights in both frameworks; loss ``mean_squared_error`` between
reconstruction and input (+ ``kl_sparsity(target=0.1, weight=0.2)`` of the coding activations in
``kl_sparsity``, nothing in ``no_penalty``); Adam (the seed's learning rate 0.01), batch 128 (the
batch means need a reasonable batch). Reported on the test images: the reconstruction MSE
(``…/reconstruction_mse``), the coding units' mean activations (``…/mean_activation``: their mean;
``…/unit_mean_std``, ``…/unit_mean_min`` / ``max``; ``…/units_near_target``: the fraction of units
with ``|q_j − 0.1| ≤ 0.05``), the penalty's value ``Σ_j KL(0.1 ‖ q_j)`` on the test set
(``…/kl_divergence``), the fraction of activations above 0.5 (``…/active_fraction``) and the
units' spread over the images (``…/code_std``: mean over units of the per-unit std).

What it shows: with the penalty every unit's mean activation lands at 0.1 (all 64 units within
0.05 of it; without the penalty they sit around 0.5), for a higher reconstruction MSE (about 4×
after the full 200 epochs). But the penalty constrains the batch *means* only, and here the
network satisfies it with a low, dense code: nearly no activation exceeds 0.5 and the units vary
little around 0.1 (``code_std`` about 5× smaller), rather than "a few strongly active units" per
image. The seed's weight 0.2 buys a mean constraint, not a sparse code by itself.

Plots: ``sparse_autoencoder_units.png`` (top: histogram of the 64 units' mean activations per
framework: with the penalty they concentrate at 0.1, without it they spread around 0.3-0.65;
bottom: histogram of every coding activation, log scale: the penalty's codes stay below ~0.5;
mean histograms over seeds in the report), ``sparse_autoencoder_metrics.png`` (reconstruction MSE and KL per job:
the sparsity costs a little reconstruction), ``sparse_autoencoder_reconstructions.png`` (test
digits and both reconstructions) and ``sparse_autoencoder_curves.png`` (training curves).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (Arrays, Backend, Job, Loss, Metric, MLP, Optimizer, ParityCase, Result, RunConfig,
                   Scenario, Table)
from .data import load_digits_split

TARGET, WEIGHT = 0.1, 0.2  # the seed's sparsity_target and sparsity_weight
NEAR = 0.05  # a unit is "near the target" when |q_j - TARGET| <= NEAR
PIXELS, CODING_UNITS = 64, 64
LR = 0.01  # the seed's learning_rate
BATCH_SIZE = 128
EPOCHS, QUICK_EPOCHS = 200, 30
N_EXAMPLES = 8  # test digits in the reconstruction plot
#: bins of the histograms of the units' mean activations (``history[job]["unit_mean_hist"]``) and
#: of every coding activation (``history[job]["activation_hist"]``, fractions of all activations)
HIST_EDGES = np.linspace(0.0, 1.0, 41)

PENALTY = Loss.of("kl_sparsity", target=TARGET, weight=WEIGHT)
PLAIN = MLP(PIXELS, (CODING_UNITS,), PIXELS, activation="sigmoid", head="sigmoid")
SPARSE = MLP(PIXELS, (CODING_UNITS,), PIXELS, activation="sigmoid", head="sigmoid", activity_regularizer=PENALTY)
LOSS = Loss.of("mean_squared_error")
METRICS = (Metric.of("mse"),)
JOBS = (("no_penalty", PLAIN), ("kl_sparsity", SPARSE))
LABELS = {"no_penalty": "no penalty", "kl_sparsity": f"kl_sparsity(target={TARGET}, weight={WEIGHT})"}


def images() -> Arrays:
    """Digits scaled to [0, 1] and flattened; the targets are the inputs (float32)."""
    raw = load_digits_split()
    x_train = (raw["x_train"].reshape(len(raw["x_train"]), -1) / 16.0).astype(np.float32)
    x_test = (raw["x_test"].reshape(len(raw["x_test"]), -1) / 16.0).astype(np.float32)
    info = {"source": "scikit-learn load_digits (8x8, bundled), pixels / 16", "n_train": len(x_train),
            "n_test": len(x_test), "features": PIXELS, "coding_units": CODING_UNITS}
    return Arrays(x_train, x_train.copy(), x_test, x_test.copy(), info)


def lightning_data(quick: bool = False) -> dict[str, np.ndarray]:
    """The arrays for ``ArrayDataModule(source="lossparity.scenarios.sparse_autoencoder:lightning_data")``
    (``quick`` is accepted for the CLI's uniform ``source_args``: the data are small either way)."""
    return images().as_dict()


def kl_divergence(q: np.ndarray, target: float = TARGET, epsilon: float = 1e-7) -> float:
    """``Σ_j KL(target ‖ q_j)`` of the units' mean activations, ``q`` clipped like ``kl_sparsity``."""
    q = np.clip(np.asarray(q, np.float64), epsilon, 1.0 - epsilon)
    return float(np.sum(target * np.log(target / q) + (1 - target) * np.log((1 - target) / (1 - q))))


def unit_statistics(codes: np.ndarray) -> dict[str, float]:
    """Statistics of the coding activations ``(N, units)``: per-unit means and their spread."""
    q = np.asarray(codes, np.float64).mean(axis=0)
    return {"mean_activation": float(q.mean()), "unit_mean_std": float(q.std()), "unit_mean_min": float(q.min()),
            "unit_mean_max": float(q.max()), "units_near_target": float(np.mean(np.abs(q - TARGET) <= NEAR)),
            "kl_divergence": kl_divergence(q), "active_fraction": float(np.mean(np.asarray(codes) > 0.5)),
            "code_std": float(np.asarray(codes, np.float64).std(axis=0).mean())}


class SparseAutoencoder(Scenario):
    name = "sparse_autoencoder"
    problem = "kl-sparsity"
    title = "Sparse autoencoder: kl_sparsity on a sigmoid coding layer (same objective in both frameworks)"
    summary = __doc__.split("\n\n", 1)[1]
    headline = tuple(f"{key}/{m}" for key, _ in JOBS for m in (
        "reconstruction_mse", "mean_activation", "unit_mean_std", "units_near_target", "kl_divergence",
        "active_fraction", "code_std"))

    def data(self, cfg: RunConfig) -> Arrays:
        return images()

    def job(self, key: str, model: MLP, cfg: RunConfig) -> Job:
        return Job(key, model, LOSS, METRICS, Optimizer("adam", lr=LR), epochs=QUICK_EPOCHS if cfg.quick else EPOCHS,
                   batch_size=BATCH_SIZE, seed=cfg.seed)

    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result:
        result = Result(metrics={"data/n_train": data.x_train.shape[0], "data/n_test": data.x_test.shape[0],
                                 "data/mean_pixel": float(data.x_train.mean())})
        examples = data.x_test[:N_EXAMPLES]
        for key, model in JOBS:
            trained = backend.train(self.job(key, model, cfg), data, cfg)
            codes = trained.features(data.x_test)
            m = result.metrics
            m[f"{key}/reconstruction_mse"] = trained.metrics["mse"]
            m[f"{key}/loss"] = trained.metrics["loss"]
            for name, value in unit_statistics(codes).items():
                m[f"{key}/{name}"] = value
            m[f"{key}/seconds"] = trained.seconds
            history = dict(trained.history)
            history["unit_mean_hist"] = np.histogram(codes.mean(axis=0), HIST_EDGES)[0].tolist()
            history["activation_hist"] = (np.histogram(codes, HIST_EDGES)[0] / codes.size).tolist()
            history["example_input"] = examples.reshape(-1).astype(float).tolist()
            history["example_reconstruction"] = trained.predict(examples).reshape(-1).astype(float).tolist()
            result.histories[key] = history
        m = result.metrics
        result.notes.append(
            f"coding units' mean activation: {m['no_penalty/mean_activation']:.3f} ± {m['no_penalty/unit_mean_std']:.3f} "
            f"without the penalty, {m['kl_sparsity/mean_activation']:.3f} ± {m['kl_sparsity/unit_mean_std']:.3f} with "
            f"kl_sparsity(target={TARGET}, weight={WEIGHT}) ({m['kl_sparsity/units_near_target']:.0%} of the units within "
            f"{NEAR} of the target); reconstruction MSE {m['no_penalty/reconstruction_mse']:.4f} → "
            f"{m['kl_sparsity/reconstruction_mse']:.4f}.")
        result.notes.append("Keras: the penalty is added by an ActivityLoss layer (add_loss, undivided); "
                            "Dense(activity_regularizer=KLSparsity(...)) would add it divided by the batch size.")
        return result

    # ------------------------------------------------------------------ plots
    def plot_report(self, table: Table, curves, out: Path) -> list[Path]:
        return self.plots(table, curves, out, "mean over seeds")  # the figures draw no spread

    def plots(self, table: Table, curves, out: Path, subtitle: str) -> list[Path]:
        from . import plotting

        paths = [self._units(table, curves, out, subtitle)]
        paths.append(self._metrics(table, out, subtitle))
        paths.append(self._reconstructions(curves, out, subtitle))
        paths.append(plotting.curves(curves, [k for k, _ in JOBS], ["loss", "val_loss", "val_mse"],
                                     out / "sparse_autoencoder_curves.png",
                                     "sparse_autoencoder: training curves (loss includes the penalty)"))
        return [p for p in paths if p is not None]

    @staticmethod
    def _units(table: Table, curves, out: Path, subtitle: str) -> Path | None:
        from . import plotting

        if not any(c.get(k, {}).get("unit_mean_hist") for c in curves.values() for k, _ in JOBS):
            return None
        plt = plotting.pyplot()
        frameworks = sorted(curves)
        fig, axes = plt.subplots(2, len(frameworks), figsize=(6.5 * len(frameworks), 7.6), squeeze=False)
        width = HIST_EDGES[1] - HIST_EDGES[0]
        colors = {"no_penalty": "#7f7f7f", "kl_sparsity": "#2ca02c"}
        for ax, framework in zip(axes[1], frameworks):
            for key, _ in JOBS:
                hist = curves[framework].get(key, {}).get("activation_hist")
                if hist:
                    ax.bar(HIST_EDGES[:-1], hist, width=width, align="edge", alpha=0.6, color=colors[key],
                           edgecolor="black", linewidth=0.4, label=LABELS[key])
            ax.axvline(TARGET, color="red", linestyle="--", label=f"target {TARGET}")
            ax.set_xlim(0, 1)
            ax.set_yscale("log")
            ax.set_xlabel("coding activation (every test image × unit)")
            ax.set_ylabel("fraction of activations (log)")
            ax.set_title(f"{framework}: all activations")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for ax, framework in zip(axes[0], frameworks):
            for key, _ in JOBS:
                hist = curves[framework].get(key, {}).get("unit_mean_hist")
                if hist:
                    near = table.get(framework, {}).get(f"{key}/units_near_target")
                    label = LABELS[key] + (f" ({near.mean:.0%} near target)" if near else "")
                    ax.bar(HIST_EDGES[:-1], hist, width=width, align="edge", alpha=0.6, color=colors[key],
                           edgecolor="black", linewidth=0.4, label=label)
            ax.axvline(TARGET, color="red", linestyle="--", label=f"target {TARGET}")
            ax.set_xlim(0, 1)
            ax.set_xlabel("mean activation of a coding unit (test images)")
            ax.set_ylabel(f"units (of {CODING_UNITS})")
            ax.set_title(f"{framework}: per-unit means")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"sparse_autoencoder: mean activation per coding unit — {subtitle}", fontsize=10)
        fig.tight_layout()
        return plotting.save(fig, out / "sparse_autoencoder_units.png")

    @staticmethod
    def _metrics(table: Table, out: Path, subtitle: str) -> Path:
        from . import plotting

        plt = plotting.pyplot()
        frameworks = sorted(table)
        panels = (("reconstruction_mse", "test reconstruction MSE"), ("kl_divergence", f"Σ KL({TARGET} ‖ q_j), test"),
                  ("active_fraction", "fraction of activations > 0.5"))
        fig, axes = plt.subplots(1, len(panels), figsize=(14, 3.8))
        x = np.arange(len(JOBS))
        width = 0.8 / max(len(frameworks), 1)
        for ax, (metric, title) in zip(axes, panels):
            for i, framework in enumerate(frameworks):
                stats = [table[framework].get(f"{key}/{metric}") for key, _ in JOBS]
                ax.bar(x + (i - (len(frameworks) - 1) / 2) * width, [np.nan if s is None else s.mean for s in stats],
                       width, yerr=[0.0 if s is None else s.std for s in stats], capsize=3,
                       color=plotting.color(framework), alpha=0.8, label=framework)
            ax.set_xticks(x)
            ax.set_xticklabels([LABELS[k] for k, _ in JOBS], fontsize=7)
            ax.set_title(title)
            ax.grid(axis="y", alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"sparse_autoencoder: reconstruction vs sparsity — {subtitle}")
        fig.tight_layout()
        return plotting.save(fig, out / "sparse_autoencoder_metrics.png")

    @staticmethod
    def _reconstructions(curves, out: Path, subtitle: str) -> Path | None:
        from . import plotting

        frameworks = [f for f in sorted(curves) if all(curves[f].get(k, {}).get("example_reconstruction")
                                                        for k, _ in JOBS)]
        if not frameworks:
            return None
        plt = plotting.pyplot()
        rows = [("input", frameworks[0], "no_penalty", "example_input")]
        rows += [(f"{f}\n{k}", f, k, "example_reconstruction") for f in frameworks for k, _ in JOBS]
        fig, axes = plt.subplots(len(rows), N_EXAMPLES, figsize=(1.2 * N_EXAMPLES, 1.3 * len(rows)), squeeze=False)
        for r, (label, framework, key, series) in enumerate(rows):
            values = np.asarray(curves[framework][key][series]).reshape(-1, 8, 8)
            for c in range(N_EXAMPLES):
                ax = axes[r][c]
                if c < len(values):
                    ax.imshow(values[c], cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[r][0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
        fig.suptitle(f"sparse_autoencoder: test digits and reconstructions — {subtitle}", fontsize=9)
        fig.tight_layout()
        return plotting.save(fig, out / "sparse_autoencoder_reconstructions.png")

    # ------------------------------------------------------------------ parity
    def parity_cases(self) -> list[ParityCase]:
        x = images().x_train[:320].astype(np.float64)
        return [ParityCase("sparse_autoencoder-kl", SPARSE, LOSS, x, x.copy(), batch_size=32),
                ParityCase("sparse_autoencoder-plain", PLAIN, LOSS, x, x.copy(), batch_size=32)]


SCENARIO = SparseAutoencoder()
