"""Cross-replica statistics for batch-statistic losses (``sync=True``).

``sync_sum`` all-reduces a tensor of sufficient statistics *with gradients*: an autograd
function whose forward and backward are both a sum all-reduce (what the deprecated
``torch.distributed.nn.functional.all_reduce`` does).
With DDP, each rank then holds the global-batch loss; the backward sums the cotangents of the
``world_size`` ranks and DDP's gradient averaging divides by ``world_size`` again, so parameter
gradients equal the single-process gradients on the global batch. A no-op when no process
group is initialized (or its size is 1).
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, stats):
        out = stats.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def sync_sum(stats: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return stats
    return _AllReduceSum.apply(stats)
