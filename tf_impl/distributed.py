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


def scale_for_replicas(loss: tf.Tensor) -> tf.Tensor:
    """Divide a mean-reduced loss by the number of replicas, as Keras' own ``Loss.__call__`` does
    (``keras.losses.Loss`` → ``scale_loss_for_distribution``): the replicas' gradients are summed,
    so the sum is the global-batch gradient. A no-op outside ``tf.distribute``."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        loss = loss * tf.cast(1.0 / replicas, loss.dtype)
    return loss
