"""Scenario ``segmentation`` (problem: segmentation overlap losses): which losses let a U-Net find tiny ships?

The seed's question (Kaggle Airbus ship detection): a plain U-Net "always predicts under
probability 0.5 for all pixels"; after dropping the images without ships and trying an IoU loss,
focal loss (γ = 8) and a 1000× positive-weighted cross-entropy, "after a few batches the masks
gradually became all zeros".

Here: synthetic sea images (``generate``: 32 × 32, one channel; noise, low-frequency swell and
bright single-pixel "whitecaps" that are not ships) with 1–2 small rotated bright rectangles
("ships", 3–7 px long) in half of the images and none in the other half, so ~0.7 % of the pixels
are positive; a small U-Net (2 levels, 8/16 channels, bottleneck 32, one logit per pixel), Adam
(Keras defaults), batch 16. Losses, all on logits: ``weighted_bce`` (plain), ``weighted_bce`` with
``pos_weight=1000`` (the seed's "1000 times heavier"), ``binary_focal`` γ ∈ {2, 8}, ``soft_jaccard``
(the seed's IoU loss, smoothed), ``soft_dice`` and ``tversky`` (α = 0.3 on false positives,
β = 0.7 on false negatives), trained on all images; and the three overlap losses once more on the
images with ships only (``…_ships_only``: what the seed did). Reported on the held-out images
(with empty ones): IoU (our metric, logit > 0), recall, precision, the predicted-to-true ratio of
positive pixels (``positive_ratio``), the largest logit, and ``collapsed`` = 1 when the model
predicts fewer than 1 % as many positive pixels as there are (an all-zero mask, the seed's
complaint). Images and masks are ``(N, H, W)`` arrays in both frameworks; the channel axis exists
only inside the networks (``NCHW`` in torch, ``NHWC`` in Keras). Full runs: 1000 training and 300
held-out images, 10 epochs; quick runs: 128 and 64, 2 epochs, no per-epoch evaluation, six of the
ten jobs (:data:`QUICK_JOB_KEYS`).

What to look for (full runs; numbers from seed 0 in torch): every loss starts by predicting
nothing, because 99 % of the pixels are background. Cross-entropy and focal losses recover after
a few epochs (focal first: γ = 8 from epoch 3, γ = 2 from epoch 4, plain BCE from epoch 5; see the
``val_iou`` curves) and end near IoU 0.7; 1000× weighting never predicts all zeros but marks ~6×
too many pixels (IoU ≈ 0.15, few empty images left clean). The per-image overlap losses (Jaccard,
Dice, Tversky) collapse to all-zero masks for good when half the images are empty: on an empty
image the smoothed loss is ``Σp / (Σp + 1)``, minimized by ``p → 0`` everywhere; once the logits
are very negative the gradient through the sigmoid, ``σ(x)σ(-x)``, vanishes and the ships are never
found (``max_logit`` ≈ −90 to −140). Trained on the images with ships only they learn from the
first epoch and end on par with focal loss (IoU ≈ 0.72–0.74), with more false alarms on empty
images (``empty_clean`` ≈ 0.6–0.75 against ≈ 0.9). So the seed's collapse is the logit saturation
of a loss whose optimum on most of the data is "nothing": use cross-entropy / focal loss, or keep
overlap losses away from empty images. (The seed's ``iouloss`` sums over ``axis=-1``, which for
``(N, H, W, 1)`` masks is a per-pixel ratio, not an image's IoU; ours sums over every pixel of an
image, smoothed with ``smooth = 1``.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Arrays, Backend, Job, Loss, Metric, Optimizer, ParityCase, Result, RunConfig, Scenario, Table
from .unet import UNet

IMAGE_SIZE = 32
EMPTY_FRACTION = 0.5
SHIPS_PER_IMAGE = (1, 2)
SHIP_LENGTH, SHIP_WIDTH = (3.0, 7.0), (1.2, 2.4)
DATA_SEED = 0  # the images are the same for every training seed (seeds vary weights and batch order)
N_TRAIN, N_TEST = 1000, 300
QUICK_TRAIN, QUICK_TEST = 128, 64
EPOCHS, QUICK_EPOCHS = 10, 2
BATCH_SIZE = 16
COLLAPSE_RATIO = 0.01  # fewer predicted positive pixels than 1 % of the true ones: "all zeros"
N_EXAMPLES = 4

MODEL = UNet(IMAGE_SIZE, IMAGE_SIZE, (8, 16), 32)
METRICS = (Metric.of("iou", from_logits=True), Metric.of("recall", from_logits=True),
           Metric.of("precision", from_logits=True))
#: job key → (loss, plot label)
LOSSES: dict[str, tuple[Loss, str]] = {
    "bce": (Loss.of("weighted_bce", pos_weight=1.0, from_logits=True), "BCE"),
    "bce_pw1000": (Loss.of("weighted_bce", pos_weight=1000.0, from_logits=True), "BCE pos_weight=1000"),
    "focal_g2": (Loss.of("binary_focal", gamma=2.0, from_logits=True), "focal γ=2"),
    "focal_g8": (Loss.of("binary_focal", gamma=8.0, from_logits=True), "focal γ=8"),
    "soft_jaccard": (Loss.of("soft_jaccard", from_logits=True), "soft Jaccard"),
    "soft_dice": (Loss.of("soft_dice", from_logits=True), "soft Dice"),
    "tversky": (Loss.of("tversky", alpha=0.3, beta=0.7, from_logits=True), "Tversky α=.3 β=.7"),
}
#: losses trained a second time on the images with ships only (the seed dropped the empty ones)
SHIPS_ONLY = ("soft_jaccard", "soft_dice", "tversky")
SHIPS_ONLY_SUFFIX = "_ships_only"
JOB_KEYS = (*LOSSES, *(k + SHIPS_ONLY_SUFFIX for k in SHIPS_ONLY))
#: quick runs: the seed's losses and the contrast (Keras traces a fresh U-Net per job, ~4 s on a CPU
#: core, so all ten jobs overran the one-minute budget of ``--quick``; the training-step parity
#: tests cover every loss)
QUICK_JOB_KEYS = ("bce", "bce_pw1000", "focal_g8", "soft_jaccard", "soft_dice", "soft_dice" + SHIPS_ONLY_SUFFIX)
EXAMPLES_FILE = "segmentation_examples.npz"
#: float32 tolerance of the training-step parity cases (float64: the generic 1e-9, measured <= 2e-15)
FLOAT32_RTOL = 3e-3
FLOAT32_REASON = (
    "a convolution's bias gradient is a sum over every pixel of the batch (8 x 32 x 32 terms, with "
    "cancellation), so float32 rounding is a large relative error of the small components, and the "
    "relative measure divides by the tensor's own max |w|, which is tiny for biases that barely moved "
    "(SGD) while Adam's m/sqrt(v) scales rounding noise up to full steps. Measured after 10 steps: "
    "soft Dice Adam 2.2e-3 (at biases), focal gamma=2 SGD 3.7e-4 at mid_b.b (max |b| = 4e-4, 1.5e-7 "
    "absolute), BCE Adam 1.2e-5, the other cases <= 1.6e-6; and the difference is each framework's own "
    "distance from its float64 trajectory (focal SGD: torch 2.9e-4, Keras 3.7e-4; soft Dice Adam: torch "
    "1.4e-6 with the closed-form overlap gradient, Keras 2.2e-3, as before that gradient, when torch's "
    "autograd of the counts was 2.1e-3 off too and the two happened to agree to 6e-5): rounding, not a "
    "different computation (float64 <= 2e-15).")


# --------------------------------------------------------------------------- data
def ship_mask(size: int, cy: float, cx: float, length: float, width: float, angle: float) -> np.ndarray:
    """Pixels whose centre lies in the rectangle ``length × width`` centred at ``(cy, cx)`` (pixel
    units, the image spans ``[0, size]``), rotated by ``angle`` (radians) from the x axis."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u, v = dx * c + dy * s, -dx * s + dy * c
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


