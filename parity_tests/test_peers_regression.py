"""The regression entries against framework functions that are not loss classes, so not in the port table
(:mod:`spec.ports`, whose rows ``test_framework_peers.py`` proves): our torch twin of ``cosine_similarity``
equals the negated mean of ``torch.nn.CosineSimilarity(dim, eps)`` (a similarity module) in float32 and
float64, values and gradients, on the spec's cases (``keras.losses.CosineSimilarity`` is the table's row
CosineSimilarity). Where a peer differs, the entry's ``peer_notes`` say so and a test here pins it."""
from __future__ import annotations

import numpy as np
import pytest

import spec

pytestmark = pytest.mark.project

#: spec name → the torch peer built from the case's validated params
TORCH_PEERS = {
    # torch.nn has a similarity module, not a loss: its negated mean (torch.nn.CosineEmbeddingLoss is another loss)
    "cosine_similarity": lambda nn, p: lambda x, y: -nn.CosineSimilarity(dim=p["axis"], eps=p["epsilon"])(x, y).mean(),
}
#: cases where the torch peer differs by more than the tolerance, each pinned by its own test below
TORCH_DIFFERS = {
    # inside ‖ŷ‖ < ε F.cosine_similarity's backward is not the derivative of its forward
    # (test_torch_cosine_similarity_gradient_below_epsilon_differentiates_the_unclamped_norm)
    ("cosine_similarity", "edge-below-epsilon"), ("cosine_similarity", "epsilon-0.5-typical"),
    # float32 arithmetic near parallel vectors (test_cosine_similarity_float32_peers_lose_the_gradient_near_parallel)
    ("cosine_similarity", "edge-parallel-tiny-norm"),
}
DTYPES = ("float32", "float64")


def _torch_cases(kinds=("typical", "extreme", "edge")):
    out = []
    for name in TORCH_PEERS:
        for case in spec.get(name).cases():
            if case.kind in kinds and case.sample_weight is None and (name, case.id) not in TORCH_DIFFERS:
                out += [pytest.param(name, case, dtype, id=f"{name}-{case.id}-{dtype}") for dtype in case.dtypes]
    return out


def _tolerance(name, dtype, field):
    return getattr(spec.get(name).tolerances, field)[dtype]


def _assert_close(name, dtype, field, actual, expected):
    result = _tolerance(name, dtype, field).compare(actual, expected)
    assert result.ok, f"{field}: {result.detail}"


@pytest.mark.parametrize("name,case,dtype", _torch_cases())
def test_torch_twin_equals_the_torch_peer(name, case, dtype):
    import torch

    import torch_impl

    tdtype = getattr(torch, dtype)
    params = spec.get(name).validate_params(case.params)
    x_peer = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    x_ours = torch.tensor(case.prediction, dtype=tdtype, requires_grad=True)
    y = torch.tensor(case.target, dtype=tdtype)
    peer = TORCH_PEERS[name](torch.nn, params)(x_peer, y)
    ours = torch_impl.get_loss(name, **case.params)(x_ours, y)
    peer.backward()
    ours.backward()
    assert ours.dtype == peer.dtype == tdtype
    _assert_close(name, dtype, "value", ours.detach().double().numpy(), peer.detach().double().numpy())
    _assert_close(name, dtype, "grad", x_ours.grad.double().numpy(), x_peer.grad.double().numpy())


