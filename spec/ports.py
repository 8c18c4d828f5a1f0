"""The frameworks' own losses and their twins in the catalog: one table, read by both converters.

Every loss class of Keras 3 (``keras.losses.X``, read through ``get_config()``; its string names
such as ``"mse"`` too) and of ``torch.nn`` (read through its attributes: ``reduction``, ``weight``,
``pos_weight``, ``ignore_index``, ``label_smoothing``, ``delta``, ``beta`` ...) has one :class:`Port`
row: either the entry that computes what the object computes (``convert``: the object's
configuration → a :class:`Ported`, the entry's parameters, reduction and the input layout that
reproduces the object), or why it has none.

``torch_impl.from_keras`` and ``tf_impl.from_torch`` read an object into ``(class name, config)``
and call :func:`port`; ``parity_tests/test_framework_peers.py`` builds every row's ``examples`` in
its framework and proves the twin equal (values and gradients); ``python -m lossparity.docs``
renders the table into ``docs/porting.md``.

Adding a row for a new entry is one call in ``KERAS_PORTS`` or ``TORCH_PORTS`` (it replaces the
class's :func:`pending` row, which ``test_framework_peers`` asks for once the entry is registered)::

    keras("Hinge", EQUAL, "", entry="hinge", convert=plain("hinge"), names=("hinge",))

``plain(entry)`` when the framework class takes no parameter but its reduction; otherwise a small
function of the configuration that returns a :class:`Ported` or raises :class:`Unsupported` (see
``_huber``, ``_keras_tversky``). ``examples`` are the configurations the proof builds, ``rejects``
the ones that must raise; a ``DIFFERS`` row's note says how, and a test pins it.

Reductions: Keras ``"sum_over_batch_size"`` and ``"mean"`` → ``"mean"``, ``"sum"`` → ``"sum"``,
``None`` / ``"none"`` → ``"none"``; torch's three keep their names. Without sample weights the
means agree (the frameworks average every element, ours the per-sample means); the frameworks'
``"sum"`` adds up every element or position, which the twin reproduces (:data:`SUM_REDUCTION`);
``"none"`` differs in shape where the frameworks keep more than the batch axis
(:data:`NONE_REDUCTION`). Keras' ``"mean_with_sample_weight"`` (Σ w ℓ / Σ w) raises. Where a Keras loss masks its
zero values (``Circle``), its mean divides by the samples whose loss is > 0, and where torch's or Keras' mean of
class indices divides by the class weights of the labels not ignored, the twin divides by the same
(:data:`NONZERO`, :data:`LABEL_WEIGHT`, ``Ported.mean_over``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import messages

KERAS, TORCH = "keras", "torch"
#: how the twin relates to the framework object
EQUAL, DIFFERS, NO_TWIN, NO_TWIN_YET = "equal", "differs", "no twin", "no twin yet"
STATUSES = (EQUAL, DIFFERS, NO_TWIN, NO_TWIN_YET)

#: input layouts: how the twin reads the tensors the framework object took
SAME = "same"
CLASS_FIRST = "class_first"  # the class axis is 1 there (torch's (N, C, d1, ...)); the last here
POOLED = "pooled"  # one value for the whole batch (Keras axis=None): the batch flattened into one sample
SIGNED_TARGET = "signed_target"  # targets in {-1, 1} there; (t + 1) / 2 in {0, 1} here
SQUEEZE_TARGET = "squeeze_target"  # class indices with a trailing axis of size 1 (Keras squeezes it)
LAYOUTS = (SAME, CLASS_FIRST, POOLED, SIGNED_TARGET, SQUEEZE_TARGET)

#: what a framework's reduction='sum' adds up (ours: the per-sample values, each a mean)
ELEMENTS = "elements"  # every element (torch's elementwise losses): ours × the elements per sample
POSITIONS = "positions"  # every position, classes (the last axis) averaged or summed per position (Keras; torch
#                          CrossEntropyLoss / NLLLoss): ours × the positions per sample
#: what a framework's reduction='mean' divides by where it is not the batch size
NONZERO = "nonzero"  # the samples whose loss is > 0 (Keras masks the zero losses of Circle): our sum / that count
LABEL_WEIGHT = "label_weight"  # the class weights of the labels not ignored, 1 each without class weights (torch
#                               CrossEntropyLoss / NLLLoss with class indices, Keras ignore_class): Σ over the
#                               positions of our per-sample sums / that total (0 where it is 0)

KERAS_REDUCTIONS = {"sum_over_batch_size": "mean", "mean": "mean", "sum": "sum", None: "none", "none": "none"}
TORCH_REDUCTIONS = {"mean": "mean", "sum": "sum", "none": "none"}
NONE_REDUCTION = ("reduction 'none' gives one value per sample here (the mean over the non-batch axes); torch gives "
                  "one per element (CrossEntropyLoss / NLLLoss: one per position), Keras one per element of every "
                  "axis but the last: the same values for (N, C) inputs (torch: CrossEntropyLoss, NLLLoss, "
                  "MultiLabelSoftMarginLoss), their per-sample means otherwise")
SAMPLE_WEIGHT = ("sample_weight: one weight per sample in both on (N, C) inputs (Σ w ℓ / N for 'mean'); on higher "
                 "ranks Keras takes one weight per position (shape (N, d1, ...)) and rejects (N,), the twin takes one "
                 "per sample; torch.nn losses take none (their twins accept one per sample)")
SUM_REDUCTION = ("reduction 'sum' adds up what the framework's 'none' gives (every element, every position), so the "
                 "twin multiplies our sum of per-sample means by that count per sample (Ported.sum_over)")
KERAS_DTYPE = ("Keras computes in its floatx (float32) unless the loss is built with dtype='float64'; the twin "
               "computes in the inputs' dtype")
QUALIFIED = {KERAS: "keras.losses.{}", TORCH: "torch.nn.{}"}


@dataclasses.dataclass(frozen=True, eq=False)
class Ported:
    """What a framework loss object computes, in the catalog's terms.

    The twin is ``get_loss(entry, reduction=reduction, **params)`` reading the tensors through
    ``layout``, its value multiplied by ``scale``. ``axes`` (Keras ``axis=(1, ...)``): the object
    reduced those axes per sample, which is the twin's per-sample value only when they are every
    non-batch axis (checked at call). ``index_targets``: the configuration used when the target
    holds class indices (integer dtype) instead of probabilities (torch ``CrossEntropyLoss``);
    ``one_hot``: class indices are one-hot encoded along the class axis first."""

    entry: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reduction: str = "mean"
    layout: str = SAME
    scale: float = 1.0
    axes: tuple[int, ...] | None = None
    index_targets: "Ported | None" = None
    one_hot: bool = False
    #: reduction="sum" of the framework adds up ``ELEMENTS`` or ``POSITIONS``, not per-sample means
    sum_over: str = ""
    #: reduction="mean" of the framework divides the (weighted) sum by the count of :data:`NONZERO` samples or the
    #: :data:`LABEL_WEIGHT` total, not N
    mean_over: str = ""
    #: the framework class it was read from (``keras.losses.Dice``), for messages
    source: str = ""

    def __eq__(self, other) -> bool:
        """The same computation (``source``, where it was read from, aside; arrays by value)."""
        if not isinstance(other, Ported):
            return NotImplemented
        return _comparable(self.to_config()) == _comparable(other.to_config())

    __hash__ = None

    @property
    def plain(self) -> bool:
        """True when the twin is the catalog's own class, with no adapter around it."""
        return (self.layout == SAME and self.scale == 1.0 and self.axes is None and self.index_targets is None
                and not self.one_hot and not self.sum_over and not self.mean_over)

    def sum_count(self, shape: tuple) -> int:
        """The factor from our ``"sum"`` to the framework's on a prediction of ``shape``: its positions are
        every non-batch axis but the class or vector axis (the entry's ``axis``; else the last)."""
        if self.sum_over == ELEMENTS:
            inner = shape[1:]
        elif self.sum_over == POSITIONS and shape:
            axis = self.params.get("axis", -1) % len(shape)
            inner = tuple(d for i, d in enumerate(shape) if i not in (0, axis))
        else:
            inner = ()
        return int(np.prod(inner)) if inner else 1

    def to_config(self) -> dict:
        """A JSON-friendly dict (arrays as lists), read back by :meth:`from_config`."""
        out = dataclasses.asdict(self)
        out["params"] = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in self.params.items()}
        out["axes"] = None if self.axes is None else list(self.axes)
        out["index_targets"] = None if self.index_targets is None else self.index_targets.to_config()
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Ported":
        config = dict(config)
        if config.get("index_targets") is not None:
            config["index_targets"] = cls.from_config(config["index_targets"])
        if config.get("axes") is not None:
            config["axes"] = tuple(config["axes"])
        return cls(**config)

    def check_axes(self, shape: tuple) -> None:
        """``ValueError`` when the object's per-sample axes are not every non-batch axis of ``shape``."""
        if self.axes is None:
            return
        ndim = len(shape)
        if sorted(a % ndim if ndim else a for a in self.axes) != list(range(1, ndim)):
            raise ValueError(messages.port_axes(self.source, self.axes, shape))


