"""Multiclass classification losses (softmax heads), torch twins of :mod:`spec.multiclass`:
``categorical_crossentropy``, ``sparse_categorical_crossentropy``, ``cost_sensitive_cce``,
``categorical_focal_crossentropy``, ``categorical_generalized_crossentropy``.

Argument order is torch's: ``(input, target)``, prediction first.

Class axis: the LAST axis, as in Keras (``F.cross_entropy`` uses axis 1): pass NCHW logits as
``x.movedim(1, -1)``. For inputs of rank > 2 the per-sample loss is the mean over the non-batch,
non-class positions.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, clip, mean_nonbatch, reduce, with_total
from ._fused import fused_function, needs_fused_grad, run_fused

__all__ = ["categorical_crossentropy", "sparse_categorical_crossentropy", "cost_sensitive_cce",
           "categorical_focal_crossentropy", "categorical_generalized_crossentropy"]


def _log_q(x: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """``log softmax(x)`` (log-sum-exp) for logits, the spec's clamp ``log(max(p, 2**-126))`` for
    probabilities."""
    if from_logits:
        return F.log_softmax(x, dim=-1)
    return torch.log(clip(x, P_MIN))


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` as ``(R, C)`` rows (classes last → ``F.cross_entropy``'s class axis 1)."""
    return x.reshape(-1, x.shape[-1])


# no label can equal it: out-of-range labels (validate=False) still raise in nll_loss instead of
# being skipped as F.cross_entropy's default ignore_index=-100 would
_NO_IGNORE = -(2 ** 63)


def _rows_total(reduce_rows: Callable, xr: torch.Tensor, n: int, mean: bool, *args, **kwargs) -> torch.Tensor:
    """``Σ_i ℓ_i`` (over N when ``mean``) of a loss that is the mean over the R/N rows ``xr`` of each
    of the N samples: ``reduce_rows(xr, *args, reduction="mean")`` (over all R rows), or the
    ``"sum"`` over R/N."""
    if mean:
        return reduce_rows(xr, *args, reduction="mean", **kwargs)
    per_sample_rows = xr.shape[0] // n
    total = reduce_rows(xr, *args, reduction="sum", **kwargs)
    return total / per_sample_rows if per_sample_rows != 1 else total


def _categorical_crossentropy_total(x, y, mean, *, from_logits, label_smoothing, class_weight=None):
    if class_weight is not None:
        return reduce(_categorical_crossentropy_per_sample(x, y, from_logits=from_logits,
                                                           label_smoothing=label_smoothing, class_weight=class_weight),
                      None, "mean" if mean else "sum")
    if from_logits and x.dim() >= 2:
        if y.dtype is not x.dtype:
            y = y.to(x.dtype)
        xr, yr = (x, y) if x.dim() == 2 else (_rows(x), _rows(y))
        return _rows_total(F.cross_entropy, xr, x.shape[0], mean, yr, label_smoothing=label_smoothing)
    return reduce(_categorical_crossentropy_per_sample(x, y, from_logits=from_logits,
                                                       label_smoothing=label_smoothing), None,
                  "mean" if mean else "sum")


@with_total(_categorical_crossentropy_total)
def _categorical_crossentropy_per_sample(x, y, *, from_logits, label_smoothing, class_weight=None):
    y = y.to(x.dtype)  # integer one-hot targets join the compute dtype
    if from_logits and x.dim() >= 2:
        # F.cross_entropy with probability targets is the same math (log_softmax, smoothing
        # y (1-ε) + ε/C only when ε > 0, -Σ w y' log q; no normalization of y assumed)
        ce = F.cross_entropy(_rows(x), _rows(y), weight=class_weight, reduction="none",
                             label_smoothing=label_smoothing)
        return mean_nonbatch(ce.reshape(x.shape[:-1]))
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / x.shape[-1]
    if class_weight is not None:
        y = y * class_weight
    return mean_nonbatch(-(y * _log_q(x, from_logits)).sum(dim=-1))


