"""Regression losses, torch twins of :mod:`spec.regression`: ``mean_squared_error``,
``asymmetric_exponential``, ``mean_absolute_error``, ``huber``, ``log_cosh``, ``mean_absolute_percentage_error``,
``mean_squared_logarithmic_error``, ``poisson`` and ``cosine_similarity``. Argument order is torch's: ``(input, target)``; targets are real.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spec.api import elementwise_per_sample

from ._core import apply, clip, const, host_min_at_least, mean_nonbatch, with_total
from ._fused import closed_form_loss, fused_function, fused_total, needs_fused_grad, run_fused, run_fused_total

__all__ = ["mean_squared_error", "asymmetric_exponential", "mean_absolute_error", "huber", "log_cosh",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "poisson", "cosine_similarity"]


def _elementwise_total(elementwise: torch.Tensor, mean: bool) -> torch.Tensor:
    """``Σ_i ℓ_i`` (over N when ``mean``) of an elementwise loss whose per-sample value is the mean
    over the M non-batch elements: its sum over N·M (or M) elements; ``sum``'s backward hands an
    expanded view to the elementwise backward (see :func:`torch_impl._core.mean_nonbatch`)."""
    n = elementwise.shape[0]
    count = elementwise.numel() if mean else elementwise.numel() // n
    total = elementwise.sum()
    return total.div_(const(float(count), total)) if count != 1 else total


def _elementwise_loss(elementwise):
    """The per-sample form of an elementwise loss, with its reduced form (written once:
    :func:`spec.api.elementwise_per_sample`)."""
    return elementwise_per_sample(elementwise, mean_nonbatch=mean_nonbatch, elementwise_total=_elementwise_total)


def _aten_loss(loss_fn):
    """The per-sample form of an ATen elementwise loss ``loss_fn(x, y, reduction=..., **params)``
    (``F.mse_loss``, ``F.l1_loss``, ``F.huber_loss``: one fused kernel each way), whose reduced
    form for ``"mean"`` is ``loss_fn``'s own mean over every element (= Σ_i ℓ_i / N)."""

    def total(x, y, mean, **params):
        if mean:
            return loss_fn(x, y, **params)
        return _elementwise_total(loss_fn(x, y, reduction="none", **params), False)

    @with_total(total)
    def per_sample(x, y, **params):
        return mean_nonbatch(loss_fn(x, y, reduction="none", **params))

    return per_sample


# ATen's fused kernel each way ((x - y)^2 forward, 2 (x - y) g backward): the same values as
# torch.square(y - x) and its autograd, in one pass instead of two or three
_mean_squared_error_per_sample = _aten_loss(F.mse_loss)


def mean_squared_error(input, target, *, sample_weight=None, reduction="mean", validate=True):
    r"""Mean squared error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j (y_{ij} - \hat y_{ij})^2

    Stability: plain squares (no cancellation beyond the subtraction). Computed by
    ``F.mse_loss(input, target, reduction="none")`` (one fused kernel each way), so equal to
    ``F.mse_loss(input, target)`` for ``reduction="mean"`` without sample weights.

    Args:
        input: predictions ``(N, ...)``. target: real targets, same shape.
        sample_weight: ``(N,)`` non-negative weights.
        reduction: ``"mean"`` (Σ w ℓ / N), ``"sum"`` or ``"none"`` (w ℓ per sample).
        validate: check data values (NaN/inf); shapes are always checked.
    """
    return apply("mean_squared_error", _mean_squared_error_per_sample, input, target, sample_weight, {},
                 reduction, validate)


# |expm1(ŷ - y)|: torch.abs backpropagates sign(0) = 0 at ŷ = y (the spec's subgradient)
_asymmetric_exponential_per_sample = _elementwise_loss(lambda x, y: torch.abs(torch.expm1(x - y)))