def _comparable(config: dict) -> dict:
    from .core import get

    config = dict(config, source="")
    if config["index_targets"] is not None:
        config["index_targets"] = _comparable(config["index_targets"])
    params = get(config["entry"]).validate_params(config["params"])  # defaults filled, values normalized
    config["params"] = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in params.items()}
    return config


class Unsupported(Exception):
    """Raised by a row's ``convert``: ``setting`` (e.g. ``label_smoothing=0.1``) cannot be reproduced."""

    def __init__(self, setting: str, reason: str):
        super().__init__(setting, reason)
        self.setting, self.reason = setting, reason


@dataclasses.dataclass(frozen=True)
class Port:
    """One framework loss class and its twin (or why it has none)."""

    framework: str  # KERAS | TORCH
    class_name: str  # "Huber", "HuberLoss"
    status: str  # EQUAL | DIFFERS | NO_TWIN | NO_TWIN_YET
    note: str  # DIFFERS: how; NO_TWIN / NO_TWIN_YET: why
    #: our entry (NO_TWIN_YET: the entry that will be its twin)
    entry: str | None = None
    #: the object's configuration (Keras ``get_config()``, torch attributes) → :class:`Ported`
    convert: Callable[[Mapping[str, Any]], Ported] | None = None
    #: the argument mapping, in words, for the docs
    params_text: str = ""
    #: Keras string identifiers of the class (``"mse"``, ``"mean_squared_error"`` ...)
    names: tuple[str, ...] = ()
    #: configurations the proof builds (``keras.losses.X(**config)`` / ``torch.nn.X(**config)``)
    examples: tuple[Mapping[str, Any], ...] = ({},)
    #: configurations that must raise ``ValueError``
    rejects: tuple[Mapping[str, Any], ...] = ()
    #: the framework's own prediction made from our case's: "" (the same) or "log_softmax" (NLLLoss)
    prediction: str = ""
    #: entries whose cases feed the proof (default: ``entry``)
    case_entries: tuple[str, ...] = ()
    #: parameters a case must share with the twin to feed the proof (its inputs are in the twin's domain, or
    #: its formula, only there: log-rates vs rates, logits vs probabilities, rows normalized or as given)
    match_params: tuple[str, ...] = ("from_logits",)
    #: case kinds and dtypes of the proof (typical float32 unless the row asks for more)
    kinds: tuple[str, ...] = ("typical",)
    dtypes: tuple[str, ...] = ("float32",)
    #: what the framework's reduction='sum' adds up (:data:`ELEMENTS`, :data:`POSITIONS`, "" = per-sample values)
    sum_over: str = ""
    #: "equal", or "simplex": the gradients agree along the probability simplex only (the framework
    #: renormalizes each row, which adds a component normal to it; the proof removes each row's mean)
    grad: str = "equal"

    @property
    def qualified(self) -> str:
        return QUALIFIED[self.framework].format(self.class_name)

    @property
    def has_twin(self) -> bool:
        return self.convert is not None

    def port(self, config: Mapping[str, Any]) -> Ported:
        """The twin of ``framework.X(**config)``; ``ValueError`` naming the class and the reason."""
        if self.convert is None:
            raise ValueError(messages.port_no_twin(self.qualified, self.note))
        try:
            ported = self.convert(dict(config))
        except Unsupported as err:
            raise ValueError(messages.port_unsupported(self.qualified, err.setting, err.reason)) from None
        return _finish(ported, self.qualified, self.sum_over)


def _finish(ported: Ported, source: str, sum_over: str) -> Ported:
    """Where it was read from, and what the framework's "sum" adds up."""
    inner = None if ported.index_targets is None else _finish(ported.index_targets, source, sum_over)
    return dataclasses.replace(ported, source=source, index_targets=inner,
                               sum_over=ported.sum_over or (sum_over if ported.reduction == "sum" else ""))


# --------------------------------------------------------------------------- reading a configuration
def _fmt(value) -> str:
    return messages.format_value(value)


