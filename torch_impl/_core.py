"""The torch half of the call contract: validation adapter, dtype rules, reduction.

Every call goes through a :class:`LossCall` (the configuration, checked once: at construction for
the loss modules, once per configuration for the functional forms through :func:`apply`):
shapes (always) → data values (``validate``; CPU tensors only, or inside
:func:`sync_value_checks`: no device→host read on accelerators, see :mod:`spec.validation`) →
cast to the compute dtype → the loss with autocast disabled → ``sample_weight`` and
``reduction`` (the loss's reduced form for "mean"/"sum" without weights, :func:`with_total`).

dtype rule (same as Keras side): float64 predictions are computed and returned in float64; every
other dtype (float32, bfloat16, float16, ints) is computed and returned in float32, also under
``torch.autocast`` (the framework's convention for losses).
"""
from __future__ import annotations

import contextlib
import contextvars
import math

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

import spec as _spec
from spec.validation import CallPlans, CheckedCall
from spec.validation import split_params as _split_params


_compiling = torch.compiler.is_compiling
_LARGEST = float(np.finfo(np.float64).max)  # spec.validation's bound of an unbounded domain
_SYNC_CHECKS = contextvars.ContextVar("lossparity_sync_value_checks", default=False)


@contextlib.contextmanager
def sync_value_checks(enabled: bool = True):
    """Within the block, losses called on accelerator tensors (CUDA, MPS, ...) check data values
    too: NaN/inf, domains, ``sample_weight`` >= 0, labels, with the same ``ValueError`` messages as
    on the CPU, at the price of one device→host read (a synchronization) per call.

    Outside it, the default ``validate=True`` checks values only of CPU tensors; on an accelerator
    a call checks parameters (at construction) and shapes and never waits for the device (see
    :mod:`spec.validation`). ``validate=False`` skips value checks everywhere."""
    token = _SYNC_CHECKS.set(bool(enabled))
    try:
        yield
    finally:
        _SYNC_CHECKS.reset(token)


def _on_host(x: torch.Tensor) -> bool:
    """Whether reading x's values needs no synchronization with a device: a CPU tensor. (The
    accelerator branch of the checks is this returning False: ``parity_tests/test_device_sync.py``
    runs every loss on the CPU with it patched and fails on any host read.)"""
    return x.is_cpu


def _host_values(tensors: list[torch.Tensor]) -> list[float]:
    """The values of 0-d tensors: ``item()`` each on the CPU (no stack, nothing to wait for), one
    stacked ``tolist()`` (one device→host read) elsewhere."""
    if not tensors:
        return []
    if _on_host(tensors[0]):
        return [t.item() for t in tensors]
    dtype = torch.float32 if tensors[0].device.type == "mps" else torch.float64
    return torch.stack([t.to(dtype) for t in tensors]).tolist()


