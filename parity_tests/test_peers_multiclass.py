"""The multiclass entries against the frameworks' own losses beyond the port table: the plain configurations
of torch.nn.CrossEntropyLoss / NLLLoss and of keras.losses.CategoricalCrossentropy,
SparseCategoricalCrossentropy, CategoricalFocalCrossentropy and CategoricalGeneralizedCrossEntropy are the
rows of :mod:`spec.ports`, proven by ``test_framework_peers.py`` (on the cases inside Keras' probability
clip). Here: class weights, ignored labels and their mean divisors, torch's NLLLoss of log-probabilities,
Keras' fit(class_weight=), and, where a peer differs, the entry's ``peer_notes`` pinned (Keras' clip of the
softmax, its row renormalization, the generalized cross-entropy's power). torch.nn takes the classes on
axis 1: the peer gets ``x.movedim(-1, 1)``."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

DTYPES = ("float32", "float64")
KERAS_CLIP = 1e-7


def _softmax(x):
    return np.exp(spec.numerics.log_softmax(x))


def _probabilities(case, params):
    return _softmax(case.prediction) if params.get("from_logits", True) else case.prediction


def _assert_close(name, dtype, field, actual, expected):
    result = getattr(spec.get(name).tolerances, field)[dtype].compare(actual, expected)
    assert result.ok, f"{field}: {result.detail}"


# ---------------------------------------------------------------- categorical_crossentropy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in spec.get("categorical_crossentropy").cases()
                                  if "class_weight" in c.params and c.params.get("from_logits", True)],
                         ids=lambda c: c.id)
def test_torch_cross_entropy_loss_weight_with_probability_targets(case, dtype):
    """CrossEntropyLoss(weight=w, label_smoothing=ε) with probability targets (classes on axis 1) is
    categorical_crossentropy(class_weight=w, label_smoothing=ε): per row -Σ_c w_c y'_c log q_c, and its
    mean divides by the number of rows as ours does (unlike class-index targets), values and gradients."""
    import torch

    import torch_impl

    name = "categorical_crossentropy"
    params = spec.get(name).validate_params(case.params)
    tdtype = getattr(torch, dtype)
    y = torch.tensor(case.target, dtype=tdtype)
    peer_loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(params["class_weight"], dtype=tdtype),
                                          label_smoothing=params["label_smoothing"])
    x_peer = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    x_ours = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    peer = peer_loss(x_peer.movedim(-1, 1), y.movedim(-1, 1))
    ours = torch_impl.get_loss(name, **case.params)(x_ours, y)
    peer.backward()
    ours.backward()
    _assert_close(name, dtype, "value", ours.item(), peer.item())
    _assert_close(name, dtype, "grad", x_ours.grad.double().numpy(), x_peer.grad.double().numpy())


# ---------------------------------------------------------------- sparse_categorical_crossentropy
def test_torch_nll_loss_of_log_probabilities_is_sparse_categorical_crossentropy_of_them():
    """torch.nn.NLLLoss takes log-probabilities: NLLLoss()(log_softmax(z), y) equals
    sparse_categorical_crossentropy(from_logits=True) of the same log-probabilities (log-softmax leaves
    normalized log-probabilities unchanged), with the same gradient w.r.t. z. W.r.t. the
    log-probabilities themselves ours has an extra softmax(lp) / N (NLLLoss' is -onehot / N alone),
    which the log-softmax backward removes."""
    import torch

    import torch_impl

    rng = np.random.default_rng(11)
    z = rng.normal(0.0, 3.0, size=(6, 5))
    y = torch.tensor(rng.integers(0, 5, size=6))
    grads, lp_grads, values = [], [], []
    for loss in (torch.nn.NLLLoss(), torch_impl.get_loss("sparse_categorical_crossentropy")):
        zt = torch.tensor(z, requires_grad=True)
        lp = torch.log_softmax(zt, dim=-1)
        lp.retain_grad()
        value = loss(lp, y)
        value.backward()
        values.append(value.item())
        grads.append(zt.grad.numpy())
        lp_grads.append(lp.grad.numpy())
    _assert_close("sparse_categorical_crossentropy", "float64", "value", values[1], values[0])
    _assert_close("sparse_categorical_crossentropy", "float64", "grad", grads[1], grads[0])
    np.testing.assert_allclose(lp_grads[1] - lp_grads[0], _softmax(z) / 6, rtol=1e-12, atol=1e-15)


SPARSE = spec.get("sparse_categorical_crossentropy")


def _weighted_sparse_cases(ids=("weighted-ignore-ls-typical", "weighted-ignore-ls-extreme-grid",
                                "ignore-void-typical", "ignore-every-row-edge")):
    return [c for c in SPARSE.cases() if c.id in ids]


def _torch_pair(case, dtype, reduction, peer_factory):
    import torch

    import torch_impl

    tdtype = getattr(torch, dtype)
    params = SPARSE.validate_params(case.params)
    y = torch.tensor(case.target)
    out = []
    for build in (lambda: peer_factory(torch, params, reduction),
                  lambda: torch_impl.get_loss("sparse_categorical_crossentropy", reduction=reduction, **case.params)):
        x = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
        value = build()(x, y)
        value.sum().backward()
        out.append((value.detach().double().numpy(), x.grad.double().numpy()))
    return out, params


def _torch_cross_entropy(torch, p, reduction):
    weight = None if p["class_weight"] is None else torch.tensor(p["class_weight"])
    ignore = -100 if p["ignore_index"] is None else p["ignore_index"]

    def loss(x, y):
        w = None if weight is None else weight.to(x.dtype)
        return torch.nn.CrossEntropyLoss(weight=w, ignore_index=ignore, label_smoothing=p["label_smoothing"],
                                         reduction=reduction)(x, y)
    return loss


def _valid_weight_total(case, params):
    """Σ_r w_{y_r} over the rows not ignored: torch's weighted-mean divisor (the row count without weights)."""
    labels = case.target.astype(np.int64)
    valid = labels != params["ignore_index"] if params["ignore_index"] is not None else np.ones(labels.shape, bool)
    w = np.ones(case.prediction.shape[-1]) if params["class_weight"] is None else params["class_weight"]
    return float(w[np.where(valid, labels, 0)][valid].sum())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("case", _weighted_sparse_cases(), ids=lambda c: c.id)
def test_torch_cross_entropy_loss_weight_ignore_index_label_smoothing(case, reduction, dtype):
    """CrossEntropyLoss(weight=w, ignore_index=k, label_smoothing=ε, reduction="sum"/"none") is
    sparse_categorical_crossentropy(class_weight=w, ignore_index=k, label_smoothing=ε) with the same
    reduction, values and gradients (2-D inputs: one row per sample)."""
    (peer, ours), _ = _torch_pair(case, dtype, reduction, _torch_cross_entropy)
    _assert_close(SPARSE.name, dtype, "value", ours[0], peer[0])
    _assert_close(SPARSE.name, dtype, "grad", ours[1], peer[1])


@pytest.mark.parametrize("case", _weighted_sparse_cases()[:3], ids=lambda c: c.id)
def test_torch_weighted_mean_divides_by_the_weight_of_the_rows_not_ignored(case):
    """PeerNote of sparse_categorical_crossentropy: torch's reduction="mean" with weight= / ignore_index is
    Σ_r w_{y_r} ℓ_r / Σ_r w_{y_r} over the rows not ignored; ours ("mean": Σ_i ℓ_i / N) reproduces it
    as reduction="sum" divided by that total, values and gradients."""
    (peer, ours), params = _torch_pair(case, "float64", "mean", _torch_cross_entropy)
    (_, ours_sum), _ = _torch_pair(case, "float64", "sum", _torch_cross_entropy)
    total = _valid_weight_total(case, params)
    _assert_close(SPARSE.name, "float64", "value", ours_sum[0] / total, peer[0])
    _assert_close(SPARSE.name, "float64", "grad", ours_sum[1] / total, peer[1])
    n = case.prediction.shape[0]
    _assert_close(SPARSE.name, "float64", "value", ours[0], ours_sum[0] / n)
    assert abs(total - n) > 0.1  # the two conventions differ on this case


def test_torch_mean_of_every_row_ignored_is_nan_ours_is_zero():
    """PeerNote of sparse_categorical_crossentropy: with every row ignored torch's mean is 0/0 = NaN;
    ours is 0 with a zero gradient."""
    case = _weighted_sparse_cases(("ignore-every-row-edge",))[0]
    (peer, ours), _ = _torch_pair(case, "float64", "mean", _torch_cross_entropy)
    assert np.isnan(peer[0]) and ours[0] == 0.0 and np.all(ours[1] == 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", _weighted_sparse_cases(("ignore-void-typical", "ignore-every-row-edge")),
                         ids=lambda c: c.id)
def test_keras_ignore_class(case, dtype):
    """SparseCategoricalCrossentropy(from_logits=True, ignore_class=k, reduction="sum") is
    sparse_categorical_crossentropy(ignore_index=k, reduction="sum"), values and gradients. PeerNote:
    Keras' default sum_over_batch_size divides by the number of rows not ignored (0 when there is
    none), ours' "mean" by N: Keras' value is ours' sum divided by that count."""
    import tf_impl

    import keras
    import tensorflow as tf

    k = case.params["ignore_index"]
    x = tf.constant(case.prediction, dtype=dtype)
    y = tf.constant(case.target)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        peer_sum = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=k, reduction="sum",
                                                              dtype=dtype)(y, x)
        peer_mean = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=k, dtype=dtype)(y, x)
        ours = tf_impl.get_loss(SPARSE.name, ignore_index=k, reduction="sum")(y, x)
    _assert_close(SPARSE.name, dtype, "value", float(ours), float(peer_sum))
    _assert_close(SPARSE.name, dtype, "grad", tape.gradient(ours, x).numpy(), tape.gradient(peer_sum, x).numpy())
    valid = int((case.target != k).sum())
    _assert_close(SPARSE.name, dtype, "value", float(peer_mean), float(ours) / valid if valid else 0.0)