def keras_reduction(config: Mapping[str, Any]) -> str:
    reduction = config.get("reduction", "sum_over_batch_size")
    if reduction not in KERAS_REDUCTIONS:
        raise Unsupported(f"reduction={_fmt(reduction)}", "it divides by the sum of the sample weights; the "
                          "catalog's 'mean' divides by the batch size (use reduction='sum' and divide)")
    return KERAS_REDUCTIONS[reduction]


def torch_reduction(config: Mapping[str, Any]) -> str:
    reduction = config.get("reduction", "mean")
    if reduction not in TORCH_REDUCTIONS:
        raise Unsupported(f"reduction={_fmt(reduction)}", "expected 'mean', 'sum' or 'none'")
    return TORCH_REDUCTIONS[reduction]


def _require(config, key, allowed, reason):
    """``config[key]`` must be one of ``allowed`` (absent counts as the first)."""
    value = config.get(key, allowed[0])
    if isinstance(value, np.ndarray) or value not in allowed:
        raise Unsupported(f"{key}={_fmt(value)}", reason)


def _no_tensor(config, key, reason):
    if config.get(key) is not None:
        raise Unsupported(f"{key}={_fmt(config[key])}", reason)


def _keras_last_axis(config):
    _require(config, "axis", (-1,), "the twin reads classes / elements on the last axis (move the axis last)")


def _scalar_or_vector(value):
    arr = np.asarray(value, np.float64)
    return float(arr) if arr.ndim == 0 or arr.size == 1 else arr.reshape(-1)


# --------------------------------------------------------------------------- row builders
def keras(class_name, status, note, **fields) -> Port:
    """A Keras row: its losses average the last axis per position, so its "sum" adds up positions."""
    return Port(KERAS, class_name, status, note, **{"sum_over": POSITIONS, **fields})


def torch(class_name, status, note, **fields) -> Port:
    """A torch.nn row: its elementwise losses' "sum" adds up every element."""
    return Port(TORCH, class_name, status, note, **{"sum_over": ELEMENTS, **fields})


def plain(entry: str) -> Callable[[Mapping[str, Any]], Ported]:
    """The convert function of a class whose only argument is its reduction (both frameworks)."""
    def convert(config):
        return Ported(entry, {}, _reduction(config))
    convert.__name__ = f"plain_{entry}"
    return convert


def _reduction(config) -> str:
    """A Keras or torch reduction: the names both use ('mean', 'sum', 'none') mean the same in both."""
    reduction = config.get("reduction", "mean")
    return keras_reduction(config) if reduction not in TORCH_REDUCTIONS else TORCH_REDUCTIONS[reduction]


def pending(framework: str, class_name: str, entry: str, what: str, **fields) -> Port:
    """A class whose twin ``entry`` is not in the catalog yet: one edit turns it into a row."""
    return Port(framework, class_name, NO_TWIN_YET, f"{what}: `{entry}` is not in the catalog yet", entry=entry,
                **fields)


def no_twin(framework: str, class_name: str, reason: str, entry: str | None = None) -> Port:
    """A class no catalog loss reproduces as called; ``entry``: the one that computes its math otherwise."""
    return Port(framework, class_name, NO_TWIN, reason, entry=entry)


# ---- Keras converters
def _keras_bce(config):
    _keras_last_axis(config)
    _require(config, "label_smoothing", (0, 0.0), "weighted_bce has no label smoothing (smooth the target: "
             "y (1 - s) + s / 2)")
    return Ported("weighted_bce", {"from_logits": bool(config.get("from_logits", False))}, keras_reduction(config))


def _keras_focal(config):
    _keras_last_axis(config)
    _require(config, "label_smoothing", (0, 0.0), "binary_focal has no label smoothing (smooth the target: "
             "y (1 - s) + s / 2)")
    alpha = float(config.get("alpha", 0.25)) if config.get("apply_class_balancing", False) else None
    return Ported("binary_focal", {"gamma": float(config.get("gamma", 2.0)), "alpha": alpha,
                                   "from_logits": bool(config.get("from_logits", False))}, keras_reduction(config))


def _keras_cce(config):
    _keras_last_axis(config)
    return Ported("categorical_crossentropy", {"from_logits": bool(config.get("from_logits", False)),
                                               "label_smoothing": float(config.get("label_smoothing", 0.0))},
                  keras_reduction(config))


def _keras_sparse_cce(config):
    _keras_last_axis(config)
    reduction = keras_reduction(config)
    params = {"from_logits": bool(config.get("from_logits", False))}
    if config.get("ignore_class") is None:
        return Ported("sparse_categorical_crossentropy", params, reduction, layout=SQUEEZE_TARGET)
    return Ported("sparse_categorical_crossentropy", {**params, "ignore_index": int(config["ignore_class"])},
                  reduction, layout=SQUEEZE_TARGET, mean_over=LABEL_WEIGHT if reduction == "mean" else "")


def _keras_axes(config) -> tuple[str, tuple[int, ...] | None]:
    axis = config.get("axis")
    if axis is None:
        return POOLED, None
    axes = (int(axis),) if isinstance(axis, (int, np.integer)) else tuple(int(a) for a in axis)
    if any(a == 0 for a in axes):
        raise Unsupported(f"axis={axes!r}", "it reduces over the batch axis; the twin gives one value per "
                          "sample (axis=None pools the whole batch and is supported)")
    return SAME, axes


def _keras_categorical_focal(config):
    _keras_last_axis(config)
    alpha = config.get("alpha", 0.25)
    if np.ndim(alpha) != 0:
        raise Unsupported(f"alpha={_fmt(alpha)}", "categorical_focal_crossentropy takes one alpha for every class")
    return Ported("categorical_focal_crossentropy",
                  {"alpha": float(alpha), "gamma": float(config.get("gamma", 2.0)),
                   "from_logits": bool(config.get("from_logits", False)),
                   "label_smoothing": float(config.get("label_smoothing", 0.0))}, keras_reduction(config))


def _keras_generalized_ce(config):
    return Ported("categorical_generalized_crossentropy", {"q": float(config.get("q", 0.5)), "from_logits": False},
                  keras_reduction(config))


def _keras_dice(config):
    layout, axes = _keras_axes(config)
    return Ported("soft_dice", {"smooth": 0.0, "from_logits": False}, keras_reduction(config), layout=layout,
                  axes=axes)


def _keras_tversky(config):
    layout, axes = _keras_axes(config)
    # Keras' fp is Σ(1 - p) y (false negatives) and its fn is Σ p (1 - y) (false positives): its alpha
    # weights the false negatives, ours (Salehi et al.) the false positives
    return Ported("tversky", {"alpha": float(config.get("beta", 0.5)), "beta": float(config.get("alpha", 0.5)),
                              "smooth": 0.0, "from_logits": False}, keras_reduction(config), layout=layout, axes=axes)


