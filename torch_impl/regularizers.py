"""Single-input penalties and count-penalised losses, torch twins of :mod:`spec.regularizers`:
``count_penalty``, ``mse_count_penalty``, ``cce_count_penalty``, ``kl_sparsity``.

Argument order is torch's: ``(input, target)``; the single-input penalties take ``input`` only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spec.core import REQUIRED

from ._core import _compiling, apply, clip, const, const_column, mean_nonbatch, one_minus, reduce, with_total
from ._fused import _once_differentiable, apply_eager, needs_fused_grad, with_c_apply
from .distributed import sync_sum
from .multiclass import _log_q

__all__ = ["count_penalty", "mse_count_penalty", "cce_count_penalty", "kl_sparsity"]


def _sum_nonbatch(elementwise: torch.Tensor) -> torch.Tensor:
    """Per-sample sum over every non-batch axis (a 1-D input is one element per sample)."""
    return elementwise if elementwise.dim() == 1 else elementwise.flatten(1).sum(dim=1)


def _count(x: torch.Tensor, threshold: float, temperature: float) -> torch.Tensor:
    """Elementwise ``1[x > t]`` (temperature 0) or ``σ((x - t)/τ)``.

    The hard count is an exact comparison; ``+ 0·sign(x)`` keeps it on the autograd graph (so
    ``backward()`` works on a penalty made of counts only) with a gradient of exactly 0
    (``sign' = 0``), and lets a NaN input propagate — the same construction as in ``tf_impl``.
    """
    if temperature == 0.0:
        return (x > threshold).to(x.dtype) + 0.0 * torch.sign(x)
    return torch.sigmoid((x - threshold) / temperature)


# --------------------------------------------------------------------------- count_penalty
def _count_penalty_per_sample(x, y, *, threshold, factor, temperature):
    return factor * _sum_nonbatch(_count(x, threshold, temperature))


def count_penalty(input, *, threshold=REQUIRED, factor=1.0, temperature=0.0, sample_weight=None,
                  reduction="mean", validate=True):
    r"""factor × mean over samples of the number of elements above ``threshold`` (single input).

    .. math::
        P = \frac{\mathrm{factor}}{N}\sum_i \sum_j c(x_{ij}),\quad
        c(x) = \mathbb{1}[x > t]\ (\tau = 0),\quad c(x) = \sigma\big((x - t)/\tau\big)\ (\tau > 0)

    With ``temperature=0`` (the count-above-a-threshold problem's count) the gradient is exactly 0 everywhere: the penalty
    changes the reported loss but can never move the weights — it does nothing as a training
    objective. ``temperature > 0`` is the sigmoid relaxation (``torch.sigmoid``, stable for every
    finite input), whose gradient does train.

    Args:
        input: any real tensor ``(N, ...)`` (activations or predictions).
        threshold: required; elements strictly above it are counted.
        factor: weight >= 0. temperature: >= 0 (0: the hard count).
        sample_weight: ``(N,)`` non-negative weights of the samples' counts.
        reduction: ``"mean"`` only (a penalty is one value).
        validate: check data values (NaN/inf); shapes are always checked.
    """
    return apply("count_penalty", _count_penalty_per_sample, input, None, sample_weight,
                 {"threshold": threshold, "factor": factor, "temperature": temperature}, reduction, validate)


# --------------------------------------------------------------------------- mse_count_penalty
def _hard_count_total(x: torch.Tensor, threshold: float, scale: float) -> torch.Tensor:
    """``scale · Σ 1[x > t]`` in x's dtype: the hard count of a reduced loss whose other term is on
    the autograd graph and propagates NaN (its gradient is exactly 0 either way)."""
    return torch.gt(x, const(threshold, x)).sum(dtype=x.dtype).mul_(const(scale, x))


def _mse_count_penalty_total(x, y, mean, *, threshold, factor, temperature):
    if temperature == 0.0:
        n = x.shape[0]
        mse = F.mse_loss(x, y) if mean else F.mse_loss(x, y, reduction="sum") / (x.numel() // n)
        return mse + _hard_count_total(x, threshold, factor / n if mean else factor)
    return reduce(_mse_count_penalty_per_sample(x, y, threshold=threshold, factor=factor, temperature=temperature),
                  None, "mean" if mean else "sum")


@with_total(_mse_count_penalty_total)
def _mse_count_penalty_per_sample(x, y, *, threshold, factor, temperature):
    mse = F.mse_loss(x, y, reduction="none")  # (x - y)^2, one ATen kernel each way
    return mean_nonbatch(mse) + factor * _sum_nonbatch(_count(x, threshold, temperature))


def mse_count_penalty(input, target, *, threshold=REQUIRED, factor=1.0, temperature=0.0, sample_weight=None,
                      reduction="mean", validate=True):
    r"""Mean squared error plus factor × the number of predictions above ``threshold``, per sample
    (``CountBasedRegularizationLoss`` of the count-above-a-threshold problem).

    .. math::
        \ell_i = \frac{1}{M}\sum_j (y_{ij} - \hat y_{ij})^2 + \mathrm{factor}\sum_j c(\hat y_{ij})

    ``c`` as in :func:`count_penalty`: with ``temperature=0`` the count adds to the value only (its
    gradient is exactly 0); ``temperature > 0`` relaxes it with a stable sigmoid.
    """
    return apply("mse_count_penalty", _mse_count_penalty_per_sample, input, target, sample_weight,
                 {"threshold": threshold, "factor": factor, "temperature": temperature}, reduction, validate)


# --------------------------------------------------------------------------- cce_count_penalty
def _cce_count_penalty_total(x, y, mean, *, threshold, factor, temperature, from_logits):
    if temperature == 0.0 and from_logits and x.dim() >= 2:
        # Σ_i ℓ_i = (Σ_rows CE + factor · Σ counts) / (R/N): F.cross_entropy over the rows (the same
        # -Σ y log softmax), the counted probabilities exp(log_softmax) as in the per-sample form
        c = x.shape[-1]
        xr, yr = x.reshape(-1, c), y.reshape(-1, c)
        rows = xr.shape[0]
        ce = F.cross_entropy(xr, yr, reduction="mean" if mean else "sum")
        per_sample_rows = rows // x.shape[0]
        if not mean and per_sample_rows != 1:
            ce = ce / per_sample_rows
        probs = torch.exp(F.log_softmax(x.detach(), dim=-1))
        return ce + _hard_count_total(probs, threshold, factor / (rows if mean else per_sample_rows))
    return reduce(_cce_count_penalty_per_sample(x, y, threshold=threshold, factor=factor, temperature=temperature,
                                                from_logits=from_logits), None, "mean" if mean else "sum")


@with_total(_cce_count_penalty_total)
def _cce_count_penalty_per_sample(x, y, *, threshold, factor, temperature, from_logits):
    log_q = _log_q(x, from_logits)
    probs = torch.exp(log_q) if from_logits else x
    rows = -(y * log_q).sum(dim=-1) + factor * _count(probs, threshold, temperature).sum(dim=-1)
    return mean_nonbatch(rows)


def cce_count_penalty(input, target, *, threshold=REQUIRED, factor=1.0, temperature=0.0, from_logits=True,
                      sample_weight=None, reduction="mean", validate=True):
    r"""Softmax cross-entropy plus factor × the number of classes whose probability is above
    ``threshold`` (``sparse_prediction_loss`` of the count-above-a-threshold problem); classes on the LAST axis.

    .. math::
        \ell_i = \frac{1}{R}\sum_r\Big[-\sum_c y_{rc}\log p_{rc}
                 + \mathrm{factor}\sum_c c(p_{rc})\Big],\quad p_r = \mathrm{softmax}(x_r)

    Stability: ``F.log_softmax`` for the cross-entropy and ``exp`` of it for the counted
    probabilities (the count is over probabilities, never logits); ``from_logits=False`` takes
    softmax rows (summing to 1) with ``log(max(p, 2**-126))``. ``c`` as in :func:`count_penalty`.
    """
    return apply("cce_count_penalty", _cce_count_penalty_per_sample, input, target, sample_weight,
                 {"threshold": threshold, "factor": factor, "temperature": temperature,
                  "from_logits": from_logits}, reduction, validate)


# --------------------------------------------------------------------------- kl_sparsity
def _stacked_means(a: torch.Tensor) -> torch.Tensor:
    """Per unit, the means over a batch of N >= 1 samples of ``a`` (row 0) and of ``1 - a`` (row 1, exact
    near a = 1: saturated units keep their digits), ``(2, units)``: the two rows of every later step are
    one op each (ATen's mean: the sum, divided by N)."""
    return torch.stack((torch.mean(a, dim=0), torch.mean(one_minus(a), dim=0)))


def _kl_of_means(q, rho, log_rho, log_rho_c, weight) -> torch.Tensor:
    """``Σ_j [w ρ (log ρ - log q_j) + w (1-ρ)(log(1-ρ) - log q'_j)]`` of the clamped stacked means ``q``
    (``(2, units)``: q, q'; the log constants as the compute dtype rounds them)."""
    return (torch.rsub(torch.log(q), const_column((log_rho, log_rho_c), q))
            .mul_(const_column((weight * rho, weight * (1.0 - rho)), q)).sum())


@with_c_apply
class KLSparsity(torch.autograd.Function):
    """The KL-sparsity penalty of one unweighted batch and its gradient from the forward pass: with
    per-unit batch means ``q = clip(mean a)``, ``q' = clip(mean (1 - a))`` (ε bounds),

    ``P = w Σ_j [ρ (log ρ - log q_j) + (1-ρ)(log(1-ρ) - log q'_j)]``,
    ``dP/da_ij = (w / N) (-ρ / q_j [q_j unclipped] + (1-ρ) / q'_j [q'_j unclipped])``:

    one value per unit (saved; backward expands it over the batch), where autograd records ~12 nodes.
    q and q' are the two rows of one ``(2, units)`` tensor (each step one op for both); the clamp is
    ``torch.clamp`` (the values of :func:`clip`: no gradient is taken through it here), and a unit's
    indicator of ``q unclipped`` is ``q == mean`` (the clamp left the mean as it is: 1 on the closed
    interval [ε, 1 - ε], as :func:`clip`'s subgradient; a NaN mean gives a NaN gradient either way):
    13 small ops a call."""

    @staticmethod
    def forward(ctx, a, rho, log_rho, log_rho_c, epsilon, weight):
        means = _stacked_means(a)
        q = torch.clamp(means, const(epsilon, a), const(1.0 - epsilon, a))
        total = _kl_of_means(q, rho, log_rho, log_rho_c, weight)
        scale = weight / a.shape[0]  # w / N folded into the constants
        per_unit = torch.div(const_column((-rho * scale, (1.0 - rho) * scale), q), q).mul_(q == means).sum(dim=0)
        ctx.save_for_backward(per_unit)
        ctx.batch = a.shape[0]
        return total

    @staticmethod
    @_once_differentiable
    def backward(ctx, g):
        (per_unit,) = ctx.saved_tensors
        return (per_unit * g).expand(ctx.batch, -1), None, None, None, None, None


def _kl_sparsity_per_sample(x, y, *, target, weight, epsilon, sync, sample_weight=None):
    # (N, units) as it is: a reshape to the same shape is a view, an autograd node more each step
    a = x if x.dim() == 2 else x.reshape(x.shape[0], -1)
    m = a.shape[1]
    rho, rho_c = target, 1.0 - target
    # Σ_j KL(ρ ‖ q_j) = Σ_j [ρ (log ρ - log q_j) + (1-ρ)(log(1-ρ) - log q'_j)]: the constants as
    # Python numbers (in the compute dtype: ρ and log ρ rounded once), no tensor of them
    log_rho, log_rho_c = _log_constants(target, a.dtype)
    if sample_weight is None and not sync and a.shape[0]:
        if torch.is_grad_enabled() and a.requires_grad and needs_fused_grad(a) and not _compiling():
            return apply_eager(KLSparsity, a, rho, log_rho, log_rho_c, epsilon, weight)
        # count = N >= 1: no empty-batch branch, no products with ones
        q = clip(_stacked_means(a), const(epsilon, a), const(1.0 - epsilon, a))
    else:
        # per unit, the batch sums of a and of 1 - a, and the sample count; the clamp's bounds take
        # the identity branch (`clip`: the gradient passes at equality); with no weighted
        # sample the means are set to ρ and 1 - ρ: KL 0, gradient 0
        if sample_weight is None:
            stats = torch.cat([a.sum(dim=0), (1.0 - a).sum(dim=0), a.new_full((1,), a.shape[0])])
        else:
            w = sample_weight[:, None]
            stats = torch.cat([(w * a).sum(dim=0), (w * (1.0 - a)).sum(dim=0), sample_weight.sum().reshape(1)])
        if sync:
            stats = sync_sum(stats)  # global-batch sums and count (with gradients) before dividing
        count = stats[-1]
        has = count > 0
        safe = torch.where(has, count, 1.0)
        means = stats[:2 * m].reshape(2, m) / safe
        q = torch.where(has, clip(means, epsilon, 1.0 - epsilon), const_column((rho, rho_c), means))
    return _kl_of_means(q, rho, log_rho, log_rho_c, weight)


_LOG_CONSTANTS: dict = {}


def _log_constants(target: float, dtype: torch.dtype) -> tuple[float, float]:
    """``(log ρ, log(1 - ρ))`` as the compute dtype rounds them (``torch.log`` of ρ in that dtype,
    what a tensor constant would give), cached per (ρ, dtype)."""
    key = (target, dtype)
    hit = _LOG_CONSTANTS.get(key)
    if hit is None:
        rho = torch.tensor([target, 1.0 - target], dtype=dtype)
        hit = _LOG_CONSTANTS[key] = tuple(torch.log(rho).tolist())
    return hit


def kl_sparsity(input, *, target=0.1, weight=1.0, epsilon=1e-7, sync=False, sample_weight=None,
                reduction="mean", validate=True):
    r"""Sparse-autoencoder penalty (the KL-sparsity problem, docs/problems.md): weight × Σ_j KL(ρ ‖ q_j), ``q_j`` the batch mean of
    unit ``j`` (every non-batch position is a unit), clamped to ``[ε, 1 - ε]``. One value per batch.

    .. math::
        P = w\sum_j \Big[\rho\log\frac{\rho}{q_j} + (1-\rho)\log\frac{1-\rho}{1-q_j}\Big],\quad
        q_j = \mathrm{clip}\Big(\frac{\sum_i s_i a_{ij}}{\sum_i s_i}, \epsilon, 1 - \epsilon\Big)

    Stability: the clamp keeps dead (q = 0) and saturated (q = 1) units finite with gradient 0
    (the KL-sparsity problem's code gives inf/NaN); ``1 - q`` is the batch mean of ``1 - a`` (exact for saturated
    units); activations outside [0, 1] (ReLU) are rejected. ``sync=True`` sums the per-unit sums
    and the sample count over DDP ranks before dividing.

    Args:
        input: activations in [0, 1], shape ``(N, ...)``.
        target: ρ in (0, 1). weight: >= 0. epsilon: in [0, 0.5) (0: no clamp).
        sample_weight: ``(N,)`` weights of the samples in the batch means (all 0: penalty 0).
        reduction: ``"mean"`` only. validate: check data values (NaN, range).
    """
    return apply("kl_sparsity", _kl_sparsity_per_sample, input, None, sample_weight,
                 {"target": target, "weight": weight, "epsilon": epsilon, "sync": sync}, reduction, validate)