def categorical_crossentropy(input, target, *, from_logits=True, label_smoothing=0.0, class_weight=None,
                             sample_weight=None, reduction="mean", validate=True):
    r"""Softmax cross-entropy with one-hot or soft targets; classes on the last axis.

    .. math::
        \ell_i = -\frac{1}{R}\sum_r \sum_{c=1}^{C} y'_{rc} \log \mathrm{softmax}(x_r)_c,\quad
        y' = y(1-\epsilon) + \epsilon / C

    Stability: ``F.log_softmax`` (log-sum-exp), never ``log(softmax(x))``: finite for any finite
    logits. Probabilities (``from_logits=False``) use ``log(max(p, 2**-126))`` and must be rows
    summing to 1 (checked, never renormalized).

    Args:
        input: logits (or probabilities), shape ``(N, ..., C)``, classes LAST (NCHW: ``x.movedim(1, -1)``).
        target: one-hot or soft labels in [0, 1], same shape.
        label_smoothing: ``ε`` in [0, 1] (torch / Keras semantics).
        class_weight: ``(C,)`` non-negative per-class weights ``w``: ``-Σ_c w_c y'_c log q_c`` per row
            (``F.cross_entropy``'s ``weight`` with probability targets, whose mean also divides by N).
        sample_weight: ``(N,)`` non-negative weights.
        reduction: ``"mean"`` (Σ w ℓ / N), ``"sum"`` or ``"none"`` (w ℓ per sample); rank > 2 inputs
            give one value per sample: the mean over the positions ``r``.
        validate: check data values (NaN, ranges, row sums); shapes are always checked.
    """
    return apply("categorical_crossentropy", _categorical_crossentropy_per_sample, input, target,
                 sample_weight, {"from_logits": from_logits, "label_smoothing": label_smoothing,
                                 "class_weight": class_weight}, reduction, validate)


def _sparse_categorical_crossentropy_total(x, y, mean, *, from_logits, label_smoothing=0.0, class_weight=None,
                                           ignore_index=None):
    if label_smoothing or class_weight is not None or ignore_index is not None:
        return reduce(_weighted_sparse_per_sample(x, y, from_logits, label_smoothing, class_weight, ignore_index),
                      None, "mean" if mean else "sum")
    if from_logits and x.dim() >= 2:
        xr, yr = (x, y.long()) if x.dim() == 2 else (_rows(x), y.reshape(-1).long())
        return _rows_total(F.cross_entropy, xr, x.shape[0], mean, yr, ignore_index=_NO_IGNORE)
    return reduce(_sparse_categorical_crossentropy_per_sample(x, y, from_logits=from_logits), None,
                  "mean" if mean else "sum")


def _weighted_sparse_per_sample(x, y, from_logits, label_smoothing, class_weight, ignore_index):
    """Per-sample loss with class weights, ignored labels or label smoothing: -Σ_c w_c y'_c log q_c
    per row, 0 on ignored rows (spec.multiclass._sparse_dense_target); only these calls pay for it."""
    labels = y.reshape(-1).long()
    if from_logits and x.dim() >= 2:
        # F.cross_entropy's own weight / ignore_index / label_smoothing: the same per-row math
        ce = F.cross_entropy(_rows(x), labels, weight=class_weight, reduction="none", label_smoothing=label_smoothing,
                             ignore_index=_NO_IGNORE if ignore_index is None else ignore_index)
        return mean_nonbatch(ce.reshape(x.shape[:-1]))
    c = x.shape[-1]
    valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    t = F.one_hot(torch.where(valid, labels, 0), c).to(x.dtype)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / c
    t = t * valid.unsqueeze(-1).to(x.dtype)
    if class_weight is not None:
        t = t * class_weight
    return mean_nonbatch(-(t.reshape(x.shape) * _log_q(x, from_logits)).sum(dim=-1))


@with_total(_sparse_categorical_crossentropy_total)
def _sparse_categorical_crossentropy_per_sample(x, y, *, from_logits, label_smoothing=0.0, class_weight=None,
                                                ignore_index=None):
    if label_smoothing or class_weight is not None or ignore_index is not None:
        return _weighted_sparse_per_sample(x, y, from_logits, label_smoothing, class_weight, ignore_index)
    if from_logits and x.dim() >= 2:
        # the fused log_softmax + nll_loss kernels: the same math (-log softmax(x)_y)
        ce = F.cross_entropy(_rows(x), y.reshape(-1).long(), reduction="none", ignore_index=_NO_IGNORE)
        return mean_nonbatch(ce.reshape(x.shape[:-1]))
    picked = torch.gather(_log_q(x, from_logits), -1, y.long().unsqueeze(-1)).squeeze(-1)
    return mean_nonbatch(-picked)


