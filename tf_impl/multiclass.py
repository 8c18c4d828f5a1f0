"""Multiclass classification losses (softmax heads), TensorFlow twins of :mod:`spec.multiclass`:
``categorical_crossentropy``, ``sparse_categorical_crossentropy``, ``cost_sensitive_cce``,
``categorical_focal_crossentropy``, ``categorical_generalized_crossentropy``.

Argument order is Keras': ``(y_true, y_pred)``, truth first.

Class axis: the LAST axis (Keras' channels_last convention). For inputs of rank > 2 the
per-sample loss is the mean over the non-batch, non-class positions.
"""
from __future__ import annotations

import tensorflow as tf

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, mean_nonbatch, reduce, traced_when_eager, with_total

__all__ = ["categorical_crossentropy", "sparse_categorical_crossentropy", "cost_sensitive_cce",
           "categorical_focal_crossentropy", "categorical_generalized_crossentropy"]


def _log_q(x: tf.Tensor, from_logits: bool) -> tf.Tensor:
    """``log softmax(x)`` (log-sum-exp) for logits, the spec's clamp ``log(max(p, 2**-126))`` for
    probabilities."""
    if from_logits:
        return tf.nn.log_softmax(x, axis=-1)
    return tf.math.log(tf.maximum(x, tf.constant(P_MIN, x.dtype)))


def _smoothed(x, y, label_smoothing):
    """``y (1-ε) + ε/C`` in x's dtype (integer one-hot targets join it); ``y`` itself for ε = 0."""
    if y.dtype != x.dtype:
        y = tf.cast(y, x.dtype)
    if not label_smoothing:
        return y
    c = tf.cast(tf.shape(x)[-1], x.dtype)
    return y * (1.0 - label_smoothing) + label_smoothing / c


def _rows_total(row_losses: tf.Tensor, x, mean: bool) -> tf.Tensor:
    """``Σ_i ℓ_i`` (over N when ``mean``) of a loss that is the mean of its row losses over the R/N
    rows of each sample (static shape): the mean over all rows, or their sum over R/N."""
    if mean:
        return tf.reduce_mean(row_losses)
    per_sample_rows = row_losses.shape.num_elements() // x.shape[0]
    total = tf.reduce_sum(row_losses)
    return total / per_sample_rows if per_sample_rows != 1 else total


def _categorical_crossentropy_total(x, y, mean, *, from_logits, label_smoothing, class_weight=None):
    if class_weight is not None:
        return reduce(_categorical_crossentropy_per_sample(x, y, from_logits=from_logits,
                                                           label_smoothing=label_smoothing, class_weight=class_weight),
                      None, "mean" if mean else "sum")
    if x.shape.rank is not None and x.shape.rank >= 2:
        # -Σ y log q over every row, negated once on the reduced value
        total = tf.reduce_sum(_smoothed(x, y, label_smoothing) * _log_q(x, from_logits))
        rows = x.shape.num_elements() // x.shape[-1]
        return total * (-1.0 / rows if mean else -float(x.shape[0]) / rows)
    return reduce(_categorical_crossentropy_per_sample(x, y, from_logits=from_logits,
                                                       label_smoothing=label_smoothing), None,
                  "mean" if mean else "sum")


@with_total(_categorical_crossentropy_total)
def _categorical_crossentropy_per_sample(x, y, *, from_logits, label_smoothing, class_weight=None):
    y = _smoothed(x, y, label_smoothing)
    if class_weight is not None:
        y = y * class_weight
    return mean_nonbatch(-tf.reduce_sum(y * _log_q(x, from_logits), axis=-1))


def categorical_crossentropy(y_true, y_pred, *, from_logits=True, label_smoothing=0.0, class_weight=None,
                             sample_weight=None, reduction="mean", validate=True):
    r"""Softmax cross-entropy with one-hot or soft targets; classes on the last axis.

    .. math::
        \ell_i = -\frac{1}{R}\sum_r \sum_{c=1}^{C} y'_{rc} \log \mathrm{softmax}(x_r)_c,\quad
        y' = y(1-\epsilon) + \epsilon / C

    Stability: ``tf.nn.log_softmax`` (log-sum-exp), never ``log(softmax(x))``. Probabilities
    (``from_logits=False``) use ``log(max(p, 2**-126))`` and must be rows summing to 1 (checked;
    ``keras.losses.CategoricalCrossentropy`` silently renormalizes them and clips at 1e-7). Same
    contract as the torch twin, with Keras' argument order. ``class_weight``: ``(C,)`` per-class
    weights, ``-Σ_c w_c y'_c log q_c`` per row (``fit(class_weight=)`` of one-hot rows).
    """
    return apply("categorical_crossentropy", _categorical_crossentropy_per_sample, y_true, y_pred,
                 sample_weight, {"from_logits": from_logits, "label_smoothing": label_smoothing,
                                 "class_weight": class_weight}, reduction, validate)