def test_keras_fit_class_weight_is_class_weight():
    """Keras' fit(class_weight={c: w_c}) weighs each sample by w[y] (a sample weight) under
    sum_over_batch_size: sparse_categorical_crossentropy(class_weight=w) "mean" is that value."""
    import tf_impl

    import keras

    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 3.0, size=(6, 4))
    y = rng.integers(0, 4, size=6)
    w = np.array([0.5, 2.0, 0.0, 4.0])
    peer = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")(y, x, sample_weight=w[y])
    ours = tf_impl.get_loss(SPARSE.name, class_weight=w)(y, x)
    _assert_close(SPARSE.name, "float64", "value", float(ours), float(peer))


# ---------------------------------------------------------------- categorical_focal_crossentropy
def _keras_and_ours(name, params, y_true, y_pred, dtype="float64", peer=None):
    import tf_impl

    import tensorflow as tf

    x = tf.constant(y_pred, dtype=dtype)
    y = tf.constant(y_true)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf_impl.get_loss(name, **params)(y, x)
        theirs = peer(y, x)
    return (float(ours), tape.gradient(ours, x).numpy()), (float(theirs), tape.gradient(theirs, x).numpy())


def test_keras_focal_clips_the_softmax_of_logits():
    """PeerNote of categorical_focal_crossentropy: Keras' from_logits=True takes log(clip(softmax, 1e-7,
    1 - 1e-7)): a wrong row with a margin of 40 counts 16.12 instead of 40 and has no gradient at all;
    ours is the reference."""
    import keras

    entry = spec.get("categorical_focal_crossentropy")
    x = np.array([[40.0, 0.0, 0.0]])
    y = np.array([[0.0, 1.0, 0.0]])
    (ours, g_ours), (theirs, g_theirs) = _keras_and_ours(
        "categorical_focal_crossentropy", {}, y, x,
        peer=keras.losses.CategoricalFocalCrossentropy(from_logits=True, dtype="float64"))
    assert ours == pytest.approx(float(entry.reference_reduced(x, y)), rel=1e-12)
    assert ours == pytest.approx(0.25 * 40.0, rel=1e-12)  # (1 - q_1)^2 = 1 to 1e-17
    assert theirs == pytest.approx(0.25 * (1.0 - KERAS_CLIP) ** 2 * -np.log(KERAS_CLIP), rel=1e-9)
    np.testing.assert_allclose(g_ours, entry.reference_grad(x, y), rtol=1e-9)
    assert np.all(g_theirs == 0.0) and np.abs(g_ours).max() > 0.2


