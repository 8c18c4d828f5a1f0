"""The public registration API: what our catalog uses, and what users use for their own losses.

A complete entry is a :class:`spec.LossSpec` passed to :func:`spec.register`. For a user's loss
:func:`define` fills sensible defaults, so a minimal elementwise entry is a dozen lines::

    import numpy as np, spec

    spec.define(
        name="squared_hinge",
        formula=r"\\ell = \\frac{1}{M}\\sum_j \\max(0, m - (2y_j - 1) x_j)^2",
        elementwise=lambda x, y, *, margin: np.maximum(0.0, margin - (2 * y - 1) * x) ** 2,
        elementwise_grad=lambda x, y, *, margin: -2 * (2 * y - 1) * np.maximum(0.0, margin - (2 * y - 1) * x),
        params=[spec.Param("margin", 1.0, "a float > 0", spec.validation.real(lo=0.0, lo_open=True))],
        implementations={"torch": "my_pkg.torch_losses", "keras": "my_pkg.keras_losses"},
    )

Implementations are registered per framework (``torch_impl.register_impl(name, cls)`` /
``tf_impl.register_impl(name, cls)``, or by subclassing ``torch_impl.SpecLoss`` /
``tf_impl.SpecLoss``) in modules that :func:`implementations` names: ``torch_impl`` and
``tf_impl`` import them lazily, the first time a loss is requested, so the spec never imports a
framework. Installed packages contribute entries through entry points (no import-order
tricks)::

    [project.entry-points."lossparity.specs"]
    my_losses = "my_pkg.loss_specs"     # a module that calls spec.define / spec.register
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .cases import binary_cases, rng_for
from .core import DEFAULT_TOLERANCES, Case, InvalidCase, LossSpec, Param, Tolerance, Tolerances, register
from .numerics import exact_elementwise_mean, mean_nonbatch, spread_cotangent

ENTRY_POINT_GROUP = "lossparity.specs"
_PENDING: dict[str, list[str]] = {"torch": [], "keras": []}
_LOADED_ENTRY_POINTS = False
_FAILED_ENTRY_POINTS: dict[str, str] = {}


def implementations(*, torch: str | None = None, keras: str | None = None) -> None:
    """Declare the modules holding a package's torch / Keras implementations (imported lazily)."""
    for framework, module in (("torch", torch), ("keras", keras)):
        if module and module not in _PENDING[framework]:
            _PENDING[framework].append(module)


def import_pending(framework: str) -> None:
    """Import the implementation modules declared for ``framework`` (called by ``get_loss``)."""
    while _PENDING[framework]:
        importlib.import_module(_PENDING[framework].pop(0))


def import_object(path: str) -> Any:
    """``"package.module:attr"`` or ``"package.module.attr"`` → the object (imported now)."""
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ValueError(f"invalid import path {path!r}; expected 'package.module:function'")
    return getattr(importlib.import_module(module), attr)


_declare_implementations = implementations


