"""Metric-learning losses, torch twins of :mod:`spec.metric_learning`: ``circle``. Argument order is
torch's: ``(input, target)``: embeddings ``(N, D)`` and integer labels ``(N,)``."""
from __future__ import annotations

import torch

from spec.metric_learning import NORM_EPS

from ._core import apply, clip

__all__ = ["circle"]


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """``x / max(|x|, eps)`` per row; a row at or below eps is divided by eps. The norm's square root
    only sees rows above eps² (others get 1 under the where): no 1/√0 in the gradient of a zero row."""
    squared = (x * x).sum(dim=1, keepdim=True)
    above = squared > NORM_EPS * NORM_EPS
    norm = torch.sqrt(torch.where(above, squared, torch.ones_like(squared)))
    return torch.where(above, x / norm, x / NORM_EPS)


def _masked_logsumexp(z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise ``log Σ_{mask} e^z`` shifted by the masked row maximum (0 for an empty row), and
    whether the row has any entry. An empty row's sum 0 is replaced by 1 under a where (log 0 never
    reaches the gradient); masked entries are exp(-inf) = 0 with gradient 0."""
    minus_inf = torch.full_like(z, float("-inf"))
    top = torch.where(mask, z, minus_inf).amax(dim=1).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(torch.where(mask, z - top[:, None], minus_inf))
    total = e.sum(dim=1)
    has = mask.any(dim=1)
    return torch.log(torch.where(has, total, torch.ones_like(total))) + top, has


def _circle_per_sample(x, y, *, gamma, margin, remove_diagonal, normalize):
    u = _unit_rows(x) if normalize else x
    distance = clip(1.0 - u @ u.T, lo=0.0)  # identity branch at s = 1
    same = y[:, None] == y[None, :]
    positive = same & ~torch.eye(y.shape[0], dtype=torch.bool, device=y.device) if remove_diagonal else same
    z_pos = gamma * clip(margin + distance, lo=0.0) * (distance - margin)
    # the negatives' term from c = 1 - d as γ (c² - m²) where c + m >= 0 (= γ [c + m]₊ (c - m)): its derivative
    # 2γc is exactly 0 at c = 0 (a zero row's pairs: s = 0), where the product's two partials γ(c - m) and
    # γ(c + m) leave a rounding residue that the zero row's 1/eps turns into ~1e6
    closeness = 1.0 - distance
    z_neg = torch.where(closeness + margin >= 0.0, gamma * (closeness * closeness - margin * margin),
                        torch.zeros_like(closeness))
    lse_pos, has_pos = _masked_logsumexp(z_pos, positive)
    lse_neg, has_neg = _masked_logsumexp(z_neg, ~same)
    has = has_pos & has_neg
    a = torch.where(has, lse_pos + lse_neg, torch.zeros_like(lse_pos))
    # softplus(a) = log(1 + e^a) without a threshold (F.softplus returns a itself beyond 20)
    return torch.where(has, torch.logaddexp(a, torch.zeros_like(a)), torch.zeros_like(a))


def circle(input, target, *, gamma=80.0, margin=0.4, remove_diagonal=True, normalize=True, sample_weight=None,
           reduction="mean", validate=True):
    r"""Circle loss of each sample against the other samples of the batch.

    .. math::
        \ell_i = \log\Big(1 + \sum_{j \in P_i}\sum_{k \in N_i} e^{z^p_{ij} + z^n_{ik}}\Big)

    Pair terms ``γ [m + d]₊ (d - m)`` (positives) and ``γ [1 + m - d]₊ (1 - m - d)`` (negatives) of the
    cosine distance ``d = max(1 - x̂_i·x̂_j, 0)``, each log-sum-exp shifted by its masked maximum and
    ``ℓ = softplus(LSE_P + LSE_N)``; 0 for a sample without a positive or a negative pair. torch.nn has
    no twin; Keras' is ``keras.losses.Circle`` (which takes unit-norm rows: ``normalize=False``).

    Args:
        input: embeddings ``(N, D)``. target: integer labels ``(N,)`` (any integers).
        gamma, margin, remove_diagonal, normalize: see the spec entry ``circle``.
        sample_weight, reduction, validate: the common contract (``"mean"``: Σ w ℓ / N).
    """
    params = {"gamma": gamma, "margin": margin, "remove_diagonal": remove_diagonal, "normalize": normalize}
    return apply("circle", _circle_per_sample, input, target, sample_weight, params, reduction, validate)
