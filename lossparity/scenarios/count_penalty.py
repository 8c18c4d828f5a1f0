"""Scenario ``count_penalty`` (problem: count above a threshold): minimizing how many outputs exceed a threshold.

The seed's question: "how do I minimize element counts above a threshold with Keras?". Its answer
adds ``factor · mean(count(y_pred > threshold))`` to the mean squared error
(``CountBasedRegularizationLoss``: ``tf.cast(tf.greater(y_pred, t), tf.float32)``) and, as an
alternative, clips activations to ``[0, t]`` (``threshold_activation_layer``). The trap: a count
is a step function of the predictions, its gradient is 0 wherever it exists, so the penalty
changes the *reported* loss but can never move a weight. Trained from the same seed, the model
with the hard count is the plain-MSE model, bit for bit. Only a relaxation with a gradient,
``σ((ŷ − t) / τ)`` (our ``mse_count_penalty`` with ``temperature=τ > 0``), trains fewer outputs
above the threshold; and the clip hides the count instead of reducing it: no output can be above
``t``, but the outputs that would be sit *at* ``t``, and a clipped output gets no gradient.

Here, in both frameworks from the same initial weights and batches: a synthetic regression
(fixed NumPy seed 0: 16 Gaussian features, 8 targets ``y = max(z − 0.3, 0) + 0.1 ε`` with ``z`` a
random linear map of the features, so about 21 % of the targets exceed ``t = 0.5``); an MLP
16-64-64-8 (ReLU; Adam with Keras' defaults, batch 32) trained with

* ``plain``: ``mean_squared_error``;
* ``hard_count``: ``mse_count_penalty(threshold=0.5, factor=0.05, temperature=0)`` — the seed's loss;
* ``soft_count_t{τ}``: the same with ``temperature`` τ ∈ {1, 0.3, 0.1} (the sigmoid relaxation;
  it approaches the hard count as τ → 0, with steeper but narrower gradients);
* ``threshold_head``: ``mean_squared_error`` on outputs clipped to ``[0, 0.5]``
  (``ThresholdActivation``, the seed's second recipe, as the model's head).

Reported on the held-out set: the test MSE against the targets (``…/mse``, the task metric), the
mean number of outputs per sample above the threshold (``…/count_above``, strictly ``> t``, the
seed's ``tf.greater``) and at or above it (``…/count_at_least``: what the clip hides), the final
loss value (``…/loss``, penalty included), and the seed's trap proven on the trained weights:
``hard_vs_plain/max_abs_weight_diff`` is 0.0 (``…/identical`` = 1) while
``hard_vs_plain/loss_difference`` equals ``factor × count_above`` of the plain model. Measured
(full run, seed 0, both frameworks within 0.003 of each other): plain and hard count: MSE 0.011,
1.74 outputs above 0.5 per sample (the targets have 1.75), weights identical (max |Δw| = 0.0); soft
count τ = 1 / 0.3 / 0.1: 1.64 / 1.48 / 1.26 outputs above 0.5 for MSE 0.014 / 0.020 / 0.023; the
clip head: 0 above, 1.82 *at* 0.5, MSE 0.17 (the targets above 0.5 are lost). Plots:
``count_penalty_tradeoff.png`` (count above the threshold and test MSE per job: the soft counts
trade MSE for fewer outputs above t, hard = plain), ``count_penalty_predictions.png`` (histogram of
the test predictions: the soft penalty empties the region just above t, the threshold head piles
outputs at t) and ``count_penalty_curves.png`` (training curves).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .base import (Arrays, Backend, Job, Loss, Metric, MLP, Optimizer, ParityCase, Result, RunConfig,
                   Scenario, Table, fmt_value)

THRESHOLD = 0.5
FACTOR = 0.05
TEMPERATURES = (1.0, 0.3, 0.1)
IN_FEATURES, OUT_FEATURES = 16, 8
SHIFT, NOISE = 0.3, 0.1
N_TRAIN, N_TEST = 8000, 2000
QUICK_TRAIN, QUICK_TEST = 2000, 1000
EPOCHS, QUICK_EPOCHS = 20, 2
BATCH_SIZE = 32
#: bins of the prediction histogram (``history[job]["prediction_hist"]``: counts per bin, values
#: outside clipped into the end bins); width 0.05 centred on multiples of 0.05 (0 and t are centres)
HIST_EDGES = np.linspace(-0.525, 2.525, 62)

MODEL = MLP(IN_FEATURES, (64, 64), OUT_FEATURES)
THRESHOLD_MODEL = MLP(IN_FEATURES, (64, 64), OUT_FEATURES, head="threshold", threshold=THRESHOLD)
METRICS = (Metric.of("mse"),)
PLAIN_LOSS = Loss.of("mean_squared_error")


def count_loss(temperature: float, factor: float = FACTOR) -> Loss:
    return Loss.of("mse_count_penalty", threshold=THRESHOLD, factor=factor, temperature=float(temperature))


def soft_key(temperature: float) -> str:
    return f"soft_count_t{fmt_value(temperature)}"


JOB_KEYS = ("plain", "hard_count", *(soft_key(t) for t in TEMPERATURES), "threshold_head")
LABELS = {"plain": "plain MSE", "hard_count": "hard count (τ=0)", "threshold_head": "clip [0, t] head",
          **{soft_key(t): f"soft count τ={fmt_value(t)}" for t in TEMPERATURES}}


def generate(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``x ~ N(0, 1)^16``, ``z = x A`` (``A ~ N(0, 1/16)``: ``z ~ N(0, 1)`` per target),
    ``y = max(z − 0.3, 0) + 0.1 ε``: sparse non-negative targets plus noise, float64."""
    rng = np.random.default_rng([int(seed), 0xC0])
    a = rng.normal(size=(IN_FEATURES, OUT_FEATURES)) / math.sqrt(IN_FEATURES)
    x = rng.normal(size=(n, IN_FEATURES))
    y = np.maximum(x @ a - SHIFT, 0.0) + NOISE * rng.normal(size=(n, OUT_FEATURES))
    return x, y


