"""Closed-form ``torch.autograd.Function``s: the fast path of the losses whose gradient has a
cheap closed form (issue 7).

A closed form ``fn(x, *args, need_grad) -> (per-sample loss, elementwise gradient or None)``
computes the loss and, when asked, ``d(Σ_i ℓ_i)/dx`` in one forward pass. :func:`fused_function`
wraps it in an ``autograd.Function`` that saves only that gradient (the one input-sized buffer
kept for backward) and scales it by the per-sample cotangent in backward; :func:`run_fused` calls
the Function when ``x`` needs a gradient and the closed form alone otherwise. The autograd path
of each loss stays the reference implementation for what the Function cannot do
(:func:`needs_fused_grad`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["needs_fused_grad", "fused_function", "run_fused"]

_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)


def needs_fused_grad(x, *others) -> bool:
    """The closed-form Functions differentiate w.r.t. the prediction only: they are used when it
    is the only tensor that needs a gradient (a pos_weight / alpha / target requiring grad takes
    the autograd path, so parameter gradients keep working), and outside ``torch.func``
    transforms (``grad``, ``vmap``, ``jvp``: the autograd path composes with them)."""
    if _functorch_active():
        return False
    return not any(isinstance(t, torch.Tensor) and t.requires_grad for t in others)


def fused_function(fn: Callable, name: str, *, per_element_mean: bool = True) -> type:
    """A ``torch.autograd.Function`` for a closed form ``fn(x, *args, need_grad) -> (per-sample
    loss, elementwise gradient)``: forward computes both, saves only the gradient, backward scales
    it by the per-sample cotangent (and by ``1/M``, M elements per sample, when
    ``per_element_mean``: ``fn`` then returns the gradient of the elementwise sum, as the
    elementwise losses do). Not twice differentiable (``once_differentiable`` raises instead of
    returning a silently wrong second derivative)."""

    def forward(ctx, x, *args):
        out, grad = fn(x, *args, True)
        ctx.save_for_backward(grad)
        ctx.n_args = len(args)
        ctx.scale = 1.0 / x[0].numel() if per_element_mean and x.dim() > 1 else 1.0
        return out

    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        if ctx.scale != 1.0:
            g = g * ctx.scale
        return (grad * g.reshape(g.shape + (1,) * (grad.dim() - 1)),) + (None,) * ctx.n_args

    return type(name, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward),
                 "fn": staticmethod(fn), "__doc__": fn.__doc__})


def run_fused(function: type, x: torch.Tensor, *args) -> torch.Tensor:
    """The per-sample loss through ``function`` (closed-form backward) when x needs a gradient,
    else the same closed form without the gradient."""
    if torch.is_grad_enabled() and x.requires_grad:
        return function.apply(x, *args)
    return function.fn(x, *args, False)[0]
