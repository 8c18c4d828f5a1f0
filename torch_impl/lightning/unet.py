"""A small U-Net for one-channel images, twin of :func:`tf_impl.unet.build_unet`.

Layout: the module takes images ``(N, H, W)`` (one channel, no channel axis) and returns one logit
per pixel ``(N, H, W)``; inside it works in torch's ``NCHW`` (the channel axis is added first and
removed last), while the Keras twin works in ``NHWC``. So the data of both frameworks are the same
arrays, and the losses (which sum over every non-batch axis) and metrics see the same shapes.

Architecture (``widths = (c₀, c₁, …)``, ``bottleneck = b``), every convolution 3×3 "same" + ReLU
unless noted:

* level ``i``: ``enc{i}_a``, ``enc{i}_b`` (``cᵢ`` channels), then 2×2 max pooling;
* ``mid_a``, ``mid_b`` (``b`` channels): the bottleneck, :meth:`UNet.features`;
* level ``i`` upward (deepest first): ``up{i}`` (2×2 transposed convolution, stride 2, ``cᵢ``
  channels, no activation), concatenated with the skip of level ``i`` (``[up, skip]`` on the
  channel axis), then ``dec{i}_a``, ``dec{i}_b`` (``cᵢ`` channels);
* ``logits``: 1×1 convolution to one channel, no activation.

``H`` and ``W`` must be divisible by ``2 ** len(widths)``. Initialization is Keras' (Glorot-uniform
kernels, zero biases). :meth:`UNet.numpy_weights` / :meth:`UNet.set_numpy_weights` exchange
``[(W, b), …]`` in :meth:`UNet.layer_names` order and torch layout (convolution ``(out, in, kh, kw)``,
transposed convolution ``(in, out, kh, kw)``), which is how both frameworks start from the same
weights.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from spec.architectures import unet_layer_plan

from .models import load_numpy_weights, numpy_weights

layer_plan = unet_layer_plan  # the one plan of both frameworks (spec.architectures)


def torch_shape(kind: str, c_in: int, c_out: int, k: int) -> tuple[int, int, int, int]:
    """Weight shape in torch layout."""
    return (c_in, c_out, k, k) if kind == "up" else (c_out, c_in, k, k)


class UNet(nn.Module):
    """See the module docstring.

    Args:
        height, width: image size (``(N, height, width)`` inputs); both divisible by ``2 ** len(widths)``.
        widths: channels of each level, top first.
        bottleneck: channels of the bottleneck.
    """

    def __init__(self, height: int = 32, width: int = 32, widths: Sequence[int] = (8, 16), bottleneck: int = 32):
        super().__init__()
        self.height, self.width = int(height), int(width)
        self.widths, self.bottleneck = [int(w) for w in widths], int(bottleneck)
        factor = 2 ** len(self.widths)
        if self.height % factor or self.width % factor:
            raise ValueError(f"UNet: height and width must be divisible by 2**levels = {factor}; got "
                             f"{self.height}x{self.width}")
        self.plan = layer_plan(self.widths, self.bottleneck)
        self.convs = nn.ModuleDict()
        for name, kind, c_in, c_out, k in self.plan:
            if kind == "up":
                self.convs[name] = nn.ConvTranspose2d(c_in, c_out, k, stride=2)
            else:
                self.convs[name] = nn.Conv2d(c_in, c_out, k, padding=k // 2)
        self.pool = nn.MaxPool2d(2)
        self.reset_parameters()

    def layer_names(self) -> list[str]:
        return [name for name, *_ in self.plan]

    def layers(self) -> list[nn.Module]:
        return [self.convs[name] for name in self.layer_names()]

    def reset_parameters(self) -> None:
        """Keras' defaults: Glorot-uniform kernels (fans include the receptive field), zero biases."""
        for layer in self.layers():
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def numpy_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W, b), …]`` (torch layout, :meth:`layer_names` order) as float64 NumPy arrays."""
        return numpy_weights(self.layers())

    def set_numpy_weights(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Load ``[(W, b), …]`` (torch layout, :meth:`layer_names` order)."""
        load_numpy_weights("UNet", self.layer_names(), self.layers(), weights)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.height, self.width):
            raise ValueError(f"UNet: expected images of shape (N, {self.height}, {self.width}) (one channel, "
                             f"no channel axis); got {tuple(x.shape)}")

    def _conv(self, name: str, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs[name](h))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._check(x)
        h, skips = x.unsqueeze(1), []  # NCHW
        for i in range(len(self.widths)):
            h = self._conv(f"enc{i}_b", self._conv(f"enc{i}_a", h))
            skips.append(h)
            h = self.pool(h)
        return self._conv("mid_b", self._conv("mid_a", h)), skips

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck activations ``(N, bottleneck, H / 2**levels, W / 2**levels)``."""
        return self._encode(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, skips = self._encode(x)
        for i in reversed(range(len(self.widths))):
            h = torch.cat([self.convs[f"up{i}"](h), skips[i]], dim=1)
            h = self._conv(f"dec{i}_b", self._conv(f"dec{i}_a", h))
        return self.convs["logits"](h).squeeze(1)


__all__ = ["UNet", "layer_plan", "torch_shape"]