def _labels(y):
    return y if y.dtype == tf.int64 else tf.cast(y, tf.int64)


def _sparse_categorical_crossentropy_total(x, y, mean, *, from_logits, label_smoothing=0.0, class_weight=None,
                                           ignore_index=None):
    if label_smoothing or class_weight is not None or ignore_index is not None:
        return reduce(_weighted_sparse_per_sample(x, y, from_logits, label_smoothing, class_weight, ignore_index),
                      None, "mean" if mean else "sum")
    if from_logits and x.shape.rank is not None and x.shape.rank >= 2:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=_labels(y), logits=x)
        return _rows_total(ce, x, mean)
    return reduce(_sparse_categorical_crossentropy_per_sample(x, y, from_logits=from_logits), None,
                  "mean" if mean else "sum")


def _weighted_sparse_per_sample(x, y, from_logits, label_smoothing, class_weight, ignore_index):
    """Per-sample loss with class weights, ignored labels or label smoothing: -Σ_c w_c y'_c log q_c
    per row, 0 on ignored rows (spec.multiclass._sparse_dense_target); only these calls pay for it."""
    labels = _labels(y)
    c = tf.shape(x)[-1]
    if ignore_index is not None:
        valid = tf.not_equal(labels, ignore_index)
        labels = tf.where(valid, labels, tf.zeros_like(labels))
    t = tf.one_hot(labels, c, dtype=x.dtype)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / tf.cast(c, x.dtype)
    if ignore_index is not None:
        t = t * tf.cast(valid, x.dtype)[..., None]
    if class_weight is not None:
        t = t * class_weight
    return mean_nonbatch(-tf.reduce_sum(t * _log_q(x, from_logits), axis=-1))


@with_total(_sparse_categorical_crossentropy_total)
def _sparse_categorical_crossentropy_per_sample(x, y, *, from_logits, label_smoothing=0.0, class_weight=None,
                                                ignore_index=None):
    if label_smoothing or class_weight is not None or ignore_index is not None:
        return _weighted_sparse_per_sample(x, y, from_logits, label_smoothing, class_weight, ignore_index)
    if from_logits and x.shape.rank is not None and x.shape.rank >= 2:
        # the fused kernel (log-sum-exp loss, gradient softmax - onehot: exact for one-hot rows);
        # out-of-range labels with validate=False raise on CPU instead of giving a zero row
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=_labels(y), logits=x)
        return mean_nonbatch(ce)
    # a one-hot selection (XLA-friendly, exact: one non-zero term per row)
    onehot = tf.one_hot(tf.cast(y, tf.int64), tf.shape(x)[-1], dtype=x.dtype)
    return mean_nonbatch(-tf.reduce_sum(onehot * _log_q(x, from_logits), axis=-1))


def sparse_categorical_crossentropy(y_true, y_pred, *, from_logits=True, label_smoothing=0.0, class_weight=None,
                                    ignore_index=None, sample_weight=None, reduction="mean", validate=True):
    r"""Softmax cross-entropy with integer class labels; classes on the last axis.

    .. math::
        \ell_i = -\frac{1}{R}\sum_r \log \mathrm{softmax}(x_r)_{y_r}

    ``y_true``: class indices in ``[0, C-1]`` of shape ``y_pred.shape[:-1]`` (integer dtype, or
    floats holding whole numbers). With ``from_logits=False`` the rows must sum to 1: a sigmoid
    head (the MNIST problem) raises a ValueError instead of being renormalized as in Keras.
    ``ignore_index``: Keras' ``ignore_class`` per row (0 there); the mean stays ``Σ_i ℓ_i / N`` (Keras'
    masked sum_over_batch_size is ``reduction="sum"`` divided by the number of rows not ignored).
    ``class_weight``: ``w[y]`` per row, what ``fit(class_weight=)`` does with sample weights.
    """
    return apply("sparse_categorical_crossentropy", _sparse_categorical_crossentropy_per_sample, y_true,
                 y_pred, sample_weight, {"from_logits": from_logits, "label_smoothing": label_smoothing,
                                         "class_weight": class_weight, "ignore_index": ignore_index},
                 reduction, validate)