def split(quick: bool = False) -> Arrays:
    n_train, n_test = (QUICK_TRAIN, QUICK_TEST) if quick else (N_TRAIN, N_TEST)
    x, y = generate(N_TRAIN + N_TEST)
    x, y = x.astype(np.float32), y.astype(np.float32)
    train, test = slice(0, n_train), slice(N_TRAIN, N_TRAIN + n_test)
    info = {"source": "synthetic sparse regression (numpy seed 0)", "n_train": n_train, "n_test": n_test,
            "features": IN_FEATURES, "outputs": OUT_FEATURES, "threshold": THRESHOLD}
    return Arrays(x[train], y[train], x[test], y[test], info)


def lightning_data(quick: bool = False) -> dict[str, np.ndarray]:
    """The arrays for ``ArrayDataModule(source="lossparity.scenarios.count_penalty:lightning_data")``."""
    return split(quick).as_dict()


def count_above(values: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Mean over samples of the number of outputs strictly above ``threshold`` (the seed's count)."""
    return float(np.mean(np.sum(np.asarray(values) > threshold, axis=-1)))


def count_at_least(values: np.ndarray, threshold: float = THRESHOLD) -> float:
    return float(np.mean(np.sum(np.asarray(values) >= np.float32(threshold), axis=-1)))


def weight_difference(a, b) -> float:
    """``max |a − b|`` over every weight and bias (torch layout pairs)."""
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for pa, pb in zip(a, b)
               for u, v in zip(pa, pb))


def weights_identical(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for pa, pb in zip(a, b) for u, v in zip(pa, pb))


class CountPenaltyScenario(Scenario):
    name = "count_penalty"
    problem = "count-above-a-threshold"
    title = "Counts above a threshold: hard count (no gradient) vs soft count vs clipping"
    summary = __doc__.split("\n\n", 1)[1]
    headline = ("hard_vs_plain/max_abs_weight_diff", "hard_vs_plain/identical", "hard_vs_plain/loss_difference",
                *(f"{k}/{m}" for k in JOB_KEYS for m in ("mse", "count_above", "count_at_least")))

    def data(self, cfg: RunConfig) -> Arrays:
        return split(cfg.quick)

    def jobs(self, cfg: RunConfig) -> list[Job]:
        def job(key: str, loss: Loss, model: MLP = MODEL) -> Job:
            return Job(key, model, loss, METRICS, Optimizer("adam"), epochs=QUICK_EPOCHS if cfg.quick else EPOCHS,
                       batch_size=BATCH_SIZE, seed=cfg.seed)

        return [job("plain", PLAIN_LOSS), job("hard_count", count_loss(0.0)),
                *(job(soft_key(t), count_loss(t)) for t in TEMPERATURES),
                job("threshold_head", PLAIN_LOSS, THRESHOLD_MODEL)]

    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result:
        result = Result(metrics={"data/target_count_above": count_above(data.y_test),
                                 "data/target_fraction_above": float(np.mean(data.y_test > THRESHOLD)),
                                 "data/zero_predictor_mse": float(np.mean(np.square(data.y_test.astype(np.float64))))})
        weights, counts = {}, {}
        for job in self.jobs(cfg):
            trained = backend.train(job, data, cfg)
            prediction = trained.predict(data.x_test)
            m = result.metrics
            m[f"{job.key}/loss"] = trained.metrics["loss"]
            m[f"{job.key}/mse"] = trained.metrics["mse"]
            m[f"{job.key}/count_above"] = counts[job.key] = count_above(prediction)
            m[f"{job.key}/count_at_least"] = count_at_least(prediction)
            m[f"{job.key}/max_prediction"] = float(np.max(prediction))
            m[f"{job.key}/seconds"] = trained.seconds
            weights[job.key] = trained.weights()
            history = dict(trained.history)
            history["prediction_hist"] = np.histogram(np.clip(prediction, HIST_EDGES[0], HIST_EDGES[-1]),
                                                      HIST_EDGES)[0].tolist()
            result.histories[job.key] = history
        same = weights_identical(weights["plain"], weights["hard_count"])
        diff = weight_difference(weights["plain"], weights["hard_count"])
        result.metrics.update({
            "hard_vs_plain/max_abs_weight_diff": diff,
            "hard_vs_plain/identical": 1.0 if same else 0.0,
            "hard_vs_plain/loss_difference": result.metrics["hard_count/loss"] - result.metrics["plain/loss"],
            "hard_vs_plain/factor_times_count": FACTOR * counts["plain"],
        })
        result.notes.append(
            f"hard count (temperature 0): trained weights {'bit-identical to' if same else 'DIFFERENT from'} the "
            f"plain-MSE run (max |Δw| = {diff:g}); its loss is higher by "
            f"{result.metrics['hard_vs_plain/loss_difference']:.4f} ≈ factor × count = "
            f"{result.metrics['hard_vs_plain/factor_times_count']:.4f}: the count is reported, never trained.")
        best = min(TEMPERATURES, key=lambda t: counts[soft_key(t)])
        result.notes.append(
            f"soft count: {counts['plain']:.3f} → {counts[soft_key(best)]:.3f} outputs above {THRESHOLD} per sample "
            f"(τ={fmt_value(best)}); the targets have {result.metrics['data/target_count_above']:.3f}.")
        return result

    # ------------------------------------------------------------------ plots
    def plots(self, table: Table, curves, out: Path, subtitle: str) -> list[Path]:
        from . import plotting

        plt = plotting.pyplot()
        frameworks = sorted(table)
        fig, axes = plt.subplots(1, 3, figsize=(17, 4.4))
        x = np.arange(len(JOB_KEYS))
        width = 0.8 / max(len(frameworks), 1)
        for ax, (metric, title) in zip(axes[:2], (("count_above", f"outputs > {THRESHOLD} per sample (test)"),
                                                  ("mse", "test MSE (task metric)"))):
            for i, framework in enumerate(frameworks):
                stats = [table[framework].get(f"{k}/{metric}") for k in JOB_KEYS]
                ax.bar(x + (i - (len(frameworks) - 1) / 2) * width, [np.nan if s is None else s.mean for s in stats],
                       width, yerr=[0.0 if s is None else s.std for s in stats], capsize=2,
                       color=plotting.color(framework), alpha=0.8, label=framework)
                if metric == "count_above":
                    at = [table[framework].get(f"{k}/count_at_least") for k in JOB_KEYS]
                    ax.scatter(x + (i - (len(frameworks) - 1) / 2) * width, [np.nan if s is None else s.mean for s in at],
                               marker="_", s=250, color="black", zorder=3,
                               label=f"outputs ≥ {THRESHOLD}" if i == 0 else None)
            ax.set_xticks(x)
            ax.set_xticklabels([LABELS[k] for k in JOB_KEYS], rotation=30, ha="right", fontsize=8)
            ax.set_title(title)
            ax.grid(axis="y", alpha=0.3)
        target = next((s.get("data/target_count_above") for s in table.values() if s.get("data/target_count_above")), None)
        if target is not None:
            axes[0].axhline(target.mean, color="gray", linestyle=":", label="targets > t")
        axes[0].legend(fontsize=7)
        # trade-off: count vs MSE
        ax = axes[2]
        for framework in frameworks:
            for k in JOB_KEYS:
                c, e = table[framework].get(f"{k}/count_above"), table[framework].get(f"{k}/mse")
                if c is None or e is None:
                    continue
                ax.errorbar([c.mean], [e.mean], xerr=[c.std], yerr=[e.std], marker="o" if framework == "torch" else "s",
                            color=plotting.color(framework), alpha=0.8, capsize=2)
                if framework == frameworks[0]:  # hard count and plain coincide: one label above, one below
                    ax.annotate(LABELS[k], (c.mean, e.mean), fontsize=7, textcoords="offset points",
                                xytext=(-60, -11) if k == "hard_count" else (4, 3))
        ax.set_xlabel(f"outputs > {THRESHOLD} per sample")
        ax.set_ylabel("test MSE")
        ax.set_title("trade-off (● torch, ■ keras)")
        ax.grid(alpha=0.3)
        same = [table[f].get("hard_vs_plain/max_abs_weight_diff") for f in frameworks]
        text = ", ".join(f"{f}: {s.mean:g}" for f, s in zip(frameworks, same) if s is not None)
        fig.suptitle(f"count_penalty — {subtitle}; hard count vs plain: max |Δweights| = {text}")
        fig.tight_layout()
        paths = [plotting.save(fig, out / "count_penalty_tradeoff.png")]
        paths.append(self._histogram(curves, out, subtitle))
        paths.append(plotting.curves(curves, ["plain", "hard_count", soft_key(0.1), "threshold_head"],
                                     ["loss", "val_loss", "val_mse"], out / "count_penalty_curves.png",
                                     "count_penalty: training curves (hard count: same weights, loss shifted)"))
        return [p for p in paths if p is not None]

    @staticmethod
    def _histogram(curves, out: Path, subtitle: str) -> Path | None:
        from . import plotting

        shown = [("plain", "-"), (soft_key(0.1), "--"), (soft_key(1.0), "-."), ("threshold_head", ":")]
        if not any(c.get(k, {}).get("prediction_hist") for c in curves.values() for k, _ in shown):
            return None
        plt = plotting.pyplot()
        fig, axes = plt.subplots(1, len(curves), figsize=(6.5 * len(curves), 4), squeeze=False)
        centers = (HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2
        for ax, (framework, per_job) in zip(axes[0], sorted(curves.items())):
            for key, style in shown:
                hist = per_job.get(key, {}).get("prediction_hist")
                if hist:
                    ax.step(centers, hist, style, where="mid", label=LABELS[key])
            ax.axvline(THRESHOLD, color="gray", linestyle=":", label=f"t = {THRESHOLD}")
            ax.set_yscale("symlog", linthresh=10)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("test prediction")
            ax.set_ylabel("count (symlog)")
            ax.set_title(framework)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"count_penalty: distribution of the test predictions — {subtitle}")
        fig.tight_layout()
        return plotting.save(fig, out / "count_penalty_predictions.png")

    # ------------------------------------------------------------------ parity
    def parity_cases(self) -> list[ParityCase]:
        x, y = generate(400)
        return [ParityCase("count_penalty-plain", MODEL, PLAIN_LOSS, x, y),
                ParityCase("count_penalty-hard", MODEL, count_loss(0.0), x, y),
                ParityCase("count_penalty-soft", MODEL, count_loss(0.1), x, y),
                ParityCase("count_penalty-threshold-head", THRESHOLD_MODEL, PLAIN_LOSS, x, y)]


SCENARIO = CountPenaltyScenario()
