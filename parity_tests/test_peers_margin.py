"""The margin entries (and kl_divergence) against the frameworks' own losses beyond the port table: the
rows Hinge, SquaredHinge, CategoricalHinge, KLDivergence and KLDivLoss of :mod:`spec.ports` prove the twins
equal to keras.losses / torch.nn (``test_framework_peers.py``). Here, where a peer differs from the catalog's
entry, the entry's ``peer_notes`` say so and a test pins it (Keras' by-batch label conversion, its zero
competitor and clip, torch's KLDivLoss reductions, MultiMarginLoss and SoftMarginLoss), and the label
contracts the twins share."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = [pytest.mark.project,
              # torch.nn.KLDivLoss(reduction="mean") warns that it is not the divergence (pinned below)
              pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning")]

DTYPES = ("float32", "float64")


def _assert_close(name, dtype, field, actual, expected):
    result = getattr(spec.get(name).tolerances, field)[dtype].compare(actual, expected)
    assert result.ok, f"{field}: {result.detail}"


def _torch_value_and_grad(loss, prediction, target, dtype):
    import torch

    x = torch.tensor(prediction, dtype=getattr(torch, dtype), requires_grad=True)
    value = loss(x, torch.tensor(target, dtype=x.dtype))
    value.backward()
    return value.detach().double().numpy(), x.grad.double().numpy()


def _keras_value_and_grad(loss, target, prediction, dtype):
    import tensorflow as tf

    x = tf.constant(prediction, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(tf.constant(target, dtype=dtype), x)
    return value.numpy(), tape.gradient(value, x).numpy()


# ---------------------------------------------------------------- hinge
def test_keras_hinge_converts_labels_by_batch():
    """PeerNote of hinge: keras.losses.Hinge converts 0/1 labels only when every label of the call is 0 or
    1; a batch mixing -1 and 0 keeps its zeros (t = 0: the term is 1 whatever the score, gradient 0).
    Ours reads every 0 as -1; on each label form alone both agree."""
    import tf_impl

    import keras

    pred = np.array([[0.5, -2.0, 3.0]])
    mixed = np.array([[0.0, -1.0, 1.0]])
    as_signs = np.array([[-1.0, -1.0, 1.0]])
    as_bits = np.array([[0.0, 0.0, 1.0]])
    ours = float(tf_impl.get_loss("hinge")(mixed, pred))
    assert ours == pytest.approx((1.5 + 0.0 + 0.0) / 3, rel=1e-15)  # 0 read as -1: max(0, 1 + 0.5)
    assert float(keras.losses.Hinge()(mixed, pred)) == pytest.approx((1.0 + 0.0 + 0.0) / 3, rel=1e-7)  # t = 0
    for labels in (as_signs, as_bits):
        assert float(keras.losses.Hinge()(labels, pred)) == pytest.approx(ours, rel=1e-7)
        assert float(tf_impl.get_loss("hinge")(labels, pred)) == ours


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_hinge_losses_reject_soft_labels_where_values_are_read(name):
    """Contract of the hinge losses: labels are -1/1 or 0/1; a soft label (0.5), which Keras would use as
    it is, is rejected with the spec's message in both frameworks (CPU tensors, eager Keras); a label
    outside [-1, 1] gets the generic domain message."""
    import tf_impl

    import torch

    import torch_impl
    from spec.margin import labels_not_signs

    pred = np.array([[0.5, -1.0, 2.0]])
    soft = np.array([[0.5, 1.0, 0.0]])
    with pytest.raises(ValueError) as t_err:
        torch_impl.get_loss(name)(torch.tensor(pred), torch.tensor(soft))
    with pytest.raises(ValueError) as k_err:
        tf_impl.get_loss(name)(soft, pred)
    assert str(t_err.value) == str(k_err.value) == labels_not_signs(name)
    # validate=False computes with the element-wise rule (0.5 > 0: t = 1)
    value = float(torch_impl.get_loss(name, validate=False)(torch.tensor(pred), torch.tensor(soft)))
    assert value == pytest.approx(float(spec.get(name).reference_reduced(pred, np.array([[1.0, 1.0, -1.0]]))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hinge_at_the_margin_is_active_in_both_twins_and_keras(dtype):
    """grad_convention of hinge: at t ŷ = 1 the gradient is -t / M (active), bit for bit in both twins and
    keras.losses.Hinge."""
    import tf_impl

    import keras

    import torch_impl

    pred = np.array([[1.0, -1.0, 1.0, -1.0]])
    target = np.array([[1.0, -1.0, 1.0, -1.0]])
    expected = np.array([[-1.0, 1.0, -1.0, 1.0]]) / 4
    np.testing.assert_array_equal(spec.get("hinge").reference_grad(pred, target), expected)
    for value, grad in (_torch_value_and_grad(torch_impl.get_loss("hinge"), pred, target, dtype),
                        _keras_value_and_grad(tf_impl.get_loss("hinge"), target, pred, dtype),
                        _keras_value_and_grad(keras.losses.Hinge(dtype=dtype), target, pred, dtype)):
        assert float(value) == 0.0
        np.testing.assert_array_equal(grad, expected)


def test_torch_soft_margin_loss_is_the_logistic_loss_not_the_hinge():
    """PeerNote of hinge: torch.nn.SoftMarginLoss is log(1 + e^{-t ŷ}) = weighted_bce(from_logits=True) with
    targets (t + 1) / 2, not the hinge; HingeEmbeddingLoss is a distance loss (x for t = 1)."""
    import torch

    import torch_impl

    case = spec.get("hinge").cases()[0]  # labels -1 / 1
    x = torch.tensor(case.prediction)
    t = torch.tensor(case.target)
    soft_margin = torch.nn.SoftMarginLoss()(x, t)
    bce = torch_impl.get_loss("weighted_bce")(x, (t + 1) / 2)
    assert float(soft_margin) == pytest.approx(float(bce), rel=1e-12)
    hinge = torch_impl.get_loss("hinge")(x, t)
    assert abs(float(soft_margin) - float(hinge)) > 0.05
    embedding = torch.nn.HingeEmbeddingLoss(margin=1.0)(x, t)
    assert abs(float(embedding) - float(hinge)) > 0.05


# ---------------------------------------------------------------- squared_hinge
@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_hinge_is_the_square_of_hinge_elementwise_with_a_continuous_gradient(dtype):
    """squared_hinge on one element per sample is hinge², with gradient 2 hinge · d hinge: 0 at the margin
    (keras.losses.SquaredHinge too), where hinge's own gradient is -t."""
    import tf_impl

    import keras

    import torch_impl

    pred = np.array([1.0, -1.0, 0.25, -3.0, 2.0])
    target = np.array([1.0, 0.0, 1.0, 1.0, 0.0])  # 0/1 labels: Keras converts them too
    hinge = spec.get("hinge").reference(pred, target)
    value, grad = _torch_value_and_grad(torch_impl.get_loss("squared_hinge", reduction="sum"), pred, target, dtype)
    assert value == pytest.approx(float(np.sum(hinge ** 2)), rel=1e-6)
    t = np.where(target > 0, 1.0, -1.0)
    np.testing.assert_allclose(grad, -2.0 * t * hinge, rtol=1e-6)
    assert grad[0] == grad[1] == 0.0  # t ŷ = 1: the margin
    k_value, k_grad = _keras_value_and_grad(keras.losses.SquaredHinge(reduction="sum", dtype=dtype),
                                            target[:, None], pred[:, None], dtype)
    o_value, o_grad = _keras_value_and_grad(tf_impl.get_loss("squared_hinge", reduction="sum"),
                                            target[:, None], pred[:, None], dtype)
    assert float(o_value) == pytest.approx(float(k_value), rel=1e-6)
    np.testing.assert_allclose(o_grad, k_grad, rtol=1e-6)