def load_entry_points() -> list[str]:
    """Import every module advertised under the ``lossparity.specs`` entry-point group, once.

    Called by the registry the first time it is asked (``spec.names``, ``spec.get``,
    ``spec.all_specs``), not at ``import spec``. A plugin that fails to import is reported by name
    (a ``RuntimeWarning``, :func:`entry_point_failures`, and the ``KeyError`` of ``spec.get``) and
    the library goes on with the entries that did load. Returns the modules loaded by this call."""
    global _LOADED_ENTRY_POINTS
    if _LOADED_ENTRY_POINTS:
        return []
    _LOADED_ENTRY_POINTS = True
    import warnings
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the library
            _FAILED_ENTRY_POINTS[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
            warnings.warn(f"lossparity: the loss plugin {ep.name!r} ({ep.value}) failed to load and is "
                          f"skipped: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3)
            continue
        loaded.append(ep.value)
    return loaded


def entry_point_failures() -> dict[str, str]:
    """``{plugin name: "module: error"}`` of the ``lossparity.specs`` entry points that failed."""
    return dict(_FAILED_ENTRY_POINTS)


#: float64 gradient tolerance for entries whose gradient is derived numerically (see define)
NUMERIC_GRAD_TOLERANCES = Tolerances(
    value=DEFAULT_TOLERANCES.value,
    grad={"float64": Tolerance(rtol=1e-6, atol=1e-9), "float32": Tolerance(rtol=1e-4, atol=1e-6)},
    exact_grad=Tolerance(rtol=1e-6, atol=1e-9),
)


def _numeric_elementwise_grad(elementwise):
    """Central differences of a float64 elementwise function, Richardson-extrapolated."""

    def grad(x, y, **params):
        h = 1e-4 * np.maximum(1.0, np.abs(x))

        def d(step):
            return (elementwise(x + step, y, **params) - elementwise(x - step, y, **params)) / (2 * step)

        return (4 * d(h / 2) - d(h)) / 3

    return grad


def define(*, name: str, formula: str, elementwise: Callable[..., np.ndarray],
           elementwise_grad: Callable[..., np.ndarray] | None = None,
           elementwise_exact: Callable[..., Any] | None = None,
           params: Sequence[Param] = (), summary: str = "", family: str = "user",
           from_logits_inputs: bool = True, target_domain: tuple[float, float] | None = (0.0, 1.0),
           cases: Callable[[], list[Case]] | None = None,
           invalid_cases: Callable[[], list[InvalidCase]] | None = None,
           grad_convention: str = "", stability: str = "", trap: str = "",
           implementations: Mapping[str, str] | None = None,
           torch_class: str = "", keras_class: str = "", **fields: Any) -> LossSpec:
    """Register an elementwise loss (per-sample value = mean over the non-batch axes) with defaults.

    * ``elementwise(x, y, **params)``: float64 NumPy, the loss of each element.
    * ``elementwise_grad``: its derivative in ``x``; if omitted, Richardson-extrapolated central
      differences are used and the float64 gradient tolerance becomes rtol 1e-6 (stated in the
      entry's tolerances).
    * ``elementwise_exact(x, y, **params)``: the same with mpmath numbers; if omitted the
      reference-vs-mpmath checks are skipped for this entry.
    * ``cases``: default typical / extreme / edge cases for binary targets (``target_domain``
      [0, 1]) or real targets; ``from_logits_inputs`` says whether predictions are unbounded.
    """
    grad_fn = elementwise_grad or _numeric_elementwise_grad(elementwise)

    def reference(prediction, target, **p):
        return mean_nonbatch(elementwise(prediction, target, **p))

    def reference_vjp(prediction, target, cotangent, **p):
        return grad_fn(prediction, target, **p) * spread_cotangent(cotangent, np.shape(prediction))

    def exact(prediction, target, **p):
        if elementwise_exact is None:
            raise NotImplementedError
        names = tuple(k for k, v in p.items() if isinstance(v, (float, int, np.ndarray)) and not isinstance(v, bool))
        return exact_elementwise_mean(elementwise_exact, prediction, target, names, **p)

    if cases is None:
        def cases():
            defaults = {}
            if target_domain == (0.0, 1.0):
                return binary_cases(name, defaults, "default", from_logits=from_logits_inputs)
            rng = rng_for(name)
            return [
                Case("typical", "typical", defaults, rng.normal(size=(6, 3)), rng.normal(size=(6, 3)),
                     rng.uniform(0.2, 2.0, size=6)),
                Case("extreme-large", "extreme", defaults, rng.normal(size=(3, 3)) * 1e3, rng.normal(size=(3, 3))),
                Case("edge-batch1", "edge", defaults, rng.normal(size=(1, 3)), rng.normal(size=(1, 3))),
            ]

    if implementations:
        _declare_implementations(**implementations)
    entry = LossSpec(
        has_exact=elementwise_exact is not None,
        name=name, family=family, summary=summary or name, formula=formula, params=tuple(params),
        reference=reference, reference_vjp=reference_vjp, exact=exact, cases=cases,
        invalid_cases=invalid_cases or (lambda: []),
        grad_convention=grad_convention or ("analytic derivative of the elementwise loss" if elementwise_grad
                                            else "derived numerically from the reference"),
        stability=stability or "as written by the entry's author",
        target_domain=target_domain,
        prediction_domain=lambda p: None if from_logits_inputs else (0.0, 1.0),
        tolerances=fields.pop("tolerances", DEFAULT_TOLERANCES if elementwise_grad else NUMERIC_GRAD_TOLERANCES),
        trap=trap, torch_class=torch_class or name, keras_class=keras_class or name,
        **fields)
    return register(entry)


# --------------------------------------------------------------------------- each framework's front door
def framework_functions(impls, *, module: str, functional: str, apply: Callable, base: type, truth_first: bool,
                        returns: str):
    """``get_loss``, ``register_impl``, ``loss_classes`` and ``get_functional`` of one framework,
    written once: ``impls`` is its :class:`spec.Implementations` table, ``module`` the module that
    exports them, ``functional`` the module of its functional forms, ``apply`` its functional call
    (:meth:`spec.validation.CallPlans.apply`), ``base`` its ``SpecLoss``; ``truth_first``: Keras'
    argument order. Every configuration error is the spec's message (the same in both frameworks)."""
    framework = impls.framework

    def get_loss(name: str, **config: Any):
        return impls.create(name, **config)

    def register_impl(name: str, cls: type) -> type:
        return impls.register(name, cls)

    def loss_classes() -> dict[str, type]:
        return impls.classes()

    def get_functional(name: str):
        import_pending(framework.lower())
        fn = getattr(importlib.import_module(functional), name, None)
        if fn is not None:
            return fn
        cls = impls.classes().get(name)
        if cls is None or not issubclass(cls, base):
            raise NotImplementedError(f"{name!r} has no {framework} functional form")
        per_sample = cls.per_sample
        if truth_first:
            def derived(y_true, y_pred=None, *, sample_weight=None, reduction="mean", validate=True, **params):
                return apply(name, per_sample, y_true, y_pred, sample_weight, params, reduction, validate)
        else:
            def derived(input, target=None, *, sample_weight=None, reduction="mean", validate=True, **params):
                return apply(name, per_sample, input, target, sample_weight, params, reduction, validate)
        derived.__name__ = derived.__qualname__ = name
        return derived

    order = "y_true, y_pred" if truth_first else "input, target"
    get_loss.__doc__ = (f"``get_loss(\"weighted_bce\", pos_weight=3.0, reduction=\"sum\")`` → {returns}.\n\n"
                        "The configuration is checked against the spec entry first: an unknown name raises "
                        "``KeyError``, an invalid parameter ``ValueError``, with the same message in torch and Keras.")
    register_impl.__doc__ = (f"Register ``cls`` as the {framework} implementation of the spec entry ``name`` for "
                             f"``get_loss`` (a ``{base.__name__}`` subclass registers itself).")
    loss_classes.__doc__ = f"``{{name: class}}`` of the registered {framework} implementations."
    get_functional.__doc__ = (f"The functional form ``fn({order}, *, sample_weight=None, reduction=\"mean\", "
                              f"validate=True, **params)``: ours from :mod:`{functional}`, or derived from a "
                              f"registered ``{base.__name__}`` subclass (users' losses).")
    for fn in (get_loss, register_impl, loss_classes, get_functional):
        fn.__module__ = module
    return get_loss, register_impl, loss_classes, get_functional


# --------------------------------------------------------------------------- "auto" parameters
AUTO = "auto"


def elementwise_per_sample(elementwise: Callable, *, mean_nonbatch: Callable, elementwise_total: Callable) -> Callable:
    """A framework's per-sample form ``per_sample(x, y, **params) -> (N,)`` of an elementwise loss
    ``elementwise(x, y, **params)`` (the mean over the non-batch axes, ``mean_nonbatch``), with its
    reduced form ``per_sample.total(x, y, mean, **params)`` = ``elementwise_total(elementwise(...),
    mean)`` (what each framework's ``with_total`` attaches). Written once for both frameworks; each
    passes its own tensor functions."""

    def total(x, y, mean, **params):
        return elementwise_total(elementwise(x, y, **params), mean)

    def per_sample(x, y, **params):
        return mean_nonbatch(elementwise(x, y, **params))

    per_sample.total = total
    return per_sample


def _auto_pos_weight(labels):
    from .class_weights import pos_weight_from_labels

    return pos_weight_from_labels(np.asarray(labels))


#: loss parameters that may be given as ``"auto"``: computed (float64 NumPy) from the training labels
AUTO_PARAMS: dict[str, Callable[[Any], Any]] = {"pos_weight": _auto_pos_weight}


def has_auto(params: Mapping[str, Any]) -> bool:
    """Whether a loss configuration has a parameter given as ``"auto"``."""
    return any(isinstance(v, str) and v == AUTO for v in params.values())


def resolve_auto_params(params: Mapping[str, Any], train_targets=None) -> dict[str, Any]:
    """Replace every ``"auto"`` parameter by its value computed from ``train_targets`` (the training
    labels): ``pos_weight="auto"`` is negatives / positives per column. The torch Lightning module
    and the Keras training helpers both call this (same values, same messages)."""
    from . import messages

    out = dict(params)
    for key, value in params.items():
        if isinstance(value, str) and value == AUTO:
            if key not in AUTO_PARAMS:
                raise ValueError(messages.auto_unavailable(key, AUTO_PARAMS))
            if train_targets is None:
                raise ValueError(messages.auto_needs_labels(key))
            out[key] = AUTO_PARAMS[key](train_targets)
    return out


def registered_by(module: str) -> list[str]:
    """Import ``module`` and return the names of the entries it registered."""
    from .core import names

    before = set(names())
    importlib.import_module(module)
    return sorted(set(names()) - before)


__all__: Iterable[str] = ["define", "entry_point_failures", "implementations", "import_object", "import_pending",
                          "load_entry_points", "framework_functions", "AUTO", "AUTO_PARAMS", "has_auto",
                          "resolve_auto_params",
                          "registered_by", "ENTRY_POINT_GROUP"]
