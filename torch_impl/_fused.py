"""Closed-form ``torch.autograd.Function``s: the fast path of the losses whose gradient has a
cheap closed form (the speed targets of ``BENCHMARKS.md``).

A closed form ``fn(x, *args, need_grad) -> (loss, elementwise gradient or None)`` computes the
loss and, when asked, ``d(Σ loss)/dx`` in one forward pass; ``loss`` is elementwise (x's shape:
the per-sample loss is its mean over the non-batch axes, ``per_element_mean=True``) or already
per sample (``(N,)``, ``per_element_mean=False``). :func:`fused_function` wraps it in an
``autograd.Function`` returning the per-sample loss, :func:`fused_total` in one returning the
reduced loss ``c · Σ_i ℓ_i`` (``reduction="mean"``/``"sum"`` without sample weights: no
per-sample vector, no reduction nodes in the graph). Both save only the gradient (the one
input-sized buffer kept for backward) and scale it by the cotangent in backward; :func:`run_fused`
and :func:`run_fused_total` call them when ``x`` needs a gradient and the closed form alone
otherwise. The autograd path of each loss stays the reference implementation for what the
Functions cannot do (:func:`needs_fused_grad`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._core import _compiling, const, with_total

__all__ = ["needs_fused_grad", "fused_function", "fused_total", "run_fused", "run_fused_total", "closed_form_loss",
           "with_c_apply", "apply_eager"]

_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)
_C_APPLY = torch._C._FunctionBase.__dict__["apply"]
_unwrap_if_dead = torch._C._functorch.unwrap_if_dead


def with_c_apply(function: type) -> type:
    """``function`` (an ``autograd.Function`` without ``setup_context``) with ``c_apply``, the C++ ``apply``
    of its class, which :func:`apply_eager` calls."""
    function.c_apply = _C_APPLY.__get__(None, function)
    return function


def apply_eager(function: type, x: torch.Tensor, *args) -> torch.Tensor:
    """``function.apply(x, *args)`` without the Python layer of ``torch.autograd.Function.apply`` (~3 µs a
    call, a tenth of a small closed-form call), for a :func:`with_c_apply` class, where neither
    ``torch.compile`` (it traces ``function.apply`` as a Function) nor a ``torch.func`` transform
    (:func:`needs_fused_grad`: that layer would route the call to functorch) is active: the callers
    check. The prediction is unwrapped as that layer does (a tensor left dead by a finished transform,
    so that the gradient reaches the tensor it wraps); the other arguments need no gradient, and ops
    unwrap a dead tensor themselves."""
    return function.c_apply(_unwrap_if_dead(x), *args)


def needs_fused_grad(x, *others) -> bool:
    """The closed-form Functions differentiate w.r.t. the prediction only: they are used when it
    is the only tensor that needs a gradient (a pos_weight / alpha / target requiring grad takes
    the autograd path, so parameter gradients keep working), and outside ``torch.func``
    transforms (``grad``, ``vmap``, ``jvp``: the autograd path composes with them)."""
    if _functorch_active():
        return False
    for t in others:
        if isinstance(t, torch.Tensor) and t.requires_grad:
            return False
    return True


def _per_sample(loss: torch.Tensor, per_element_mean: bool) -> torch.Tensor:
    if not per_element_mean or loss.dim() == 1:
        return loss
    return loss.flatten(1).sum(dim=1) / const(float(loss[0].numel()), loss)


def _total_scale(x: torch.Tensor, mean: bool, per_element_mean: bool) -> float:
    """``c`` of ``c · Σ loss``: ``1/N`` ("mean") or 1 ("sum"), divided by the M elements of a
    sample when the loss is elementwise (x non-empty)."""
    n = x.shape[0]
    m = x.numel() // n if per_element_mean else 1
    return 1.0 / (n * m) if mean else 1.0 / m


def _once_differentiable(backward: Callable) -> Callable:
    """``torch.autograd.function.once_differentiable`` without its cost on the usual path: a backward
    run without ``create_graph`` (grad mode off, as the engine runs it) is called directly; with
    ``create_graph=True`` the decorator's wrapping applies (a second derivative raises instead of
    being silently wrong). The decorator's ``no_grad`` context costs ~5 µs a call."""
    wrapped = torch.autograd.function.once_differentiable(backward)

    def run(ctx, *grads):
        if not torch.is_grad_enabled():
            return backward(ctx, *grads)
        return wrapped(ctx, *grads)

    run.__doc__ = backward.__doc__
    return run