def asymmetric_exponential(input, target, *, sample_weight=None, reduction="mean", validate=True):
    r"""Asymmetric exponential loss (the cost-sensitive problem, docs/problems.md): over-prediction costs ``e^{ŷ-y} - 1``,
    under-prediction at most 1.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \left|1 - e^{-(y_{ij} - \hat y_{ij})}\right|
               = \frac{1}{M}\sum_j \left|\mathrm{expm1}(\hat y_{ij} - y_{ij})\right|

    Stability: ``torch.expm1`` — no cancellation near ``y = ŷ`` and none of the cost-sensitive problem's
    ``exp(-log(exp(d)))`` intermediate overflow (NaN gradient for ``d > 88.7`` in float32). The
    value overflows only where the true loss does (``ŷ - y > 88.7`` in float32, ``> 709.8`` in
    float64). Gradient ``sign(ŷ - y) e^{ŷ - y} / M``, exactly 0 at ``y = ŷ``.

    Args: as :func:`mean_squared_error`.
    """
    return apply("asymmetric_exponential", _asymmetric_exponential_per_sample, input, target, sample_weight,
                 {}, reduction, validate)


# ATen's l1 kernel: |x - y| forward, sign(x - y) g backward (sign(0) = 0: the spec's subgradient)
_mean_absolute_error_per_sample = _aten_loss(F.l1_loss)


def mean_absolute_error(input, target, *, sample_weight=None, reduction="mean", validate=True):
    r"""Mean absolute error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \left|y_{ij} - \hat y_{ij}\right|

    Computed by ``F.l1_loss(input, target, reduction="none")``, so equal to ``torch.nn.L1Loss()``
    for ``reduction="mean"`` without sample weights. Gradient ``sign(ŷ - y) / M``, exactly 0 at
    ``ŷ = y``.

    Args: as :func:`mean_squared_error`.
    """
    return apply("mean_absolute_error", _mean_absolute_error_per_sample, input, target, sample_weight, {},
                 reduction, validate)


# ATen's huber kernel: |d| < δ quadratic, else δ (|d| - δ/2); backward clip(d, -δ, δ) g (at |d| = δ
# the linear branch: the same value δ²/2 and gradient ±δ as the spec's quadratic one)
_huber_per_sample = _aten_loss(F.huber_loss)


def huber(input, target, *, delta=1.0, sample_weight=None, reduction="mean", validate=True):
    r"""Huber loss, averaged over every non-batch axis of a sample (``d = ŷ - y``).

    .. math::
        \ell_i = \frac{1}{M}\sum_j h_\delta(\hat y_{ij} - y_{ij}),\quad
        h_\delta(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\
        \delta\left(|d| - \tfrac12\delta\right) & |d| > \delta \end{cases}

    Computed by ``F.huber_loss(input, target, reduction="none", delta=delta)``, so equal to
    ``torch.nn.HuberLoss(delta=delta)`` for ``reduction="mean"`` without sample weights;
    ``torch.nn.SmoothL1Loss(beta)`` is this loss with ``delta=beta``, divided by ``beta``. Gradient
    ``clip(ŷ - y, -δ, δ) / M`` (continuous).

    Args:
        delta: a finite float > 0, where the loss turns from quadratic to linear.
        others: as :func:`mean_squared_error`.
    """
    return apply("huber", _huber_per_sample, input, target, sample_weight, {"delta": delta}, reduction, validate)


#: beyond |d| = 40, log cosh d = |d| - log 2 + log1p(e^{-2|d|}) with e^{-80} below every dtype's rounding:
#: the loss is log cosh(40) + (|d| - 40) there, and expm1(40)² = 5.5e34 is finite in float32
_LOG_COSH_LINEAR_FROM = 40.0