def _keras_poisson(config):
    return Ported("poisson", {"log_input": False}, keras_reduction(config))


def _keras_circle(config):
    reduction = keras_reduction(config)
    params = {"gamma": float(config.get("gamma", 80.0)), "margin": float(config.get("margin", 0.4)),
              "remove_diagonal": bool(config.get("remove_diagonal", True)), "normalize": False}
    return Ported("circle", params, reduction, mean_over=NONZERO if reduction == "mean" else "")


def _keras_cosine(config):
    axis = config.get("axis", -1)
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise Unsupported(f"axis={_fmt(axis)}", "the twin takes the vectors along one axis")
    if axis == 0:
        raise Unsupported("axis=0", "it takes the vectors along the batch axis; the twin gives one value per sample")
    return Ported("cosine_similarity", {"axis": int(axis), "epsilon": 1e-7}, keras_reduction(config))


def _keras_ctc(config):
    return Ported("ctc", {"blank": 0}, keras_reduction(config))


def _keras_categorical_hinge(config):
    return Ported("categorical_hinge", {"zero_competitor": True}, keras_reduction(config))


def _keras_kl_divergence(config):
    return Ported("kl_divergence", {"epsilon": 1e-7}, keras_reduction(config))


def _huber(key):
    def convert(config):
        return Ported("huber", {"delta": float(config.get(key, 1.0))}, _reduction(config))
    return convert


# ---- torch converters
ELEMENT_WEIGHT = "an elementwise rescaling weight has no twin; pass one weight per sample as sample_weight"


def _torch_bce(config):
    _no_tensor(config, "weight", ELEMENT_WEIGHT)
    return Ported("weighted_bce", {"from_logits": False}, torch_reduction(config))


def _torch_bce_with_logits(config):
    _no_tensor(config, "weight", ELEMENT_WEIGHT)
    pos_weight = config.get("pos_weight")
    params = {} if pos_weight is None else {"pos_weight": _scalar_or_vector(pos_weight)}
    return Ported("weighted_bce", params, torch_reduction(config))


def _class_weight(config) -> dict:
    weight = config.get("weight")
    return {} if weight is None else {"class_weight": np.asarray(weight, np.float64).reshape(-1)}


def _torch_class_indices(config, reduction, smoothing=0.0) -> Ported:
    """torch's loss of class indices: per position -Σ_c w_c y'_c log q_c, 0 at ignore_index; its 'mean'
    divides by the weights of the labels not ignored (:data:`LABEL_WEIGHT`)."""
    params = {**_class_weight(config), "ignore_index": int(config.get("ignore_index", -100))}
    if smoothing:
        params["label_smoothing"] = smoothing
    return Ported("sparse_categorical_crossentropy", params, reduction, CLASS_FIRST,
                  mean_over=LABEL_WEIGHT if reduction == "mean" else "")


def _torch_cross_entropy(config):
    smoothing = float(config.get("label_smoothing", 0.0))
    reduction = torch_reduction(config)
    probabilities = {**_class_weight(config), "label_smoothing": smoothing}
    return Ported("categorical_crossentropy", probabilities, reduction, CLASS_FIRST,
                  index_targets=_torch_class_indices(config, reduction, smoothing))


def _torch_nll(config):
    return _torch_class_indices(config, torch_reduction(config))


def _torch_smooth_l1(config):
    beta = float(config.get("beta", 1.0))
    if beta == 0.0:  # torch: exactly L1Loss
        return Ported("mean_absolute_error", {}, torch_reduction(config))
    return Ported("huber", {"delta": beta}, torch_reduction(config), scale=1.0 / beta)


def _torch_multilabel_soft_margin(config):
    _no_tensor(config, "weight", "a per-class weight has no twin (weighted_bce's pos_weight weights the positives "
               "only)")
    return Ported("weighted_bce", {}, torch_reduction(config))


def _torch_poisson_nll(config):
    return Ported("poisson", {"log_input": bool(config.get("log_input", True)), "full": bool(config.get("full", False)),
                              "epsilon": float(config.get("eps", 1e-8))}, torch_reduction(config))


def _torch_kl_div(config):
    """torch's KLDivLoss takes log q; 'batchmean' (Σ every element / N) and 'sum' add up every position's row sum
    (ours: their mean per sample, × the positions), 'mean' and 'none' every element (class_reduction='mean')."""
    params = {"log_prediction": True, "log_target": bool(config.get("log_target", False))}
    reduction = config.get("reduction", "mean")
    if reduction == "batchmean":
        return Ported("kl_divergence", params, "mean", sum_over=POSITIONS)
    if reduction == "sum":
        return Ported("kl_divergence", params, "sum")
    return Ported("kl_divergence", {**params, "class_reduction": "mean"}, torch_reduction(config))


def _torch_soft_margin(config):
    return Ported("weighted_bce", {}, torch_reduction(config), layout=SIGNED_TARGET)


# --------------------------------------------------------------------------- the table
KERAS_PROBABILITIES = ("from_logits=False (Keras' default): Keras clips p to [1e-7, 1 - 1e-7] (value capped at 16.12, "
                       "gradient 0 beyond), ours is the true loss down to p = 2**-126")

KERAS_RENORMALIZES = ("Keras divides each row by its sum (ours rejects rows that do not sum to 1), so its gradient has "
                      "an extra Σy / Σp (1 on the simplex) on every class: equal along the simplex, not across it")

#: the parameters a cross-entropy case shares with the twin: logits or probabilities, and whether labels equal to
#: ignore_index are in its data (a twin that ignores none rejects them)
CLASS_INDEX_CASES = ("from_logits", "ignore_index")