@pytest.mark.parametrize("dtype", DTYPES)
def test_focal_gamma_below_one_at_saturated_logits_has_finite_gradients(dtype):
    """stability of categorical_focal_crossentropy: with γ = 0.3 the textbook (1 - softmax(x))^γ
    log_softmax(x) has 1 - q = 0 at a saturated row and a NaN gradient; both twins are finite and equal
    the reference."""
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    import tf_impl
    import torch_impl

    entry = spec.get("categorical_focal_crossentropy")
    params = {"gamma": 0.3, "alpha": 1.0}
    x = np.array([[200.0, 0.0, -5.0], [0.0, 3.0, 1.0]])
    y = np.eye(3)[[0, 1]]
    tdtype = getattr(torch, dtype)
    naive_x = torch.tensor(x, dtype=tdtype, requires_grad=True)
    log_q = F.log_softmax(naive_x, dim=-1)
    naive = -(torch.tensor(y, dtype=tdtype) * (1.0 - log_q.exp()) ** 0.3 * log_q).sum(-1).mean()
    naive.backward()
    assert torch.isnan(naive_x.grad).any()
    expected = entry.reference_reduced(x, y, **params)
    expected_grad = entry.reference_grad(x, y, **params)
    tx = torch.tensor(x, dtype=tdtype, requires_grad=True)
    value = torch_impl.get_loss("categorical_focal_crossentropy", **params)(tx, torch.tensor(y, dtype=tdtype))
    value.backward()
    xt = tf.constant(x, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_value = tf_impl.get_loss("categorical_focal_crossentropy", **params)(tf.constant(y, dtype=dtype), xt)
    for v, g in ((value.item(), tx.grad.numpy()), (float(k_value), tape.gradient(k_value, xt).numpy())):
        assert np.all(np.isfinite(g))
        _assert_close("categorical_focal_crossentropy", dtype, "value", v, expected)
        _assert_close("categorical_focal_crossentropy", dtype, "grad", g, expected_grad)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_focal_with_gamma_zero_is_alpha_times_torch_cross_entropy(label_smoothing):
    """PeerNote of categorical_focal_crossentropy (torch.nn has none): γ = 0 is α ·
    torch.nn.CrossEntropyLoss(label_smoothing=ε) with probability targets, values and gradients."""
    import torch

    import torch_impl

    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 3.0, size=(5, 4))
    y = np.eye(4)[rng.integers(0, 4, size=5)]
    x_peer = torch.tensor(x, requires_grad=True)
    x_ours = torch.tensor(x, requires_grad=True)
    peer = 0.7 * torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)(x_peer, torch.tensor(y))
    ours = torch_impl.get_loss("categorical_focal_crossentropy", alpha=0.7, gamma=0.0,
                               label_smoothing=label_smoothing)(x_ours, torch.tensor(y))
    peer.backward()
    ours.backward()
    _assert_close("categorical_focal_crossentropy", "float64", "value", ours.item(), peer.item())
    _assert_close("categorical_focal_crossentropy", "float64", "grad", x_ours.grad.numpy(), x_peer.grad.numpy())