def _log_cosh_closed_form(x, y, need_grad):
    """Elementwise ``log cosh(x - y)`` and, when asked, its gradient ``tanh(x - y)``, from one
    formula: ``log1p(t² / (2 + 2t)) + (|d| - c)``, ``c = min(|d|, 40)``, ``t = expm1(c)`` (cosh c - 1
    = t² / (2 + 2t) without cancellation: every digit of d²/2 near 0; no cosh: no overflow)."""
    d = torch.sub(x, y)
    a = torch.abs(d)
    t = torch.clamp_max(a, _LOG_COSH_LINEAR_FROM)  # c, then t in place
    linear = a.sub_(t)  # |d| - c
    t = t.expm1_()
    loss = torch.square(t).div_(t.add_(const(1.0, t)).mul_(const(2.0, t))).log1p_().add_(linear)
    del t, linear, a  # four input-sized buffers at most: d, |d| - c, t and the loss
    return loss, (d.tanh_() if need_grad else None)


LogCosh = fused_function(_log_cosh_closed_form, "LogCosh")
LogCoshTotal = fused_total(_log_cosh_closed_form, "LogCoshTotal")


def _log_cosh_elementwise(x, y):
    # the closed form's formula through autograd (a target that needs a gradient, torch.func): the
    # clamp's gradient is 1 up to 40 and 0 beyond (where |d| - c carries it); abs backpropagates
    # sign(0) = 0 at d = 0
    a = torch.abs(x - y)
    c = clip(a, hi=_LOG_COSH_LINEAR_FROM)
    t = torch.expm1(c)
    return torch.log1p(t * t / (t * 2.0 + 2.0)) + (a - c)


_log_cosh_per_sample = closed_form_loss(LogCosh, LogCoshTotal, _elementwise_loss(_log_cosh_elementwise))


def log_cosh(input, target, *, sample_weight=None, reduction="mean", validate=True):
    r"""Log-cosh loss, averaged over every non-batch axis of a sample (``d = ŷ - y``).

    .. math::
        \ell_i = \frac{1}{M}\sum_j \log\cosh(\hat y_{ij} - y_{ij})

    Stability: never ``cosh`` itself (it overflows for ``|d| > 89`` in float32): ``log1p(t²/(2 + 2t))
    + (|d| - c)``, ``c = min(|d|, 40)``, ``t = expm1(c)`` (every digit of ``d²/2`` near 0, no overflow).
    Gradient ``tanh(ŷ - y) / M``, in closed form (one op backward). torch has no built-in twin; Keras' is
    ``keras.losses.LogCosh``.

    Args: as :func:`mean_squared_error`.
    """
    return apply("log_cosh", _log_cosh_per_sample, input, target, sample_weight, {}, reduction, validate)


def _mape_elementwise(x, y, *, epsilon):
    # 100 |x - y| / max(|y|, ε): torch.abs backpropagates sign(0) = 0 at x = y (the spec's subgradient)
    return torch.abs(x - y) / torch.clamp_min(torch.abs(y), epsilon) * 100.0


_mean_absolute_percentage_error_per_sample = _elementwise_loss(_mape_elementwise)


def mean_absolute_percentage_error(input, target, *, epsilon=1e-7, sample_weight=None, reduction="mean",
                                   validate=True):
    r"""Mean absolute percentage error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{100}{M}\sum_j \frac{\left|y_{ij} - \hat y_{ij}\right|}{\max(|y_{ij}|, \epsilon)}

    torch.nn has no twin; equal to ``keras.losses.MeanAbsolutePercentageError()`` (``epsilon=1e-7``).
    Gradient ``100 sign(ŷ - y) / (M max(|y|, ε))``, exactly 0 at ``ŷ = y``.

    Args:
        epsilon: a finite float > 0, the smallest denominator.
        others: as :func:`mean_squared_error`.
    """
    return apply("mean_absolute_percentage_error", _mean_absolute_percentage_error_per_sample, input, target,
                 sample_weight, {"epsilon": epsilon}, reduction, validate)