class TorchOps:
    """The :class:`spec.validation.ArrayOps` adapter for torch tensors."""

    def shape(self, x):
        return tuple(x.shape) if not _compiling() else tuple(int(d) for d in x.shape)

    def can_read_values(self):
        return not _compiling()

    def values_readable(self, x):
        """Values are read where that needs no device synchronization (:func:`_on_host`: CPU
        tensors); elsewhere only inside :func:`sync_value_checks`."""
        return _on_host(x) or _SYNC_CHECKS.get()

    def reads_are_free(self, x):
        """Reading x's values waits for no device (:func:`_on_host`)."""
        return _on_host(x)

    def has_nonfinite(self, x):
        """One detached ``aminmax`` (NaN propagates to both, inf shows in one): no autograd
        record, no full-size temporaries, one host read."""
        return self.nonfinite_min_max(x)[0]

    def min_max(self, x):
        lo, hi = _host_values(list(torch.aminmax(x.detach())))
        return float(lo), float(hi)

    def nonfinite_min_max(self, x):
        """NaN/inf test and the extremes from one detached ``aminmax`` and one host read (what
        ``check_inputs`` asks of each floating tensor; ``None`` extremes for the others)."""
        if not x.is_floating_point() or x.numel() == 0:
            return False, None, None
        lo, hi = self.min_max(x)
        return not (math.isfinite(lo) and math.isfinite(hi)), lo, hi

    def nonfinite_min_max_many(self, arrays):
        """:meth:`nonfinite_min_max` of every array of a call (integer arrays' extremes too): one
        ``aminmax`` each and one host read for all of them (``item`` per value on the CPU, where
        nothing is waited for; one stacked ``tolist`` elsewhere)."""
        extremes, floating = [], []  # floating: True / False (integer) / None (not read)
        for x in arrays:
            is_float = x.is_floating_point()
            if (is_float or _is_integer(x)) and x.numel():
                extremes.append(torch.aminmax(x.detach() if x.requires_grad else x))
                floating.append(is_float)
            else:
                floating.append(None)
        if extremes and _on_host(arrays[0]):
            values = [(lo.item(), hi.item()) for lo, hi in extremes]
        else:
            flat = _host_values([t for pair in extremes for t in pair])
            values = list(zip(flat[::2], flat[1::2]))
        out, i = [], 0
        for is_float in floating:
            if is_float is None:
                out.append((False, None, None))
                continue
            lo, hi = float(values[i][0]), float(values[i][1])
            i += 1
            out.append((is_float and not (math.isfinite(lo) and math.isfinite(hi)), lo, hi))
        return out

    def all_within(self, checks):
        """Every value of every tensor within its bounds, with one reduction each: ``aminmax`` and
        its two values, or for an unbounded floating tensor its sum (finite only if every element
        is: NaN and ±inf propagate; an overflow says no, and the detailed checks decide). ``item``
        on the CPU; one stacked read elsewhere. An empty, integer-unbounded or bool tensor passes."""
        if _on_host(checks[0][0]):
            return all(_host_within(x, lo, hi) for x, (lo, hi) in checks
                       if (x.is_floating_point() or _is_integer(x)) and x.numel())
        parts, bounds = [], []  # elsewhere: every reduction first, then one read
        for x, b in checks:
            if (x.is_floating_point() or _is_integer(x)) and x.numel():
                parts += torch.aminmax(x.detach() if x.requires_grad else x)
                bounds.append(b)
        flat = _host_values(parts)
        return all(lo <= vmin and vmax <= hi for vmin, vmax, (lo, hi) in zip(flat[::2], flat[1::2], bounds))

    def row_sum_range(self, x):
        x = x.detach()
        s = x.to(torch.promote_types(x.dtype, torch.float32)).sum(dim=-1)
        lo, hi = _host_values(list(torch.aminmax(s)))
        return float(lo), float(hi)

    def eps(self, x):
        return float(torch.finfo(x.dtype).eps) if x.is_floating_point() else 0.0

    def all_integral(self, x):
        if not x.is_floating_point():
            return True
        x = x.detach()
        return bool((x == torch.round(x)).all())

    def min_max_excluding(self, x, value):
        x = x.detach()
        rest = x[x != value]
        return self.min_max(rest) if rest.numel() else None


OPS = TorchOps()


def _host_within(x: torch.Tensor, lo: float, hi: float) -> bool:
    """Every value of a non-empty floating or integer CPU tensor within ``[lo, hi]``, with one reduction
    and no autograd record: ``aminmax`` and its two values, or for an unbounded tensor (``±_LARGEST``)
    the sum of a floating one (finite only if every element is: NaN and ±inf propagate; an overflow
    says no, and the detailed checks decide); an unbounded integer tensor passes unread."""
    if x.requires_grad:
        x = x.detach()
    if lo == -_LARGEST and hi == _LARGEST:
        return not x.is_floating_point() or math.isfinite(x.sum().item())
    vmin, vmax = torch.aminmax(x)
    return vmin.item() >= lo and vmax.item() <= hi


def host_min_at_least(x: torch.Tensor, bound: float) -> bool:
    """Whether every value of a non-empty ``x`` is known to be >= ``bound`` without waiting for a device:
    on the host (:func:`_on_host`) one reduction read of its minimum (a NaN: False); elsewhere, and under
    ``torch.compile`` (a read would break the graph), False, unread. The closed forms skip the mask of
    the entries below a clamp's bound with it."""
    return _on_host(x) and x.numel() > 0 and not _compiling() and x.min().item() >= bound