def test_keras_focal_renormalizes_probability_rows_where_ours_rejects_them():
    """PeerNote of categorical_focal_crossentropy: a sigmoid head (rows not summing to 1) is divided by
    its row sum in Keras; ours raises the spec's ValueError."""
    import tf_impl

    import keras

    p = np.array([[0.9, 0.8, 0.1]])
    y = np.array([[1.0, 0.0, 0.0]])
    renormalized = keras.losses.CategoricalFocalCrossentropy(dtype="float64")(y, p / p.sum())
    assert float(keras.losses.CategoricalFocalCrossentropy(dtype="float64")(y, p)) == pytest.approx(
        float(renormalized), rel=1e-12)
    with pytest.raises(ValueError, match="summing to 1"):
        tf_impl.get_loss("categorical_focal_crossentropy", from_logits=False)(y, p)


# ---------------------------------------------------------------- categorical_generalized_crossentropy
def test_keras_generalized_ce_gradient_at_zero_probability_is_infinite():
    """PeerNote of categorical_generalized_crossentropy: at p_y = 0 Keras' power(p, q) has the derivative
    -inf; ours is 0 through the clamp log(max(p, 2**-126)); the values agree (1/q)."""
    import keras

    entry = spec.get("categorical_generalized_crossentropy")
    p = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    labels = np.array([0, 2])
    (ours, g_ours), (theirs, g_theirs) = _keras_and_ours(
        "categorical_generalized_crossentropy", {"from_logits": False}, labels, p,
        peer=keras.losses.CategoricalGeneralizedCrossEntropy(q=0.5, dtype="float64"))
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert ours == pytest.approx(float(entry.reference_reduced(p, labels, from_logits=False)), rel=1e-12)
    assert g_theirs[0, 0] == -np.inf and g_ours[0, 0] == 0.0
    np.testing.assert_allclose(g_ours[1], g_theirs[1], rtol=1e-12)