# ---------------------------------------------------------------- categorical_hinge
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_categorical_hinge_lets_a_zero_score_compete(dtype):
    """PeerNote of categorical_hinge: keras.losses.CategoricalHinge's neg = max((1 - y) ŷ) includes the true
    class's 0, so rows whose wrong scores are all negative cost 1 - ŷ_true where the true multiclass hinge is
    max(0, 1 + max_wrong - ŷ_true); zero_competitor=True reproduces Keras, values and gradients."""
    import tf_impl

    import keras

    case = next(c for c in spec.get("categorical_hinge").cases() if c.id == "default-edge-wrong-scores-negative")
    y, x = case.target, case.prediction
    peer_value, peer_grad = _keras_value_and_grad(keras.losses.CategoricalHinge(reduction=None, dtype=dtype), y, x,
                                                  dtype)
    true_value, _ = _keras_value_and_grad(tf_impl.get_loss("categorical_hinge", reduction="none"), y, x, dtype)
    np.testing.assert_allclose(true_value, [0.0, 0.625, 0.0], rtol=1e-6)  # 1 + max_wrong - ŷ_true, at least 0
    np.testing.assert_allclose(peer_value, [0.5, 0.875, 0.25], rtol=1e-6)  # 1 - ŷ_true
    value, grad = _keras_value_and_grad(
        tf_impl.get_loss("categorical_hinge", zero_competitor=True, reduction="none"), y, x, dtype)
    np.testing.assert_allclose(value, peer_value, rtol=1e-6)
    np.testing.assert_allclose(grad, peer_grad, rtol=1e-6)
    assert np.all(grad[y == 0] == 0.0)  # the competitor 0 is a constant: only the true class moves


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_multi_margin_loss_is_categorical_hinge_over_c_for_two_classes_only(dtype):
    """PeerNote of categorical_hinge: torch.nn.MultiMarginLoss(p=1, margin=1) = Σ_{c≠y} max(0, 1 - ŷ_y + ŷ_c) / C
    with class-index targets: categorical_hinge / 2 for C = 2 (values and gradients), and a sum over the
    wrong classes, not their max, for C > 2."""
    import torch

    import torch_impl

    two = next(c for c in spec.get("categorical_hinge").cases() if c.id == "default-edge-two-classes")
    labels = torch.tensor(two.target.argmax(axis=-1))
    peer_value, peer_grad = _torch_value_and_grad(lambda x, _y: torch.nn.MultiMarginLoss()(x, labels),
                                                  two.prediction, two.target, dtype)
    ours = torch_impl.get_loss("categorical_hinge")
    value, grad = _torch_value_and_grad(lambda x, y: ours(x, y) / 2, two.prediction, two.target, dtype)
    _assert_close("categorical_hinge", dtype, "value", value, peer_value)
    _assert_close("categorical_hinge", dtype, "grad", grad, peer_grad)
    x = np.array([[2.0, 1.5, 1.0, -3.0]])  # two wrong classes inside the margin of the true one (class 0)
    y = np.eye(4)[[0]]
    multi = float(torch.nn.MultiMarginLoss()(torch.tensor(x), torch.tensor([0])))
    assert multi == pytest.approx((0.5 + 0.0 + 0.0) / 4)  # Σ over wrong classes of max(0, 1 - 2 + ŷ_c), / C
    x[0, 2] = 1.75
    multi = float(torch.nn.MultiMarginLoss()(torch.tensor(x), torch.tensor([0])))
    crammer_singer = float(ours(torch.tensor(x), torch.tensor(y)))
    assert multi == pytest.approx((0.5 + 0.75) / 4) and crammer_singer == pytest.approx(0.75)