@traced_when_eager
def _cost_sensitive_cce_per_sample(x, y, *, cost_matrix, mode, from_logits):
    y = tf.cast(y, x.dtype)  # integer one-hot targets join the compute dtype
    log_q = _log_q(x, from_logits)
    ce = -tf.reduce_sum(y * log_q, axis=-1)
    a = tf.tensordot(y, cost_matrix, axes=1)  # a_p = Σ_t y_t C[t, p]
    if mode == "argmax":
        # every class tied at the max counts (exact equality); m is a constant for autodiff
        mask = tf.cast(tf.equal(x, tf.reduce_max(x, axis=-1, keepdims=True)), x.dtype)
        m = tf.stop_gradient(tf.reduce_sum(a * mask, axis=-1))
    else:
        # q from its own log-softmax node: each backward then cancels only its own term (one
        # shared backward sums CE·a·q with -m·y and loses their difference in float32). exp of a
        # log-softmax, not tf.nn.softmax: its batched CPU kernel gives 0.99999994 for a saturated
        # row, and 1e5 · 6e-8 shows in the gradient
        if from_logits:
            # costs relative to the most probable class k (spec.multiclass.soft_shift): ∂m/∂q_k = 0,
            # so the softmax backward keeps Σ_p q_p (a_p - a_k) a saturated row would round away
            q = tf.exp(tf.nn.log_softmax(x, axis=-1))
            a_k = tf.gather(a, tf.argmax(x, axis=-1), batch_dims=len(x.shape) - 1)[..., None]
            m = a_k[..., 0] + tf.reduce_sum((a - a_k) * q, axis=-1)
        else:
            m = tf.reduce_sum(a * x, axis=-1)
    return mean_nonbatch(ce * m)


def cost_sensitive_cce(y_true, y_pred, *, cost_matrix=None, mode="argmax", from_logits=True, sample_weight=None,
                       reduction="mean", validate=True):
    r"""Categorical cross-entropy times a misclassification cost (the cost-sensitive problem's loss, fixed); classes on
    the last axis (``y_pred`` and one-hot / soft ``y_true`` of shape ``(N, ..., C)``).

    .. math::
        \ell_i = \frac{1}{R}\sum_r \mathrm{CE}(x_r, y_r)\, m_r,\quad
        m_r = \sum_{p:\ x_{rp} = \max_c x_{rc}} \sum_t C_{tp}\, y_{rt} \ \text{(argmax)}
        \ \text{or}\ \sum_t y_{rt} \sum_p C_{tp}\,\mathrm{softmax}(x_r)_p \ \text{(soft)}

    ``cost_matrix[t, p]``: cost of predicting ``p`` when the truth is ``t`` (required, ``(C, C)``,
    >= 0). ``mode="argmax"``: ties at the max all count (costs summed), ``m`` under
    ``tf.stop_gradient``. ``mode="soft"``: differentiable. CE is computed as CE(y_true, y_pred),
    not the cost-sensitive problem's Keras-1 order ``categorical_crossentropy(y_pred, y_true)``. Stability: CE from
    ``tf.nn.log_softmax``.
    """
    return apply("cost_sensitive_cce", _cost_sensitive_cce_per_sample, y_true, y_pred, sample_weight,
                 {"cost_matrix": cost_matrix, "mode": mode, "from_logits": from_logits}, reduction, validate)


