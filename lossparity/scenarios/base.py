"""The scenario framework: framework-neutral descriptions, trained by a torch or a Keras backend.

A scenario (one module of this package) declares, with plain values and NumPy only:

* its data: ``data(cfg) -> Arrays`` (NumPy arrays, the same for both frameworks);
* its jobs: :class:`Job` = network (:class:`MLP`) + loss (:class:`Loss`, a registered name and
  parameters, ``"auto"`` for values computed from the labels) + metrics (:class:`Metric`) +
  optimizer (:class:`Optimizer`, Keras' names and defaults) + epochs, batch size, seed;
* its procedure ``run(backend, data, cfg) -> Result``: the sweep (usually: train every job,
  collect the final metrics into a flat dict);
* its plots, for one run and for the report (mean ± std over seeds, per framework);
* the cases of the training-step parity test (``parity_cases``).

A :class:`Backend` (``lossparity/scenarios/backends.py``: Lightning, Keras) turns a job into a trained
model. Both backends start from the same initial weights (:meth:`MLP.init_weights`, NumPy,
Glorot-uniform like Keras' default) and see the same batches in the same order, so a torch run and
a Keras run of one seed differ only by floating-point rounding.
"""
from __future__ import annotations

import dataclasses
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spec.api import import_object

FRAMEWORKS = ("torch", "keras")


# --------------------------------------------------------------------------- descriptions
class NetworkBuilders:
    """The builders of a network description in both frameworks, from its ``kwargs()``:

    ``TORCH_CLASS`` (``"module:Class"``, called with the kwargs), ``KERAS_BUILD`` (``"module:function"``,
    called with the kwargs and ``dtype``) and ``KERAS_WEIGHTS`` (a module with
    ``set_torch_layout_weights(model, weights)`` and ``torch_layout_weights(model)``: the weights
    ``[(W, b), …]`` in torch layout, which :meth:`init_weights` draws)."""

    TORCH_CLASS: str
    KERAS_BUILD: str
    KERAS_WEIGHTS: str

    def torch_module(self):
        """The torch network (torch's own seeded initialization)."""
        return import_object(self.TORCH_CLASS)(**self.kwargs())

    def keras_model(self, dtype: str | None = None):
        """The Keras network (``dtype``: its layers' dtype policy; None: Keras' float type)."""
        return import_object(self.KERAS_BUILD)(**self.kwargs(), dtype=dtype)

    def set_keras_weights(self, model, weights) -> None:
        """Load torch-layout weights into the Keras network."""
        import_object(f"{self.KERAS_WEIGHTS}:set_torch_layout_weights")(model, weights)

    def keras_weights(self, model) -> list[tuple[np.ndarray, np.ndarray]]:
        """The Keras network's weights in torch layout."""
        return import_object(f"{self.KERAS_WEIGHTS}:torch_layout_weights")(model)


@dataclass(frozen=True)
class MLP(NetworkBuilders):
    """``in_features → hidden… → out_features`` with ``activation`` between, and a head:
    ``"linear"`` (logits), ``"sigmoid"``, ``"sigmoid_normalized"`` (sigmoids / row sum) or
    ``"threshold"`` (clip to ``[0, threshold]``, ``ThresholdActivation``).

    ``activity_regularizer``: a single-input penalty (:class:`Loss`, e.g. ``kl_sparsity``) of the
    last hidden layer's activations, added to the loss undivided in both frameworks
    (``torch_impl.lightning.ActivityPenalty`` + ``LossModule``; ``tf_impl.training.ActivityLoss``)."""

    in_features: int
    hidden: tuple[int, ...]
    out_features: int
    activation: str = "relu"
    head: str = "linear"
    threshold: float | None = None
    activity_regularizer: "Loss | None" = None

    TORCH_CLASS = "torch_impl.lightning:MLP"
    KERAS_BUILD = "tf_impl.training:build_mlp"
    KERAS_WEIGHTS = "tf_impl.training"

    @property
    def widths(self) -> list[int]:
        return [self.in_features, *self.hidden, self.out_features]

    def init_weights(self, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Keras' default initialization drawn with NumPy: Glorot-uniform kernels
        ``U(±sqrt(6 / (fan_in + fan_out)))``, zero biases; torch layout ``(out, in)``, float64."""
        rng = np.random.default_rng([int(seed), 0x1A17])
        out = []
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            out.append((rng.uniform(-limit, limit, size=(fan_out, fan_in)), np.zeros(fan_out)))
        return out

    def kwargs(self) -> dict[str, Any]:
        """Arguments of ``torch_impl.lightning.MLP`` and ``tf_impl.training.build_mlp`` (the optional
        ``threshold`` / ``activity_regularizer`` only when set)."""
        out = {"in_features": self.in_features, "hidden": list(self.hidden),
               "out_features": self.out_features, "activation": self.activation, "head": self.head}
        if self.threshold is not None:
            out["threshold"] = float(self.threshold)
        if self.activity_regularizer is not None:
            out["activity_regularizer"] = {"name": self.activity_regularizer.name,
                                           **self.activity_regularizer.kwargs()}
        return out


@dataclass(frozen=True)
class Optimizer:
    """Keras' names and defaults (the seeds' ``optimizer='adam'``)."""

    name: str = "adam"
    lr: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7

    def config(self) -> dict[str, Any]:
        if self.name == "sgd":
            return {"name": "sgd", "lr": self.lr}
        return {"name": self.name, "lr": self.lr, "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


@dataclass(frozen=True)
class Loss:
    """A registered loss and its parameters (``"auto"``: computed from the training labels)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, **params: Any) -> "Loss":
        return cls(name, tuple(sorted(params.items())))

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Metric:
    """``kind`` ∈ recall / precision / fbeta / iou (ours) / accuracy, logged as ``name``."""

    name: str
    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, kind: str | None = None, **params: Any) -> "Metric":
        return cls(name, kind or name, tuple(sorted(params.items())))

    def description(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.params)}