def generate(n: int, size: int = IMAGE_SIZE, seed: int = DATA_SEED,
             empty_fraction: float = EMPTY_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sea images ``(n, size, size)`` float32 and their ship masks (0/1 float32).

    Per image: white noise (σ 0.25) plus three sinusoidal swells (amplitude 0.15, random
    direction, wavelength 8–30 px); with probability ``1 - empty_fraction`` 1–2 ships (rotated
    rectangles, length 3–7 px, width 1.2–2.4 px, at least 2 px each, brightened by 0.8–1.2); 0–3
    whitecaps (single background pixels brightened by 0.8–1.4: bright but not ship-shaped).
    Reproducible: ``numpy.random.default_rng([seed, 3])``."""
    rng = np.random.default_rng([int(seed), 3])
    images = np.empty((n, size, size), np.float64)
    masks = np.zeros((n, size, size), bool)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for i in range(n):
        sea = rng.normal(0.0, 0.25, (size, size))
        for _ in range(3):
            k, theta, phase = rng.uniform(0.2, 0.8), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            sea += 0.15 * np.sin(k * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
        n_ships = 0 if rng.random() < empty_fraction else int(rng.integers(SHIPS_PER_IMAGE[0], SHIPS_PER_IMAGE[1] + 1))
        mask = np.zeros((size, size), bool)
        for _ in range(n_ships):
            while True:
                length, width = rng.uniform(*SHIP_LENGTH), rng.uniform(*SHIP_WIDTH)
                cy, cx = rng.uniform(4, size - 4, 2)
                ship = ship_mask(size, cy, cx, length, width, rng.uniform(0, np.pi))
                if ship.sum() >= 2:
                    break
            mask |= ship
        sea[mask] += rng.uniform(0.8, 1.2)
        for _ in range(int(rng.integers(0, 4))):
            r, c = rng.integers(0, size, 2)
            if not mask[r, c]:
                sea[r, c] += rng.uniform(0.8, 1.4)
        images[i], masks[i] = sea, mask
    return images.astype(np.float32), masks.astype(np.float32)


def split(quick: bool = False) -> Arrays:
    n_train, n_test = (QUICK_TRAIN, QUICK_TEST) if quick else (N_TRAIN, N_TEST)
    x, y = generate(N_TRAIN + N_TEST)
    # the quick subsets are prefixes of the full splits (same images, fewer of them)
    x_train, y_train = x[:n_train], y[:n_train]
    x_test, y_test = x[N_TRAIN:N_TRAIN + n_test], y[N_TRAIN:N_TRAIN + n_test]
    info = {"source": f"synthetic ships (generate, numpy seed {DATA_SEED})", "n_train": n_train, "n_test": n_test,
            "image": f"{IMAGE_SIZE}x{IMAGE_SIZE}x1 as (N, H, W)", "empty_fraction": EMPTY_FRACTION}
    return Arrays(x_train, y_train, x_test, y_test, info)


def ships_only(data: Arrays) -> Arrays:
    """The training images with at least one ship (the seed's step 1); the test set is kept."""
    keep = np.flatnonzero(data.y_train.reshape(len(data.y_train), -1).max(axis=1) > 0)
    out = data.subset(keep)
    out.info["training_images"] = "with ships only"
    return out


def lightning_data(quick: bool = False, ships_only_training: bool = False) -> dict[str, np.ndarray]:
    """The arrays for ``ArrayDataModule(source="lossparity.scenarios.segmentation:lightning_data")``."""
    data = split(quick)
    return (ships_only(data) if ships_only_training else data).as_dict()


def data_statistics(data: Arrays) -> dict[str, float]:
    out = {}
    for part, y in (("train", data.y_train), ("test", data.y_test)):
        per_image = y.reshape(len(y), -1).sum(axis=1)
        out[f"data/{part}_positive_pixels"] = float(y.mean())
        out[f"data/{part}_empty_images"] = float(np.mean(per_image == 0))
    return out


def prediction_statistics(logits: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Collapse diagnostics of held-out logits ``(N, H, W)`` against the masks."""
    pred = np.asarray(logits) > 0
    true = np.asarray(masks) > 0.5
    n_true, n_pred = int(true.sum()), int(pred.sum())
    tp = int((pred & true).sum())
    empty = true.reshape(len(true), -1).sum(axis=1) == 0
    any_pred = pred.reshape(len(pred), -1).any(axis=1)
    return {"predicted_pixels": n_pred / pred.size,
            "positive_ratio": n_pred / max(n_true, 1),
            "images_predicted": float(any_pred.mean()),
            "empty_clean": float(np.mean(~any_pred[empty])) if empty.any() else float("nan"),
            "iou_numpy": tp / max(n_pred + n_true - tp, 1),
            "max_logit": float(np.max(logits)),
            "collapsed": 1.0 if n_pred < COLLAPSE_RATIO * n_true else 0.0}


def example_indices(masks: np.ndarray, n: int = N_EXAMPLES) -> np.ndarray:
    """``n - 1`` test images with ships (spread over the test set) and its first empty image."""
    per_image = masks.reshape(len(masks), -1).sum(axis=1)
    with_ships = np.flatnonzero(per_image > 0)
    empty = np.flatnonzero(per_image == 0)
    picks = list(with_ships[np.linspace(0, len(with_ships) - 1, n - 1).astype(int)]) if len(with_ships) else []
    if len(empty):
        picks.append(int(empty[0]))
    return np.asarray(picks[:n], dtype=int)


def job_keys(quick: bool = False) -> tuple[str, ...]:
    """The jobs of a run: :data:`JOB_KEYS`, or :data:`QUICK_JOB_KEYS` for ``--quick``."""
    return QUICK_JOB_KEYS if quick else JOB_KEYS


class Segmentation(Scenario):
    name = "segmentation"
    problem = "segmentation-overlap-losses"
    title = "Ship segmentation: which losses collapse to all-zero masks"
    summary = __doc__.split("\n\n", 1)[1]
    headline = tuple(f"{k}/{m}" for k in QUICK_JOB_KEYS for m in ("iou", "collapsed", "positive_ratio"))

    def data(self, cfg: RunConfig) -> Arrays:
        return split(cfg.quick)

    def job(self, key: str, cfg: RunConfig) -> Job:
        loss = LOSSES[key.removesuffix(SHIPS_ONLY_SUFFIX)][0]
        # quick runs skip the per-epoch evaluation (2 epochs make no curve; it halves Keras' time)
        return Job(key, MODEL, loss, METRICS, Optimizer("adam"), epochs=QUICK_EPOCHS if cfg.quick else EPOCHS,
                   batch_size=BATCH_SIZE, seed=cfg.seed, validate=not cfg.quick)

    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result:
        result = Result(metrics=data_statistics(data))
        ships = ships_only(data)
        result.metrics["data/ships_only_n_train"] = int(len(ships.x_train))
        examples = example_indices(data.y_test)
        saved = {"images": data.x_test[examples], "masks": data.y_test[examples]}
        keys = job_keys(cfg.quick)
        for key in keys:
            job = self.job(key, cfg)
            trained = backend.train(job, ships if key.endswith(SHIPS_ONLY_SUFFIX) else data, cfg)
            logits = trained.predict(data.x_test)
            for name, value in trained.metrics.items():
                result.metrics[f"{key}/{name}"] = value
            for name, value in prediction_statistics(logits, data.y_test).items():
                result.metrics[f"{key}/{name}"] = value
            result.metrics[f"{key}/seconds"] = trained.seconds
            result.histories[key] = trained.history
            saved[key] = logits[examples].astype(np.float32)
        np.savez_compressed(cfg.out / EXAMPLES_FILE, **saved)
        collapsed = [k for k in keys if result.metrics[f"{k}/collapsed"] == 1.0]
        result.notes.append(f"Collapsed to (nearly) all-zero masks: {', '.join(collapsed) if collapsed else 'none'} "
                            f"(fewer predicted positive pixels than {COLLAPSE_RATIO:g} × the true ones).")
        return result

    # ------------------------------------------------------------------ plots
    def plot_run(self, result: Result, framework: str, out: Path) -> list[Path]:
        paths = super().plot_run(result, framework, out)
        grid = examples_grid({framework: out / EXAMPLES_FILE}, out / "segmentation_examples.png")
        return paths + ([grid] if grid else [])

    def plot_report(self, table: Table, curves, out: Path) -> list[Path]:
        paths = super().plot_report(table, curves, out)
        # the report's runs (lossparity.report layout: out/runs/<scenario>/<framework>/seed0)
        files = {f: out / "runs" / self.name / f / "seed0" / EXAMPLES_FILE for f in sorted(table)}
        grid = examples_grid({f: p for f, p in files.items() if p.is_file()}, out / "segmentation_examples.png")
        return paths + ([grid] if grid else [])

    def plots(self, table: Table, curves, out: Path, subtitle: str) -> list[Path]:
        from . import plotting

        plt = plotting.pyplot()
        labels = [LOSSES[k][1] for k in LOSSES] + [LOSSES[k][1] + "\n(ships only)" for k in SHIPS_ONLY]
        frameworks = sorted(table)
        fig, axes = plt.subplots(1, 2, figsize=(16, 4.8))
        x = np.arange(len(JOB_KEYS))
        width = 0.8 / max(len(frameworks), 1)
        for b, framework in enumerate(frameworks):
            stats = table[framework]
            offset = (b - (len(frameworks) - 1) / 2) * width
            for ax, metric in zip(axes, ("iou", "positive_ratio")):
                means = np.array([stats[f"{k}/{metric}"].mean if f"{k}/{metric}" in stats else np.nan for k in JOB_KEYS])
                stds = np.array([stats[f"{k}/{metric}"].std if f"{k}/{metric}" in stats else 0.0 for k in JOB_KEYS])
                if metric == "positive_ratio":  # log scale: an all-zero prediction is drawn at the floor
                    means = np.maximum(means, 1e-3)
                ax.bar(x + offset, means, width, yerr=stds, capsize=2, color=plotting.color(framework), alpha=0.85,
                       label=framework)
            for j, k in enumerate(JOB_KEYS):
                s = stats.get(f"{k}/collapsed")
                if s is not None and s.mean > 0:
                    axes[0].text(j + offset, 0.02, "all-zero" if s.mean == 1 else f"all-zero\n{s.mean:.0%} seeds",
                                 rotation=90, ha="center", va="bottom", fontsize=7, color=plotting.color(framework))
        axes[0].set_ylim(0, 1.0)
        axes[0].set_ylabel("IoU (held-out pixels, logit > 0)")
        axes[0].set_title("IoU per loss")
        axes[1].set_yscale("log")
        axes[1].axhline(1.0, color="gray", linestyle=":", label="as many as the true ones")
        axes[1].axhline(COLLAPSE_RATIO, color="black", linestyle="--", lw=1, label="collapse threshold")
        axes[1].set_ylabel("predicted / true positive pixels")
        axes[1].set_title("how much is marked as ship (floor 1e-3 = nothing)")
        for ax in axes:
            ax.set_xticks(x)
            ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"segmentation: tiny ships, ~0.7 % positive pixels, half the images empty — {subtitle}")
        fig.tight_layout()
        paths = [plotting.save(fig, out / "segmentation_iou.png")]
        curve = plotting.curves(curves, ["bce", "focal_g8", "soft_dice", "soft_dice_ships_only"],
                                ["loss", "val_iou", "val_recall"], out / "segmentation_curves.png",
                                "segmentation: training curves (val = held-out images)")
        return paths + ([curve] if curve else [])

    # ------------------------------------------------------------------ parity
    def parity_cases(self) -> list[ParityCase]:
        x, y = generate(80, seed=1)
        x, y = x.astype(np.float64), y.astype(np.float64)
        return [ParityCase(f"segmentation-{key}", MODEL, loss, x, y, batch_size=8, float32_rtol=FLOAT32_RTOL,
                           float32_reason=FLOAT32_REASON) for key, (loss, _) in LOSSES.items()]


def examples_grid(files: dict[str, Path], path: Path) -> Path | None:
    """Rows: held-out example images; columns: image, true mask, then ``σ(logit)`` of every job
    (the first framework in ``files``; the other one's predictions agree to rounding)."""
    from . import plotting

    if not files:
        return None
    framework, file = next(iter(files.items()))
    with np.load(file) as npz:
        saved = {k: npz[k] for k in npz.files}
    jobs = [k for k in JOB_KEYS if k in saved]
    images, masks = saved["images"], saved["masks"]
    plt = plotting.pyplot()
    cols = 2 + len(jobs)
    fig, axes = plt.subplots(len(images), cols, figsize=(1.45 * cols, 1.6 * len(images) + 0.6), squeeze=False)
    titles = ["image", "ships"] + [LOSSES[k.removesuffix(SHIPS_ONLY_SUFFIX)][1].replace(" pos_weight=", "\n×")
                                   + ("\nships only" if k.endswith(SHIPS_ONLY_SUFFIX) else "") for k in jobs]
    for r in range(len(images)):
        panels = [(images[r], "gray", None)] + [(masks[r], "magma", (0, 1))]
        panels += [(0.5 + 0.5 * np.tanh(0.5 * saved[k][r].astype(np.float64)), "magma", (0, 1)) for k in jobs]  # σ
        for c, (img, cmap, lim) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(img, cmap=cmap, vmin=None if lim is None else lim[0], vmax=None if lim is None else lim[1],
                      interpolation="nearest")
            if c >= 2:
                ax.contour(masks[r], levels=[0.5], colors="cyan", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=7)
    fig.suptitle(f"segmentation: held-out examples, σ(logit) per loss ({framework}, seed 0; cyan: true ships; "
                 f"black = predicts nothing)", fontsize=9)
    fig.tight_layout()
    return plotting.save(fig, path)


SCENARIO = Segmentation()