def sparse_categorical_crossentropy(input, target, *, from_logits=True, label_smoothing=0.0, class_weight=None,
                                    ignore_index=None, sample_weight=None, reduction="mean", validate=True):
    r"""Softmax cross-entropy with integer class labels; classes on the last axis.

    .. math::
        \ell_i = -\frac{1}{R}\sum_r \log \mathrm{softmax}(x_r)_{y_r}

    Stability: ``F.log_softmax`` then a gather of the labelled entry. With ``from_logits=False`` the
    rows must sum to 1: a sigmoid head (the MNIST problem) is rejected with a ValueError, not renormalized.

    Args:
        input: logits (or probabilities), shape ``(N, ..., C)``, classes LAST.
        target: class indices in ``[0, C-1]`` (or ``ignore_index``), shape ``(N, ...)`` (=
            ``input.shape[:-1]``); any integer dtype, or floats holding whole numbers.
        label_smoothing, class_weight, ignore_index: ``F.cross_entropy``'s ``label_smoothing``,
            ``weight`` and ``ignore_index`` per row; the mean stays ``Σ_i ℓ_i / N`` (torch's weighted
            "mean" is ``reduction="sum"`` divided by ``Σ_r w_{y_r}`` over the rows not ignored).
    """
    return apply("sparse_categorical_crossentropy", _sparse_categorical_crossentropy_per_sample, input,
                 target, sample_weight, {"from_logits": from_logits, "label_smoothing": label_smoothing,
                                         "class_weight": class_weight, "ignore_index": ignore_index},
                 reduction, validate)


def _cost_sensitive_cce_per_sample(x, y, *, cost_matrix, mode, from_logits):
    y = y.to(x.dtype)  # integer one-hot targets join the compute dtype
    log_q = _log_q(x, from_logits)
    ce = -(y * log_q).sum(dim=-1)
    a = torch.tensordot(y, cost_matrix, dims=1)  # a_p = Σ_t y_t C[t, p]
    if mode == "argmax":
        # every class tied at the max counts (exact equality); m is a constant for autograd
        mask = (x == x.amax(dim=-1, keepdim=True)).to(x.dtype)
        m = (a * mask).sum(dim=-1).detach()
    else:
        # q from its own log-softmax node: each backward then cancels only its own term (one
        # shared backward sums CE·a·q with -m·y and loses their difference in float32). exp of a
        # log-softmax, not F.softmax: the saturated entry is exactly exp(0) = 1 on every backend
        if from_logits:
            # costs relative to the most probable class k (spec.multiclass.soft_shift): ∂m/∂q_k = 0,
            # so the softmax backward keeps Σ_p q_p (a_p - a_k) a saturated row would round away
            q = torch.exp(F.log_softmax(x, dim=-1))
            a_k = a.gather(-1, x.detach().argmax(dim=-1, keepdim=True))
            m = a_k.squeeze(-1) + ((a - a_k) * q).sum(dim=-1)
        else:
            m = (a * x).sum(dim=-1)
    return mean_nonbatch(ce * m)


def cost_sensitive_cce(input, target, *, cost_matrix=None, mode="argmax", from_logits=True, sample_weight=None,
                       reduction="mean", validate=True):
    r"""Categorical cross-entropy times a misclassification cost (the cost-sensitive problem's loss, fixed); classes on
    the last axis (``input`` and one-hot / soft ``target`` of shape ``(N, ..., C)``).

    .. math::
        \ell_i = \frac{1}{R}\sum_r \mathrm{CE}(x_r, y_r)\, m_r,\quad
        m_r = \sum_{p:\ x_{rp} = \max_c x_{rc}} \sum_t C_{tp}\, y_{rt} \ \text{(argmax)}
        \ \text{or}\ \sum_t y_{rt} \sum_p C_{tp}\,\mathrm{softmax}(x_r)_p \ \text{(soft)}

    ``cost_matrix[t, p]``: cost of predicting ``p`` when the truth is ``t`` (required, ``(C, C)``,
    >= 0). ``mode="argmax"``: ties at the max are all counted (costs summed) and ``m`` is detached
    (no gradient through the argmax). ``mode="soft"``: differentiable. Binary problems: 2 columns
    and a 2x2 matrix. Stability: CE from ``F.log_softmax``; ``m`` is a sum of non-negative terms.
    """
    return apply("cost_sensitive_cce", _cost_sensitive_cce_per_sample, input, target, sample_weight,
                 {"cost_matrix": cost_matrix, "mode": mode, "from_logits": from_logits}, reduction, validate)


