"""Binary / multilabel classification losses, TensorFlow twins of :mod:`spec.classification`.

Argument order is Keras': ``(y_true, y_pred)``, truth first.
"""
from __future__ import annotations

import tensorflow as tf

from spec.numerics import LOG_P_MIN, P_MIN

from ._core import apply, mean_nonbatch, reduce, traced_when_eager, with_total
from ._fused import elementwise_closed_form, elementwise_cotangent


def _log_probs(x: tf.Tensor, from_logits: bool):
    """``(log p, log(1 - p))``: log-sigmoids for logits, the spec's clamp for probabilities."""
    if from_logits:
        return tf.math.log_sigmoid(x), tf.math.log_sigmoid(-x)
    p_min = tf.constant(P_MIN, x.dtype)
    # log(1 - p) as log1p(-p) (1 - p rounds tiny p away), the same clamp where 1 - p < P_MIN; the
    # masked branch sees p = 0, so its gradient is 0 there, never inf · 0
    keep = (1.0 - x) >= p_min
    log_1mp = tf.where(keep, tf.math.log1p(-tf.where(keep, x, tf.zeros_like(x))), tf.constant(LOG_P_MIN, x.dtype))
    return tf.math.log(tf.maximum(x, p_min)), log_1mp


def logaddexp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``log(e^a + e^b)`` with the gradient ``softmax(a, b)`` everywhere, ties included.

    The shift ``hi = max(a, b)`` is a constant for autodiff (``stop_gradient``): the form
    ``max + log1p(exp(-|a-b|))`` would send the whole gradient to one side at ``a == b``.
    ``-inf`` on one side is exact (that side gets gradient 0).
    """
    hi = tf.stop_gradient(tf.maximum(a, b))
    return hi + tf.math.log(tf.exp(a - hi) + tf.exp(b - hi))


def _softplus_pair(x):
    """``(softplus(x), softplus(-x)) = (-log σ(-x), -log σ(x))`` from one shared
    ``s = log1p(exp(-|x|))``: ``relu(x) + s`` and ``relu(-x) + s`` (``relu(-x) = relu(x) - x``
    exactly). Sums of non-negative terms: no cancellation (Keras' ``relu(x) - x y + s`` cancels)."""
    s = tf.math.log1p(tf.exp(-tf.abs(x)))
    rx = tf.nn.relu(x)
    return rx + s, (rx - x) + s


def _sum_to(t, w):
    """``t`` summed over the leading axes that ``w`` (scalar or trailing-axis vector) broadcasts
    over: the gradient of a broadcast parameter."""
    return tf.reduce_sum(t, axis=list(range(t.shape.rank - w.shape.rank)))


def _bce_unit_weight(x, y):
    """Elementwise BCE of logits with ``pos_weight = 1`` (the default) and its gradient function,
    the torch twin's ``_bce_unit_weight``: ``e = exp(-|x|)``, ``L = log1p(e)``, ``d = H(x) - y``
    (``H`` the step, ½ at 0, as ``(sign(x) + 1) / 2``: exact), ``ℓ = L + x d``, ``dℓ/dx = d -
    sign(x) σ(-|x|)``."""
    na = -tf.abs(x)
    sgn = tf.sign(x)
    d = (sgn + 1.0) * 0.5 - y
    loss = tf.math.log1p(tf.exp(na)) + x * d
    return loss, lambda: d - sgn * tf.sigmoid(na)


def _wbce_logits(x, y, pos_weight, per_sample=True, mean=True):
    """Weighted BCE of logits with a closed-form gradient (``tf.custom_gradient``):
    ``ℓ = w y softplus(-x) + (1-y) softplus(x)``, ``dℓ/dx = (1-y) σ(x) - w y σ(-x)``; per sample
    or reduced (``per_sample=False``: ``Σ_i ℓ_i``, over N when ``mean``). A scalar ``w = 1`` (the
    default) takes :func:`_bce_unit_weight`. A tensor ``pos_weight`` (e.g. a variable) is an input
    of the custom gradient and gets ``dℓ/dw = y softplus(-x)`` summed over the axes it broadcasts
    over (per sample only)."""
    w_is_tensor = isinstance(pos_weight, (tf.Tensor, tf.Variable))
    if not w_is_tensor and pos_weight == 1.0:
        return elementwise_closed_form(x, lambda x: _bce_unit_weight(x, y), per_sample, mean)

    def value(x, w):
        sp_pos, sp_neg = _softplus_pair(x)
        wy = w * y
        return wy * sp_neg + (1.0 - y) * sp_pos, wy, sp_neg

    def grad_x(x, wy):
        return (1.0 - y) * tf.sigmoid(x) - wy * tf.sigmoid(-x)

    if not w_is_tensor:
        def value_and_grad(x):
            loss, wy, _ = value(x, pos_weight)
            return loss, lambda: grad_x(x, wy)

        return elementwise_closed_form(x, value_and_grad, per_sample, mean)

    @tf.custom_gradient
    def f_w(x, w):
        out, wy, sp_neg = value(x, w)

        def grad(g):
            c = elementwise_cotangent(g, x)
            return c * grad_x(x, wy), _sum_to(c * y * sp_neg, w)

        return mean_nonbatch(out), grad

    return f_w(x, pos_weight)


def _weighted_bce_total(x, y, mean, *, pos_weight, from_logits):
    if from_logits and not isinstance(pos_weight, (tf.Tensor, tf.Variable)):
        return _wbce_logits(x, y, pos_weight, per_sample=False, mean=mean)
    return reduce(_weighted_bce_per_sample(x, y, pos_weight=pos_weight, from_logits=from_logits), None,
                  "mean" if mean else "sum")


@traced_when_eager
@with_total(_weighted_bce_total)
def _weighted_bce_per_sample(x, y, *, pos_weight, from_logits):
    if from_logits:
        return _wbce_logits(x, y, pos_weight)
    log_p, log_1mp = _log_probs(x, from_logits)
    return mean_nonbatch(-(pos_weight * y * log_p + (1.0 - y) * log_1mp))


def weighted_bce(y_true, y_pred, *, pos_weight=1.0, from_logits=True, sample_weight=None,
                 reduction="mean", validate=True):
    r"""Binary cross-entropy with a weight on the positive term.

    .. math::
        \ell_i = -\frac{1}{M}\sum_j \left[w_j\, y_{ij} \log\sigma(x_{ij})
                 + (1-y_{ij})\log(1-\sigma(x_{ij}))\right]

    Stability: ``tf.math.log_sigmoid`` (softplus form), never ``log(sigmoid(x))``; probabilities
    (``from_logits=False``) use ``log(max(q, 2**-126))``. Same contract as the torch twin, with
    Keras' argument order.
    """
    return apply("weighted_bce", _weighted_bce_per_sample, y_true, y_pred, sample_weight,
                 {"pos_weight": pos_weight, "from_logits": from_logits}, reduction, validate)


# below this, 1 - p_t = y σ(-x) + (1-y) σ(x) is (or may be) underflowed (TF's CPU kernels flush
# subnormals): it is >= (1 - y_t) / 2 with y_t the label on x's side, so that only happens for
# y_t == 1 exactly (a hard label) and |x| > 69, where log(1 - p_t) = -(|x| + s) exactly
_M_TINY = 2.0 ** -100


def _focal_logits(x, y, gamma, alpha, per_sample=True, mean=True):
    """Focal loss of logits with a closed-form gradient (``tf.custom_gradient``), per sample or
    reduced (``per_sample=False``), the math of the torch twin: ``m = 1 - p_t = (1-y) σ(x) + y
    σ(-x)``, ``BCE = (1-y) softplus(x) + y softplus(-x)``, ``log m`` directly where ``m >= 2**-100``
    and ``-max(softplus(x), softplus(-x))`` (the exact hard-label limit) below; ``m^γ = exp(γ log
    m)``; ``dℓ/dx = α_t m^γ (γ BCE (1-2y) σ(x) σ(-x) / m + (1-y) σ(x) - y σ(-x))``, with ``(1-2y)``
    for the underflowed ``σ(x) σ(-x) / m``: finite for every gamma >= 0; integer ``γ >= 1``:
    ``m^γ`` by multiplication, ``dℓ/dx = α_t m^(γ-1) (γ BCE dm/dx + m dBCE/dx)``. A tensor
    ``alpha`` (e.g. a variable) is an input of the custom gradient: ``dℓ/dα = (2y-1) m^γ BCE``
    (per sample only)."""
    a_is_tensor = isinstance(alpha, (tf.Tensor, tf.Variable))

    int_gamma = gamma >= 1.0 and float(gamma).is_integer()

    def value(x, a):
        nx = -x
        sx, snx = tf.sigmoid(x), tf.sigmoid(nx)
        sp_pos, sp_neg = tf.math.softplus(x), tf.math.softplus(nx)
        omy = 1.0 - y
        t1 = omy * sx  # (1-y) σ(x)
        m = t1 + y * snx
        mod = tiny = None
        if gamma == 0.0:
            pass
        elif int_gamma:  # m^γ by multiplication: no log/exp, no underflow trouble
            mod = m if gamma == 1.0 else (m * m if gamma == 2.0 else tf.pow(m, int(gamma)))
        else:
            tiny = m < tf.constant(_M_TINY, x.dtype)
            log_m = tf.where(tiny, -tf.maximum(sp_pos, sp_neg), tf.math.log(m))
            mod = tf.exp(gamma * log_m)
        bce = omy * sp_pos + y * sp_neg
        focal = bce if mod is None else mod * bce
        a_t = None if a is None else y * (2.0 * a - 1.0) + (1.0 - a)
        loss = focal if a_t is None else focal * a_t
        parts = (sx, snx, omy, t1, m, tiny, bce, mod, a_t, focal)
        return loss, parts

    def grad_x(x, parts):
        sx, snx, omy, t1, m, tiny, bce, mod, a_t, _ = parts
        d_bce = t1 - y * snx
        if mod is None:
            gx = d_bce
        else:
            om2y = omy - y
            dm = sx * snx * om2y  # dm/dx
            if int_gamma:  # α_t m^(γ-1) (γ BCE dm/dx + m dBCE/dx)
                gx = d_bce * m + (gamma * bce) * dm
                if gamma > 1.0:
                    gx = gx * (m if gamma == 2.0 else tf.pow(m, int(gamma) - 1))
            else:
                d_log_m = tf.where(tiny, om2y, dm / m)
                gx = (d_log_m * bce * gamma + d_bce) * mod
        if a_t is not None:
            gx = gx * a_t
        return gx

    if not a_is_tensor:
        def value_and_grad(x):
            loss, parts = value(x, alpha)
            return loss, lambda: grad_x(x, parts)

        return elementwise_closed_form(x, value_and_grad, per_sample, mean)

    @tf.custom_gradient
    def f_a(x, a):
        out, parts = value(x, a)

        def grad(g):
            focal = parts[-1]
            c = elementwise_cotangent(g, x)
            return c * grad_x(x, parts), _sum_to(c * (2.0 * y - 1.0) * focal, a)

        return mean_nonbatch(out), grad

    return f_a(x, alpha)


def _binary_focal_total(x, y, mean, *, gamma, alpha, from_logits):
    if from_logits and not isinstance(alpha, (tf.Tensor, tf.Variable)):
        return _focal_logits(x, y, gamma, alpha, per_sample=False, mean=mean)
    return reduce(_binary_focal_per_sample(x, y, gamma=gamma, alpha=alpha, from_logits=from_logits), None,
                  "mean" if mean else "sum")


@traced_when_eager
@with_total(_binary_focal_total)
def _binary_focal_per_sample(x, y, *, gamma, alpha, from_logits):
    if from_logits:
        return _focal_logits(x, y, gamma, alpha)
    log_p, log_1mp = _log_probs(x, from_logits)
    # (1-p_t)**gamma as exp(gamma log(1-p_t)): finite gradients for every gamma >= 0
    log_m = logaddexp(tf.math.log(y) + log_1mp, tf.math.log1p(-y) + log_p)
    bce = -(y * log_p + (1.0 - y) * log_1mp)
    loss = tf.exp(gamma * log_m) * bce
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return mean_nonbatch(loss)


def binary_focal(y_true, y_pred, *, gamma=2.0, alpha=None, from_logits=True, sample_weight=None,
                 reduction="mean", validate=True):
    r"""Focal loss (Lin et al. 2017), torchvision semantics for ``alpha`` and soft targets.

    .. math::
        \ell_i = \frac{1}{M}\sum_j \alpha_t (1-p_t)^\gamma\, \mathrm{BCE}(x_{ij}, y_{ij})

    Stability: ``(1-p_t)^γ`` is ``exp(γ log(1-p_t))`` with ``log(1-p_t)`` a log-sum-exp of
    log-sigmoids: finite gradients at saturated logits for every ``gamma >= 0``, where
    ``keras.losses.BinaryFocalCrossentropy`` returns NaN for ``0 < gamma < 1``.
    """
    return apply("binary_focal", _binary_focal_per_sample, y_true, y_pred, sample_weight,
                 {"gamma": gamma, "alpha": alpha, "from_logits": from_logits}, reduction, validate)
