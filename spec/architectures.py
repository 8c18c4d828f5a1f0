"""Framework-neutral layer plans of the networks the scenarios build in both frameworks.

One plan, three users: ``torch_impl.lightning.unet.UNet`` and ``tf_impl.unet.build_unet`` build
their layers from it (names, channels, kernel sizes, weight order), and
``lossparity.scenarios.unet.UNet`` draws the shared initial weights from it. Plain Python, no NumPy.
"""
from __future__ import annotations

from collections.abc import Sequence


def unet_layer_plan(widths: Sequence[int], bottleneck: int) -> list[tuple[str, str, int, int, int]]:
    """``[(name, kind, in_channels, out_channels, kernel), …]`` of the U-Net with ``len(widths)``
    levels, in weight order; ``kind`` is ``"conv"`` or ``"up"`` (2×2 transposed convolution).

    Level ``i``: ``enc{i}_a``, ``enc{i}_b`` (3×3, ``widths[i]`` channels); the bottleneck
    ``mid_a``, ``mid_b``; upward (deepest first) ``up{i}``, then ``dec{i}_a`` (its input is the
    concatenation ``[up, skip]``: ``2 · widths[i]`` channels), ``dec{i}_b``; ``logits`` (1×1, one
    channel). Raises ``ValueError`` unless every width and the bottleneck are positive."""
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1 or int(bottleneck) < 1:
        raise ValueError(f"UNet: widths must be positive channel counts and bottleneck >= 1; got "
                         f"widths={widths}, bottleneck={bottleneck}")
    bottleneck = int(bottleneck)
    plan, c = [], 1
    for i, w in enumerate(widths):
        plan += [(f"enc{i}_a", "conv", c, w, 3), (f"enc{i}_b", "conv", w, w, 3)]
        c = w
    plan += [("mid_a", "conv", c, bottleneck, 3), ("mid_b", "conv", bottleneck, bottleneck, 3)]
    c = bottleneck
    for i in reversed(range(len(widths))):
        w = widths[i]
        plan += [(f"up{i}", "up", c, w, 2), (f"dec{i}_a", "conv", 2 * w, w, 3), (f"dec{i}_b", "conv", w, w, 3)]
        c = w
    plan.append(("logits", "conv", c, 1, 1))
    return plan


__all__ = ["unet_layer_plan"]
