"""Parameter checkers and the one input-validation driver both frameworks call.

Each framework passes a tiny :class:`ArrayOps` adapter (shape, NaN test, min/max, whether
values can be read now); the *logic* of what is checked, in which order, and the message text
live only here.

When the checks run
-------------------
* Parameters: once, when a loss is constructed (``LossSpec.validate_config``); the functional
  forms check theirs on every call (they have no construction), from a cache for plain values.
* Shapes (and parameter shapes against them, ``check_shapes``): on every call, also at trace time
  under ``tf.function`` / ``torch.compile``: they cost no device work.
* Data values (NaN/inf, domains, ``sample_weight`` >= 0, the entry's ``check_values``): with
  ``validate=True``, eagerly, and only where reading them needs **no device→host
  synchronization**. An adapter says so per array with the optional ``values_readable(x)``:
  torch reads the values of CPU tensors (same ``ValueError`` messages as always) and skips the
  value checks of tensors on an accelerator (CUDA, MPS, XLA, ...), so a training step on a GPU
  never waits for the device because of a loss; ``torch_impl.sync_value_checks()`` turns them on
  there too (one device→host read per call, for debugging a run that produces NaN). Keras reads
  eager values on every device (unchanged). Compiled graphs never read values.
* All arrays of a call are read together when the adapter can (``nonfinite_min_max_many``: one
  reduction per array, one host read for all of them); the order of the checks, and so which
  message a bad call gets, does not depend on it.
"""
from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from . import messages
from .core import CHECKS_ALL, CHECKS_LABELS, CHECKS_NOTHING, LossSpec, ParamError

# --------------------------------------------------------------------------- checkers


def real(*, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False):
    """A finite real scalar in an interval; returns a Python float."""

    def check(value):
        if isinstance(value, (bool, np.bool_)) or not _is_scalar_number(value):
            raise ParamError
        v = float(value)
        if not math.isfinite(v):
            raise ParamError
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise ParamError
        if hi is not None and (v > hi or (hi_open and v == hi)):
            raise ParamError
        return v

    return check


