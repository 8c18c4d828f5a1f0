"""Framework-neutral description of a small U-Net (the ``segmentation`` scenario's network).

:class:`UNet` is to ``torch_impl.lightning.unet.UNet`` and ``tf_impl.unet.build_unet`` what
:class:`~lossparity.scenarios.base.MLP` is to the MLPs: plain values, NumPy initial weights, and the
builders of both frameworks (``base.NetworkBuilders``: ``torch_module``, ``keras_model``,
``set_keras_weights``, ``keras_weights``, as the MLP's, so the backends (``backends.py``) and the
training-step parity test build any network the same way).

Data layout: images are ``(N, H, W)`` arrays (one channel, no channel axis) in
:class:`~lossparity.scenarios.base.Arrays`, masks ``(N, H, W)`` of 0/1, and the networks return one
logit per pixel ``(N, H, W)``. The channel axis exists only inside the networks: torch adds it at
axis 1 (``NCHW``), Keras at the end (``NHWC``). So both frameworks get the very same arrays and
batches, and the losses (sums over every non-batch axis) and metrics (pixels pooled with samples)
see the same shapes.

Weights are ``[(W, b), …]`` in torch layout, in ``layer_plan`` order: convolution ``(out, in, kh, kw)``,
transposed convolution ``(in, out, kh, kw)``; ``tf_impl.unet`` transposes them into Keras' kernels
(``(kh, kw, in, out)`` and ``(kh, kw, out, in)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from spec.architectures import unet_layer_plan

from .base import NetworkBuilders

layer_plan = unet_layer_plan  # the one plan of both frameworks (spec.architectures)


@dataclass(frozen=True)
class UNet(NetworkBuilders):
    """U-Net ``(N, height, width) → (N, height, width)`` logits: ``len(widths)`` levels of
    conv-conv-pool, a conv-conv bottleneck, transposed-conv upsampling with skip concatenation,
    and a 1×1 convolution to one logit channel (see ``torch_impl.lightning.unet``)."""

    height: int
    width: int
    widths: tuple[int, ...] = (8, 16)
    bottleneck: int = 32

    TORCH_CLASS = "torch_impl.lightning.unet:UNet"
    KERAS_BUILD = "tf_impl.unet:build_unet"
    KERAS_WEIGHTS = "tf_impl.unet"

    def plan(self) -> list[tuple[str, str, int, int, int]]:
        return layer_plan(self.widths, self.bottleneck)

    def init_weights(self, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Keras' default initialization drawn with NumPy: Glorot-uniform kernels
        ``U(±sqrt(6 / ((in + out) · kh · kw)))`` (Keras' fans include the receptive field), zero
        biases; torch layout, float64."""
        rng = np.random.default_rng([int(seed), 0x0E7])
        out = []
        for _, kind, c_in, c_out, k in self.plan():
            limit = math.sqrt(6.0 / ((c_in + c_out) * k * k))
            shape = (c_in, c_out, k, k) if kind == "up" else (c_out, c_in, k, k)
            out.append((rng.uniform(-limit, limit, size=shape), np.zeros(c_out)))
        return out

    def kwargs(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "widths": list(self.widths),
                "bottleneck": self.bottleneck}


__all__ = ["UNet", "layer_plan"]
