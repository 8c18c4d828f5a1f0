"""The description types of the spec: parameters, cases, tolerances and ``LossSpec``.

A ``LossSpec`` is our OpInfo: one declarative entry per loss that drives every generic test,
the golden vectors, the demo table and the docs. It holds only NumPy/mpmath code.

Conventions shared by every entry
---------------------------------
* ``prediction`` is the model output (torch ``input``, Keras ``y_pred``); ``target`` is the
  truth (torch ``target``, Keras ``y_true``). Axis 0 is the batch axis.
* ``reference(prediction, target, **params)`` returns the float64 per-sample loss, shape
  ``(N,)``. Elementwise losses average over every non-batch axis, so NCHW and NHWC layouts
  give the same per-sample value.
* ``reference_vjp(prediction, target, cotangent, **params)`` returns
  ``d(sum_i cotangent_i * loss_i) / d prediction`` (float64, the prediction's shape).
* Reductions (:func:`reduce`): ``"none"`` gives ``w_i * loss_i`` per sample, ``"sum"`` gives
  ``sum_i w_i loss_i`` and ``"mean"`` gives ``sum_i w_i loss_i / N`` (Keras'
  ``sum_over_batch_size``), with ``sample_weight`` ``w`` of shape ``(N,)``, default 1.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

REDUCTIONS = ("mean", "sum", "none")
# what an entry's ``check_values`` hook checks for a parameter set (``LossSpec.check_values_scope``)
CHECKS_NOTHING, CHECKS_LABELS, CHECKS_ALL = "nothing", "labels", "all"
DTYPES = ("float32", "float64")


# --------------------------------------------------------------------------- tolerances
@dataclasses.dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol * scale + rtol * |expected|`` elementwise.

    ``scale`` is ``max(1, max|expected|)``, so ``atol`` is relative to the size of the
    quantity being compared (gradients of a mean over a large batch are small).
    """

    rtol: float
    atol: float

    def compare(self, actual, expected) -> "Comparison":
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            return Comparison(False, math.inf, math.inf, None, f"shape {actual.shape} != {expected.shape}")
        if actual.size == 0:
            return Comparison(True, 0.0, 0.0, None, "")
        same_nonfinite = (~np.isfinite(expected)) & (actual == expected)
        with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
            diff = np.where(same_nonfinite, 0.0, np.abs(actual - expected))
        diff = np.where(np.isnan(diff), np.inf, diff)
        finite_exp = np.where(np.isfinite(expected), np.abs(expected), 0.0)
        scale = max(1.0, float(finite_exp.max()))
        bound = self.atol * scale + self.rtol * finite_exp
        excess = diff - bound
        worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
        rel = diff / np.maximum(finite_exp, np.finfo(np.float64).tiny)
        rel = np.where(diff == 0, 0.0, rel)
        ok = bool(np.all(diff <= bound))
        return Comparison(ok, float(diff.max()), float(rel.max()), tuple(int(i) for i in worst),
                          "" if ok else f"worst at {tuple(int(i) for i in worst)}: "
                          f"actual {actual[worst]!r} expected {expected[worst]!r}")


@dataclasses.dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs: float
    max_rel: float
    worst_index: tuple | None
    detail: str


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """Per-dtype tolerances of framework vs reference, for values and gradients."""

    value: Mapping[str, Tolerance]
    grad: Mapping[str, Tolerance]
    #: reference vs mpmath exact (values), and analytic vjp vs mpmath finite differences.
    exact_value: Tolerance = Tolerance(rtol=1e-12, atol=1e-300)
    exact_grad: Tolerance = Tolerance(rtol=1e-9, atol=1e-13)


DEFAULT_TOLERANCES = Tolerances(
    value={"float64": Tolerance(rtol=1e-10, atol=1e-12), "float32": Tolerance(rtol=1e-5, atol=1e-6)},
    grad={"float64": Tolerance(rtol=1e-9, atol=1e-12), "float32": Tolerance(rtol=1e-4, atol=1e-6)},
)