def _focal_logs(x: torch.Tensor, from_logits: bool):
    """``(log q, log(1 - q))`` per class (:func:`spec.multiclass._focal_logs`): at the argmax ``c*`` of
    logits ``log(1 - q) = logsumexp_{k≠c*}(x) - logsumexp(x)``, finite where ``1 - q`` rounds to 0;
    ``log1p(-q)`` elsewhere. Each ``where`` branch that is not taken sees a harmless argument, so its
    gradient is 0, never 0 · inf."""
    if not from_logits:
        keep = (1.0 - x) >= P_MIN
        log_1mq = torch.where(keep, torch.log1p(-torch.where(keep, x, torch.zeros_like(x))), LOG_P_MIN)
        return torch.log(clip(x, P_MIN)), log_1mq
    log_q, top, _, m_top, off_top = _focal_parts(x)
    return log_q, torch.where(top, m_top, off_top)


def _focal_parts(x: torch.Tensor):
    """The pieces of :func:`_focal_logs` for logits: ``log q``, the argmax mask ``top``, ``r =
    logsumexp_{k≠c*}(x - x_c*)``, ``log(1 - q_c*) = r - logsumexp(x - x_c*)`` (per row) and
    ``log1p(-q)`` off the argmax (the argmax's own entry harmless)."""
    log_q = F.log_softmax(x, dim=-1)
    top = F.one_hot(x.detach().argmax(dim=-1), x.shape[-1]).bool()
    # both logsumexps of x - x_c* (the argmax's own logit, so its gradient cancels exactly): large
    # logits cancel before the sums; logsumexp(x - x_c*) = -log q_c*
    shifted = x - torch.where(top, x, 0.0).sum(dim=-1, keepdim=True)
    r = torch.logsumexp(shifted.masked_fill(top, float("-inf")), dim=-1, keepdim=True)
    m_top = r - torch.logsumexp(shifted, dim=-1, keepdim=True)
    off_top = torch.log1p(-torch.exp(log_q.masked_fill(top, -1.0)))
    return log_q, top, r, m_top, off_top


def _categorical_focal_closed_form(x, y, alpha, gamma, need_grad):
    """The per-sample softmax focal loss of logits (the formula of :func:`_focal_logs`, the same values)
    and, when asked, d(Σ ℓ)/dx from the forward pass. With ``L = log q``, ``M = log(1 - q)`` and
    ``A_c = y_c e^{γ M_c} (1 - T_c)``, ``T_c = γ L_c q_c / (1 - q_c)``, a row's gradient is
    ``-α (A_j - q_j Σ_c A_c)``, divided by the K rows of a sample. At the argmax class c* (q may round
    to 1): ``T = -γ log1p(u) / u`` with ``u = e^r = (1 - q) / q``, ``r`` the logsumexp of the other
    logits minus the argmax's (-γ where u underflows), and its gradient ``-α (A e^M - q Σ_{c≠c*} A_c)``,
    where ``A - q A`` would round ``1 - q`` to 0."""
    # (buffers are released, or reused in place, after their last read: few alive at once)
    log_q, top, r, m_top, off_top = _focal_parts(x)
    modulation = torch.where(top, m_top, off_top).mul_(gamma).exp_()  # (1 - q)^γ
    rows = torch.mul(y, modulation).mul_(log_q).sum(dim=-1) * -alpha
    k = rows[0].numel() if rows.dim() > 1 else 1
    loss = mean_nonbatch(rows)
    if not need_grad:
        return loss, None
    u = torch.exp(r)
    t_top = torch.where(u > 0, torch.log1p(u) / torch.where(u > 0, u, 1.0), 1.0).mul_(-gamma)
    t = torch.sub(log_q, off_top, out=off_top).exp_().mul_(log_q).mul_(gamma)  # T_c off the argmax
    a = torch.where(top, t_top, t, out=t).neg_().add_(1.0).mul_(modulation).mul_(y)  # A_c
    del modulation
    q = log_q.exp_()
    a_top = torch.where(top, a, 0.0).sum(dim=-1, keepdim=True)
    total = a.sum(dim=-1, keepdim=True)
    q_top = torch.where(top, q, 0.0).sum(dim=-1, keepdim=True)
    others = total - a_top
    grad_top = a_top.mul_(torch.exp(m_top)).sub_(q_top.mul_(others))  # A e^M - q Σ_{c≠c*} A_c
    grad = a.addcmul_(q, total, value=-1.0)
    grad = torch.where(top, grad_top, grad, out=grad)
    return loss, grad.mul_(-alpha / k)