def _focal_logs(x: tf.Tensor, from_logits: bool):
    """``(log q, log(1 - q))`` per class (:func:`spec.multiclass._focal_logs`): at the argmax ``c*`` of
    logits ``log(1 - q) = logsumexp_{k≠c*}(x) - logsumexp(x)``, finite where ``1 - q`` rounds to 0;
    ``log1p(-q)`` elsewhere. Each ``where`` branch that is not taken sees a harmless argument, so its
    gradient is 0, never 0 · inf."""
    if not from_logits:
        keep = (1.0 - x) >= tf.constant(P_MIN, x.dtype)
        log_1mq = tf.where(keep, tf.math.log1p(-tf.where(keep, x, tf.zeros_like(x))),
                           tf.constant(LOG_P_MIN, x.dtype))
        return tf.math.log(tf.maximum(x, tf.constant(P_MIN, x.dtype))), log_1mq
    log_q = tf.nn.log_softmax(x, axis=-1)
    top = tf.one_hot(tf.argmax(x, axis=-1), tf.shape(x)[-1], on_value=True, off_value=False)
    # both logsumexps of x - x_c* (the argmax's own logit, so its gradient cancels exactly): large
    # logits cancel before the sums
    shifted = x - tf.reduce_sum(tf.where(top, x, tf.zeros_like(x)), axis=-1, keepdims=True)
    masked = tf.where(top, tf.constant(float("-inf"), x.dtype), shifted)
    rest = (tf.reduce_logsumexp(masked, axis=-1, keepdims=True)
            - tf.reduce_logsumexp(shifted, axis=-1, keepdims=True))
    off_top = tf.math.log1p(-tf.exp(tf.where(top, tf.constant(-1.0, x.dtype), log_q)))
    return log_q, tf.where(top, rest, off_top)


@traced_when_eager
def _categorical_focal_crossentropy_per_sample(x, y, *, alpha, gamma, from_logits, label_smoothing):
    y = _smoothed(x, y, label_smoothing)
    log_q, log_1mq = _focal_logs(x, from_logits)
    return mean_nonbatch(tf.reduce_sum(y * tf.exp(gamma * log_1mq) * log_q, axis=-1) * -alpha)


def categorical_focal_crossentropy(y_true, y_pred, *, alpha=0.25, gamma=2.0, from_logits=True, label_smoothing=0.0,
                                   sample_weight=None, reduction="mean", validate=True):
    r"""Softmax focal loss with one-hot or soft targets; classes on the last axis.

    .. math::
        \ell_i = -\frac{\alpha}{R}\sum_r \sum_c y'_{rc} (1 - q_{rc})^{\gamma} \log q_{rc},\quad
        q = \mathrm{softmax}(x),\quad y' = y(1-\epsilon) + \epsilon / C

    Stability: ``tf.nn.log_softmax`` for ``log q``; ``(1 - q)^γ = exp(γ log(1 - q))`` with ``log(1 - q)``
    of the argmax class from the other classes' ``reduce_logsumexp``: finite values and gradients for
    any ``γ >= 0`` and any finite logits (``keras.losses.CategoricalFocalCrossentropy`` clips the
    softmax to [1e-7, 1 - 1e-7]). Same contract as the torch twin, with Keras' argument order.
    """
    return apply("categorical_focal_crossentropy", _categorical_focal_crossentropy_per_sample, y_true, y_pred,
                 sample_weight, {"alpha": alpha, "gamma": gamma, "from_logits": from_logits,
                                 "label_smoothing": label_smoothing}, reduction, validate)


@traced_when_eager
def _categorical_generalized_crossentropy_per_sample(x, y, *, q, from_logits):
    onehot = tf.one_hot(tf.cast(y, tf.int64), tf.shape(x)[-1], dtype=x.dtype)
    log_p = tf.reduce_sum(onehot * _log_q(x, from_logits), axis=-1)
    return mean_nonbatch(tf.math.expm1(q * log_p) * (-1.0 / q))


def categorical_generalized_crossentropy(y_true, y_pred, *, q=0.5, from_logits=True, sample_weight=None,
                                         reduction="mean", validate=True):
    r"""Generalized cross-entropy with integer class labels; classes on the last axis.

    .. math::
        \ell_i = \frac{1}{R}\sum_r \frac{1 - p_{r,y_r}^{\,q}}{q},\quad p = \mathrm{softmax}(x)

    ``y_true``: class indices of shape ``y_pred.shape[:-1]``. Stability: ``-expm1(q log p) / q`` with
    ``log p`` from ``tf.nn.log_softmax`` (or the 2**-126 clamp of probabilities);
    ``keras.losses.CategoricalGeneralizedCrossEntropy`` takes probabilities only and computes
    ``1 - p**q``.
    """
    return apply("categorical_generalized_crossentropy", _categorical_generalized_crossentropy_per_sample, y_true,
                 y_pred, sample_weight, {"q": q, "from_logits": from_logits}, reduction, validate)