# --------------------------------------------------------------------------- parameters
class ParamError(ValueError):
    """Raised by a parameter checker; carries the expected domain text."""


class _Required:
    """The default of a parameter that has no sensible default (``Param(default=REQUIRED)``):
    leaving it out raises ``ValueError("<loss>: missing required parameter `<name>`")``."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self):
        return "REQUIRED"  # pickles as this module's singleton


REQUIRED = _Required()


def missing_required(loss: str, name: str) -> str:
    return f"{loss}: missing required parameter `{name}`"


@dataclasses.dataclass(frozen=True)
class Param:
    """A hyperparameter: name, default, domain (text used in error messages) and checker.

    ``check(value)`` returns the normalized value (Python float/bool/str, or a float64
    array for vector parameters) or raises :class:`ParamError`.
    """

    name: str
    default: Any
    domain: str
    check: Callable[[Any], Any]
    doc: str = ""
    differentiable: bool = False
    #: no usable default: the default (None) is rejected by ``check``, so the user must pass a
    #: value (the docs show "required"; the error is the usual invalid-parameter message)
    required: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Case:
    """One input case: typical, extreme or edge. Arrays are float64 (labels may be ints)."""

    id: str
    kind: str  # "typical" | "extreme" | "edge"
    params: Mapping[str, Any]
    prediction: np.ndarray
    target: np.ndarray
    sample_weight: np.ndarray | None = None
    #: False where the loss has a kink within ~1e-50 of an input (finite differences skip it)
    smooth: bool = True
    dtypes: tuple[str, ...] = DTYPES
    note: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class InvalidCase:
    """Input or parameter that must be rejected. ``prediction is None`` → construction error."""

    id: str
    params: Mapping[str, Any]
    prediction: np.ndarray | None = None
    target: np.ndarray | None = None
    sample_weight: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Identity:
    """``this(params) == other(other_params)`` on every case of this entry that fits."""

    params: Mapping[str, Any]
    other: str
    other_params: Mapping[str, Any]
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class PeerNote:
    """Where a peer implementation differs from the spec, and why the spec is right."""

    peer: str
    where: str
    spec_says: str


@dataclasses.dataclass(frozen=True)
class PerformanceNote:
    """Why benchmark rows of this loss miss their speed or memory target (``BENCHMARKS.md``), and up
    to which measured ratio the reason covers.

    A row of ``lossparity.bench`` misses its target when it is an eager ``fwd+bwd`` row more than
    ``EAGER_NOISE`` (1.1) times the fastest peer of the same configuration, or a fused row
    (``torch compile``, ``keras jit``) of an elementwise loss above 0.6 of the fastest eager peer
    (``lossparity.bench.target_misses``); with ``target="memory"``, a torch eager ``fwd+bwd`` configuration
    whose peak allocation is above the leanest peer's plus one input-sized buffer (the ratio is ours /
    (peer + input): ``lossparity.bench.memory_summary``). A note never covers the per-call and
    training-step targets. ``parity_tests/test_bench.py`` checks that every miss of the
    committed run (``docs/benchmarks/bench_cpu.json``) is covered by a note: same ``framework``,
    ``impl`` matching the ``fnmatch`` pattern, shape kind in ``shapes``, ratio ``<= up_to``; and
    that every note covers at least one row (a fixed cause leaves no stale note behind)."""

    framework: str  # "torch" | "keras"
    impl: str  # fnmatch pattern over the bench's impl column, e.g. "torch eager*", "torch compile*"
    shapes: tuple[str, ...]  # shape kinds: "cls", "seg", "large"
    up_to: float  # the largest ours / peer ratio (eager) or fused / eager peer ratio the reason covers
    reason: str
    target: str = "speed"  # "speed" (eager and fused rows) | "memory" (peak allocation)


# --------------------------------------------------------------------------- the entry
@dataclasses.dataclass(frozen=True)
class LossSpec:
    name: str
    family: str
    summary: str
    formula: str  # LaTeX
    params: tuple[Param, ...]
    reference: Callable[..., np.ndarray]
    reference_vjp: Callable[..., np.ndarray]
    exact: Callable[..., list]
    cases: Callable[[], list[Case]]
    invalid_cases: Callable[[], list[InvalidCase]]
    grad_convention: str
    stability: str
    #: closed interval of the prediction, given the params (None = any real)
    prediction_domain: Callable[[Mapping[str, Any]], tuple[float, float] | None] = lambda p: None
    #: closed interval of the target (None = any real; an infinite bound: unbounded on that side, the
    #: values stay finite)
    target_domain: tuple[float, float] | None = (0.0, 1.0)
    #: the target's closed interval given the params, where it depends on them (``target_domain`` is
    #: then None and ``target_text`` says it): the generic data checks use it like ``target_domain``
    target_domain_of: Callable[[Mapping[str, Any]], tuple[float, float] | None] | None = None
    #: what the target holds, where ``target_domain`` cannot say it (a domain that depends on the params,
    #: checked by ``check_values``): the docs and docstrings show this text instead
    target_text: str = ""
    #: extra message appended when the prediction is outside its domain
    prediction_domain_hint: Callable[[Mapping[str, Any]], str] = lambda p: ""
    #: compatibility checks of params against the prediction shape: ``(loss, params, shape)``
    check_shapes: Callable[[str, Mapping[str, Any], tuple], None] | None = None
    tolerances: Tolerances = DEFAULT_TOLERANCES
    #: True (or a function of the params) when the value couples samples (one value per batch):
    #: then ``reference(prediction, target, sample_weight=None, **params)`` returns a scalar,
    #: ``reference_vjp(prediction, target, cotangent, sample_weight=None, **params)`` takes a
    #: scalar cotangent, ``exact`` returns a one-element list, and only ``reduction="mean"`` is
    #: accepted. ``sample_weight`` then weights each sample's contribution to the statistics.
    batch_statistic: bool | Callable[[Mapping[str, Any]], bool] = False
    #: one input (regularizers): ``target`` is None everywhere; only ``reduction="mean"``.
    single_input: bool = False
    #: expected target shape given the prediction shape (None: the same shape)
    target_shape: Callable[[tuple], tuple] | None = None
    #: a valid random target for a prediction shape, ``(rng, shape) -> ndarray``, where the target's
    #: shape or values follow from more than the prediction's shape (label sequences of ``ctc``):
    #: used by the property tests and the benchmark inputs instead of generic class labels
    make_target: Callable[[Any, tuple], Any] | None = None
    #: integer labels of a ``target_shape`` entry lie in [0, C - 1] (class indices); False: any
    #: integers (identities in a metric-learning batch), so no label is out of range
    target_labels_bounded: bool = True
    #: the loss of a sample depends on the other samples of the batch (pairwise losses), though it
    #: is still one value per sample with the usual reductions: derivatives move every sample's loss
    couples_samples: bool = False
    #: why an input lies outside the region where a float32 (or float64) result can match the float64
    #: reference to the tolerances, ``(prediction, target, params) -> reason`` ('' when it does not):
    #: a result that amplifies an absolute rounding error without bound (circle's zero rows: their
    #: gradient is g / 1e-12, and g a sum that may cancel). The edge cases pin the convention there;
    #: the property tests draw elsewhere
    ill_conditioned: Callable[[Any, Any, Mapping[str, Any]], str] | None = None
    #: extra data checks ``(loss, params, prediction, target, ops)`` run by ``check_inputs`` after
    #: the generic ones, only when values can be read and ``validate`` is on (e.g. integer class
    #: labels in range, probability rows summing to 1); ``ops`` is the framework's ``ArrayOps``
    check_values: Callable[..., None] | None = None
    #: what ``check_values`` checks for a parameter set (None: :data:`CHECKS_ALL` always):
    #: :data:`CHECKS_NOTHING` (e.g. row sums of probabilities with ``from_logits=True``: the hook is
    #: skipped), :data:`CHECKS_LABELS` (its whole check is that the class-index target holds integers in
    #: [0, C - 1], C = the prediction's last axis: a framework may test that with one reduction) or
    #: :data:`CHECKS_ALL`
    check_values_scope: Callable[[Mapping[str, Any]], str] | None = None
    #: the arguments (``"prediction"``, ``"target"``) of unbounded domain whose NaN or ±inf makes the
    #: loss NaN or ±inf under every reduction and valid parameter set (IEEE arithmetic carries it through
    #: the formula: (ŷ - y)² yes, max(0, 1 - yŷ) no). A framework may then test such an argument's
    #: values through the result of the valid call (one read of the loss instead of one reduction of the
    #: argument; a non-finite result goes through the full check, which raises or lets it pass).
    #: ``parity_tests/test_call_path.py`` proves the claim for each entry that makes it
    nonfinite_propagates: tuple[str, ...] = ()
    identities: tuple[Identity, ...] = ()
    peer_notes: tuple[PeerNote, ...] = ()
    #: why benchmark rows miss their speed target (see :class:`PerformanceNote`)
    performance_notes: tuple[PerformanceNote, ...] = ()
    references: tuple[str, ...] = ()
    trap: str = ""
    torch_class: str = ""
    keras_class: str = ""
    #: False when ``exact`` is not provided (the mpmath checks are then skipped)
    has_exact: bool = True

    # ---- parameters -------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and normalize; raise ``ValueError`` with the shared message."""
        from . import messages

        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                raise ValueError(messages.unknown_param(self.name, key, tuple(known)))
        out = {}
        for p in self.params:
            value = params.get(p.name, p.default)
            if value is REQUIRED:
                raise ValueError(missing_required(self.name, p.name))
            try:
                out[p.name] = p.check(value)
            except ParamError:
                raise ValueError(messages.invalid_param(self.name, p.name, value, p.domain)) from None
        return out

    def is_batch_statistic(self, params: Mapping[str, Any]) -> bool:
        bs = self.batch_statistic
        return bool(bs(params) if callable(bs) else bs)

    def reductions(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Reductions this configuration accepts: one value per batch accepts "mean" only."""
        if self.single_input or self.is_batch_statistic(params):
            return ("mean",)
        return REDUCTIONS

    def validate_config(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], str, bool]:
        """Split and check a constructor's keywords: ``(params, reduction, validate)``."""
        from . import messages
        from .validation import validate_common

        config = dict(config)
        reduction = config.pop("reduction", "mean")
        validate = config.pop("validate", True)
        params = self.validate_params(config)
        reduction, validate = validate_common(self.name, reduction, validate)
        allowed = self.reductions(params)
        if reduction not in allowed:
            raise ValueError(messages.batch_reduction(self.name, reduction))
        return params, reduction, validate

    def all_invalid_cases(self) -> list[InvalidCase]:
        """The entry's own invalid cases plus the ones every loss rejects."""
        from .cases import common_invalid_cases

        example = self.cases()[0]
        free_length = self.target_shape is not None and None in self.target_shape(example.prediction.shape)
        common = [] if self.single_input else common_invalid_cases(
            example, bounded_target=self.target_domain is not None
            or (self.target_shape is not None and self.target_labels_bounded),
            target_domain=self.target_domain, free_target_length=free_length)
        return common + list(self.invalid_cases())

    # ---- reference with reductions -----------------------------------------------------
    def reference_reduced(self, prediction, target, /, *, sample_weight=None, reduction="mean", **params):
        params = self.validate_params(params)
        prediction = np.asarray(prediction, np.float64)
        if self.is_batch_statistic(params):
            return np.float64(self.reference(prediction, _as_f64(target), sample_weight=_as_f64(sample_weight),
                                             **params))
        per_sample = self.reference(prediction, _as_f64(target), **params)
        return reduce(per_sample, sample_weight, reduction)

    def reference_grad(self, prediction, target, /, *, sample_weight=None, reduction="mean",
                       cotangent=None, **params):
        """Gradient w.r.t. the prediction of the reduced loss (``cotangent`` for "none")."""
        params = self.validate_params(params)
        prediction = np.asarray(prediction, np.float64)
        if self.is_batch_statistic(params):
            return self.reference_vjp(prediction, _as_f64(target), 1.0, sample_weight=_as_f64(sample_weight),
                                      **params)
        cot = per_sample_cotangent(prediction.shape[0], sample_weight, reduction, cotangent)
        return self.reference_vjp(prediction, _as_f64(target), cot, **params)


def _as_f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def reduce(per_sample, sample_weight=None, reduction="mean"):
    """The reduction contract, float64: see the module docstring."""
    per_sample = np.asarray(per_sample, dtype=np.float64)
    w = np.ones_like(per_sample) if sample_weight is None else np.asarray(sample_weight, np.float64)
    weighted = per_sample * w
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean":
        return weighted.sum() / per_sample.shape[0]
    raise ValueError(f"unknown reduction {reduction!r}")


def per_sample_cotangent(n, sample_weight=None, reduction="mean", cotangent=None):
    """The cotangent that the reduction sends back to each sample's loss."""
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if reduction == "none":
        return w * (np.ones(n) if cotangent is None else np.asarray(cotangent, np.float64))
    if reduction == "sum":
        return w
    if reduction == "mean":
        return w / n
    raise ValueError(f"unknown reduction {reduction!r}")


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, LossSpec] = {}


