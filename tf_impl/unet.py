"""A small Keras U-Net for one-channel images, twin of ``torch_impl.lightning.unet.UNet``.

Layout: the model takes images ``(N, H, W)`` (one channel, no channel axis) and returns one logit
per pixel ``(N, H, W)``; inside it works in Keras' ``NHWC`` (``Reshape`` layers named ``nhwc`` and
``mask_logits`` add and remove the channel axis), while the torch twin works in ``NCHW``. Both
frameworks therefore train on the same arrays, and our losses (sums over every non-batch axis) and
metrics see the same shapes.

Architecture and layer names are the torch twin's (see its docstring): ``enc{i}_a``, ``enc{i}_b``
(3×3 "same" convolutions + ReLU), ``pool{i}`` (2×2 max pooling), ``mid_a``, ``mid_b`` (bottleneck,
exposed as the ``Identity`` layer ``features``), ``up{i}`` (2×2 transposed convolution, stride 2),
``skip{i}`` (``Concatenate([up, skip])`` on the channel axis), ``dec{i}_a``, ``dec{i}_b``, and
``logits`` (1×1 convolution, one channel). A functional model of built-in layers only, so ``.keras``
files load without custom objects.

Weights are exchanged in torch layout (:func:`set_torch_layout_weights`,
:func:`torch_layout_weights`), layer by layer in :func:`layer_plan` order:

* ``Conv2D`` kernel ``(kh, kw, in, out)`` = torch ``Conv2d`` weight ``(out, in, kh, kw)`` transposed
  by ``(2, 3, 1, 0)``;
* ``Conv2DTranspose`` kernel ``(kh, kw, out, in)`` = torch ``ConvTranspose2d`` weight
  ``(in, out, kh, kw)`` transposed by ``(2, 3, 1, 0)`` too (both frameworks scatter
  ``x[i] · K[a]`` to ``out[2i + a]``: no kernel flip).
"""
from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from spec.architectures import unet_layer_plan

#: torch layout → Keras kernel (the same permutation for Conv2D and Conv2DTranspose)
TO_KERAS = (2, 3, 1, 0)
#: Keras kernel → torch layout (inverse of :data:`TO_KERAS`)
TO_TORCH = (3, 2, 0, 1)


layer_plan = unet_layer_plan  # the one plan of both frameworks (spec.architectures)


def build_unet(height: int = 32, width: int = 32, widths: Sequence[int] = (8, 16), bottleneck: int = 32, *,
               dtype: str | None = None, name: str = "unet") -> keras.Model:
    """The functional U-Net ``(N, height, width) → (N, height, width)`` logits (see the module
    docstring); ``dtype`` is the layers' dtype policy (``"float64"`` for a float64 model)."""
    height, width = int(height), int(width)
    widths = [int(w) for w in widths]
    factor = 2 ** len(widths)
    if height % factor or width % factor:
        raise ValueError(f"UNet: height and width must be divisible by 2**levels = {factor}; got {height}x{width}")
    layer_plan(widths, bottleneck)  # validates
    L = keras.layers

    def conv(filters, name, kernel=3, activation="relu"):
        return L.Conv2D(filters, kernel, padding="same", activation=activation, name=name, dtype=dtype)

    image = keras.Input((height, width), dtype=dtype or keras.config.floatx(), name="image")
    h = L.Reshape((height, width, 1), name="nhwc", dtype=dtype)(image)
    skips = []
    for i, w in enumerate(widths):
        h = conv(w, f"enc{i}_b")(conv(w, f"enc{i}_a")(h))
        skips.append(h)
        h = L.MaxPooling2D(2, name=f"pool{i}", dtype=dtype)(h)
    h = conv(int(bottleneck), "mid_b")(conv(int(bottleneck), "mid_a")(h))
    h = L.Identity(name="features", dtype=dtype)(h)
    for i in reversed(range(len(widths))):
        up = L.Conv2DTranspose(widths[i], 2, strides=2, padding="valid", name=f"up{i}", dtype=dtype)(h)
        h = L.Concatenate(axis=-1, name=f"skip{i}", dtype=dtype)([up, skips[i]])
        h = conv(widths[i], f"dec{i}_b")(conv(widths[i], f"dec{i}_a")(h))
    h = conv(1, "logits", kernel=1, activation=None)(h)
    out = L.Reshape((height, width), name="mask_logits", dtype=dtype)(h)
    return keras.Model(image, out, name=name)


def weight_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers with weights, in :func:`layer_plan` order."""
    present = {layer.name for layer in model.layers if layer.weights}
    names = [n for n in _plan_names(model) if n in present]
    if set(names) != present:
        raise ValueError(f"{model.name}: layers {sorted(present - set(names))} are not U-Net layers")
    return names


def _plan_names(model: keras.Model) -> list[str]:
    levels = sum(1 for layer in model.layers if layer.name.startswith("pool"))
    names = [n for i in range(levels) for n in (f"enc{i}_a", f"enc{i}_b")] + ["mid_a", "mid_b"]
    for i in reversed(range(levels)):
        names += [f"up{i}", f"dec{i}_a", f"dec{i}_b"]
    return names + ["logits"]


def set_torch_layout_weights(model: keras.Model, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    """Load ``[(W, b), …]`` in torch layout (``torch_impl.lightning.unet.UNet.numpy_weights()``)."""
    names = weight_layer_names(model)
    if len(weights) != len(names):
        raise ValueError(f"{model.name}: got {len(weights)} (W, b) pairs for {len(names)} layers")
    for name, (w, b) in zip(names, weights):
        w, b = np.asarray(w), np.asarray(b)
        if w.ndim != 4:
            raise ValueError(f"{model.name}: layer {name}: expected a 4-D torch-layout weight; got {w.shape}")
        model.get_layer(name).set_weights([w.transpose(TO_KERAS), b])


def torch_layout_weights(model: keras.Model) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W, b), …]`` in torch layout, float64."""
    out = []
    for name in weight_layer_names(model):
        kernel, bias = model.get_layer(name).get_weights()
        out.append((np.asarray(kernel, np.float64).transpose(TO_TORCH).copy(), np.asarray(bias, np.float64)))
    return out


__all__ = ["build_unet", "layer_plan", "set_torch_layout_weights", "torch_layout_weights", "weight_layer_names",
           "TO_KERAS", "TO_TORCH"]