KERAS_PORTS: tuple[Port, ...] = (
    keras("MeanSquaredError", EQUAL, KERAS_DTYPE, entry="mean_squared_error", convert=plain("mean_squared_error"),
          names=("mse", "MSE", "mean_squared_error"),
          examples=({}, {"reduction": "sum"}, {"reduction": None}), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("MeanAbsoluteError", EQUAL, KERAS_DTYPE, entry="mean_absolute_error", convert=plain("mean_absolute_error"),
          names=("mae", "MAE", "mean_absolute_error"), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("Huber", EQUAL, KERAS_DTYPE + ". Keras' Huber.get_config() leaves out delta (a serialized Huber(delta=0.25) "
          "reloads with delta=1): from_keras reads the object's delta", entry="huber", convert=_huber("delta"), params_text="delta → delta",
          names=("huber",), examples=({}, {"delta": 0.25}, {"delta": 3.0, "reduction": "sum"}),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("LogCosh", DIFFERS, "Keras computes d + softplus(-2d) - log 2, which cancels for small |d| (no correct "
          "digit at d = 2**-12 in float32) and, with dtype='float64', subtracts a float32 log 2 (every value short by "
          "1.9e-9); ours keeps every digit. " + KERAS_DTYPE, entry="log_cosh", convert=plain("log_cosh"),
          names=("log_cosh",), kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("BinaryCrossentropy", DIFFERS, KERAS_PROBABILITIES, entry="weighted_bce", convert=_keras_bce,
          params_text="from_logits → from_logits (pos_weight 1); label_smoothing 0 and axis -1 only",
          names=("binary_crossentropy", "bce", "BCE"), examples=({}, {"from_logits": True}),
          rejects=({"label_smoothing": 0.1}, {"axis": 0}, {"reduction": "mean_with_sample_weight"})),
    keras("BinaryFocalCrossentropy", DIFFERS, "Keras applies its 1e-7 probability clip to σ(x) too (from_logits=True: "
          "the value is capped for |x| > 16) and its gradient is NaN for 0 < gamma < 1 once 1 - p_t underflows; ours "
          "is finite", entry="binary_focal", convert=_keras_focal,
          params_text="gamma → gamma; alpha → alpha when apply_class_balancing=True, else alpha=None; from_logits → "
          "from_logits; label_smoothing 0 and axis -1 only", names=("binary_focal_crossentropy",),
          examples=({}, {"from_logits": True, "gamma": 5.0, "apply_class_balancing": True, "alpha": 0.75}),
          rejects=({"label_smoothing": 0.1},)),
    keras("CategoricalCrossentropy", DIFFERS, KERAS_PROBABILITIES + "; " + KERAS_RENORMALIZES, entry="categorical_crossentropy", convert=_keras_cce,
          params_text="from_logits → from_logits; label_smoothing → label_smoothing (ε/C, the same convention); "
          "axis -1 only", names=("categorical_crossentropy",),
          examples=({}, {"label_smoothing": 0.2}, {"from_logits": True, "label_smoothing": 0.1}), rejects=({"axis": 1},),
          grad="simplex", match_params=CLASS_INDEX_CASES,
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("SparseCategoricalCrossentropy", DIFFERS, KERAS_PROBABILITIES + "; " + KERAS_RENORMALIZES,
          entry="sparse_categorical_crossentropy", convert=_keras_sparse_cce,
          params_text="from_logits → from_logits; ignore_class → ignore_index, 'sum_over_batch_size' divided by the "
          "count of labels not ignored (Keras' mask); a target with a trailing axis of size 1 is squeezed, as Keras "
          "does; axis -1 only", names=("sparse_categorical_crossentropy",),
          examples=({}, {"from_logits": True, "ignore_class": 255}, {"from_logits": True, "reduction": "sum"}),
          rejects=({"axis": 1},), grad="simplex", match_params=CLASS_INDEX_CASES, kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("Dice", DIFFERS, "Keras adds 1e-7 to the denominator (a relative difference of 1e-7 / (Σy + Σp); an empty "
          "mask with an empty prediction gives 1 in both) and takes probabilities only", entry="soft_dice", convert=_keras_dice,
          params_text="smooth=0, from_logits=False; axis=None (one ratio over the whole batch) → the batch read as one "
          "sample; axis=(1, ..., k) → per sample when it names every non-batch axis", names=("dice",),
          examples=({}, {"axis": (1,)}), rejects=({"axis": (0, 1)},), sum_over=""),
    keras("Tversky", DIFFERS, "Keras' alpha weights the false NEGATIVES and its beta the false positives (its fp is "
          "Σ(1 - p) y), contrary to its docstring and to Salehi et al. (ours: alpha on false positives); it adds "
          "1e-7 to the denominator only and takes probabilities only", entry="tversky", convert=_keras_tversky,
          params_text="alpha → beta, beta → alpha (where Keras really puts them); smooth=0, from_logits=False; axis "
                      "as Dice", names=("tversky",), examples=({}, {"alpha": 0.7, "beta": 0.3}, {"axis": (1,)}),
          rejects=({"axis": 0},), sum_over=""),
    keras("CategoricalFocalCrossentropy", DIFFERS, KERAS_PROBABILITIES + " (from_logits=True: of the softmax); "
          + KERAS_RENORMALIZES, entry="categorical_focal_crossentropy", convert=_keras_categorical_focal,
          params_text="alpha → alpha (one number; a per-class list raises), gamma → gamma, from_logits → from_logits, "
          "label_smoothing → label_smoothing; axis -1 only", names=("categorical_focal_crossentropy",),
          examples=({}, {"gamma": 0.5, "label_smoothing": 0.2},
                    {"from_logits": True, "gamma": 0.5, "alpha": 1.0, "label_smoothing": 0.1}),
          rejects=({"alpha": [0.25, 0.5, 0.25, 0.5]}, {"axis": 1}), grad="simplex", kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("CategoricalGeneralizedCrossEntropy", DIFFERS, "Keras computes 1 - p_y**q on probabilities: its gradient at "
          "p_y = 0 is -inf (ours 0, the clamp) and near p_y = 1 it loses the digits of tiny losses (ours: "
          "-expm1(q log p_y)); it takes any row (ours checks the row sums)", entry="categorical_generalized_crossentropy",
          convert=_keras_generalized_ce, params_text="q → q; from_logits=False (Keras takes probabilities); "
          "integer labels (N, ...)", names=("categorical_generalized_cross_entropy",),
          examples=({}, {"q": 0.7, "reduction": "sum"}), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("Hinge", DIFFERS, "Keras reads 0 as -1 only when every label of the batch is 0 or 1 (a batch mixing -1 and 0 keeps its 0s); ours element by element. " + KERAS_DTYPE, entry="hinge", convert=plain("hinge"),
          params_text="labels -1/1 or 0/1 (0 read as -1)", names=("hinge",), examples=({}, {"reduction": "sum"}),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("SquaredHinge", DIFFERS, "Keras reads 0 as -1 only when every label of the batch is 0 or 1 (a batch mixing -1 and 0 keeps its 0s); ours element by element. " + KERAS_DTYPE, entry="squared_hinge", convert=plain("squared_hinge"),
          params_text="labels -1/1 or 0/1 (0 read as -1)", names=("squared_hinge",),
          examples=({}, {"reduction": None}), kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("CategoricalHinge", EQUAL, "Keras' max((1 - y) ŷ) lets a constant 0 compete with the wrong classes: "
          "zero_competitor=True. " + KERAS_DTYPE, entry="categorical_hinge", convert=_keras_categorical_hinge,
          params_text="zero_competitor=True; one-hot targets", names=("categorical_hinge",),
          examples=({}, {"reduction": "sum"}), kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("KLDivergence", EQUAL, "Keras clips both distributions to [1e-7, 1], which epsilon=1e-7 reproduces (a zero "
          "target contributes 1e-7 log(1e-7 / q) there, 0 in the true divergence, the catalog's default "
          "epsilon=0). " + KERAS_DTYPE,
          entry="kl_divergence", convert=_keras_kl_divergence,
          params_text="epsilon=1e-7 (Keras' clip), probabilities on both sides, class_reduction='sum'",
          names=("kl_divergence", "kld", "KLD"), examples=({}, {"reduction": "sum"}),
          match_params=("log_prediction", "log_target"), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("MeanAbsolutePercentageError", EQUAL, KERAS_DTYPE, entry="mean_absolute_percentage_error",
          convert=plain("mean_absolute_percentage_error"),
          params_text="epsilon=1e-7 (Keras' backend epsilon, the default)",
          names=("mean_absolute_percentage_error", "mape", "MAPE"), examples=({}, {"reduction": "sum"}),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("MeanSquaredLogarithmicError", DIFFERS, "Keras computes log(x + 1), which drops the low digits of a small "
          "x (float32, ŷ = 3e-6, y = 1e-6: 10% off, absolute error below 1e-11); with dtype='float64' it clamps at "
          "float32(1e-7) = 1.0000000117e-07 (at ŷ = 1e-7 its gradient is 0, the twin's the ŷ >= epsilon branch); "
          "ours uses log1p. " + KERAS_DTYPE, entry="mean_squared_logarithmic_error",
          convert=plain("mean_squared_logarithmic_error"),
          params_text="epsilon=1e-7 (Keras' backend epsilon, the default)",
          names=("mean_squared_logarithmic_error", "msle", "MSLE"), examples=({}, {"reduction": None}),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("Poisson", EQUAL, "Keras takes rates: a negative rate gives NaN there, ValueError here. " + KERAS_DTYPE,
          entry="poisson", convert=_keras_poisson,
          params_text="log_input=False (rates), epsilon=1e-7 (Keras' backend epsilon, the default), full=False",
          names=("poisson",), examples=({}, {"reduction": "sum"}), match_params=("log_input",),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    keras("CosineSimilarity", DIFFERS, "in float32 Keras' Σ x² overflows past ‖x‖ = 1.8e19 and the vector counts as "
          "0 (value 0, gradient 0); ours scales each vector by its largest |element| first. " + KERAS_DTYPE,
          entry="cosine_similarity", convert=_keras_cosine,
          params_text="axis → axis (one non-batch axis); epsilon=1e-7 (Keras' l2_normalize clamp)",
          names=("cosine_similarity",),
          examples=({}, {"axis": 1}, {"axis": 1, "reduction": "sum"}, {"reduction": "sum"}),
          rejects=({"axis": 0}, {"axis": (1, 2)}), match_params=("axis",), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    keras("Circle", DIFFERS, "Keras casts the labels to its floatx (float32) before int32, so labels above 2**24 "
          "that round to the same float are one label there; ours compares them as given. Its "
          "'sum_over_batch_size' / 'mean' divides by the samples whose loss is > 0 (it masks the zero loss of a "
          "sample without a positive or a negative pair), the catalog's 'mean' by N: the twin divides its sum by "
          "that count. " + KERAS_DTYPE, entry="circle", convert=_keras_circle,
          params_text="gamma → gamma, margin → margin, remove_diagonal → remove_diagonal; normalize=False (Keras "
          "takes the rows as given); 'sum_over_batch_size' → the sum over the samples with loss > 0 divided by their "
          "count", names=("circle",),
          examples=({}, {"reduction": "sum"},
                    {"gamma": 16.0, "margin": 1.0, "remove_diagonal": False, "reduction": None}),
          rejects=({"reduction": "mean_with_sample_weight"},), match_params=("normalize",),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64"), sum_over=""),
    keras("CTC", DIFFERS, "Keras counts a row's non-zero labels (L) and reads its first L entries, padding included: "
          "equal where the padding is at the end of the row; infeasible labels (more steps needed than T): a large "
          "finite value (about 711) and a finite gradient there, +inf and gradient 0 here; Keras computes float64 "
          "logits in float32 (tf.nn.ctc_loss), dtype='float64' included, the twin in float64",
          entry="ctc", convert=_keras_ctc,
          params_text="blank=0 (Keras' mask index), zero_infinity=False, divide_by_target_length=False; logits "
          "(N, T, C), labels (N, L) padded with 0 at the end", names=("ctc",),
          examples=({}, {"reduction": "sum"}), match_params=("blank",),
          kinds=("typical", "extreme", "edge"), sum_over=""),
)

TORCH_PORTS: tuple[Port, ...] = (
    torch("L1Loss", EQUAL, "", entry="mean_absolute_error", convert=plain("mean_absolute_error"),
          examples=({}, {"reduction": "sum"}, {"reduction": "none"}), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    torch("MSELoss", EQUAL, "", entry="mean_squared_error", convert=plain("mean_squared_error"),
          kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    torch("HuberLoss", EQUAL, "", entry="huber", convert=_huber("delta"), params_text="delta → delta",
          examples=({}, {"delta": 0.25}, {"delta": 3.0, "reduction": "sum"}), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    torch("SmoothL1Loss", EQUAL, "", entry="huber", convert=_torch_smooth_l1,
          params_text="beta → delta=beta, value × 1/beta (SmoothL1Loss(beta) = huber(beta) / beta); beta=0 → "
          "mean_absolute_error", examples=({}, {"beta": 0.25}, {"beta": 0.0}), kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    torch("BCEWithLogitsLoss", EQUAL, "", entry="weighted_bce", convert=_torch_bce_with_logits,
          params_text="pos_weight → pos_weight (a scalar or one per class, last axis); weight None only",
          examples=({}, {"pos_weight": 3.0}), rejects=({"weight": 2.0},)),
    torch("BCELoss", DIFFERS, "torch clamps log p at -100 (ours at log 2**-126 = -87.3: p < 1e-38 differs) and its "
          "backward is (p - y) / max(p (1 - p), 1e-12), not the derivative of its forward", entry="weighted_bce",
          convert=_torch_bce, params_text="from_logits=False (probabilities); weight None only",
          rejects=({"weight": 2.0},)),
    torch("MultiLabelSoftMarginLoss", EQUAL, "", entry="weighted_bce", convert=_torch_multilabel_soft_margin,
          params_text="pos_weight=1, from_logits=True (the mean over classes of the logit BCE); weight None only",
          rejects=({"weight": [1.0, 2.0, 3.0]},), sum_over=""),
    torch("SoftMarginLoss", DIFFERS, "torch computes log1p(exp(-y x)): inf once -y x > 88.7 (float32), where ours "
          "(softplus) is finite; targets must be -1 or 1", entry="weighted_bce", convert=_torch_soft_margin,
          params_text="targets t ∈ {-1, 1} read as (t + 1) / 2; pos_weight=1, from_logits=True"),
    torch("CrossEntropyLoss", DIFFERS, "a batch whose labels are all ignored (or weigh 0): torch's mean is 0 / 0 = "
          "NaN, the twin's 0; with an ignore_index other than -100 torch rejects probability targets, the twin "
          "computes them (ignore_index applies to class indices)", entry="categorical_crossentropy", convert=_torch_cross_entropy,
          params_text="class axis 1 → last; probability targets → categorical_crossentropy(class_weight=weight, "
          "label_smoothing); class indices → sparse_categorical_crossentropy(class_weight=weight, ignore_index, "
          "label_smoothing), 'mean' divided by the weights of the labels not ignored (torch's divisor)",
          case_entries=("categorical_crossentropy", "sparse_categorical_crossentropy"),
          examples=({}, {"label_smoothing": 0.1, "reduction": "none"},
                    {"weight": [0.5, 2.0, 0.0, 4.0], "label_smoothing": 0.1, "reduction": "sum"}),
          sum_over=POSITIONS, match_params=CLASS_INDEX_CASES, kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    torch("NLLLoss", DIFFERS, "torch reads -input[target] as given; ours normalizes (log-softmax): equal on "
          "log-probabilities (log_softmax outputs, what NLLLoss expects), and so are the gradients through the "
          "log_softmax that made them (not w.r.t. the log-probabilities themselves); a batch whose labels are all "
          "ignored: NaN there, 0 here", entry="sparse_categorical_crossentropy",
          convert=_torch_nll, params_text="input read as logits (log_softmax of log-probabilities is themselves); "
          "class axis 1 → last; weight → class_weight, ignore_index → ignore_index, 'mean' divided by the weights "
          "of the labels not ignored", prediction="log_softmax",
          examples=({}, {"weight": [0.5, 2.0, 0.0, 4.0], "reduction": "sum"},
                    {"weight": [0.5, 2.0, 0.0, 4.0], "ignore_index": 255}),
          sum_over=POSITIONS,
          match_params=CLASS_INDEX_CASES),
    torch("KLDivLoss", EQUAL, "torch's reduction='mean' averages every element (warning that it is not the "
          "divergence): class_reduction='mean'; 'batchmean' is the divergence's batch mean; torch computes "
          "p (log p - input) of any input, the twin rejects a positive log-probability",
          entry="kl_divergence", convert=_torch_kl_div,
          params_text="log_prediction=True (torch takes log q), log_target → log_target, epsilon=0; 'batchmean' → "
          "'mean' (× the positions per sample), 'sum' → 'sum', 'mean' / 'none' → class_reduction='mean'",
          examples=({}, {"reduction": "batchmean"}, {"reduction": "sum", "log_target": True}, {"reduction": "none"}),
          match_params=("log_prediction", "log_target"), sum_over=POSITIONS, kinds=("typical", "extreme", "edge"),
          dtypes=("float32", "float64")),
    torch("PoissonNLLLoss", EQUAL, "torch's eps defaults to 1e-8, the catalog's epsilon to Keras' 1e-7: the twin "
          "takes torch's eps; full=True adds Stirling's approximation of log y! for y > 1 (0.652 at y = 2, not "
          "log 2! = 0.693), which the twin reproduces; log_input=False: a negative rate gives NaN there, ValueError "
          "here", entry="poisson", convert=_torch_poisson_nll,
          params_text="log_input → log_input, full → full, eps → epsilon",
          examples=({}, {"log_input": False}, {"full": True, "reduction": "sum"},
                    {"log_input": False, "full": True, "eps": 1e-7, "reduction": "none"}),
          match_params=("log_input",), kinds=("typical", "extreme", "edge"), dtypes=("float32", "float64")),
    no_twin(TORCH, "CTCLoss", "called with input_lengths and target_lengths besides (log-probabilities (T, N, C), "
            "targets); the catalog's ctc takes every input length T and label rows padded with the blank: on full-"
            "length inputs with the padding at the end of the rows, CTCLoss(blank, reduction, zero_infinity) on "
            "log_softmax(x) (T, N, C) is ctc(blank, zero_infinity, divide_by_target_length=reduction == 'mean') on "
            "the logits x (N, T, C)", entry="ctc"),
    no_twin(TORCH, "NLLLoss2d", "deprecated alias of NLLLoss; build NLLLoss"),
    no_twin(TORCH, "CosineEmbeddingLoss", "a loss of pairs of embeddings with ±1 similarity labels (three inputs)"),
    no_twin(TORCH, "HingeEmbeddingLoss", "a loss of distances with ±1 labels (x if y = 1, max(0, margin - x) if y = "
            "-1)"),
    no_twin(TORCH, "MarginRankingLoss", "a ranking loss of two predictions (three inputs)"),
    no_twin(TORCH, "TripletMarginLoss", "a metric-learning loss of anchor, positive and negative embeddings"),
    no_twin(TORCH, "TripletMarginWithDistanceLoss", "a metric-learning loss of anchor, positive and negative "
            "embeddings"),
    no_twin(TORCH, "MultiMarginLoss", "the multi-class margin loss sums the margins of every wrong class "
            "(Weston-Watkins); Keras' CategoricalHinge takes the largest one"),
    no_twin(TORCH, "MultiLabelMarginLoss", "targets are lists of class indices padded with -1"),
    no_twin(TORCH, "GaussianNLLLoss", "takes a predicted variance as a third input"),
    no_twin(TORCH, "LinearCrossEntropyLoss", "it owns the final linear layer (its input is the hidden state); "
            "port the layer and use CrossEntropyLoss's row"),
)

PORTS = {KERAS: {p.class_name: p for p in KERAS_PORTS}, TORCH: {p.class_name: p for p in TORCH_PORTS}}
#: Keras string identifier → class name
KERAS_NAMES = {name: p.class_name for p in KERAS_PORTS for name in (p.class_name, *p.names)}


# --------------------------------------------------------------------------- lookups
def rows(framework: str | None = None) -> list[Port]:
    """The table's rows (one framework, or both: Keras first)."""
    frameworks = (KERAS, TORCH) if framework is None else (framework,)
    return [p for fw in frameworks for p in PORTS[fw].values()]


def row(framework: str, class_name: str) -> Port:
    """The row of ``class_name``; ``ValueError`` when the framework has no such loss class."""
    try:
        return PORTS[framework][class_name]
    except KeyError:
        expected = ", ".join(sorted(PORTS[framework]))
        raise ValueError(messages.port_unknown(QUALIFIED[framework].format(class_name), framework_title(framework),
                                               f"one of {expected}")) from None


def framework_title(framework: str) -> str:
    return {KERAS: "Keras", TORCH: "torch.nn"}[framework]


def port(framework: str, class_name: str, config: Mapping[str, Any]) -> Ported:
    """What ``framework``'s ``class_name(**config)`` computes, in the catalog's terms."""
    return row(framework, class_name).port(config)


def ours(entry: str, config: Mapping[str, Any], source: str = "") -> Ported:
    """A catalog loss read back (its ``get_config()`` / attributes): the same entry, parameters and reduction."""
    config = dict(config)
    config.pop("name", None)
    config.pop("validate", None)
    reduction = config.pop("reduction", "mean")
    return Ported(entry, config, reduction, source=source or entry)


def keras_name(name: str) -> str:
    """The Keras class behind a Keras string identifier (``"mse"`` → ``"MeanSquaredError"``)."""
    try:
        return KERAS_NAMES[name]
    except KeyError:
        expected = "a Keras loss name (" + ", ".join(sorted(n for n in KERAS_NAMES if n[0].islower())) + \
            ") or a catalog name"
        raise ValueError(messages.port_unknown(repr(name), "Keras", expected)) from None


def catalog_name(name: str) -> str | None:
    """The catalog entry a string names where Keras has no such name: the spec name (``"soft_dice"``),
    the Keras class name (``"SoftDice"``) or its registered name (``"lossparity>SoftDice"``)."""
    from .core import get, names

    if name in KERAS_NAMES:
        return None
    bare = name.split(">", 1)[1] if name.startswith("lossparity>") else name
    for entry in names():
        if bare == entry or bare == get(entry).keras_class:
            return entry
    return None


# --------------------------------------------------------------------------- reading framework objects
#: the torch.nn attributes a row's ``convert`` may read
TORCH_ATTRIBUTES = ("reduction", "weight", "pos_weight", "ignore_index", "label_smoothing", "delta", "beta",
                    "margin", "p", "log_target", "log_input", "full", "eps", "blank", "zero_infinity", "swap")
PORTED_CLASS = "PortedLoss"  # the adapter class of both frameworks (a twin that needs a layout or a scale)


def _plain_value(value):
    """A tensor attribute as a NumPy array (duck-typed: no framework import); anything else as is."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().double().numpy()
    return value


def _our_keras_class(class_name: str, config: Mapping[str, Any]) -> Ported | None:
    from .core import all_specs

    if class_name == PORTED_CLASS:
        return Ported.from_config(config["ported"])
    for entry in all_specs():
        if entry.keras_class == class_name:
            return ours(entry.name, config, f"tf_impl.{class_name}")
    return None


def keras_config(loss) -> dict:
    """A Keras loss object's configuration: ``get_config()``, over the keyword arguments its function is
    called with (``LossFunctionWrapper._fn_kwargs``), because some classes leave one out of their config
    (Keras 3: ``Huber.get_config()`` has no ``delta``, ``CosineSimilarity``'s no ``axis``)."""
    return {**dict(getattr(loss, "_fn_kwargs", None) or {}), **loss.get_config()}


def read_keras(loss) -> Ported:
    """What a Keras loss computes, in the catalog's terms, read without importing TensorFlow: a Keras
    loss object (built-in or ours, through ``get_config()``), a Keras loss function, its string name
    (``"mse"``; a catalog name such as ``"soft_dice"`` or ``"lossparity>SoftDice"`` where Keras has
    no such name) or its serialized dict (``keras.losses.serialize(loss)``, or ``{"class_name": ...,
    "config": {...}}``)."""
    expected = ("a keras.losses object, a Keras loss name or function, a catalog loss of tf_impl, or "
                "keras.losses.serialize(loss)")
    if isinstance(loss, str):
        entry = catalog_name(loss)
        return ours(entry, {}) if entry is not None else port(KERAS, keras_name(loss), {})
    if isinstance(loss, Mapping):
        if "class_name" not in loss:
            raise ValueError(messages.port_unknown(repr(dict(loss)), "Keras", expected))
        class_name, config = loss["class_name"], dict(loss.get("config") or {})
        registered = str(loss.get("registered_name") or "")
        if registered.startswith("lossparity>") or str(loss.get("module", "")).startswith("tf_impl"):
            found = _our_keras_class(class_name, config)
            if found is not None:
                return found
        return port(KERAS, class_name, config)
    cls = type(loss)
    module = cls.__module__ or ""
    if module.startswith("tf_impl") and hasattr(loss, "get_config"):
        found = _our_keras_class(cls.__name__, loss.get_config())
        if found is not None:
            return found
    if module.startswith("keras") and cls.__name__ == "LossFunctionWrapper":  # a Keras loss function, wrapped
        function = getattr(getattr(loss, "fn", None), "__name__", "")
        if function in KERAS_NAMES:
            return port(KERAS, keras_name(function), {**keras_config(loss), "reduction": loss.reduction})
    if module.startswith("keras") and hasattr(loss, "get_config"):
        return port(KERAS, cls.__name__, keras_config(loss))
    function = getattr(loss, "__name__", "")
    if str(getattr(loss, "__module__", "")).startswith("keras") and function in KERAS_NAMES:
        return port(KERAS, keras_name(function), {})  # a Keras loss function: keras.losses.mean_squared_error
    raise ValueError(messages.port_unknown(f"{module}.{cls.__name__}", "Keras", expected))


def read_torch(loss) -> Ported:
    """What a torch loss module computes, in the catalog's terms, read without importing torch: a
    ``torch.nn`` loss (through its attributes, :data:`TORCH_ATTRIBUTES`) or a catalog loss of
    ``torch_impl`` (its ``params`` and ``reduction``)."""
    cls = type(loss)
    module = cls.__module__ or ""
    if module.startswith("torch_impl"):
        if cls.__name__ == PORTED_CLASS:
            return loss.ported
        if hasattr(cls, "spec_name") and hasattr(loss, "params"):
            params = {k: _plain_value(v) for k, v in loss.params.items()}
            return ours(cls.spec_name, {**params, "reduction": loss.reduction}, f"torch_impl.{cls.__name__}")
    if module.startswith("torch.nn"):
        config = {k: _plain_value(getattr(loss, k)) for k in TORCH_ATTRIBUTES if hasattr(loss, k)}
        return port(TORCH, cls.__name__, config)
    raise ValueError(messages.port_unknown(f"{module}.{cls.__name__}", "torch.nn",
                                           "a torch.nn loss module or a catalog loss of torch_impl"))