def integer(*, lo: int | None = None):
    """An integer scalar (not a bool, not a float) at or above ``lo``; returns a Python int."""

    def check(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ParamError
        if lo is not None and value < lo:
            raise ParamError
        return int(value)

    return check


def optional(inner):
    def check(value):
        return None if value is None else inner(value)

    return check


def boolean():
    def check(value):
        if not isinstance(value, (bool, np.bool_)):
            raise ParamError
        return bool(value)

    return check


def non_batch_axis():
    """An axis of the prediction other than the batch axis 0: a nonzero int (negative counts from the last
    axis; whether it exists is checked against the shape at call, ``check_shapes``). Returns a Python int."""

    def check(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value == 0:
            raise ParamError
        return int(value)

    return check


def choice(*options: str):
    def check(value):
        if not isinstance(value, str) or value not in options:
            raise ParamError
        return value

    return check


def positive_scalar_or_vector():
    """A positive finite scalar, or a non-empty 1-D array of them (returned as float64 array)."""

    def check(value):
        if isinstance(value, (bool, np.bool_)):
            raise ParamError
        if _is_scalar_number(value):
            v = float(value)
            if not (math.isfinite(v) and v > 0):
                raise ParamError
            return v
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParamError from None
        if arr.ndim == 0:
            return check(arr.item())
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
            raise ParamError
        return arr

    return check


def _is_scalar_number(value) -> bool:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


REDUCTION_DOMAIN = "one of 'mean', 'sum', 'none'"
_check_reduction = choice("mean", "sum", "none")
_check_validate = boolean()


def validate_common(loss: str, reduction: Any, validate: Any) -> tuple[str, bool]:
    """Check the two parameters every loss takes; same messages as spec parameters."""
    try:
        reduction = _check_reduction(reduction)
    except ParamError:
        raise ValueError(messages.invalid_param(loss, "reduction", reduction, REDUCTION_DOMAIN)) from None
    try:
        validate = _check_validate(validate)
    except ParamError:
        raise ValueError(messages.invalid_param(loss, "validate", validate, "a bool")) from None
    return reduction, validate


def split_params(params, is_tensor, to_numpy) -> tuple[dict, dict]:
    """Separate framework tensors (e.g. a ``pos_weight`` requiring grad) from plain values.

    Returns ``(plain, tensors)``: ``plain`` holds every parameter as a Python/NumPy value (what
    is validated); ``tensors`` the original tensors (what is computed with, so gradients flow).
    """
    plain, tensors = {}, {}
    for key, value in params.items():
        if is_tensor(value):
            tensors[key] = value
            arr = np.asarray(to_numpy(value), np.float64)
            plain[key] = arr.item() if arr.ndim == 0 else arr
        else:
            plain[key] = value
    return plain, tensors


_PLAIN = (bool, int, float, str, type(None))
_KEY_MAX_ELEMENTS = 4096


def _token(value):
    """A hashable stand-in for a parameter value (its type included: ``True`` is not ``1``), or
    None where the value is not cached (tensors, objects, large arrays)."""
    if type(value) in _PLAIN:
        return type(value), value
    if isinstance(value, np.ndarray) and value.size <= _KEY_MAX_ELEMENTS and value.dtype.kind in "biuf":
        return "ndarray", value.dtype.str, value.shape, value.tobytes()
    if type(value) in (list, tuple) and len(value) <= _KEY_MAX_ELEMENTS:
        parts = tuple(_token(v) for v in value)
        return None if any(p is None for p in parts) else (type(value), parts)
    return None


def config_key(plain, reduction, validate):
    """A hashable key of a functional call's configuration (plain parameter values, small arrays,
    reduction, validate), or None where it cannot be cached: the frameworks keep the checked
    configuration of each key (``LossCall``), so a functional call checks its parameters once."""
    if type(reduction) is not str or type(validate) is not bool:
        return None
    items = []
    for k, v in plain.items():
        token = _token(v)
        if token is None:
            return None
        items.append((k, token))
    return reduction, validate, *sorted(items)


class CheckedCall:
    """The framework-neutral part of a loss call's checked configuration (each framework's
    ``LossCall`` extends it): the entry, its validated ``params``, ``reduction`` and ``validate``,
    the :class:`InputChecker`, and the parameters split into ``scalars`` and array ``vectors``
    (converted by :meth:`as_vector`, the identity here)."""

    __slots__ = ("entry", "per_sample", "total", "params", "reduction", "validate", "check", "batch_statistic",
                 "class_targets", "scalars", "vectors")

    def __init__(self, entry, per_sample, params, reduction: str, validate: bool):
        self.entry = entry
        self.per_sample = per_sample
        self.total = getattr(per_sample, "total", None)
        self.params = dict(params)
        self.reduction = reduction
        self.validate = validate
        self.check = InputChecker(entry, self.params)
        self.batch_statistic = entry.is_batch_statistic(self.params)
        # class-index targets (entries with a target_shape rule) stay integers; every other
        # target, integer one-hot labels included, joins the compute dtype
        self.class_targets = entry.target_shape is not None
        self.scalars = {k: v for k, v in self.params.items() if not isinstance(v, np.ndarray)}
        self.vectors = {k: self.as_vector(v) for k, v in self.params.items() if isinstance(v, np.ndarray)}

    @staticmethod
    def as_vector(value):
        return value

    # the framework's ops :meth:`finish` uses (each LossCall sets them, as static methods):
    # ``reduce(per_sample, sample_weight, reduction)``, ``num_elements(x)`` (0 or None: no reduced
    # form) and ``cast(sample_weight, dtype)``
    reduce = num_elements = cast = None

    def finish(self, x, y, sample_weight, kwargs):
        """The framework-neutral end of a call, after the checks and the casts to the compute
        dtype: a batch statistic takes the (cast) ``sample_weight`` itself; "mean"/"sum" without
        sample weights use the loss's reduced form (``per_sample.total``) for a non-empty input of
        known size; everything else is the per-sample loss, weighted and reduced."""
        if self.batch_statistic:
            w = None if sample_weight is None else self.cast(sample_weight, x.dtype)
            return self.per_sample(x, y, sample_weight=w, **kwargs)
        reduction = self.reduction
        if sample_weight is None and reduction != "none" and self.total is not None and self.num_elements(x):
            return self.total(x, y, reduction == "mean", **kwargs)
        return self.reduce(self.per_sample(x, y, **kwargs), sample_weight, reduction)

    def rebuilt(self, reduction: str, validate: bool):
        """This configuration with ``reduction`` and ``validate`` (checked: the spec's messages);
        ``self`` when they are unchanged (a loss object whose attribute was reassigned)."""
        if reduction == self.reduction and validate is self.validate:
            return self
        params, reduction, validate = self.entry.validate_config(dict(self.params, reduction=reduction,
                                                                      validate=validate))
        return type(self)(self.entry, self.per_sample, params, reduction, validate)


class CallPlans:
    """The checked configurations of functional calls, one per :func:`config_key` (at most
    ``limit``, then cleared): ``make(entry, per_sample, params, reduction, validate)`` is the
    framework's ``LossCall``. A configuration that has no key is built and checked each call.

    :meth:`apply` is each framework's functional call (``torch_impl._core.apply``,
    ``tf_impl._core.apply``): parameters given as framework tensors (``tensor_types``) are split by
    ``split(params) -> (plain, tensors)`` (:func:`split_params`: the plain view is checked, the
    tensors are computed with, so gradients flow to them)."""

    def __init__(self, make, limit: int = 512, *, tensor_types: tuple[type, ...] = (), split=None):
        self._make, self._limit, self._plans = make, limit, {}
        self._tensor_types, self._split = tensor_types, split

    def apply(self, name: str, per_sample, first, second, sample_weight, params, reduction, validate):
        """One functional call under the contract: the configuration checked once per plain
        configuration (:meth:`get`), then the framework's ``LossCall`` with the inputs in the
        framework's order (``first, second``: torch ``input, target``; Keras ``y_true, y_pred``).
        Parameters given as tensors are checked through their host view on every call (one read
        each): pass constants as numbers or arrays, or use the loss object, which checks its
        parameters once, at construction."""
        tensors = None
        types = self._tensor_types
        if types and any(isinstance(v, types) for v in params.values()):
            params, tensors = self._split(params)
        return self.get(name, per_sample, params, reduction, validate)(first, second, sample_weight, tensors)

    def get(self, name: str, per_sample, plain, reduction, validate):
        from . import core

        entry = core.get(name)
        key = config_key(plain, reduction, validate)
        if key is not None:
            key = (name, per_sample, *key)
            hit = self._plans.get(key)
            if hit is not None and hit.entry is entry:
                return hit
        params, reduction, validate = entry.validate_config(dict(plain, reduction=reduction, validate=validate))
        plan = self._make(entry, per_sample, params, reduction, validate)
        if key is not None:
            if len(self._plans) >= self._limit:
                self._plans.clear()
            self._plans[key] = plan
        return plan


# --------------------------------------------------------------------------- inputs
class ArrayOps(Protocol):
    """What the validation driver needs from a framework."""

    def shape(self, x) -> tuple: ...  # dims may be None when unknown (graph mode)

    def can_read_values(self) -> bool: ...  # False under tf.function / torch.compile

    def has_nonfinite(self, x) -> bool: ...

    def min_max(self, x) -> tuple[float, float]: ...

    # used by ``LossSpec.check_values`` hooks (class labels, probability rows)
    def row_sum_range(self, x) -> tuple[float, float]: ...  # min, max of the sums over the last axis

    def eps(self, x) -> float: ...  # machine epsilon of x's floating dtype (0.0 for integers)

    def all_integral(self, x) -> bool: ...  # every value is a whole number (True for int dtypes)

    # (min, max) of the elements != value, None when there is none (labels beside an ignore_index)
    def min_max_excluding(self, x, value) -> tuple[float, float] | None: ...

    # optional: ``nonfinite_min_max(x) -> (has_nonfinite, min, max)`` from one pass over x (min and
    # max may be None, e.g. for integer or empty arrays: ``min_max`` is then asked when needed).
    # When an adapter has it, ``check_inputs`` reads each array once (see :class:`_OnePassOps`).
    # optional: ``nonfinite_min_max_many(arrays) -> [(has_nonfinite, min, max), ...]``: the same for
    # every array of a call at once (one host read for all of them; extremes of integer arrays too).
    # optional: ``values_readable(x) -> bool``: False where reading x's values would synchronize
    # with an accelerator; the data checks of the call are then skipped (see the module docs).
    # optional: ``all_within([(x, (lo, hi)), ...]) -> bool``: every value of every (non-empty) x
    # satisfies ``lo <= v <= hi`` (NaN never does): the one-read test of a valid call; False sends
    # the call through the detailed checks. An entry's ``check_values`` hook may read again: it
    # follows this test where ``reads_are_free(x)`` (optional: reading values needs no device
    # synchronization, e.g. a CPU tensor), else the one-read detailed path feeds it.


class _OnePassOps:
    """Wraps an adapter that has ``nonfinite_min_max`` for the duration of one ``check_inputs``
    call: ``has_nonfinite`` and ``min_max`` of the same array share one pass (one reduction and
    one host sync per array instead of two). Holds the arrays it has seen, so ids are not reused
    while it lives; everything else is delegated unchanged."""

    def __init__(self, ops, arrays=(), stats=()):
        self._ops = ops
        self._seen: dict[int, tuple] = {id(x): (x, *st) for x, st in zip(arrays, stats)}

    def _stats(self, x):
        hit = self._seen.get(id(x))
        if hit is None or hit[0] is not x:
            hit = (x, *self._ops.nonfinite_min_max(x))
            self._seen[id(x)] = hit
        return hit[1:]

    def has_nonfinite(self, x) -> bool:
        return bool(self._stats(x)[0])

    def min_max(self, x) -> tuple[float, float]:
        _, lo, hi = self._stats(x)
        return self._ops.min_max(x) if lo is None else (lo, hi)

    def __getattr__(self, name):
        return getattr(self._ops, name)


class NumpyOps:
    """The reference adapter (used by the spec itself and to derive expected messages)."""

    def shape(self, x):
        return tuple(np.shape(x))

    def can_read_values(self):
        return True

    def has_nonfinite(self, x):
        return not bool(np.isfinite(np.asarray(x, np.float64)).all())

    def min_max(self, x):
        a = np.asarray(x, np.float64)
        return float(a.min()), float(a.max())

    def row_sum_range(self, x):
        s = np.asarray(x, np.float64).sum(axis=-1)
        return float(s.min()), float(s.max())

    def eps(self, x):
        a = np.asarray(x)
        return float(np.finfo(a.dtype).eps) if a.dtype.kind == "f" else 0.0

    def all_integral(self, x):
        a = np.asarray(x)
        return a.dtype.kind in "iub" or bool(np.all(a == np.round(a)))

    def min_max_excluding(self, x, value):
        a = np.asarray(x, np.float64)
        a = a[a != value]
        return (float(a.min()), float(a.max())) if a.size else None


class InputChecker:
    """:func:`check_inputs` for one configuration (entry and validated params): what depends only
    on them (the domains, the hooks) is worked out once, so a loss object checks each call with
    no more than the call needs. The checks, their order and their messages are
    :func:`check_inputs`'s (which is ``InputChecker(spec, params)(...)``)."""

    __slots__ = ("spec", "params", "loss", "single_input", "target_shape", "check_shapes", "prediction_domain",
                 "target_domain", "check_values", "_bounds", "_labels_only", "result_decides")

    def __init__(self, spec: LossSpec, params):
        self.spec, self.params, self.loss = spec, params, spec.name
        self.single_input = spec.single_input
        self.target_shape = spec.target_shape
        self.check_shapes = spec.check_shapes
        self.prediction_domain = spec.prediction_domain(params)
        self.target_domain = None if spec.single_input else \
            spec.target_domain if spec.target_domain_of is None else spec.target_domain_of(params)
        scope = CHECKS_ALL if spec.check_values is None or spec.check_values_scope is None else \
            spec.check_values_scope(params)
        # the hook only where it has something to check for these params (e.g. no row sums of logits)
        self.check_values = None if scope == CHECKS_NOTHING else spec.check_values
        self._labels_only = scope == CHECKS_LABELS and spec.target_shape is not None and not spec.single_input
        # the closed bounds of a valid prediction / target / sample_weight: finite (the largest
        # float stands for "unbounded", so that ±inf and NaN fall outside) and in the domain
        self._bounds = tuple(_bounds(d) for d in (self.prediction_domain, self.target_domain, (0.0, None)))
        #: (prediction, target): whether the short paths may test that argument's values through the
        #: loss it gives (unbounded, and ``spec.nonfinite_propagates`` names it): the whole test of an
        #: unbounded argument is that it is finite, and a non-finite one makes a non-finite loss
        self.result_decides = tuple(name in spec.nonfinite_propagates and free
                                    for name, free in zip(("prediction", "target"), self.unbounded))

    @property
    def unbounded(self) -> tuple[bool, bool]:
        """(prediction, target): whether any finite value is valid there (the whole test of the
        argument's values is that they are finite)."""
        return tuple(bounds == (-_LARGEST, _LARGEST) for bounds in self._bounds[:2])

    @property
    def pair_bounds(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """``(prediction bounds, target bounds)`` when the whole check of a call whose prediction
        and target have the same shape (of rank >= 1) and no sample weight is the entry's
        ``check_shapes`` (if any) and that every value of each lies within its closed bounds (no
        target-shape rule, no value hook); None otherwise. A framework may accept such a call with
        those tests alone and send any other call, or a failed test, through :meth:`__call__`
        (which words the message): the same outcome, fewer steps on the valid call's path."""
        if self.single_input or self.target_shape is not None or self.check_values is not None:
            return None
        return self._bounds[0], self._bounds[1]

    @property
    def single_bounds(self) -> tuple[float, float] | None:
        """The prediction's bounds when the whole check of a single-input call (no target) without a
        sample weight is the entry's ``check_shapes`` (if any) and that every prediction value lies
        within those bounds (no value hook); None otherwise. A short path for the valid call, as
        :attr:`pair_bounds`."""
        if not self.single_input or self.check_values is not None:
            return None
        return self._bounds[0]

    @property
    def label_bounds(self) -> tuple[float, float] | None:
        """The prediction's bounds when the whole check of a call with an integer class-index target of
        the entry's target shape and no sample weight is the entry's ``check_shapes`` (if any), that
        every prediction value lies within those bounds, and that every label lies in [0, C - 1]
        (C = the prediction's last axis; ``check_values_scope`` says :data:`CHECKS_LABELS`); None
        otherwise. Like :attr:`pair_bounds`, a short path for the valid call: any other call, or a
        failed test, goes through :meth:`__call__`."""
        return self._bounds[0] if self._labels_only else None

    def __call__(self, prediction, target, sample_weight, ops: ArrayOps, validate: bool = True) -> None:
        loss = self.loss
        p_shape = ops.shape(prediction)
        if len(p_shape) < 1:
            raise ValueError(messages.no_batch_axis(loss, p_shape))
        if not self.single_input:
            t_shape = ops.shape(target)
            if self.target_shape is not None:
                expected = self.target_shape(p_shape)
                if not _same_shape(expected, t_shape):
                    raise ValueError(messages.target_shape(loss, expected, t_shape))
            elif not _same_shape(p_shape, t_shape):
                raise ValueError(messages.shape_mismatch(loss, p_shape, t_shape))
        if sample_weight is not None:
            w_shape = ops.shape(sample_weight)
            if len(w_shape) != 1 or not _dims_equal(w_shape[0], p_shape[0]):
                raise ValueError(messages.sample_weight_shape(loss, w_shape, _dim_text(p_shape[0])))
        if self.check_shapes is not None:
            self.check_shapes(loss, self.params, p_shape)
        if not (validate and ops.can_read_values()):
            return
        readable = getattr(ops, "values_readable", None)
        if readable is not None and not readable(prediction):
            return  # values on an accelerator: no device→host read (module docs)
        within = getattr(ops, "all_within", None)
        if within is not None and (self.check_values is None or getattr(ops, "reads_are_free", _no)(prediction)):
            # the valid call's path: one yes/no over every array (finite, in its domain, weights >=
            # 0); any "no" runs the detailed checks below, which find the first failing one and
            # word its message. The entry's hook comes after the generic checks either way.
            p_bounds, t_bounds, w_bounds = self._bounds
            checks = [(prediction, p_bounds)] if self.single_input else [(prediction, p_bounds), (target, t_bounds)]
            if sample_weight is not None:
                checks.append((sample_weight, w_bounds))
            if within(checks):
                if self.check_values is not None:  # reads are free here: the adapter as it is
                    self.check_values(self.loss, self.params, prediction, target, ops)
                return
        self._check_values(prediction, target, sample_weight, ops)

    def _check_values(self, prediction, target, sample_weight, ops) -> None:
        loss = self.loss
        arrays = [("prediction", prediction, self.prediction_domain)]
        if not self.single_input:
            arrays.append(("target", target, self.target_domain))
        many = getattr(ops, "nonfinite_min_max_many", None)
        if many is not None:  # every array read at once: the same checks, in the same order
            every = [x for _, x, _ in arrays] + ([] if sample_weight is None else [sample_weight])
            stats = many(every)
            for (arg, _, _), (bad, _, _) in zip(arrays, stats):
                if bad:
                    raise ValueError(messages.not_finite(loss, arg))
            for (arg, x, domain), (_, vmin, vmax) in zip(arrays, stats):
                if domain is None:
                    continue
                if vmin is None:  # empty, or a dtype without extremes in one pass (bool)
                    if _num_elements(ops.shape(x)) == 0:
                        continue
                    vmin, vmax = ops.min_max(x)
                if vmin < domain[0] or vmax > domain[1]:
                    self._out_of_domain(arg, domain, vmin, vmax)
            if sample_weight is not None:
                bad, vmin, _ = stats[-1]
                if bad:
                    raise ValueError(messages.not_finite(loss, "sample_weight"))
                if vmin is None and _num_elements(ops.shape(sample_weight)) > 0:
                    vmin, _ = ops.min_max(sample_weight)
                if vmin is not None and vmin < 0:
                    raise ValueError(messages.negative_weight(loss, vmin))
            if self.check_values is not None:
                self.check_values(loss, self.params, prediction, target, _OnePassOps(ops, every, stats))
            return
        if hasattr(ops, "nonfinite_min_max"):
            ops = _OnePassOps(ops)
        for arg, x, _ in arrays:
            if ops.has_nonfinite(x):
                raise ValueError(messages.not_finite(loss, arg))
        for arg, x, domain in arrays:
            if domain is None or _num_elements(ops.shape(x)) == 0:
                continue
            vmin, vmax = ops.min_max(x)
            if vmin < domain[0] or vmax > domain[1]:
                self._out_of_domain(arg, domain, vmin, vmax)
        if sample_weight is not None and _num_elements(ops.shape(sample_weight)) > 0:
            if ops.has_nonfinite(sample_weight):
                raise ValueError(messages.not_finite(loss, "sample_weight"))
            vmin, _ = ops.min_max(sample_weight)
            if vmin < 0:
                raise ValueError(messages.negative_weight(loss, vmin))
        if self.check_values is not None:
            self.check_values(loss, self.params, prediction, target, ops)

    def _out_of_domain(self, arg, domain, vmin, vmax):
        hint = self.spec.prediction_domain_hint(self.params) if arg == "prediction" else ""
        raise ValueError(messages.out_of_domain(self.loss, arg, domain[0], domain[1], vmin, vmax, hint))


def check_inputs(spec: LossSpec, params, prediction, target, sample_weight, ops: ArrayOps,
                 validate: bool = True) -> None:
    """Validate a call. Shape checks always run; data checks run when ``validate``, values can be
    read (eager) and reading them needs no device synchronization (``ops.values_readable``, see
    the module docs). Order: shapes → NaN → domains → sample_weight values → the entry's
    ``check_values`` hook."""
    InputChecker(spec, params)(prediction, target, sample_weight, ops, validate)


_LARGEST = float(np.finfo(np.float64).max)


def _no(_x) -> bool:
    return False


def _bounds(domain) -> tuple[float, float]:
    """``(lo, hi)`` with ``lo <= v <= hi`` exactly for the finite values of a domain (None or infinite
    bounds: unbounded; NaN and ±inf are never inside)."""
    lo, hi = (None, None) if domain is None else domain
    lo = None if lo is None or lo == -math.inf else float(lo)
    hi = None if hi is None or hi == math.inf else float(hi)
    return (-_LARGEST if lo is None else lo), (_LARGEST if hi is None else hi)


def _dims_equal(a, b) -> bool:
    return a is None or b is None or int(a) == int(b)


def _same_shape(a, b) -> bool:
    return a == b or (len(a) == len(b) and all(_dims_equal(x, y) for x, y in zip(a, b)))


def _dim_text(d):
    return "None" if d is None else int(d)


def _num_elements(shape) -> int:
    if any(d is None for d in shape):
        return 1
    return math.prod(int(d) for d in shape)  # (math.prod: np.prod costs ~30 µs a call)


def last_axis_param_check(*param_names: str):
    """``check_shapes`` for vector parameters broadcast over the last axis of the prediction."""

    def check(loss, params, shape):
        for name in param_names:
            value = params.get(name)
            if isinstance(value, np.ndarray) and value.ndim == 1:
                last = shape[-1]
                if last is not None and int(last) != value.size:
                    raise ValueError(messages.param_shape(loss, name, value.size, int(last)))

    return check


def expected_message(spec: LossSpec, case) -> str:
    """The message the spec itself raises for an invalid case (the tests' expected text)."""
    try:
        params, _, _ = spec.validate_config(case.params)
        if case.prediction is not None:
            check_inputs(spec, params, case.prediction, case.target, case.sample_weight, NumpyOps())
    except ValueError as err:
        return str(err)
    raise AssertionError(f"{spec.name}/{case.id}: invalid case is accepted by the spec itself")
