r"""Optimizers whose steps equal Keras' (so that a torch run and a Keras run take the same steps).

``SGD`` is the same algorithm in both frameworks (``w -= lr * g``): :func:`build_optimizer`
returns ``torch.optim.SGD``. ``Adam`` is not: ``torch.optim.Adam`` adds ``eps`` to the
bias-corrected ``sqrt(v / (1 - β₂ᵗ))`` while Keras (like TensorFlow 1's ``AdamOptimizer``: the
"epsilon hat" form of Kingma & Ba, the formula just before their section 2.1) adds it to the raw
``sqrt(v)``:

.. math::
    \text{torch: } w \mathrel{-}= \frac{lr}{1-\beta_1^t}\,
        \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}
    \qquad
    \text{Keras: } w \mathrel{-}= lr\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
        \frac{m}{\sqrt{v} + \epsilon}

so the two differ by a step-dependent epsilon (Keras' is ``ε / sqrt(1 - β₂ᵗ)`` in torch's terms,
30x larger at step 1). :class:`KerasAdam` is Keras' rule operation for operation, computed in
each parameter's dtype as Keras does, including one detail of Keras' TensorFlow backend: the bias
corrections ``β^t`` use ``ops.cast(beta, dtype)`` of a Python float, which goes through a float32
tensor, so even float64 variables see float32-rounded betas there (0.999 → 0.99900001287…, which
scales the float64 steps by 1 − 6.7e-6). With it a float64 torch run and a float64 Keras run agree
to rounding (``parity_tests/test_training_parity.py``).
"""
from __future__ import annotations

import math
from typing import Any

import torch

OPTIMIZERS = ("adam", "sgd")

#: the Keras defaults (``keras.optimizers.Adam()``), which are the seeds' ``optimizer='adam'``
KERAS_ADAM_DEFAULTS = {"lr": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}


class KerasAdam(torch.optim.Optimizer):
    r"""Adam with Keras' update rule (``keras.optimizers.Adam``, ``amsgrad=False``).

    Per parameter ``w`` with gradient ``g`` at step ``t`` (from 1), all in ``w``'s dtype:

    .. math::
        m \mathrel{+}= (g - m)(1 - \beta_1),\quad v \mathrel{+}= (g^2 - v)(1 - \beta_2),\quad
        w \mathrel{-}= \frac{m\,\alpha_t}{\sqrt{v} + \epsilon},\quad
        \alpha_t = lr\,\frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}

    where the powers ``β^t`` use the betas rounded to float32 (as Keras' TensorFlow backend does).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (Keras' ``learning_rate``).
        beta_1, beta_2: moment decay rates.
        epsilon: added to ``sqrt(v)`` (Keras' default ``1e-7``, not torch's ``1e-8``).

    The state (``step``, ``m``, ``v``) is saved in ``state_dict`` and restored exactly, so a run
    resumed from a Lightning checkpoint continues identically.
    """

    def __init__(self, params, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7):
        if not lr > 0.0:
            raise ValueError(f"KerasAdam: invalid lr={lr!r}; expected > 0")
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"KerasAdam: invalid {name}={beta!r}; expected 0 <= {name} < 1")
        if not epsilon >= 0.0:
            raise ValueError(f"KerasAdam: invalid epsilon={epsilon!r}; expected >= 0")
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("KerasAdam does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                m, v, g = state["m"], state["v"], p.grad.to(p.dtype)
                # Keras: lr, the step and the beta powers in the variable's dtype
                dtype, device = p.dtype, p.device
                t = state["step"].to(dtype=dtype, device=device)
                lr = torch.tensor(group["lr"], dtype=dtype, device=device)
                # Keras: ops.cast(beta, dtype) of a Python float is a float32 tensor cast to dtype
                b1_power = torch.pow(_via_float32(b1, dtype, device), t)
                b2_power = torch.pow(_via_float32(b2, dtype, device), t)
                alpha = lr * torch.sqrt(1 - b2_power) / (1 - b1_power)
                m.add_((g - m) * (1 - b1))
                v.add_((g * g - v) * (1 - b2))
                p.sub_((m * alpha) / (torch.sqrt(v) + eps))
        return loss


def _via_float32(value: float, dtype: torch.dtype, device) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32, device=device).to(dtype)


def build_optimizer(params, name: str = "adam", **config: Any) -> torch.optim.Optimizer:
    """``"adam"`` → :class:`KerasAdam` (``lr``, ``beta_1``, ``beta_2``, ``epsilon``; Keras
    defaults); ``"sgd"`` → ``torch.optim.SGD`` (``lr``; plain SGD, Keras' ``SGD()``).

    The names and defaults are Keras', so one optimizer description drives both frameworks
    (``tf_impl.training.build_optimizer`` is the twin)."""
    name = str(name).lower()
    if name == "adam":
        cfg = {**KERAS_ADAM_DEFAULTS, **config}
        _no_extra("adam", cfg, KERAS_ADAM_DEFAULTS)
        return KerasAdam(params, lr=float(cfg["lr"]), beta_1=float(cfg["beta_1"]),
                         beta_2=float(cfg["beta_2"]), epsilon=float(cfg["epsilon"]))
    if name == "sgd":
        cfg = {"lr": 0.01, **config}
        _no_extra("sgd", cfg, {"lr": None})
        return torch.optim.SGD(params, lr=float(cfg["lr"]))
    raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")


def _no_extra(name: str, cfg: dict, allowed: dict) -> None:
    extra = sorted(set(cfg) - set(allowed))
    if extra:
        raise ValueError(f"optimizer {name!r}: unknown settings {extra}; allowed: {sorted(allowed)}")
    lr = cfg["lr"]
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"optimizer {name!r}: invalid lr={lr!r}; expected a finite float > 0")


__all__ = ["KerasAdam", "build_optimizer", "OPTIMIZERS", "KERAS_ADAM_DEFAULTS"]