def fused_function(fn: Callable, name: str, *, per_element_mean: bool = True) -> type:
    """A ``torch.autograd.Function`` for a closed form ``fn(x, *args, need_grad) -> (loss,
    elementwise gradient)``: forward computes both and returns the per-sample loss, saves only the
    gradient, backward scales it by the per-sample cotangent (and by ``1/M``, M elements per
    sample, when ``per_element_mean``: ``fn`` then returns the elementwise loss and the gradient of
    its sum). Not twice differentiable (``once_differentiable`` raises instead of returning a
    silently wrong second derivative)."""

    def forward(ctx, x, *args):
        out, grad = fn(x, *args, True)
        ctx.save_for_backward(grad)
        ctx.n_args = len(args)
        ctx.scale = 1.0 / x[0].numel() if per_element_mean and x.dim() > 1 else 1.0
        return _per_sample(out, per_element_mean)

    @_once_differentiable
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        if ctx.scale != 1.0:
            g = g * const(ctx.scale, g)
        return (grad * g.reshape(g.shape + (1,) * (grad.dim() - 1)),) + (None,) * ctx.n_args

    def plain(x, *args):
        return _per_sample(fn(x, *args, False)[0], per_element_mean)

    return with_c_apply(type(name, (torch.autograd.Function,),
                             {"forward": staticmethod(forward), "backward": staticmethod(backward),
                              "fn": staticmethod(fn), "plain": staticmethod(plain), "__doc__": fn.__doc__}))


def _reduced(out: torch.Tensor, x: torch.Tensor, mean: bool, per_element_mean: bool) -> tuple:
    """``(c · Σ out, c)``, ``c`` from :func:`_total_scale`: the mean over every element of an elementwise
    loss for "mean" (``c = 1 / numel``: one op), else the sum, scaled when ``c != 1``."""
    c = _total_scale(x, mean, per_element_mean)
    if mean and per_element_mean:
        return out.mean(), c
    return (out.sum(), c) if c == 1.0 else (out.sum().mul_(const(c, x)), c)


def fused_total(fn: Callable, name: str, *, per_element_mean: bool = True) -> type:
    """The reduced twin of :func:`fused_function`: ``apply(x, mean, *args)`` returns ``c · Σ loss``
    (``reduction="mean"`` when ``mean``, else ``"sum"``; :func:`_reduced`) as a 0-d tensor. The
    gradient is saved as ``fn`` gives it and backward multiplies it by the scalar cotangent times
    ``c`` (a 0-d product): one elementwise op in all, none in forward (the same gradient, bit for bit,
    as scaling it in forward, for a cotangent of 1 or any power of two: a loss scaler's)."""

    def forward(ctx, x, mean, *args):
        out, grad = fn(x, *args, True)
        total, c = _reduced(out, x, mean, per_element_mean)
        ctx.save_for_backward(grad)
        ctx.scale = const(c, x) if c != 1.0 else None
        ctx.nones = (None,) * (len(args) + 1)
        return total

    @_once_differentiable
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return (grad * (g * ctx.scale if ctx.scale is not None else g), *ctx.nones)

    def plain(x, mean, *args):
        total = fn(x, *args, False)[0].sum()
        c = _total_scale(x, mean, per_element_mean)
        return total.mul_(const(c, x)) if c != 1.0 else total

    return with_c_apply(type(name, (torch.autograd.Function,),
                             {"forward": staticmethod(forward), "backward": staticmethod(backward),
                              "fn": staticmethod(fn), "plain": staticmethod(plain), "__doc__": fn.__doc__}))


def run_fused(function: type, x: torch.Tensor, *args) -> torch.Tensor:
    """The per-sample loss through ``function`` (closed-form backward) when x needs a gradient,
    else the same closed form without the gradient."""
    if torch.is_grad_enabled() and x.requires_grad:
        if _compiling():
            return function.apply(x, *args)
        return apply_eager(function, x, *args)
    return function.plain(x, *args)


def run_fused_total(function: type, x: torch.Tensor, mean: bool, *args) -> torch.Tensor:
    """The reduced loss through the :func:`fused_total` ``function`` when x needs a gradient, else
    the same closed form without the gradient."""
    if torch.is_grad_enabled() and x.requires_grad:
        if _compiling():
            return function.apply(x, mean, *args)
        return apply_eager(function, x, mean, *args)
    return function.plain(x, mean, *args)


def closed_form_loss(function: type, total_function: type, autograd: Callable, params: tuple[str, ...] = ()) -> Callable:
    """The per-sample form (with its reduced form, :func:`torch_impl._core.with_total`) of an elementwise
    loss that has a closed-form Function pair (:func:`fused_function`, :func:`fused_total`), each taking
    ``(x, y, *[params[k] for k in params])``; ``autograd`` (a per-sample form with ``.total``) where
    the Functions do not apply (:func:`needs_fused_grad`: a target that needs a gradient, torch.func)."""

    def total(x, y, mean, **kwargs):
        if needs_fused_grad(x, y):
            return run_fused_total(total_function, x, mean, y, *(kwargs[k] for k in params))
        return autograd.total(x, y, mean, **kwargs)

    @with_total(total)
    def per_sample(x, y, **kwargs):
        if needs_fused_grad(x, y):
            return run_fused(function, x, y, *(kwargs[k] for k in params))
        return autograd(x, y, **kwargs)

    return per_sample
