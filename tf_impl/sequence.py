"""Sequence losses, TensorFlow twins of :mod:`spec.sequence`: ``ctc``. Argument order is Keras':
``(y_true, y_pred)``: integer label rows ``(N, L)`` padded with the blank, and logits ``(N, T, C)``.

``tf.nn.ctc_loss`` rejects float64 (Keras casts to float32 around it), so the forward recursion is
written here, in log space, for both dtypes; autodiff gives the gradient."""
from __future__ import annotations

import tensorflow as tf

from ._core import apply, traced_when_eager

__all__ = ["ctc"]

#: log 0 of an unreachable state: finite, so that no -inf - (-inf) reaches the gradient; far below
#: any sum of log-probabilities (float32's smallest log-probability is about -1e4 · T at logit 1e4)
LOG_ZERO = -1e30


def label_rows(y, blank):
    """Each row's non-blank entries moved to its front in order, and their count (the torch twin's)."""
    y = tf.cast(y, tf.int32)
    padding = tf.equal(y, blank)
    order = tf.argsort(tf.cast(padding, tf.int32), axis=1, stable=True)
    return tf.gather(y, order, batch_dims=1), tf.reduce_sum(tf.cast(tf.logical_not(padding), tf.int32), axis=1)


def feasible(labels, lengths, steps):
    """Whether ``steps`` suffice for each row: one per label and a blank between equal neighbours."""
    inside = tf.range(1, tf.shape(labels)[1])[None, :] < lengths[:, None]
    repeats = tf.reduce_sum(tf.cast(tf.logical_and(tf.equal(labels[:, 1:], labels[:, :-1]), inside), tf.int32), 1)
    return lengths + repeats <= steps


def _shifted(a, k, fill):
    """``a`` moved ``k`` places right along the last axis, ``fill`` in the first ``k``."""
    return tf.concat([tf.fill(tf.stack([tf.shape(a)[0], k]), fill), a[:, :-k]], axis=1)[:, :tf.shape(a)[1]]


def _logsumexp3(a, b, c):
    top = tf.stop_gradient(tf.maximum(tf.maximum(a, b), c))
    return top + tf.math.log(tf.exp(a - top) + tf.exp(b - top) + tf.exp(c - top))


def _extended(labels, blank):
    """``b, l₁, b, l₂, …, b`` per row ``(N, 2L + 1)`` and where the skip ``s - 2 → s`` is allowed."""
    n = tf.shape(labels)[0]
    blanks = tf.fill(tf.shape(labels), blank)
    ext = tf.reshape(tf.stack([blanks, labels], axis=2), tf.stack([n, -1]))
    ext = tf.concat([ext, tf.fill(tf.stack([n, 1]), blank)], axis=1)
    before = _shifted(ext, 2, blank)
    s = tf.range(tf.shape(ext)[1])[None, :]
    skip = tf.logical_and(s >= 2, tf.logical_and(tf.not_equal(ext, blank), tf.not_equal(ext, before)))
    return ext, skip


def _nll(x, labels, lengths, blank):
    """``-log p(labels | x)`` per sample: the forward recursion over the extended labels, in log space
    (an eager call runs it as one traced graph: :func:`_ctc_per_sample` is ``traced_when_eager``)."""
    ext, skip = _extended(labels, blank)
    lp = tf.nn.log_softmax(x, axis=-1)
    lp_ext = tf.transpose(tf.gather(lp, ext, axis=2, batch_dims=1), [1, 0, 2])  # (T, N, S)
    log_zero = tf.constant(LOG_ZERO, x.dtype)
    states = tf.range(tf.shape(ext)[1])[None, :]
    alpha0 = tf.where(states < 2, lp_ext[0], log_zero)

    def step(alpha, lp_t):
        jump = tf.where(skip, _shifted(alpha, 2, log_zero), log_zero)
        return lp_t + _logsumexp3(alpha, _shifted(alpha, 1, log_zero), jump)

    alpha = tf.foldl(step, lp_ext[1:], initializer=alpha0)
    last = tf.gather(alpha, 2 * lengths, batch_dims=1)
    before_last = tf.where(lengths > 0, tf.gather(alpha, tf.maximum(2 * lengths - 1, 0), batch_dims=1), log_zero)
    top = tf.stop_gradient(tf.maximum(last, before_last))
    return -(top + tf.math.log(tf.exp(last - top) + tf.exp(before_last - top)))


@traced_when_eager
def _ctc_per_sample(x, y, *, blank, zero_infinity, divide_by_target_length):
    labels, lengths = label_rows(y, blank)
    nll = _nll(tf.cast(x, tf.float64), labels, lengths, blank)  # float64 inside (the torch twin's reason)
    fill = tf.zeros_like(nll) if zero_infinity else tf.fill(tf.shape(nll), tf.constant(float("inf"), nll.dtype))
    loss = tf.where(feasible(labels, lengths, tf.shape(x)[1]), nll, fill)
    if divide_by_target_length:
        loss = loss / tf.cast(tf.maximum(lengths, 1), loss.dtype)
    return tf.cast(loss, x.dtype)


def ctc(y_true, y_pred, *, blank=0, zero_infinity=False, divide_by_target_length=False, sample_weight=None,
        reduction="mean", validate=True):
    r"""Connectionist temporal classification loss of logits against label sequences (see the torch twin).

    Same contract as the torch twin, with Keras' argument order. ``keras.losses.CTC()`` is ours at the
    defaults on float32 logits whose rows keep the padding at the end, and feasible labels.
    """
    params = {"blank": blank, "zero_infinity": zero_infinity, "divide_by_target_length": divide_by_target_length}
    return apply("ctc", _ctc_per_sample, y_true, y_pred, sample_weight, params, reduction, validate)
