"""The torch implementation, registered under the spec's name by subclassing SpecLoss."""
import torch

import torch_impl


def _squared_margin_per_sample(x, y, *, margin):
    return torch_impl.mean_nonbatch(torch.clamp(margin - (2.0 * y - 1.0) * x, min=0.0) ** 2)


class SquaredMarginLoss(torch_impl.SpecLoss):
    spec_name = "squared_margin"
    per_sample = staticmethod(_squared_margin_per_sample)

    def __init__(self, *, margin=1.0, reduction="mean", validate=True):
        super().__init__(margin=margin, reduction=reduction, validate=validate)