CategoricalFocal = fused_function(_categorical_focal_closed_form, "CategoricalFocal", per_element_mean=False)


def _categorical_focal_crossentropy_per_sample(x, y, *, alpha, gamma, from_logits, label_smoothing):
    y = y.to(x.dtype)  # integer one-hot targets join the compute dtype
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / x.shape[-1]
    if from_logits and x.dim() >= 2 and needs_fused_grad(x, y):
        return run_fused(CategoricalFocal, x, y, alpha, gamma)
    log_q, log_1mq = _focal_logs(x, from_logits)
    return mean_nonbatch((y * torch.exp(gamma * log_1mq) * log_q).sum(dim=-1) * -alpha)


def categorical_focal_crossentropy(input, target, *, alpha=0.25, gamma=2.0, from_logits=True, label_smoothing=0.0,
                                   sample_weight=None, reduction="mean", validate=True):
    r"""Softmax focal loss with one-hot or soft targets; classes on the last axis.

    .. math::
        \ell_i = -\frac{\alpha}{R}\sum_r \sum_c y'_{rc} (1 - q_{rc})^{\gamma} \log q_{rc},\quad
        q = \mathrm{softmax}(x),\quad y' = y(1-\epsilon) + \epsilon / C

    Stability: ``F.log_softmax`` for ``log q``; ``(1 - q)^γ = exp(γ log(1 - q))`` with ``log(1 - q)``
    of the argmax class from the other classes' ``logsumexp``: finite values and gradients for any
    ``γ >= 0`` (``γ < 1`` included) and any finite logits. With logits the gradient is a closed form
    from the forward pass (one ``autograd.Function``, one saved buffer) that keeps the digits of confident
    rows, where ``log q`` of the argmax rounds to 0. Probabilities (``from_logits=False``) use
    the 2**-126 clamps and must be rows summing to 1.
    """
    return apply("categorical_focal_crossentropy", _categorical_focal_crossentropy_per_sample, input, target,
                 sample_weight, {"alpha": alpha, "gamma": gamma, "from_logits": from_logits,
                                 "label_smoothing": label_smoothing}, reduction, validate)


def _categorical_generalized_crossentropy_per_sample(x, y, *, q, from_logits):
    if from_logits and x.dim() >= 2:
        # -log p_y from the fused log_softmax + nll_loss kernels (sparse_categorical_crossentropy's)
        ce = F.cross_entropy(_rows(x), y.reshape(-1).long(), reduction="none", ignore_index=_NO_IGNORE)
        return mean_nonbatch(torch.expm1(ce.reshape(x.shape[:-1]) * -q) * (-1.0 / q))
    log_p = torch.gather(_log_q(x, from_logits), -1, y.long().unsqueeze(-1)).squeeze(-1)
    return mean_nonbatch(torch.expm1(q * log_p) * (-1.0 / q))


def categorical_generalized_crossentropy(input, target, *, q=0.5, from_logits=True, sample_weight=None,
                                         reduction="mean", validate=True):
    r"""Generalized cross-entropy with integer class labels; classes on the last axis.

    .. math::
        \ell_i = \frac{1}{R}\sum_r \frac{1 - p_{r,y_r}^{\,q}}{q},\quad p = \mathrm{softmax}(x)

    Stability: ``p^q = exp(q log p)`` from ``F.log_softmax`` (or the 2**-126 clamp of probabilities)
    and ``-expm1(q log p) / q``: no power of 0, no cancellation for confident correct rows.
    ``target``: class indices of shape ``input.shape[:-1]``.
    """
    return apply("categorical_generalized_crossentropy", _categorical_generalized_crossentropy_per_sample, input,
                 target, sample_weight, {"q": q, "from_logits": from_logits}, reduction, validate)
