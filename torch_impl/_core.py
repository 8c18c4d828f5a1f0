"""The torch half of the call contract: validation adapter, dtype rules, reduction.

Every functional loss goes through :func:`apply`:
validate (shapes always; data eagerly when ``validate``) → cast to the compute dtype → per-sample
loss with autocast disabled → ``sample_weight`` and ``reduction``.

dtype rule (same as Keras side): float64 predictions are computed and returned in float64; every
other dtype (float32, bfloat16, float16, ints) is computed and returned in float32, also under
``torch.autocast`` (the framework's convention for losses).
"""
from __future__ import annotations

import contextlib
import math

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

import spec as _spec
from spec.validation import check_inputs
from spec.validation import split_params as _split_params


class TorchOps:
    """The :class:`spec.validation.ArrayOps` adapter for torch tensors."""

    def shape(self, x):
        return tuple(int(d) for d in x.shape)

    def can_read_values(self):
        return not torch.compiler.is_compiling()

    def has_nonfinite(self, x):
        """One detached ``aminmax`` (NaN propagates to both, inf shows in one): no autograd
        record, no full-size temporaries, one host sync."""
        if not x.is_floating_point() or x.numel() == 0:
            return False
        lo, hi = torch.aminmax(x.detach())
        return not all(math.isfinite(v) for v in torch.stack([lo, hi]).tolist())

    def min_max(self, x):
        lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()  # one host sync
        return float(lo), float(hi)

    def nonfinite_min_max(self, x):
        """NaN/inf test and the extremes from one detached ``aminmax`` and one host sync (what
        ``check_inputs`` asks of each floating tensor; ``None`` extremes for the others)."""
        if not x.is_floating_point() or x.numel() == 0:
            return False, None, None
        lo, hi = self.min_max(x)
        return not (math.isfinite(lo) and math.isfinite(hi)), lo, hi

    def row_sum_range(self, x):
        x = x.detach()
        s = x.to(torch.promote_types(x.dtype, torch.float32)).sum(dim=-1)
        lo, hi = torch.stack(torch.aminmax(s)).tolist()  # one host sync
        return float(lo), float(hi)

    def eps(self, x):
        return float(torch.finfo(x.dtype).eps) if x.is_floating_point() else 0.0

    def all_integral(self, x):
        if not x.is_floating_point():
            return True
        x = x.detach()
        return bool((x == torch.round(x)).all())


OPS = TorchOps()


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
    return total if reduction == "sum" else total / per_sample.shape[0]


def mean_nonbatch(elementwise: torch.Tensor) -> torch.Tensor:
    """Per-sample mean over every non-batch axis (a 1-D input is one element per sample).

    Written as the sum divided by M, which is how ``mean`` computes it (the same values): the
    backward of ``sum`` hands an *expanded* view of the per-sample cotangent to the elementwise
    op's backward, while ``mean``'s backward materializes an input-sized ``g / M`` first (one
    allocation and one pass more: half the time of MSE's fwd+bwd at ``seg`` on CPU)."""
    if elementwise.dim() == 1:
        return elementwise
    return elementwise.flatten(1).sum(dim=1) / elementwise[0].numel()


def apply(name: str, per_sample: Callable, input, target, sample_weight, params: Mapping[str, Any],
          reduction: str, validate: bool, *, checked: bool = False) -> torch.Tensor:
    """Run one loss call under the contract. ``checked``: params/reduction already validated."""
    entry = _spec.get(name)
    input = as_tensor(input)
    target = None if target is None else as_tensor(target, input.device)
    sample_weight = None if sample_weight is None else as_tensor(sample_weight, input.device)
    plain, tensors = split_params(params)
    if not checked:
        plain, reduction, validate = entry.validate_config(dict(plain, reduction=reduction, validate=validate))
    check_inputs(entry, plain, input, target, sample_weight, OPS, validate)
    dtype = compute_dtype(input)
    # autocast off inside the loss; entering the context costs ~20 µs a call, so only when it is on
    off = (torch.autocast(device_type=input.device.type, enabled=False)
           if torch.is_autocast_enabled(input.device.type) else contextlib.nullcontext())
    with off:
        x = input.to(dtype)
        # class-index targets (entries with a target_shape rule) stay integers; every other
        # target, integer one-hot labels included, joins the compute dtype
        keep = entry.target_shape is not None and target is not None and _is_integer(target)
        y = None if target is None else (target if keep else target.to(dtype))
        kwargs = params_as_tensors({**plain, **tensors}, x)
        if entry.is_batch_statistic(plain):
            w = None if sample_weight is None else sample_weight.to(dtype)
            return per_sample(x, y, sample_weight=w, **kwargs)
        return reduce(per_sample(x, y, **kwargs), sample_weight, reduction)