def _log1p_distance(a, b):
    # |log1p(a) - log1p(b)|, a, b >= 0, in one formula: log1p(|a - b| / (1 + min(a, b))) (= log((1 + max) /
    # (1 + min)): a log1p of a non-negative number, so no cancellation anywhere, near a = b or far from it)
    return torch.log1p(torch.abs(a - b) / (torch.minimum(a, b) + 1.0))


def _msle_elementwise(x, y, *, epsilon):
    # never log(x + 1); squared, so the distance's sign is not needed; clip's gradient is 1 at x = ε (the
    # spec's subgradient on every torch: torch.clamp's is not, torch.maximum halves it)
    return torch.square(_log1p_distance(clip(x, epsilon), clip(y, epsilon)))


def _msle_closed_form(x, y, epsilon, need_grad):
    """Elementwise MSLE and, when asked, its gradient, from the formula of :func:`_msle_elementwise`
    (``a = max(ŷ, ε)``, ``b = max(y, ε)``, ``u = log1p(|a - b| / (1 + min(a, b)))``, ``ℓ = u²``):
    ``dℓ/dŷ = 2 u sign(a - b) / (1 + a)`` where ``ŷ >= ε`` (the clip's closed interval) and 0 below
    (``u = |log1p(a) - log1p(b)|``, whose derivative in a is ``sign(a - b) / (1 + a)``; 0 at a = b)."""
    a = torch.clamp_min(x, epsilon)  # NaN propagates, as through clip
    b = torch.clamp_min(y, epsilon)
    diff = torch.sub(a, b)
    u = torch.abs(diff).div_(torch.minimum(a, b).add_(const(1.0, x))).log1p_()
    del b
    loss = torch.square(u)
    if not need_grad:
        return loss, None
    grad = diff.sign_().mul_(u).mul_(const(2.0, x)).div_(a.add_(const(1.0, x)))
    return loss, grad.masked_fill_(x < epsilon, 0.0)


MeanSquaredLogarithmicError = fused_function(_msle_closed_form, "MeanSquaredLogarithmicError")
MeanSquaredLogarithmicErrorTotal = fused_total(_msle_closed_form, "MeanSquaredLogarithmicErrorTotal")
_mean_squared_logarithmic_error_per_sample = closed_form_loss(
    MeanSquaredLogarithmicError, MeanSquaredLogarithmicErrorTotal, _elementwise_loss(_msle_elementwise), ("epsilon",))


def mean_squared_logarithmic_error(input, target, *, epsilon=1e-7, sample_weight=None, reduction="mean",
                                   validate=True):
    r"""Mean squared logarithmic error, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \left(\log(1 + \max(\hat y_{ij}, \epsilon)) -
        \log(1 + \max(y_{ij}, \epsilon))\right)^2

    Stability: one formula for the distance of the clamped values ``a``, ``b``: ``log1p(|a - b| / (1 +
    min(a, b)))`` (the plain difference of two logs cancels near ``ŷ = y``); never Keras' ``log(x + 1)`` (it
    loses the digits of small x). torch.nn has no twin; ``keras.losses.MeanSquaredLogarithmicError()`` is
    ``epsilon=1e-7``. Gradient ``2 (log1p(ŷ) - log1p(max(y, ε))) / (M (1 + ŷ))`` for ``ŷ >= ε``, 0 below, in
    closed form (one ``autograd.Function``, one saved buffer).

    Args:
        epsilon: a finite float >= 0; predictions and targets below it are replaced by it.
        others: as :func:`mean_squared_error`.
    """
    return apply("mean_squared_logarithmic_error", _mean_squared_logarithmic_error_per_sample, input, target,
                 sample_weight, {"epsilon": epsilon}, reduction, validate)


def _poisson_nll(x, y, *, log_input, epsilon, full, reduction="mean"):
    # ATen's poisson_nll_loss: exp(x) - y x (log_input) or x - y log(x + eps), plus the Stirling term
    # masked to y > 1 with full
    return F.poisson_nll_loss(x, y, log_input=log_input, full=full, eps=epsilon, reduction=reduction)