def test_keras_generalized_ce_cancels_for_confident_correct_rows():
    """PeerNote of categorical_generalized_crossentropy: Keras' 1 - p**q in float32 at p = 1 - 3·2**-24,
    q = 0.3 keeps one rounded digit (11% off); ours, -expm1(q log p) / q, is right to float32
    precision."""
    import keras

    p1 = 1.0 - 3.0 * 2.0 ** -24
    p = np.array([[p1, 1.0 - p1]], np.float32)
    labels = np.array([0])
    entry = spec.get("categorical_generalized_crossentropy")
    exact = float(entry.reference_reduced(p.astype(np.float64), labels, from_logits=False, q=0.3))
    (ours, _), (theirs, _) = _keras_and_ours(
        "categorical_generalized_crossentropy", {"from_logits": False, "q": 0.3}, labels, p, dtype="float32",
        peer=keras.losses.CategoricalGeneralizedCrossEntropy(q=0.3))
    assert ours == pytest.approx(exact, rel=1e-5)
    assert abs(theirs - exact) / exact > 0.05


def test_keras_generalized_ce_takes_any_row_where_ours_rejects_unnormalized_ones():
    """PeerNote of categorical_generalized_crossentropy: Keras computes on rows that are not
    probability distributions; ours raises the spec's ValueError."""
    import tf_impl

    import keras

    p = np.array([[0.9, 0.8, 0.1]])
    labels = np.array([0])
    assert np.isfinite(float(keras.losses.CategoricalGeneralizedCrossEntropy(dtype="float64")(labels, p)))
    with pytest.raises(ValueError, match="summing to 1"):
        tf_impl.get_loss("categorical_generalized_crossentropy", from_logits=False)(labels, p)
