"""The spec entry: the formula, its NumPy reference, its mpmath twin and where the
implementations live. NumPy/mpmath only — importing this never loads a framework."""
import mpmath as mp
import numpy as np

import spec


def _margin_gap(x, y, margin):
    return margin - (2.0 * y - 1.0) * x  # labels y in {0, 1} -> signs {-1, +1}


spec.define(
    name="squared_margin",
    summary="Squared hinge loss on logits with labels in [0, 1] (mapped to -1 / +1).",
    formula=r"\ell = \frac{1}{M}\sum_j \max(0,\ m - (2y_j - 1)\,x_j)^2",
    params=[spec.Param("margin", 1.0, "a finite float > 0", spec.validation.real(lo=0.0, lo_open=True),
                       doc="distance from the decision boundary below which a sample is penalised")],
    elementwise=lambda x, y, *, margin: np.maximum(0.0, _margin_gap(x, y, margin)) ** 2,
    elementwise_grad=lambda x, y, *, margin: -2.0 * (2.0 * y - 1.0) * np.maximum(0.0, _margin_gap(x, y, margin)),
    elementwise_exact=lambda x, y, *, margin: max(mp.mpf(0), _margin_gap(x, y, margin)) ** 2,
    grad_convention="at the kink (gap = 0) the derivative is 0 on both sides (the function is C1)",
    implementations={"torch": "user_loss.torch_losses", "keras": "user_loss.keras_losses"},
    torch_class="SquaredMarginLoss", keras_class="SquaredMargin",
)