_poisson_per_sample = _aten_loss(_poisson_nll)


def poisson(input, target, *, log_input=True, epsilon=1e-7, full=False, sample_weight=None, reduction="mean",
            validate=True):
    r"""Poisson negative log-likelihood of counts, averaged over every non-batch axis of a sample.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \begin{cases} e^{x_{ij}} - y_{ij} x_{ij} & \text{log\_input} \\
        \hat y_{ij} - y_{ij} \log(\hat y_{ij} + \epsilon) & \text{otherwise} \end{cases}

    Computed by ``F.poisson_nll_loss(input, target, log_input, full, eps=epsilon, reduction="none")``, so
    equal to ``torch.nn.PoissonNLLLoss(log_input, full, eps=epsilon)`` for ``reduction="mean"`` without
    sample weights; ``keras.losses.Poisson()`` is ``log_input=False`` (``epsilon=1e-7``). Gradient
    ``(e^x - y) / M`` or ``(1 - y / (ŷ + ε)) / M``.

    Args:
        log_input: the prediction is a log-rate (True, stable) or a rate >= 0 (False).
        epsilon: a finite float > 0, the shift of log(ŷ + ε) with log_input=False.
        full: add torch's Stirling term for y > 1.
        others: as :func:`mean_squared_error`; targets are counts >= 0.
    """
    return apply("poisson", _poisson_per_sample, input, target, sample_weight,
                 {"log_input": log_input, "epsilon": epsilon, "full": full}, reduction, validate)


def _unit_vectors(a, axis, epsilon):
    """``a / max(‖a‖, ε)`` along ``axis`` (spec.regression._unit_vectors): each vector divided by its largest
    |element| (detached: the unit vector does not depend on the scale; 1 for a zero vector) before the norm, so
    Σ a² neither overflows nor underflows; ``a / ε`` where ``‖a‖ < ε``. The unselected branch sees a sum of
    squares of 1 (no 0 · inf under ``where``'s zero cotangent)."""
    scale = torch.amax(torch.abs(a.detach()), dim=axis, keepdim=True)
    scale = torch.where(scale > 0.0, scale, torch.ones((), dtype=a.dtype, device=a.device))
    scaled = a / scale
    squares = torch.sum(scaled * scaled, dim=axis, keepdim=True)
    above = scale * torch.sqrt(squares.detach()) >= epsilon  # ‖a‖ >= ε: the normalizing branch (ties too)
    one = torch.ones((), dtype=a.dtype, device=a.device)
    return torch.where(above, scaled * torch.rsqrt(torch.where(above, squares, one)), a / epsilon)


def _cosine_closed_form(x, y, axis, epsilon, need_grad):
    """The per-sample loss of a float32 pair and, when asked, d(Σ ℓ)/dx, computed in float64 (every
    float32 square and product is exact there and far from overflow or underflow: no scaling needed):
    with ``N_a = max(‖a‖, ε)``, ``c = x·y / (N_x N_y)`` and ``m = [‖x‖ ≥ ε]`` (the normalizing branch,
    ties too),

    ``ℓ = -mean_k c_k``,  ``dℓ/dx = -(y / N_y - m c x / N_x) / (K N_x)`` (K vectors per sample; below
    ε the prediction is divided by ε, so only the first term remains, as in :func:`_unit_vectors`)."""
    # one float64 buffer of the input's size, in place throughout: y, then y / N_y, then its product
    # with x (summed into the cosines), then y / N_y again and, from it, the gradient
    nx = torch.linalg.vector_norm(x, dim=axis, keepdim=True, dtype=torch.float64)
    big_x = nx.clamp_min(epsilon)
    buffer = y.to(torch.float64)
    big_y = torch.linalg.vector_norm(buffer, dim=axis, keepdim=True).clamp_min_(epsilon)
    cos = torch.sum(buffer.div_(big_y).mul_(x), dim=axis, keepdim=True).div_(big_x)
    k = cos[0].numel()
    loss = torch.neg(cos.reshape(-1)) if k == 1 else cos.reshape(cos.shape[0], -1).mean(dim=1).neg_()
    loss = loss.to(x.dtype)
    if not need_grad:
        return loss, None
    if not host_min_at_least(nx, epsilon):  # m: only where a norm may be below ε
        cos.mul_((nx >= epsilon).to(cos.dtype))
    along = cos.div_(big_x)  # m c / N_x
    unit_y = torch.div(y, big_y, out=buffer)
    if k == 1:  # -(·) / N_x as (·) / (-N_x): the sign on the (N, 1) norms, not on the input-sized buffer
        grad = unit_y.addcmul_(x, along, value=-1.0).div_(big_x.neg_())
    else:
        grad = unit_y.addcmul_(x, along, value=-1.0).div_(big_x).mul_(-1.0 / k)
    return loss, grad.to(x.dtype)


