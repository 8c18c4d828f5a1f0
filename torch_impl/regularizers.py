"""Single-input penalties and count-penalised losses: count_penalty, mse_count_penalty, cce_count_penalty, kl_sparsity. (torch twins of :mod:`spec.regularizers`)."""
from __future__ import annotations

__all__: list[str] = []
