"""Our losses against the peer implementations users already trust. Values must match; gradients
must match wherever the peer is right. Where a peer is wrong the spec entry's ``peer_notes``
document it, and a test here pins the peer's failure next to our correct answer."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

WBCE = spec.get("weighted_bce")
FOCAL = spec.get("binary_focal")


def assert_close(actual, expected, entry=WBCE, field="value"):
    tol = getattr(entry.tolerances, field)["float64"]
    result = tol.compare(actual, expected)
    assert result.ok, result.detail


def _logit_cases(entry):
    return [c for c in entry.cases() if c.params.get("from_logits", True) and c.prediction.ndim == 2]


def _torch_ours_and_grad(name, case, **params):
    import torch

    import torch_impl

    x = torch.tensor(case.prediction, requires_grad=True)
    out = torch_impl.get_loss(name, reduction="none", **params)(x, torch.tensor(case.target))
    out.sum().backward()
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("case", _logit_cases(WBCE), ids=lambda c: c.id)
def test_weighted_bce_equals_torch_bce_with_logits(case):
    import torch

    pw = case.params.get("pos_weight", 1.0)
    x = torch.tensor(case.prediction, requires_grad=True)
    peer = torch.nn.BCEWithLogitsLoss(pos_weight=torch.as_tensor(pw, dtype=torch.float64), reduction="none")
    peer_out = peer(x, torch.tensor(case.target)).mean(dim=-1)
    peer_out.sum().backward()
    ours, grad = _torch_ours_and_grad("weighted_bce", case, **case.params)
    assert_close(ours, peer_out.detach().numpy())
    assert_close(grad, x.grad.numpy(), field="grad")


@pytest.mark.parametrize("case", _logit_cases(WBCE), ids=lambda c: c.id)
def test_weighted_bce_equals_tf_weighted_cross_entropy_with_logits(case):
    import tensorflow as tf

    import tf_impl

    pw = case.params.get("pos_weight", 1.0)
    x = tf.constant(case.prediction)
    y = tf.constant(case.target)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        peer = tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(y, x, pos_weight=tf.constant(pw, tf.float64)), -1)
        ours = tf_impl.get_loss("weighted_bce", reduction="none", **case.params)(y, x)
        peer_sum, ours_sum = tf.reduce_sum(peer), tf.reduce_sum(ours)
    assert_close(ours.numpy(), peer.numpy())
    # the peer's gradient is wrong at x == 0 exactly (see the test below): compare elsewhere
    off_kink = case.prediction != 0.0
    assert_close(tape.gradient(ours_sum, x).numpy()[off_kink], tape.gradient(peer_sum, x).numpy()[off_kink],
                 field="grad")


def test_tf_weighted_cross_entropy_with_logits_gradient_is_wrong_at_zero():
    """PeerNote of weighted_bce: TF writes softplus(-x) as max(-x, 0) + log1p(exp(-|x|)); autodiff
    of max/abs at the tie x = 0 gives the wrong derivative. d/dx at x = 0, y = 1 is -σ(0) = -0.5."""
    import tensorflow as tf

    import tf_impl

    x = tf.constant([[0.0]], tf.float64)
    y = tf.constant([[1.0]], tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        peer = tf.nn.weighted_cross_entropy_with_logits(y, x, pos_weight=tf.constant(1.0, tf.float64))
        ours = tf_impl.get_loss("weighted_bce")(y, x)
    assert tape.gradient(ours, x).numpy().item() == -0.5
    assert tape.gradient(peer, x).numpy().item() != -0.5


def _torchvision_focal(x, y, gamma, alpha):
    """torchvision.ops.sigmoid_focal_loss, transcribed (torchvision cannot be installed beside the
    CPU torch wheel here)."""
    import torch
    import torch.nn.functional as F

    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha is not None and alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


@pytest.mark.parametrize("case", [c for c in _logit_cases(FOCAL) if c.kind == "typical"], ids=lambda c: c.id)
def test_binary_focal_equals_torchvision_formula(case):
    import torch

    params = FOCAL.validate_params(case.params)
    x = torch.tensor(case.prediction, requires_grad=True)
    peer = _torchvision_focal(x, torch.tensor(case.target), params["gamma"], params["alpha"]).mean(-1)
    peer.sum().backward()
    ours, grad = _torch_ours_and_grad("binary_focal", case, **case.params)
    assert_close(ours, peer.detach().numpy(), FOCAL)
    assert_close(grad, x.grad.numpy(), FOCAL, "grad")


SATURATED = np.array([[60.0, -60.0], [45.0, -45.0]], np.float32)
SATURATED_Y = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)  # confident and correct


def test_peer_focal_gradient_is_nan_for_small_gamma_where_ours_is_finite():
    """PeerNote of binary_focal: (1 - p_t)**gamma with gamma < 1 has an infinite derivative once
    1 - p_t underflows to 0, and the chain rule multiplies it by 0: NaN."""
    import keras
    import tensorflow as tf
    import torch

    import tf_impl
    import torch_impl

    x = torch.tensor(SATURATED, requires_grad=True)
    _torchvision_focal(x, torch.tensor(SATURATED_Y), 0.5, None).sum().backward()
    assert torch.isnan(x.grad).any(), "torchvision formula: NaN gradient (documented)"

    xt = tf.constant(SATURATED)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        peer = keras.losses.BinaryFocalCrossentropy(gamma=0.5, from_logits=True)(SATURATED_Y, xt)
        ours = tf_impl.get_loss("binary_focal", gamma=0.5)(SATURATED_Y, xt)
    assert np.isnan(tape.gradient(peer, xt).numpy()).any(), "Keras BinaryFocalCrossentropy: NaN gradient"
    g_ours = tape.gradient(ours, xt).numpy()
    ref = FOCAL.reference_grad(SATURATED.astype(np.float64), SATURATED_Y.astype(np.float64), gamma=0.5)
    assert np.all(np.isfinite(g_ours))
    np.testing.assert_allclose(g_ours, ref, rtol=1e-4, atol=1e-30)

    xo = torch.tensor(SATURATED, requires_grad=True)
    torch_impl.get_loss("binary_focal", gamma=0.5)(xo, torch.tensor(SATURATED_Y)).backward()
    np.testing.assert_allclose(xo.grad.numpy(), ref, rtol=1e-4, atol=1e-30)


def test_keras_probability_clip_differs_from_the_true_loss():
    """PeerNote of weighted_bce: Keras clips p to [1e-7, 1-1e-7]; the spec's clamp is 2**-126."""
    import keras

    import tf_impl

    y = np.array([[1.0]])
    p = np.array([[1e-8]])
    keras_value = float(keras.losses.BinaryCrossentropy()(y, p))
    ours = float(tf_impl.get_loss("weighted_bce", from_logits=False)(y, p))
    assert ours == pytest.approx(-np.log(1e-8), rel=1e-12)
    assert keras_value == pytest.approx(-np.log(1e-7), rel=1e-5)