_ORIGIN: dict[str, str] = {}


def _caller_module() -> str:
    import sys

    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("spec.core", "spec.api")):
        frame = frame.f_back
    return "" if frame is None else frame.f_globals.get("__name__", "")


def register(entry: LossSpec) -> LossSpec:
    """Add an entry to the registry (the one public way, used by our catalog and by users)."""
    if entry.name in _REGISTRY and _REGISTRY[entry.name] is not entry:
        raise ValueError(f"a loss named {entry.name!r} is already registered")
    _ORIGIN[entry.name] = _caller_module()
    names = entry.param_names
    for common in ("reduction", "validate"):
        if common in names:
            raise ValueError(f"{entry.name}: {common!r} is a common parameter; do not declare it")
    _REGISTRY[entry.name] = entry
    return entry


def origin(name: str) -> str:
    """The module that registered ``name`` (e.g. ``spec.classification``)."""
    return _ORIGIN.get(name, "")


def _with_plugins() -> dict[str, LossSpec]:
    """The registry, after the installed ``lossparity.specs`` entry points have been loaded (once)."""
    from .api import load_entry_points

    load_entry_points()
    return _REGISTRY


def names() -> list[str]:
    return sorted(_with_plugins())


def get(name: str) -> LossSpec:
    try:
        return _with_plugins()[name]
    except KeyError:
        from .api import entry_point_failures
        from .messages import unknown_loss

        raise KeyError(unknown_loss(name, names(), entry_point_failures())) from None


def all_specs() -> Sequence[LossSpec]:
    return [_REGISTRY[n] for n in names()]


class Implementations:
    """One framework's ``name → class`` table behind its ``get_loss``.

    ``create`` checks the configuration against the spec first, so every configuration error
    (an unknown key included) is the spec's ``ValueError`` whatever the class signature.
    """

    def __init__(self, framework: str, to_plain: Callable[[Mapping[str, Any]], dict] | None = None):
        self.framework = framework
        #: the framework's view of a config as Python/NumPy values (tensors on any device,
        #: tensors requiring grad), used for validation
        self.to_plain = to_plain or dict
        self._classes: dict[str, type] = {}

    def register(self, name: str, cls: type) -> type:
        self._classes[name] = cls
        return cls

    def create(self, name: str, **config: Any):
        from .api import import_pending

        import_pending(self.framework.lower())
        entry = get(name)  # KeyError naming the registered losses
        entry.validate_config(self.to_plain({k: v for k, v in config.items() if k != "name"}))
        try:
            cls = self._classes[name]
        except KeyError:
            raise NotImplementedError(f"{name!r} is in the spec but has no {self.framework} "
                                      "implementation yet") from None
        return cls(**config)

    def classes(self) -> dict[str, type]:
        return dict(self._classes)
