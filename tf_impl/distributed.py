"""Cross-replica statistics for batch-statistic losses (``sync=True``), TensorFlow side.

Inside a ``tf.distribute`` replica context with more than one replica, ``sync_sum`` sums a
tensor of sufficient statistics over replicas with ``ReplicaContext.all_reduce`` (which is
differentiable); in the default strategy or a cross-replica context it is a no-op.
"""
from __future__ import annotations

import tensorflow as tf


def sync_sum(stats: tf.Tensor) -> tf.Tensor:
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return stats
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, stats)