class _ResultDecides:
    """The verdict of :meth:`LossCall._accepts` that accepts a call on its reads so far and leaves the
    finiteness of the arguments in ``InputChecker.result_decides`` to the loss they give (truthy, as
    every object)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RESULT_DECIDES"


RESULT_DECIDES = _ResultDecides()


def _finite_result(out: torch.Tensor) -> bool:
    """Whether every value of a loss is finite: its one value, or the sum of its values (NaN and ±inf
    propagate; an overflow says no, and the full check decides)."""
    if out.dim():
        out = out.detach().sum()
    return math.isfinite(out.item())


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def as_tensor(x, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x), device=device)


def split_params(params: Mapping[str, Any]) -> tuple[dict, dict]:
    """Validate the plain view of tensor params, compute with the tensors (gradients flow)."""
    return _split_params(params, lambda v: isinstance(v, torch.Tensor),
                         lambda v: v.detach().cpu().double().numpy())


def params_as_tensors(params: Mapping[str, Any], like: torch.Tensor) -> dict:
    """Vector (array) params become tensors on the prediction's device and compute dtype."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = torch.as_tensor(value)
        if isinstance(value, torch.Tensor):
            value = value.to(device=like.device, dtype=like.dtype)
        out[key] = value
    return out


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def reduce(per_sample: torch.Tensor, sample_weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if sample_weight is not None:
        per_sample = per_sample * sample_weight.to(per_sample.dtype)
    if reduction == "none":
        return per_sample
    total = per_sample.sum()
    return total if reduction == "sum" else total / const(float(per_sample.shape[0]), total)


def mean_nonbatch(elementwise: torch.Tensor) -> torch.Tensor:
    """Per-sample mean over every non-batch axis (a 1-D input is one element per sample).

    Written as the sum divided by M, which is how ``mean`` computes it (the same values): the
    backward of ``sum`` hands an *expanded* view of the per-sample cotangent to the elementwise
    op's backward, while ``mean``'s backward materializes an input-sized ``g / M`` first (one
    allocation and one pass more: half the time of MSE's fwd+bwd at ``seg`` on CPU)."""
    if elementwise.dim() == 1:
        return elementwise
    return elementwise.flatten(1).sum(dim=1) / const(float(elementwise[0].numel()), elementwise)


def clip(x: torch.Tensor, lo=None, hi=None) -> torch.Tensor:
    r"""``min(max(x, lo), hi)`` (either bound may be ``None``) with the spec's subgradient: 1 on
    the closed interval ``[lo, hi]`` (a value exactly on a bound takes the identity branch) and 0
    outside, as ``tf.clip_by_value``'s gradient is.

    ``torch.clamp``'s gradient at a bound is not part of its contract: torch 2.13 passes it, torch
    2.14 gives 0 (Python-number bounds) or 1/2 (tensor bounds) there, which moved our gradients at
    the spec's edge cases. Two ``where`` select the bound strictly outside, so the value is
    ``torch.clamp``'s and the gradient the same on every torch. ``lo``/``hi``: Python numbers or
    0-d tensors of ``x``'s dtype.
    """
    if lo is not None:
        x = torch.where(x < lo, lo, x)
    if hi is not None:
        x = torch.where(x > hi, hi, x)
    return x


_CONSTANTS: dict = {}
_CONSTANTS_LIMIT = 1024


def _keep_constant(key, t: torch.Tensor) -> torch.Tensor:
    """Store the constant ``t`` under ``key`` (the cache is emptied when it reaches its limit) and return
    it; constants are only ever read."""
    if len(_CONSTANTS) >= _CONSTANTS_LIMIT:
        _CONSTANTS.clear()
    _CONSTANTS[key] = t
    return t


def const(value: float, like: torch.Tensor):
    """``value`` as a cached 0-d CPU tensor of ``like``'s dtype, for an elementwise op with ``like``.

    A Python number as an operand costs torch a wrapped-number tensor per call (at 256×10 ``x *
    0.5`` takes twice as long as ``x * y``); a 0-d CPU tensor is a scalar for an operand on any
    device (no copy, no synchronization) and is made once. Constants are only ever read. Under
    ``torch.compile`` the number itself (the compiler folds it)."""
    if _compiling():
        return value
    key = (value, like.dtype)
    t = _CONSTANTS.get(key)
    return t if t is not None else _keep_constant(key, torch.tensor(value, dtype=like.dtype))


def const_column(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    """``values`` as a cached ``(len(values), 1)`` tensor of ``like``'s dtype and device: one constant per
    row of ``like`` (unlike :func:`const`'s scalars, it lives on the device), made once per (values,
    dtype, device). Under ``torch.compile`` a fresh tensor (the compiler folds it)."""
    if _compiling():
        return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(-1, 1)
    key = ("column", values, like.dtype, like.device)
    t = _CONSTANTS.get(key)
    return t if t is not None else \
        _keep_constant(key, torch.tensor(values, dtype=like.dtype).reshape(-1, 1).to(like.device))


def one_minus(y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - y`` (into ``out`` when given) with the cached constant of :func:`const`."""
    one = const(1.0, y)
    if isinstance(one, float):  # compiling: the number itself
        return torch.rsub(y, one) if out is None else torch.mul(y, -1.0, out=out).add_(one)
    return torch.sub(one, y) if out is None else torch.sub(one, y, out=out)


def with_total(total: Callable) -> Callable:
    """Give a per-sample function ``per_sample(x, y, **params) -> (N,)`` its reduced form
    ``total(x, y, mean, **params)``: ``Σ_i ℓ_i / N`` when ``mean`` (``reduction="mean"``), else
    ``Σ_i ℓ_i`` (``"sum"``), a 0-d tensor, which :class:`LossCall` uses without sample weights
    for a non-empty input: the per-sample vector, its reduction and their backward nodes are not
    built (the same value up to rounding: e.g. one sum over every element instead of a sum of
    per-sample means)."""

    def attach(per_sample: Callable) -> Callable:
        per_sample.total = total
        return per_sample

    return attach


_TensorCache = dict  # key -> (source tensor, its version, the cast tensor)


def _cast_param(cache: _TensorCache, key, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` on ``like``'s device and dtype, converted once per (device, dtype) and reused
    while ``value`` is the same tensor with the same contents (its version counter): a constant
    vector parameter costs no host→device copy and no cast per call. Tensors requiring grad are
    converted every call (the gradient flows through the conversion)."""
    if value.requires_grad or torch.compiler.is_compiling():
        return value.to(device=like.device, dtype=like.dtype)
    k = (key, like.device, like.dtype)
    hit = cache.get(k)
    if hit is not None and hit[0] is value and hit[1] == value._version:
        return hit[2]
    out = value.to(device=like.device, dtype=like.dtype)
    cache[k] = (value, value._version, out)
    return out


def _batch_statistic_total(per_sample: Callable) -> Callable:
    """The reduced form of a batch statistic (:meth:`CheckedCall.finish`'s call of it without sample
    weights, "mean" its only reduction): ``total(x, y, mean, **params)``, as :func:`with_total` gives."""

    def total(x, y, mean, **params):
        return per_sample(x, y, sample_weight=None, **params)

    return total


_F32, _F64 = torch.float32, torch.float64
#: the kinds of call :meth:`LossCall._accepts` checks on its short path (``InputChecker`` pair / label /
#: single bounds)
_PAIR, _LABELS, _SINGLE = "pair", "labels", "single"


class LossCall(CheckedCall):
    """One loss configuration (entry, validated params, reduction, validate), worked out once:
    the loss objects build it at construction and the functional forms keep one per plain
    configuration, so a call does only what depends on its tensors:

    shapes (always) → data values (``validate``, CPU tensors; :mod:`spec.validation`) → the
    compute dtype → per-sample loss with autocast off → ``sample_weight`` and ``reduction``, or
    the loss's reduced form (:func:`with_total`) for "mean"/"sum" without sample weights.

    ``vectors``: the array parameters as tensors (the module's buffers, which follow ``.to()``);
    ``tensors``: parameters given as tensors to the functional form (gradients flow to them)."""

    __slots__ = ("_cache", "_kind", "_bounds_x", "_bounds_y", "_deferred", "_total", "_mean", "_shape_ok",
                 "_kwargs_hit")

    def __init__(self, entry, per_sample: Callable, params: Mapping[str, Any], reduction: str, validate: bool):
        super().__init__(entry, per_sample, params, reduction, validate)
        self._cache: _TensorCache = {}
        # the last prediction shape the entry's ``check_shapes`` passed (a function of the shape and the
        # fixed parameters: a training loop's every call has the same shape, checked once)
        self._shape_ok = None
        # the last call's keyword arguments with its vector parameters (:meth:`kwargs`)
        self._kwargs_hit = None
        # the valid call's short path (:meth:`_accepts`) and the bounds it reads: an entry whose whole check
        # of a same-shape pair is the bounds of each (``pair_bounds``), of a class-index call the
        # prediction's bounds and the labels' range (``label_bounds``), of a single-input call the
        # prediction's bounds (``single_bounds``)
        check = self.check
        pair, labels, single = check.pair_bounds, check.label_bounds, check.single_bounds
        self._kind = _PAIR if pair is not None else _LABELS if labels is not None else \
            _SINGLE if single is not None else None
        self._bounds_x = pair[0] if pair is not None else labels if labels is not None else single
        self._bounds_y = pair[1] if pair is not None else None
        # the arguments whose finiteness the loss's own value shows (one read of the result in place of
        # a reduction of the argument: ``InputChecker.result_decides``)
        self._deferred = check.result_decides
        # the reduced form an accepted call of a non-empty input goes to (:meth:`finish`'s choice, made once;
        # a batch statistic's own value without sample weights)
        self._total = _batch_statistic_total(per_sample) if self.batch_statistic else \
            self.total if reduction != "none" else None
        self._mean = reduction == "mean"

    as_vector = staticmethod(torch.as_tensor)  # array parameters as tensors (converted once)

    def kwargs(self, x: torch.Tensor, vectors: Mapping[str, torch.Tensor] | None = None,
               tensors: Mapping[str, torch.Tensor] | None = None) -> dict:
        """The loss's keyword arguments for ``x``: the scalars, the vector parameters on x's device and
        dtype (``vectors``: the module's buffers, a mapping holding at least those names; else this
        configuration's own), and ``tensors`` (functional parameters given as tensors) converted. The
        dict of the last call is reused while its vector tensors are the same tensors, unchanged
        (:func:`_cast_param`'s rule) and x's dtype and device: no dict and no conversion per step."""
        if not self.vectors and not tensors:
            return self.scalars
        sources = self.vectors if vectors is None else vectors
        hit = self._kwargs_hit
        if hit is not None and not tensors and hit[0] is x.dtype and hit[1] == x.device:
            for key, value, version in hit[2]:
                if sources[key] is not value or value._version != version:
                    break
            else:
                return hit[3]
        out = dict(self.scalars)
        for key in self.vectors:
            out[key] = _cast_param(self._cache, key, sources[key], x)
        for key, value in (tensors or {}).items():
            out[key] = value.to(device=x.device, dtype=x.dtype)
        if not tensors and not _compiling() and not any(sources[key].requires_grad for key in self.vectors):
            self._kwargs_hit = (x.dtype, x.device, tuple((key, sources[key], sources[key]._version)
                                                         for key in self.vectors), out)
        return out

    def _accepts(self, input, target, sample_weight) -> bool:
        """The valid call's short path: True when the full check (:class:`spec.validation.InputChecker`)
        would pass, found with fewer steps, for the common call of an entry whose whole check is its
        shape rules and the bounds of its arrays (``pair_bounds``: a same-shape target; ``label_bounds``:
        an integer class-index target of the entry's target shape, labels in [0, C - 1];
        ``single_bounds``: no target): no sample weight, the entry's ``check_shapes``, floating values
        within their bounds (one ``sum`` for an unbounded tensor, one ``aminmax`` for a bounded one) or
        not read (``validate=False``, or an accelerator outside :func:`sync_value_checks`). An
        unbounded argument whose NaN or ±inf makes the loss non-finite (``InputChecker.result_decides``)
        is not read here: the verdict is then :data:`RESULT_DECIDES`, and :meth:`__call__` reads the
        loss once instead. False sends the call through the full check, which raises with the spec's
        message or passes. Written flat (one frame but the reads): it runs on every training step."""
        kind = self._kind
        if kind is None or sample_weight is not None or not isinstance(input, torch.Tensor):
            return False
        shape = input.shape
        if not shape or _compiling():
            return False
        if kind is _PAIR:
            if not isinstance(target, torch.Tensor) or target.shape != shape:
                return False
        elif kind is _LABELS:
            if not isinstance(target, torch.Tensor) or len(shape) < 2 or not _is_integer(target):
                return False
            expected, got = self.check.target_shape(tuple(shape)), target.shape
            if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
                return False  # (a None dimension of the expected shape takes any length: ctc's label rows)
        elif target is not None:
            return False
        check = self.check
        if check.check_shapes is not None and shape != self._shape_ok:
            check.check_shapes(check.loss, check.params, shape)  # raises as the full check would
            self._shape_ok = shape
        if not self.validate:
            return True
        if not _on_host(input):
            return not _SYNC_CHECKS.get()  # an accelerator: no read (inside the block, the full check reads)
        if not (input.is_floating_point() and input.numel()):
            return False
        deferred_x, deferred_y = self._deferred
        if not deferred_x and not _host_within(input, *self._bounds_x):
            return False
        if kind is _PAIR:
            if not (target.is_floating_point() and target.numel()):
                return False
            if not deferred_y and not _host_within(target, *self._bounds_y):
                return False
            return RESULT_DECIDES if deferred_x or deferred_y else True
        if kind is _LABELS and not (target.numel() and _host_within(target, 0.0, float(shape[-1] - 1))):
            return False
        return RESULT_DECIDES if deferred_x else True

    def __call__(self, input, target, sample_weight, tensors=None, vectors=None) -> torch.Tensor:
        verdict = self._accepts(input, target, sample_weight)
        if verdict:
            dtype = input.dtype
            total = self._total
            if (total is not None and tensors is None and (dtype is _F32 or dtype is _F64)
                    and (target is None or target.dtype is dtype or self._kind is _LABELS)
                    and input.numel() and not torch.is_autocast_enabled("cpu" if input.is_cpu else input.device.type)):
                # the common call's compute, flat: :meth:`_compute` and :meth:`finish` for a float32 /
                # float64 input, a target of its dtype (or class indices) and the loss's reduced form
                kwargs = self.scalars if vectors is None and not self.vectors else self.kwargs(input, vectors)
                out = total(input, target, self._mean, **kwargs)
            else:
                out = self._compute(input, target, sample_weight, tensors, vectors)
            if verdict is RESULT_DECIDES and not _finite_result(out):
                # a non-finite argument, or an overflow: the full check decides
                self.check(input, target, sample_weight, OPS, self.validate)
            return out
        if not isinstance(input, torch.Tensor):
            input = as_tensor(input)
        if target is not None and not isinstance(target, torch.Tensor):
            target = as_tensor(target, input.device)
        if sample_weight is not None and not isinstance(sample_weight, torch.Tensor):
            sample_weight = as_tensor(sample_weight, input.device)
        self.check(input, target, sample_weight, OPS, self.validate)
        return self._compute(input, target, sample_weight, tensors, vectors)

    def _compute(self, input, target, sample_weight, tensors, vectors) -> torch.Tensor:
        """The call after its checks: the compute dtype, autocast off, :meth:`finish`."""
        dtype = input.dtype
        if dtype is not torch.float32 and dtype is not torch.float64:
            dtype = torch.float32
            input = input.to(dtype)
        y = target
        if target is not None and target.dtype is not dtype and not (self.class_targets and _is_integer(target)):
            y = target.to(dtype)
        kwargs = self.scalars if vectors is None and tensors is None and not self.vectors else \
            self.kwargs(input, vectors, tensors)
        device_type = "cpu" if input.is_cpu else input.device.type
        if torch.is_autocast_enabled(device_type):
            # autocast off inside the loss (entering the context costs ~20 µs: only when it is on)
            with torch.autocast(device_type=device_type, enabled=False):
                return self.finish(input, y, sample_weight, kwargs)
        return self.finish(input, y, sample_weight, kwargs)

    # the tensor ops of :meth:`spec.validation.CheckedCall.finish`
    reduce = staticmethod(reduce)
    num_elements = staticmethod(torch.Tensor.numel)
    cast = staticmethod(torch.Tensor.to)


#: the checked configuration of each functional call's plain parameters (checked once)
_PLANS = CallPlans(LossCall, tensor_types=(torch.Tensor,), split=split_params)

#: ``apply(name, per_sample, input, target, sample_weight, params, reduction, validate)``: one
#: functional call under the contract (:meth:`spec.validation.CallPlans.apply`)
apply = _PLANS.apply