CosineSimilarity = fused_function(_cosine_closed_form, "CosineSimilarity", per_element_mean=False)
CosineSimilarityTotal = fused_total(_cosine_closed_form, "CosineSimilarityTotal", per_element_mean=False)


def _uses_closed_form(x, y) -> bool:
    # float32 only: float64 has no wider type to square in (the scaled autograd form keeps it exact)
    return x.dtype is torch.float32 and x.dim() >= 2 and needs_fused_grad(x, y)


def _cosine_total(x, y, mean, *, axis, epsilon):
    axis = axis % x.dim()
    if _uses_closed_form(x, y):
        return run_fused_total(CosineSimilarityTotal, x, mean, y.to(x.dtype), axis, epsilon)
    per_sample = _cosine_autograd(x, y, axis, epsilon)
    return per_sample.mean() if mean else per_sample.sum()


def _cosine_autograd(x, y, axis, epsilon):
    # -cos along axis, the mean over the other non-batch axes
    return mean_nonbatch(-torch.sum(_unit_vectors(x, axis, epsilon) * _unit_vectors(y, axis, epsilon), dim=axis))


@with_total(_cosine_total)
def _cosine_per_sample(x, y, *, axis, epsilon):
    axis = axis % x.dim()
    if _uses_closed_form(x, y):
        return run_fused(CosineSimilarity, x, y.to(x.dtype), axis, epsilon)
    return _cosine_autograd(x, y, axis, epsilon)


def cosine_similarity(input, target, *, axis=-1, epsilon=1e-7, sample_weight=None, reduction="mean",
                      validate=True):
    r"""Negative cosine similarity along ``axis``, averaged over the other non-batch axes of a sample.

    .. math::
        \ell_i = -\frac{1}{K}\sum_k \frac{\hat y_{ik} \cdot y_{ik}}{\max(\lVert \hat y_{ik}\rVert, \epsilon)\,
        \max(\lVert y_{ik}\rVert, \epsilon)}

    Stability: float32 inputs are computed in float64, where no square of a float32 overflows or
    underflows (one ``autograd.Function`` with the closed-form gradient); float64 inputs scale each
    vector by its largest |element| before the norm (``F.cosine_similarity``'s float32 norm overflows
    past 1.8e19 and gives 0). ``-F.cosine_similarity(input, target, dim=axis,
    eps=epsilon).mean()`` is this loss with ``reduction="mean"``; ``keras.losses.CosineSimilarity(axis)`` is
    ``epsilon=1e-7``. A zero prediction vector: value 0, gradient ``-y / (K max(‖y‖, ε) ε)``.

    Args:
        axis: a non-batch axis, the vectors' (negative counts from the last).
        epsilon: a finite float > 0, the smallest norm.
        others: as :func:`mean_squared_error`.
    """
    return apply("cosine_similarity", _cosine_per_sample, input, target, sample_weight,
                 {"axis": axis, "epsilon": epsilon}, reduction, validate)