def metric_descriptions(metrics: Sequence[Metric]) -> dict[str, dict[str, Any]]:
    return {m.name: m.description() for m in metrics}


@dataclass
class Arrays:
    """NumPy data of one scenario run; ``info`` describes it (source, sizes) for the report."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    #: optional per-sample training weights ``(N_train,)``: the ``sample_weight`` of every training
    #: batch (``ArrayDataModule`` key ``w_train``; ``tf_impl.training.fit(sample_weight=...)``)
    w_train: np.ndarray | None = None

    def with_inputs(self, x_train: np.ndarray, x_test: np.ndarray, **info: Any) -> "Arrays":
        return Arrays(x_train, self.y_train, x_test, self.y_test, {**self.info, **info}, self.w_train)

    def with_sample_weight(self, w_train: np.ndarray | None, **info: Any) -> "Arrays":
        return Arrays(self.x_train, self.y_train, self.x_test, self.y_test, {**self.info, **info},
                      None if w_train is None else np.asarray(w_train))

    def subset(self, index: np.ndarray) -> "Arrays":
        return Arrays(self.x_train[index], self.y_train[index], self.x_test, self.y_test,
                      {**self.info, "n_train": int(len(index))},
                      None if self.w_train is None else self.w_train[index])

    def as_dict(self) -> dict[str, np.ndarray]:
        out = {"x_train": self.x_train, "y_train": self.y_train, "x_test": self.x_test, "y_test": self.y_test}
        if self.w_train is not None:
            out["w_train"] = self.w_train
        return out


@dataclass(frozen=True)
class Job:
    """One training run: network, loss, metrics, optimizer and schedule."""

    key: str
    model: MLP
    loss: Loss
    metrics: tuple[Metric, ...]
    optimizer: Optimizer = Optimizer()
    epochs: int = 1
    batch_size: int = 32
    seed: int = 0
    validate: bool = True  # evaluate the held-out split after every epoch (training curves)
    eval_batch_size: int = 1024


@dataclass
class RunConfig:
    """What ``lossparity.run`` passes to a scenario."""

    out: Path
    quick: bool = False
    seed: int = 0
    data: Path | None = None
    epochs: int | None = None  # overrides every job's epochs
    progress: bool = True


@dataclass
class Trained:
    """What a backend returns for one job."""

    key: str
    framework: str
    metrics: dict[str, float]  # final held-out metrics from the framework's metric objects, + "loss"
    history: dict[str, list[float]]  # per epoch: "loss", "val_loss", "val_<metric>"
    loss_params: dict[str, Any]  # the parameters used ("auto" resolved)
    seconds: float
    predict: Callable[[np.ndarray], np.ndarray]  # model outputs (logits for a linear head)
    features: Callable[[np.ndarray], np.ndarray]  # last hidden layer's activations
    artifacts: dict[str, str] = field(default_factory=dict)  # checkpoint / .keras paths
    #: the trained weights ``[(W (out, in), b), …]`` (torch layout, float64 NumPy), or None
    weights: Callable[[], list[tuple[np.ndarray, np.ndarray]]] | None = None


class Backend(ABC):
    """Trains jobs in one framework."""

    framework: str

    @abstractmethod
    def train(self, job: Job, data: Arrays, cfg: RunConfig) -> Trained: ...

    @abstractmethod
    def rejection(self, job: Job, data: Arrays) -> str | None:
        """Build ``job``'s model and loss and call the loss on the first training batch the way
        training would; return the ``ValueError`` message, or None when the loss accepts it."""


@dataclass
class Result:
    """What a scenario run produces: flat metrics, per-job histories, notes for the report."""

    metrics: dict[str, Any] = field(default_factory=dict)
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ParityCase:
    """One training-step parity check: a network, a loss and a stream of batches."""

    id: str
    model: MLP
    loss: Loss
    x: np.ndarray
    y: np.ndarray
    batch_size: int = 32
    sample_weight: np.ndarray | None = None  # per-sample training weights (rows of x), or None
    #: float32 tolerance of this case when the generic one (1e-5) does not apply; give the reason
    #: in ``float32_reason`` (the float64 tolerance is never relaxed)
    float32_rtol: float | None = None
    float32_reason: str = ""

    def arrays(self, rows: int | None = None) -> dict[str, np.ndarray]:
        """The first ``rows`` rows (all when None) as training arrays (``x_train``, ``y_train`` and
        ``w_train`` when the case has sample weights), the first batch as the test split: what
        ``ArrayDataModule(arrays=...)`` and the Keras ``fit`` of the parity tests take."""
        rows = len(self.x) if rows is None else rows
        out = {"x_train": self.x[:rows], "y_train": self.y[:rows],
               "x_test": self.x[:self.batch_size], "y_test": self.y[:self.batch_size]}
        if self.sample_weight is not None:
            out["w_train"] = np.asarray(self.sample_weight)[:rows]
        return out


class Scenario(ABC):
    """Base class of the scenario modules' ``SCENARIO`` objects (see the module docstring)."""

    name: str
    problem: str  # the anchor of the problem it reproduces on docs/problems.md (lossparity.docs.PROBLEMS)
    title: str
    #: markdown paragraphs for the report: what the seed asked and what to look at
    summary: str
    #: the key metrics, one table row each in the report
    headline: tuple[str, ...] = ()
    #: seeds a full report runs at least (the scenario's question asks for them, e.g. digits:
    #: "accuracy over 5 seeds"); quick reports run the seeds asked for
    full_seeds: int = 1

    @abstractmethod
    def data(self, cfg: RunConfig) -> Arrays: ...

    @abstractmethod
    def run(self, backend: Backend, data: Arrays, cfg: RunConfig) -> Result: ...

    def plot_run(self, result: Result, framework: str, out: Path) -> list[Path]:
        """Plots of one run: :meth:`plots` of its metrics as a one-seed table."""
        from . import plotting

        table = {framework: {k: plotting.single(v) for k, v in result.metrics.items() if plotting.is_number(v)}}
        return self.plots(table, {framework: result.histories}, out, f"{framework}, seed run")

    def plot_report(self, table: "Table", curves: dict[str, dict[str, dict[str, list[float]]]],
                    out: Path) -> list[Path]:
        """Plots of the report (``table``: mean ± std over seeds per framework)."""
        return self.plots(table, curves, out, "mean ± std over seeds")

    def plots(self, table: "Table", curves: dict[str, dict[str, dict[str, list[float]]]], out: Path,
              subtitle: str) -> list[Path]:
        """The scenario's figures of ``table`` (per framework, metric → mean ± std) and ``curves``
        (per framework, job → per-epoch histories), written under ``out`` (default: none)."""
        return []

    @abstractmethod
    def parity_cases(self) -> list[ParityCase]: ...

    def config_path(self) -> Path:
        """The committed Lightning CLI config of this scenario."""
        from lossparity.paths import config_path

        return config_path(self.name)


# --------------------------------------------------------------------------- aggregation
@dataclass
class Stat:
    mean: float
    std: float
    n: int

    def fmt(self, digits: int = 4) -> str:
        if self.n <= 1 or not math.isfinite(self.std):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


#: ``table[framework][metric] = Stat`` (numeric metrics only)
Table = dict[str, dict[str, Stat]]


def aggregate(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Table:
    """Mean and sample standard deviation (ddof=1) over seeds of every numeric metric."""
    table: Table = {}
    for framework, metrics_list in runs.items():
        keys = sorted({k for m in metrics_list for k, v in m.items() if _is_number(v)})
        table[framework] = {}
        for key in keys:
            values = np.array([float(m[key]) for m in metrics_list if _is_number(m.get(key))])
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            table[framework][key] = Stat(float(values.mean()), std, len(values))
    return table


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def json_ready(obj):
    """NumPy scalars/arrays → plain JSON values (recursively)."""
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_ready(dataclasses.asdict(obj))
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(json_ready(obj), indent=2, sort_keys=True) + "\n")


def fmt_value(value: float) -> str:
    """``1``, ``0.25``, ``1000`` (keys like ``binarize_0.25``)."""
    return f"{float(value):g}"