def test_categorical_hinge_rejects_targets_that_are_not_one_hot_where_values_are_read():
    """Contract of categorical_hinge: one-hot rows; soft rows and rows with two 1s are rejected with the spec's
    message in both frameworks (Keras computes with them)."""
    import tf_impl

    import torch

    import torch_impl
    from spec.margin import targets_not_one_hot

    pred = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]])
    for target, (lo, hi) in ((np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]), (1.0, 1.0)),
                             (np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), (1.0, 2.0))):
        with pytest.raises(ValueError) as t_err:
            torch_impl.get_loss("categorical_hinge")(torch.tensor(pred), torch.tensor(target))
        with pytest.raises(ValueError) as k_err:
            tf_impl.get_loss("categorical_hinge")(target, pred)
        assert str(t_err.value) == str(k_err.value) == targets_not_one_hot("categorical_hinge", lo, hi)


# ---------------------------------------------------------------- kl_divergence
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_kl_divergence_clips_zero_targets_to_epsilon(dtype):
    """PeerNote of kl_divergence: keras.losses.KLDivergence clips p and q to [1e-7, 1], so a one-hot p equal to
    q costs Σ_{c≠y} 1e-7 log(1e-7 / 1e-7) … and a zero p_c against q_c > 0 adds 1e-7 log(1e-7 / q_c) < 0; q below
    1e-7 is capped with gradient 0. The default is the true divergence; epsilon=1e-7 is Keras."""
    import tf_impl

    import keras

    y = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    q = np.array([[1.0 - 3e-3, 1e-3, 1e-3, 1e-3], [0.5, 0.25, 0.25, 1e-9]])
    exact = spec.get("kl_divergence").reference_reduced(q.astype(dtype), y, reduction="none")  # q as computed
    peer_value, peer_grad = _keras_value_and_grad(keras.losses.KLDivergence(reduction=None, dtype=dtype), y, q, dtype)
    ours, ours_grad = _keras_value_and_grad(tf_impl.get_loss("kl_divergence", reduction="none"), y, q, dtype)
    clipped, clipped_grad = _keras_value_and_grad(
        tf_impl.get_loss("kl_divergence", epsilon=1e-7, reduction="none"), y, q, dtype)
    tol = spec.get("kl_divergence").tolerances
    assert tol.value[dtype].compare(ours, exact).ok
    assert tol.value[dtype].compare(clipped, peer_value).ok and tol.grad[dtype].compare(clipped_grad, peer_grad).ok
    # the zero targets' terms: 1e-7 log(1e-7 / q_c) each (0 where q_c is clipped to 1e-7 too)
    keras_excess = np.array([3 * 1e-7 * np.log(1e-7 / 1e-3), 1e-7 * np.log(1e-7 / 0.25)])
    # (float32: Keras' log(p / q) of the kept terms carries ~1e-7 of rounding, a few % of the excess)
    np.testing.assert_allclose(peer_value - exact, keras_excess, rtol=1e-2, atol={"float32": 2e-7, "float64": 0.0}[dtype])
    assert np.all(peer_value < exact)  # each zero target probability lowers Keras' value
    assert peer_grad[1, 3] == 0.0 and ours_grad[1, 3] == 0.0  # q = 1e-9: Keras' clip / true gradient -p/q with p = 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_kl_div_loss_reductions_map_onto_ours(dtype):
    """PeerNote of kl_divergence: torch.nn.KLDivLoss(log_target=) takes log q; its 'batchmean' and 'sum' equal ours
    (log_prediction=True) on (N, C), are R times ours on (N, ..., C) (R positions per sample), and its 'mean' is
    ours with class_reduction='mean' on every shape."""
    import torch

    import torch_impl

    case = next(c for c in spec.get("kl_divergence").cases() if c.id == "log-typical-3d")  # (2, 3, 4): R = 3
    x = torch.tensor(case.prediction, dtype=getattr(torch, dtype))
    y = torch.tensor(case.target, dtype=x.dtype)
    rtol = {"float32": 1e-5, "float64": 1e-12}[dtype]

    def ours(**kw):
        return float(torch_impl.get_loss("kl_divergence", log_prediction=True, **kw)(x, y))

    assert float(torch.nn.KLDivLoss(reduction="batchmean")(x, y)) == pytest.approx(3 * ours(), rel=rtol)
    assert float(torch.nn.KLDivLoss(reduction="sum")(x, y)) == pytest.approx(3 * ours(reduction="sum"), rel=rtol)
    with pytest.warns(UserWarning, match="'mean' will be changed to behave the same as 'batchmean'"):
        mean = float(torch.nn.KLDivLoss(reduction="mean")(x, y))
    assert mean == pytest.approx(ours(class_reduction="mean"), rel=rtol)
    x2, y2 = x.reshape(-1, 4), y.reshape(-1, 4)  # (N, C): batchmean is ours
    ours2 = float(torch_impl.get_loss("kl_divergence", log_prediction=True)(x2, y2))
    assert float(torch.nn.KLDivLoss(reduction="batchmean")(x2, y2)) == pytest.approx(ours2, rel=rtol)


def test_kl_divergence_rejects_the_wrong_probability_form():
    """Contract of kl_divergence: a log-probability prediction without log_prediction=True (torch's KLDivLoss
    computes a wrong, possibly negative value with it silently) and probabilities with it are rejected, same
    message in both frameworks."""
    import tf_impl

    import torch

    import torch_impl

    q = np.array([[0.5, 0.25, 0.25]])
    p = np.array([[0.25, 0.25, 0.5]])
    assert float(torch.nn.KLDivLoss(reduction="batchmean")(torch.tensor(q), torch.tensor(p))) < 0  # no error
    for params, pred in (({}, np.log(q)), ({"log_prediction": True}, q)):
        with pytest.raises(ValueError) as t_err:
            torch_impl.get_loss("kl_divergence", **params)(torch.tensor(pred), torch.tensor(p))
        with pytest.raises(ValueError) as k_err:
            tf_impl.get_loss("kl_divergence", **params)(p, pred)
        assert str(t_err.value) == str(k_err.value) and "prediction must lie in" in str(t_err.value)
