"""Small networks shared by the scenarios, with Keras twins in :mod:`tf_impl.training`.

:class:`MLP` is ``Linear → activation`` blocks and a ``Linear`` output, followed by an optional
head: ``"linear"`` (logits, what our losses want), ``"sigmoid"``, ``"sigmoid_normalized"``
(sigmoids divided by their row sum: what Keras' ``sparse_categorical_crossentropy`` silently does
to a sigmoid head, the MNIST problem, made explicit) or ``"threshold"`` (outputs clipped to ``[0, threshold]``
by :class:`torch_impl.layers.ThresholdActivation`, the count-above-a-threshold problem). ``activity_regularizer`` names a
single-input penalty (``{"name": "kl_sparsity", "target": 0.1, "weight": 0.2}``) of the last hidden
layer's activations: :class:`ActivityPenalty` records its value on every forward pass and
``LossModule`` adds it to the loss — the twin of Keras' ``add_loss`` (``tf_impl.training.ActivityLoss``). Initialization is Keras' (Glorot-uniform weights, zero
biases), so both frameworks draw from the same distribution; :meth:`MLP.set_numpy_weights` loads
given weights (torch layout ``(out, in)``), which is how runs in both frameworks start from the same
point.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..layers import ThresholdActivation
from ..losses import get_loss

HEADS = ("linear", "sigmoid", "sigmoid_normalized", "threshold")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


def numpy_weights(layers: Sequence[nn.Module]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(weight, bias), …]`` of ``layers`` as float64 NumPy arrays (torch layout)."""
    return [(m.weight.detach().cpu().double().numpy(), m.bias.detach().cpu().double().numpy()) for m in layers]


@torch.no_grad()
def load_numpy_weights(owner: str, names: Sequence[str], layers: Sequence[nn.Module],
                       weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    """Copy ``[(weight, bias), …]`` (torch layout) into ``layers``; ``ValueError`` naming ``owner``
    and the layer when the count or a shape differs (nothing is copied then)."""
    if len(weights) != len(layers):
        raise ValueError(f"{owner}: got {len(weights)} (W, b) pairs for {len(layers)} layers")
    pairs = [(np.asarray(w), np.asarray(b)) for w, b in weights]
    for name, layer, (w, b) in zip(names, layers, pairs):
        if w.shape != tuple(layer.weight.shape) or b.shape != tuple(layer.bias.shape):
            raise ValueError(f"{owner}: layer {name}: weight shapes {w.shape}/{b.shape} do not match "
                             f"{tuple(layer.weight.shape)}/{tuple(layer.bias.shape)}")
    for layer, (w, b) in zip(layers, pairs):
        layer.weight.copy_(torch.as_tensor(w, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(b, dtype=layer.bias.dtype))


class RowNormalize(nn.Module):
    """``x / x.sum(-1, keepdim=True)``: rows of positive values become distributions."""

    def forward(self, x):
        return x / x.sum(dim=-1, keepdim=True)


class ActivityPenalty(nn.Module):
    """Identity on activations that records ``penalty(activations)`` in :attr:`value` (with
    gradients) on every call; :func:`activity_losses` collects the recorded values of a network
    and ``LossModule`` adds them to the loss (Keras' ``add_loss``, undivided).

    Args:
        name: a registered single-input penalty (``"kl_sparsity"``, ``"count_penalty"``).
        **params: its parameters.
    """

    def __init__(self, name: str, **params):
        super().__init__()
        self.penalty_name, self.penalty_params = str(name), dict(params)
        self.penalty = get_loss(self.penalty_name, **self.penalty_params)
        self.value: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.value = self.penalty(x)
        return x

    def extra_repr(self) -> str:
        return f"{self.penalty_name}, {self.penalty_params}"


def activity_losses(net: nn.Module) -> list[torch.Tensor]:
    """The values recorded by the :class:`ActivityPenalty` modules of ``net`` in its last forward pass."""
    return [m.value for m in net.modules() if isinstance(m, ActivityPenalty) and m.value is not None]


class MLP(nn.Module):
    """Fully connected network ``in_features → hidden… → out_features`` (+ head).

    Args:
        in_features: input size (inputs are flattened from the second axis on).
        hidden: widths of the hidden layers.
        out_features: output size.
        activation: hidden activation (``relu``, ``tanh``, ``sigmoid``, ``linear``).
        head: ``"linear"`` (logits), ``"sigmoid"``, ``"sigmoid_normalized"`` or ``"threshold"``.
        threshold: the upper bound of the ``"threshold"`` head (required by it, unused otherwise).
        activity_regularizer: ``{"name": ..., **params}``: a penalty of the last hidden layer's
            activations, added to the loss by ``LossModule`` (None: none).
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (128, 128), out_features: int = 10,
                 activation: str = "relu", head: str = "linear", threshold: float | None = None,
                 activity_regularizer: dict | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
        if head not in HEADS:
            raise ValueError(f"MLP: unknown head {head!r}; expected one of {list(HEADS)}")
        if (head == "threshold") != (threshold is not None):
            raise ValueError(f"MLP: threshold={threshold!r} with head={head!r}; the 'threshold' head needs a "
                             f"threshold, and only it takes one")
        if activity_regularizer is not None and not hidden:
            raise ValueError("MLP: an activity_regularizer needs a hidden layer (it penalizes the last one)")
        widths = [int(in_features), *(int(h) for h in hidden)]
        blocks: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            blocks += [nn.Linear(a, b), ACTIVATIONS[activation]()]
        self.hidden = nn.Sequential(*blocks)
        self.output = nn.Linear(widths[-1], int(out_features))
        if head == "linear":
            self.head = nn.Identity()
        elif head == "sigmoid":
            self.head = nn.Sigmoid()
        elif head == "threshold":
            self.head = ThresholdActivation(float(threshold))
        else:
            self.head = nn.Sequential(nn.Sigmoid(), RowNormalize())
        self.head_name = head
        if activity_regularizer is not None:
            params = dict(activity_regularizer)
            self.activity = ActivityPenalty(params.pop("name"), **params)
        else:
            self.activity = None
        self.reset_parameters()

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.hidden if isinstance(m, nn.Linear)] + [self.output]

    def reset_parameters(self) -> None:
        """Keras' defaults: Glorot-uniform kernels, zero biases."""
        for layer in self.linears():
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def numpy_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W (out, in), b (out,)), …]`` as float64 NumPy arrays (torch layout)."""
        return numpy_weights(self.linears())

    def set_numpy_weights(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Load ``[(W (out, in), b (out,)), …]`` (torch layout) into the linear layers."""
        layers = self.linears()
        load_numpy_weights("MLP", [f"linear{i}" for i in range(len(layers))], layers, weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the last hidden layer (the penultimate layer's output)."""
        return self.hidden(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.activity is not None:
            h = self.activity(h)
        return self.head(self.output(h))


__all__ = ["MLP", "RowNormalize", "ActivityPenalty", "activity_losses", "HEADS", "ACTIVATIONS"]