# ---------------------------------------------------------------- cosine_similarity
def _cosine_peers(y, p, dtype, axis=-1, epsilon=1e-7):
    """``{name: (value, gradient)}`` of our two twins, Keras' CosineSimilarity and torch's negated
    F.cosine_similarity on (y, ŷ) in ``dtype``, reduction "mean"."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    import torch_impl

    out = {}
    x = tf.constant(p, dtype)
    for name, fn in (("ours keras", tf_impl.get_loss("cosine_similarity", axis=axis, epsilon=epsilon)),
                     ("keras", keras.losses.CosineSimilarity(axis=axis, dtype=dtype))):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(tf.constant(y, dtype), x)
        out[name] = (float(value), tape.gradient(value, x).numpy().astype(np.float64))
    for name, fn in (("ours torch", torch_impl.get_loss("cosine_similarity", axis=axis, epsilon=epsilon)),
                     ("torch", lambda a, b: -F.cosine_similarity(a, b, dim=axis, eps=epsilon).mean())):
        xt = torch.tensor(p, dtype=getattr(torch, dtype), requires_grad=True)
        value = fn(xt, torch.tensor(y, dtype=getattr(torch, dtype)))
        value.backward()
        out[name] = (value.item(), xt.grad.double().numpy())
    return out


def test_cosine_similarity_keeps_float32_norms_past_1e19_where_keras_and_torch_give_zero():
    """PeerNotes of cosine_similarity: in float32 Σ x² overflows past ‖x‖ = 1.8e19; Keras' l2_normalize and
    torch's F.cosine_similarity then give value 0 and gradient 0 (the vector is lost); ours scales each vector by
    its largest |element| first: the true cosine and gradient, in both twins."""
    entry = spec.get("cosine_similarity")
    p = np.array([[3e19, -4e19, 1e19, 0.0], [1.0, 2.0, -1.0, 0.5]])
    y = np.array([[1.0, 2.0, 3.0, 4.0], [1e30, -2e30, 0.0, 5e29]])
    p32, y32 = (a.astype(np.float32).astype(np.float64) for a in (p, y))
    expected, expected_grad = entry.reference_reduced(p32, y32), entry.reference_grad(p32, y32)
    results = _cosine_peers(y, p, "float32")
    for name in ("ours keras", "ours torch"):
        value, grad = results[name]
        _assert_close("cosine_similarity", "float32", "value", value, expected)
        _assert_close("cosine_similarity", "float32", "grad", grad, expected_grad)
    # the peers: each overflowing vector counts as 0 (value 0 in its sample, no gradient to it)
    row_values = entry.reference(p32, y32, **entry.validate_params({}))
    assert abs(row_values[0]) > 0.05 and abs(row_values[1]) > 0.05  # the lost vectors carry real cosines
    for name in ("keras", "torch"):
        value, grad = results[name]
        assert value == 0.0, name
        assert not np.any(grad), name


def test_cosine_similarity_float32_peers_lose_the_gradient_near_parallel():
    """PeerNote of cosine_similarity (case edge-parallel-tiny-norm): a float32 vector of norm 1e-5 almost
    parallel to its target has the gradient m - (n·m) n of size 5e-7 / ‖ŷ‖, a difference of unit vectors
    that float32 arithmetic leaves off by ~eps32 / ‖ŷ‖; Keras' and torch's own cosines (float32) are off
    by 14% and 1.6% there, both twins (float32 computed in float64) are within the float32 tolerance."""
    entry = spec.get("cosine_similarity")
    case = next(c for c in entry.cases() if c.id == "edge-parallel-tiny-norm")
    p32, y32 = (np.asarray(a, np.float32).astype(np.float64) for a in (case.prediction, case.target))
    expected_grad = entry.reference_grad(p32, y32)
    results = _cosine_peers(case.target, case.prediction, "float32")
    for name in ("ours keras", "ours torch"):
        _assert_close("cosine_similarity", "float32", "grad", results[name][1], expected_grad)
    for name in ("keras", "torch"):
        grad = results[name][1]
        off = abs(grad[0, 1] - expected_grad[0, 1]) / abs(expected_grad[0, 1])
        assert 0.01 < off < 0.5, (name, off)  # the small vector's gradient: percents off


def test_cosine_similarity_at_a_zero_vector_is_the_same_in_both_twins_and_both_peers():
    """grad_convention of cosine_similarity: a zero prediction vector has value 0 and gradient -m / (K ε),
    m = y / max(‖y‖, ε) (ŷ / ε is linear there); a zero target vector value 0 and gradient 0. Keras'
    l2_normalize (min(rsqrt(0), 1/ε) = 1/ε) and torch's F.cosine_similarity(eps) agree, in float32 and float64."""
    entry = spec.get("cosine_similarity")
    p = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    y = np.array([[1.0, 2.0, -2.0], [0.0, 0.0, 0.0]])
    expected_grad = entry.reference_grad(p, y)
    np.testing.assert_allclose(expected_grad[0], -np.array([1.0, 2.0, -2.0]) / 3.0 / 1e-7 / 2, rtol=1e-15)
    assert not np.any(expected_grad[1])
    for dtype in DTYPES:
        for name, (value, grad) in _cosine_peers(y, p, dtype).items():
            assert value == 0.0, (name, dtype)
            _assert_close("cosine_similarity", dtype, "grad", grad, expected_grad)


