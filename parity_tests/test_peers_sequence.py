"""The metric-learning and sequence entries against the frameworks' own losses of the same math, beyond the
port table: our torch twin of ``ctc`` equals ``torch.nn.CTCLoss`` (called with lengths: no row twin) in float32
and float64, values and gradients, on the spec's cases whose rows keep their padding at the end, with its
reduction mapped to ours. ``keras.losses.CTC`` and ``keras.losses.Circle`` and their twins
(``torch_impl.from_keras``) are proven equal by ``test_framework_peers.py`` (rows CTC and Circle of
:mod:`spec.ports`; torch.nn has no circle loss). Where a peer differs from the catalog's entry, the entry's
``peer_notes`` say so and a test here pins it."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

DTYPES = ("float32", "float64")


def _keras_circle(params, dtype, reduction):
    import keras

    return keras.losses.Circle(gamma=params["gamma"], margin=params["margin"],
                               remove_diagonal=params["remove_diagonal"], reduction=reduction, dtype=dtype)


def _assert_close(name, dtype, field, actual, expected):
    tol = getattr(spec.get(name).tolerances, field)[dtype]
    result = tol.compare(actual, expected)
    assert result.ok, f"{field}: {result.detail}"


def _keras_value_and_grad(loss, y_true, y_pred, dtype, sample_weight=None):
    import tensorflow as tf

    x = tf.constant(y_pred, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(tf.constant(y_true), x, sample_weight)
    return value, tape.gradient(value, x)


# ---------------------------------------------------------------- circle
def _circle_case(case_id):
    return next(c for c in spec.get("circle").cases() if c.id == case_id)


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_circle_mean_divides_by_the_samples_with_a_positive_loss(dtype):
    """PeerNote of circle: Keras' 'sum_over_batch_size' masks the samples whose loss is 0 (no positive or no
    negative pair) and divides by the others; ours divides by N: Keras' mean is ours × N / #{ℓ_i > 0}. (The
    twin of keras.losses.Circle() divides by that count: row Circle of spec.ports, test_framework_peers.)"""
    import tf_impl

    case = _circle_case("typical-unit")  # label 2 appears once: one sample without a positive pair
    params = spec.get("circle").validate_params(case.params)
    per_sample = spec.get("circle").reference(case.prediction, case.target, **params)
    positive = int(np.sum(per_sample > 0))
    assert 0 < positive < per_sample.size
    x = case.prediction.astype(dtype)
    keras_mean = float(_keras_circle(params, dtype, "sum_over_batch_size")(case.target, x))
    our_mean = float(tf_impl.get_loss("circle", **case.params)(case.target, x))
    assert our_mean == pytest.approx(float(np.mean(per_sample)), rel=1e-5)
    assert keras_mean == pytest.approx(our_mean * per_sample.size / positive, rel=1e-5)  # 8 / 7 apart


def test_keras_circle_merges_labels_that_round_to_the_same_float32():
    """Row Circle and circle's PeerNote: Keras casts the labels through its floatx (float32) to int32, so
    2**24 and 2**24 + 1 are one label there (a positive pair); the twin compares them as given (two labels)."""
    import keras
    import torch

    import torch_impl

    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.array([2**24, 2**24 + 1, 0, 0], np.int64)
    merged = np.array([7, 7, 0, 0], np.int64)
    peer = keras.losses.Circle(reduction=None)
    twin = torch_impl.from_keras(peer)
    keras_values = peer(labels, x).numpy()
    np.testing.assert_allclose(keras_values, peer(merged, x).numpy(), rtol=1e-6)
    ours = twin(torch.tensor(x), torch.tensor(labels)).numpy()
    np.testing.assert_allclose(twin(torch.tensor(x), torch.tensor(merged)).numpy(), keras_values, rtol=1e-5)
    assert np.all(ours[:2] == 0.0) and np.all(keras_values[:2] > 0.0)  # no positive pair here, one there


def test_keras_circle_takes_the_rows_as_they_are_ours_normalizes_by_default():
    """PeerNote of circle: keras.losses.Circle uses dot products of the rows as given; ours divides each
    row by its norm unless normalize=False. Ours(x) = Keras(x / |x|) in value; the gradients differ by the
    radial part x̂ (x̂·g), which ours removes (a UnitNormalization layer before Keras removes it too)."""
    import tf_impl

    import tensorflow as tf

    case = _circle_case("typical")  # raw Gaussian rows, norms ~2
    params = spec.get("circle").validate_params(case.params)
    unit = case.prediction / np.linalg.norm(case.prediction, axis=1, keepdims=True)
    keras_raw, _ = _keras_value_and_grad(_keras_circle(params, "float64", None), case.target, case.prediction,
                                         "float64")
    keras_unit, keras_grad = _keras_value_and_grad(_keras_circle(params, "float64", None), case.target, unit,
                                                   "float64")
    ours_raw = tf_impl.get_loss("circle", reduction="none", normalize=False, **case.params)(case.target,
                                                                                          case.prediction)
    ours, ours_grad = _keras_value_and_grad(tf_impl.get_loss("circle", reduction="none", **case.params),
                                            case.target, unit, "float64")
    _assert_close("circle", "float64", "value", ours_raw.numpy(), keras_raw.numpy())
    _assert_close("circle", "float64", "value", ours.numpy(), keras_unit.numpy())
    assert not np.allclose(keras_raw.numpy(), keras_unit.numpy(), rtol=1e-2)
    g = keras_grad.numpy()
    projected = g - unit * np.sum(unit * g, axis=1, keepdims=True)
    _assert_close("circle", "float64", "grad", ours_grad.numpy(), projected)
    assert np.max(np.abs(np.sum(unit * g, axis=1))) > 1.0  # Keras' gradient has a radial part
    # through keras.layers.UnitNormalization the parameter-side gradients agree
    x = tf.constant(case.prediction)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        keras_value = _keras_circle(params, "float64", None)(case.target, tf.keras.layers.UnitNormalization(dtype="float64")(x))
        ours_value = tf_impl.get_loss("circle", reduction="none", **case.params)(case.target, x)
    _assert_close("circle", "float64", "grad", tape.gradient(ours_value, x).numpy(),
                  tape.gradient(keras_value, x).numpy())


def test_keras_circle_computes_float64_inputs_in_float32_by_default():
    """PeerNote of circle: keras.losses.Circle() casts to floatx (float32); ours keeps float64."""
    import tf_impl

    import keras

    case = _circle_case("typical-unit")
    assert keras.losses.Circle()(case.target, case.prediction).dtype == "float32"
    assert tf_impl.get_loss("circle", normalize=False)(case.target, case.prediction).dtype == "float64"


@pytest.mark.parametrize("case_id", ["edge-no-positive", "edge-one-label", "edge-batch1"])
def test_circle_samples_without_a_pair_have_loss_zero_and_no_gradient(case_id):
    """grad_convention of circle: no positive or no negative pair → loss 0, gradient 0 (no NaN from the
    empty log-sum-exp), in both twins and in Keras."""
    import tf_impl

    import torch

    import torch_impl

    case = _circle_case(case_id)
    x = torch.tensor(case.prediction, requires_grad=True)
    value = torch_impl.get_loss("circle", reduction="none", **case.params)(x, torch.tensor(case.target))
    value.sum().backward()
    assert np.all(value.detach().numpy() == 0.0) and np.all(x.grad.numpy() == 0.0)
    kv, kg = _keras_value_and_grad(tf_impl.get_loss("circle", reduction="none", **case.params), case.target,
                                   case.prediction, "float64")
    assert np.all(kv.numpy() == 0.0) and np.all(kg.numpy() == 0.0)
    params = spec.get("circle").validate_params(case.params)
    pv, pg = _keras_value_and_grad(_keras_circle(params, "float64", None), case.target, case.prediction, "float64")
    assert np.all(pv.numpy() == 0.0) and np.all(np.isfinite(pg.numpy()))


# ---------------------------------------------------------------- ctc
def _ctc_case(case_id):
    return next(c for c in spec.get("ctc").cases() if c.id == case_id)


def _torch_value_and_grad(loss_of_x, prediction, dtype):
    import torch

    x = torch.tensor(prediction, dtype=getattr(torch, dtype), requires_grad=True)
    value = loss_of_x(x)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach().numpy(), grad.numpy()


def _torch_ctc_peer(params, reduction):
    """torch.nn.CTCLoss in its own layout: log-probabilities (T, N, C), the rows' non-blank counts as
    target lengths (the spec's rows keep their padding at the end here), every input length T."""
    import torch

    peer = torch.nn.CTCLoss(blank=params["blank"], reduction=reduction, zero_infinity=params["zero_infinity"])

    def loss_of_x(x, target):
        y = torch.tensor(target)
        lengths = (y != params["blank"]).sum(dim=1)
        steps = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        return peer(torch.log_softmax(x, dim=-1).transpose(0, 1), y, steps, lengths)
    return loss_of_x


#: the cases whose rows keep their padding at the end and whose labels are feasible: the peers' formula
CTC_PEER_CASES = ("typical", "typical-blank-last", "extreme-confident", "extreme-weights", "edge-one-path",
                  "edge-batch1")
#: torch.nn.CTCLoss reduction → ours (its 'mean' divides each loss by the target length first)
TORCH_CTC_REDUCTION = {"mean": ("mean", True), "sum": ("sum", False), "none": ("none", False)}


@pytest.mark.parametrize("torch_reduction", sorted(TORCH_CTC_REDUCTION))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case_id", CTC_PEER_CASES)
def test_torch_ctc_twin_equals_torch_nn_ctcloss(case_id, dtype, torch_reduction):
    """PeerNote of ctc: torch.nn.CTCLoss(blank, reduction) on log_softmax(x) in (T, N, C) is ours with
    divide_by_target_length=True for its 'mean', False for 'sum' and 'none'."""
    import torch_impl

    case = _ctc_case(case_id)
    params = spec.get("ctc").validate_params(case.params)
    reduction, divide = TORCH_CTC_REDUCTION[torch_reduction]
    peer = _torch_ctc_peer(params, torch_reduction)
    ours = torch_impl.get_loss("ctc", **dict(case.params, divide_by_target_length=divide), reduction=reduction)
    pv, pg = _torch_value_and_grad(lambda x: peer(x, case.target), case.prediction, dtype)
    import torch

    ov, og = _torch_value_and_grad(lambda x: ours(x, torch.tensor(case.target)), case.prediction, dtype)
    _assert_close("ctc", dtype, "value", ov, pv)
    _assert_close("ctc", dtype, "grad", og, pg)


def test_keras_ctc_computes_float64_logits_in_float32():
    """PeerNote of ctc: keras.ops.ctc_loss casts float64 logits to float32 around tf.nn.ctc_loss; ours
    stays float64 (equal to the reference to 1e-10, Keras only to float32 digits)."""
    import keras

    import tf_impl

    case = _ctc_case("typical")
    expected = spec.get("ctc").reference(case.prediction, case.target.astype(np.float64), **spec.get("ctc").defaults())
    peer = keras.losses.CTC(reduction=None, dtype="float64")(case.target, case.prediction).numpy()
    ours = tf_impl.get_loss("ctc", reduction="none")(case.target, case.prediction).numpy()
    assert peer.dtype == ours.dtype == np.float64
    _assert_close("ctc", "float64", "value", ours, expected)
    assert not spec.get("ctc").tolerances.value["float64"].compare(peer, expected).ok
    _assert_close("ctc", "float32", "value", peer, expected)


def test_keras_ctc_reads_the_first_label_count_entries_of_a_row():
    """PeerNote of ctc: Keras counts the non-zero labels L of a row and takes its first L entries, padding
    included; ours takes the non-blank entries in order. Equal once the padding is moved to the end."""
    import keras

    import tf_impl

    case = _ctc_case("edge-padding-inside")  # rows 1, 0, 2, 0 and 0, 3, 0, 1
    packed = np.array([[1, 2, 0, 0], [3, 1, 0, 0]], np.int64)
    peer = keras.losses.CTC(reduction=None)
    ours = tf_impl.get_loss("ctc", reduction="none")
    x = case.prediction.astype("float32")
    _assert_close("ctc", "float32", "value", ours(case.target, x).numpy(), peer(packed, x).numpy())
    assert np.all(np.abs(peer(case.target, x).numpy() - ours(case.target, x).numpy()) > 1e-2)


def test_infeasible_labels_inf_and_no_gradient_keras_finite_torch_nan():
    """PeerNote of ctc: labels 2, 2, 2 need 5 steps and T = 4. Ours: +inf (0 with zero_infinity) and
    gradient 0 in both twins; torch.nn.CTCLoss(zero_infinity=False): inf and NaN gradients;
    keras.losses.CTC: a finite value near 711 and a finite gradient."""
    import keras
    import torch

    import tf_impl
    import torch_impl

    case = _ctc_case("edge-infeasible")
    params = spec.get("ctc").validate_params(case.params)
    y = torch.tensor(case.target)
    for zero_infinity, expected in ((False, np.inf), (True, 0.0)):
        tv, tg = _torch_value_and_grad(
            lambda x: torch_impl.get_loss("ctc", reduction="none", zero_infinity=zero_infinity)(x, y),
            case.prediction, "float32")
        kv, kg = _keras_value_and_grad(tf_impl.get_loss("ctc", reduction="none", zero_infinity=zero_infinity),
                                       case.target, case.prediction, "float32")
        for value, grad in ((tv, tg), (kv.numpy(), kg.numpy())):
            assert value[0] == expected and np.isfinite(value[1])
            assert np.all(grad[0] == 0.0) and np.all(np.isfinite(grad))
    pv, pg = _torch_value_and_grad(lambda x: _torch_ctc_peer(params, "none")(x, case.target), case.prediction,
                                   "float32")
    assert pv[0] == np.inf and np.all(np.isnan(pg[0]))
    kv, kg = _keras_value_and_grad(keras.losses.CTC(reduction=None), case.target, case.prediction, "float32")
    assert 700.0 < float(kv[0]) < 720.0 and np.all(np.isfinite(kg.numpy()))


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_torch_ctc_feasibility_at_the_shape_bound(zero_infinity):
    """The torch twin decides every row feasible from the shapes alone when 2 L - 1 <= T (L label
    columns): W repeated labels need exactly 2 W - 1 steps, so at T = 2 W - 1 the row is feasible (a
    finite loss, equal to the reference) and at T = 2 W - 2 the check of each row decides (+inf, or 0
    with zero_infinity; gradient 0)."""
    import torch

    import torch_impl

    labels = np.array([[2, 2, 2], [1, 0, 0]], np.int64)  # row 0 needs 5 steps, row 1 one
    loss = torch_impl.get_loss("ctc", reduction="none", zero_infinity=zero_infinity)
    rng = np.random.default_rng(5)
    for steps, feasible in ((5, True), (4, False)):
        x = rng.normal(size=(2, steps, 4))
        xt = torch.tensor(x, requires_grad=True)
        value = loss(xt, torch.tensor(labels))
        (grad,) = torch.autograd.grad(value.sum(), xt)
        reference = spec.get("ctc").reference(x, labels, blank=0, zero_infinity=zero_infinity,
                                              divide_by_target_length=False)
        if feasible:
            assert np.isfinite(value[0].item())
            np.testing.assert_allclose(value.detach().numpy(), reference, rtol=1e-12)
        else:
            assert value[0].item() == (0.0 if zero_infinity else np.inf) and torch.all(grad[0] == 0)
            np.testing.assert_allclose(value[1].item(), reference[1], rtol=1e-12)


def test_ctc_float32_peers_lose_gradient_digits_at_large_logits():
    """stability of ctc: at a logit of 1e4 the float32 recursions of torch.nn.CTCLoss and keras.losses.CTC
    are off by about eps32 · |x| in the gradient; ours (float64 inside) is within the float32 tolerance.
    The property test's example."""
    import keras
    import torch

    import tf_impl
    import torch_impl

    x = np.zeros((2, 8, 5))
    x[1, 7, 4] = 1e4
    target = np.array([[0, 0, 0, 0], [2, 1, 1, 1]], np.int64)
    entry = spec.get("ctc")
    params = entry.validate_params({})
    expected = entry.reference_grad(x, target, reduction="sum", **params)
    tol = entry.tolerances.grad["float32"]
    _, ours_torch = _torch_value_and_grad(
        lambda t: torch_impl.get_loss("ctc", reduction="sum")(t, torch.tensor(target)), x, "float32")
    _, ours_keras = _keras_value_and_grad(tf_impl.get_loss("ctc", reduction="sum"), target, x, "float32")
    _, peer_torch = _torch_value_and_grad(lambda t: _torch_ctc_peer(params, "sum")(t, target), x, "float32")
    _, peer_keras = _keras_value_and_grad(keras.losses.CTC(reduction="sum"), target, x, "float32")
    assert tol.compare(ours_torch, expected).ok and tol.compare(ours_keras.numpy(), expected).ok
    assert np.max(np.abs(peer_torch - expected)) > 1e-4
    assert np.max(np.abs(peer_keras.numpy() - expected)) > 1e-5