def test_cosine_embedding_loss_is_another_loss():
    """PeerNote of cosine_similarity: torch.nn.CosineEmbeddingLoss is 1 - cos for label 1 (= 1 + ours(axis=1),
    up to its 1e-12 inside the norms) and max(0, cos - margin) for label -1, which ours does not compute."""
    import torch

    import torch_impl

    rng = np.random.default_rng(11)
    x1, x2 = (torch.tensor(rng.normal(size=(5, 4))) for _ in range(2))
    ours = torch_impl.get_loss("cosine_similarity", axis=1, reduction="none")(x1, x2).numpy()
    same = torch.nn.CosineEmbeddingLoss(reduction="none")(x1, x2, torch.ones(5)).numpy()
    np.testing.assert_allclose(same, 1.0 + ours, rtol=1e-10)
    other = torch.nn.CosineEmbeddingLoss(margin=0.2, reduction="none")(x1, x2, -torch.ones(5)).numpy()
    np.testing.assert_allclose(other, np.maximum(0.0, -ours - 0.2), rtol=1e-10, atol=1e-15)
    assert np.any(other == 0.0) and not np.allclose(other, 1.0 + ours)


def test_keras_cosine_similarity_reduction_maps_to_ours():
    """PeerNote of cosine_similarity: on (N, T, D) Keras' reduction=None keeps (N, T), one cosine per position;
    ours "none" is their mean per sample, and Keras' default sum_over_batch_size is our "mean", with sample
    weights too (Keras takes them as (N, 1) there: its (N,) weights do not broadcast against (N, T))."""
    import tf_impl

    import keras

    rng = np.random.default_rng(12)
    y, p = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4))
    w = np.array([0.5, 0.0, 2.0])
    per_position = keras.losses.CosineSimilarity(reduction=None, dtype="float64")(y, p).numpy()
    assert per_position.shape == (3, 2)
    ours_none = tf_impl.get_loss("cosine_similarity", reduction="none")(y, p).numpy()
    np.testing.assert_allclose(ours_none, per_position.mean(axis=1), rtol=1e-12)
    with pytest.raises(Exception, match="Incompatible shapes"):
        keras.losses.CosineSimilarity(dtype="float64")(y, p, sample_weight=w)
    peer_mean = float(keras.losses.CosineSimilarity(dtype="float64")(y, p, sample_weight=w[:, None]))
    ours_mean = float(tf_impl.get_loss("cosine_similarity")(y, p, sample_weight=w))
    assert ours_mean == pytest.approx(peer_mean, rel=1e-12)


def test_torch_cosine_similarity_gradient_below_epsilon_differentiates_the_unclamped_norm():
    """PeerNote of cosine_similarity: F.cosine_similarity clamps the norms at eps without recording it, so for
    0 < ‖ŷ‖ < ε its forward is ŷ·m/ε but its backward -(m - (n·m)(‖ŷ‖/ε) n)/ε (the unclamped norm's derivative),
    not the -m/ε of that forward; ours (and Keras') is -m/ε. They agree at ŷ = 0 and for ‖ŷ‖ >= ε."""
    entry = spec.get("cosine_similarity")
    p = np.array([[3e-8, -4e-8, 0.0]])
    y = np.array([[2.0, 1.0, -3.0]])
    results = _cosine_peers(y, p, "float64")
    expected = entry.reference_grad(p, y)
    m = y / np.linalg.norm(y)
    n = p / np.linalg.norm(p)
    np.testing.assert_allclose(expected, -m / 1e-7, rtol=1e-12)
    torch_grad = -(m - np.sum(n * m) * (np.linalg.norm(p) / 1e-7) * n) / 1e-7
    np.testing.assert_allclose(results["torch"][1], torch_grad, rtol=1e-10)
    for name in ("ours torch", "ours keras", "keras"):
        np.testing.assert_allclose(results[name][1], expected, rtol=1e-10, err_msg=name)
    values = {name: value for name, (value, _) in results.items()}
    assert max(values.values()) - min(values.values()) < 1e-12 * abs(values["torch"])
