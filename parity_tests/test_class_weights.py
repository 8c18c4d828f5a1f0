"""Class-weight utilities (:mod:`spec.class_weights` and its torch / TensorFlow twins).

* ``balanced_class_weights`` equals scikit-learn's ``compute_class_weight("balanced")`` in all
  three implementations; absent classes raise (as in scikit-learn) with a message naming them.
* ``pos_weight_from_labels`` is negatives / positives per column and plugs into
  ``get_loss("weighted_bce", pos_weight=...)`` on both sides.
* Keras ``fit(class_weight=...)`` computes exactly our ``sample_weight`` loss (reported value and
  the gradient step it takes).
* Every error is the same text in NumPy, torch and TensorFlow.
"""
from __future__ import annotations

import numpy as np
import pytest

import spec
from spec import class_weights as scw

pytestmark = pytest.mark.project

EXACT = spec.Tolerance(rtol=1e-15, atol=0.0)


def _close(actual, expected, tol=EXACT):
    result = tol.compare(np.asarray(actual, np.float64), np.asarray(expected, np.float64))
    assert result.ok, result.detail


def _impls():
    from tf_impl import class_weights as fcw
    from torch_impl import class_weights as tcw

    return {"spec": scw, "torch": tcw, "tf": fcw}


def _to_numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _framework_input(name, labels):
    if name == "torch":
        import torch

        return torch.as_tensor(labels)
    if name == "tf":
        import tensorflow as tf

        return tf.constant(labels)
    return labels


def _label_sets():
    rng = np.random.default_rng(20240501)
    out = {}
    y = rng.integers(0, 4, size=37)
    y[:4] = np.arange(4)
    out["int-1d"] = (y, None)
    out["column-n1"] = (y[:, None], None)
    out["float-integral"] = (y.astype(np.float64), 4)
    out["binary-imbalanced"] = ((rng.random(50) < 0.1).astype(np.int32) | np.eye(1, 50, 3, dtype=np.int32)[0], 2)
    out["bool"] = (np.array([True, False, False, False, True, False]), None)
    big = rng.integers(0, 11, size=400)
    big[:11] = np.arange(11)
    out["eleven-classes"] = (big, 11)
    out["single-class"] = (np.zeros(5, np.int64), 1)
    return out


LABELS = _label_sets()


# --------------------------------------------------------------------------- balanced weights
@pytest.mark.parametrize("case", sorted(LABELS))
@pytest.mark.parametrize("impl", ["spec", "torch", "tf"])
def test_balanced_equals_sklearn(case, impl):
    from sklearn.utils.class_weight import compute_class_weight

    labels, num_classes = LABELS[case]
    flat = np.asarray(labels).reshape(-1).astype(np.int64)
    k = num_classes or int(flat.max()) + 1
    expected = compute_class_weight("balanced", classes=np.arange(k), y=flat)
    fn = _impls()[impl].balanced_class_weights
    kwargs = {} if impl == "spec" else {"dtype": "float64"}
    got = _to_numpy(fn(_framework_input(impl, labels), num_classes, **kwargs))
    assert got.shape == (k,)
    _close(got, expected)
    # definition: the weighted count of every class is N / K (the classes are "balanced")
    _close(np.bincount(flat, weights=got[flat], minlength=k), np.full(k, flat.size / k), spec.Tolerance(1e-13, 0))


@pytest.mark.parametrize("impl", ["torch", "tf"])
def test_result_dtype_rule(impl):
    fn = _impls()[impl].balanced_class_weights
    pw = _impls()[impl].pos_weight_from_labels
    ints = _framework_input(impl, np.array([0, 1, 1]))
    floats = _framework_input(impl, np.array([0.0, 1.0, 1.0]))
    assert "float32" in str(fn(ints).dtype) and "float64" in str(fn(floats).dtype)
    assert "float64" in str(fn(ints, dtype="float64").dtype)
    assert "float32" in str(pw(ints).dtype) and "float64" in str(pw(floats).dtype)
    _close(_to_numpy(fn(ints)), [1.5, 0.75], spec.Tolerance(1e-7, 0))


def test_absent_class_raises_like_sklearn_and_names_classes():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0, 2, 2, 4, 0])
    with pytest.raises(ValueError):
        compute_class_weight("balanced", classes=np.arange(6), y=labels)
    messages = set()
    for impl, mod in _impls().items():
        for num_classes in (None, 6):
            with pytest.raises(ValueError) as err:
                mod.balanced_class_weights(_framework_input(impl, labels), num_classes)
            messages.add((num_classes, str(err.value)))
    assert len(messages) == 2, messages  # one text per call, whatever the framework
    by_k = dict(messages)
    assert "classes [1, 3] of range(5)" in by_k[None]
    assert "classes [1, 3, 5] of range(6)" in by_k[6]


def test_many_absent_classes_are_listed_briefly():
    with pytest.raises(ValueError, match=r"\[1, 2, .*\] \(98 in all\)"):
        scw.balanced_class_weights([0, 99])


INVALID_BALANCED = {
    "two-columns": (np.array([[0, 1], [1, 0]]), None),
    "empty": (np.zeros(0, np.int64), None),
    "nan": (np.array([0.0, np.nan, 1.0]), None),
    "non-integer": (np.array([0.0, 1.5, 1.0]), None),
    "negative": (np.array([0, -1, 1]), None),
    "too-large": (np.array([0, 3, 1]), 3),
    "num-classes-zero": (np.array([0, 1]), 0),
    "num-classes-float": (np.array([0, 1]), 2.0),
    "num-classes-bool": (np.array([0, 1]), True),
    "scalar": (np.array(1), None),
}


@pytest.mark.parametrize("case", sorted(INVALID_BALANCED))
def test_balanced_errors_identical(case):
    labels, num_classes = INVALID_BALANCED[case]
    texts = []
    for impl, mod in _impls().items():
        with pytest.raises(ValueError) as err:
            mod.balanced_class_weights(_framework_input(impl, labels), num_classes)
        texts.append(str(err.value))
    assert texts[0].startswith("balanced_class_weights: ")
    assert texts[1] == texts[0] and texts[2] == texts[0], texts


# --------------------------------------------------------------------------- pos_weight
def _multilabel(rng, n=200, c=6, rate=0.2):
    y = (rng.random((n, c)) < rate).astype(np.float32)
    y[0] = 1.0  # every column has a positive ...
    y[1] = 0.0  # ... and a negative
    return y


@pytest.mark.parametrize("impl", ["spec", "torch", "tf"])
@pytest.mark.parametrize("shape", ["2d", "3d", "1d", "bool"])
def test_pos_weight_is_negatives_over_positives(impl, shape):
    rng = np.random.default_rng(5)
    if shape == "2d":
        y = _multilabel(rng)
    elif shape == "3d":
        y = _multilabel(rng, n=60, c=4).reshape(20, 3, 4)
    elif shape == "1d":
        y = _multilabel(rng, c=1)[:, 0]
    else:
        y = _multilabel(rng).astype(bool)
    cols = y.astype(np.float64).reshape(-1, 1 if y.ndim == 1 else y.shape[-1])
    expected = (cols.shape[0] - cols.sum(0)) / cols.sum(0)
    kwargs = {} if impl == "spec" else {"dtype": "float64"}
    got = _to_numpy(_impls()[impl].pos_weight_from_labels(_framework_input(impl, y), **kwargs))
    if y.ndim == 1:
        assert got.shape == ()
        expected = expected[0]
    _close(got, expected)


def test_pos_weight_of_seed_001_labels():
    """The sparse multilabel problem: 30 sparse labels with positive rate 1/30; the answer hand-picks 27. The ratio is
    (1 - 1/30) / (1/30) = 29 per column in expectation; we compute it from the labels."""
    rng = np.random.default_rng(0)
    y = (rng.random((30000, 30)) <= 1 / 30).astype(int)
    pw = scw.pos_weight_from_labels(y)
    assert pw.shape == (30,)
    assert np.all(np.abs(pw - 29.0) < 3.0), pw
    _close(pw, (y == 0).sum(0) / (y == 1).sum(0))


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_pos_weight_plugs_into_weighted_bce(framework):
    """The returned tensor is directly ``pos_weight=`` of ``get_loss("weighted_bce")`` and gives
    the spec's value; for a 1-D label vector it is a scalar that fits a 1-D prediction."""
    rng = np.random.default_rng(11)
    y = _multilabel(rng, n=24, c=5)
    logits = rng.normal(size=y.shape) * 2.0
    entry = spec.get("weighted_bce")
    for labels, x in ((y, logits), (y[:, 2], logits[:, 2])):
        pw_ref = scw.pos_weight_from_labels(labels)
        expected = entry.reference_reduced(x, labels, pos_weight=pw_ref)
        if framework == "torch":
            import torch

            import torch_impl
            from torch_impl.class_weights import pos_weight_from_labels

            pw = pos_weight_from_labels(torch.as_tensor(labels), dtype="float64")
            got = torch_impl.get_loss("weighted_bce", pos_weight=pw)(torch.as_tensor(x), torch.as_tensor(labels))
            got = got.detach().numpy()
        else:
            import tensorflow as tf

            import tf_impl
            from tf_impl.class_weights import pos_weight_from_labels

            pw = pos_weight_from_labels(tf.constant(labels), dtype="float64")
            got = tf_impl.get_loss("weighted_bce", pos_weight=pw)(tf.constant(labels, tf.float64), tf.constant(x))
            got = got.numpy()
        _close(got, expected, entry.tolerances.value["float64"])


INVALID_POS = {
    "no-positive": np.array([[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0]]),
    "no-negative": np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0]]),
    "soft-labels": np.array([[1.0, 0.5], [0.0, 1.0]]),
    "nan": np.array([[1.0, np.nan], [0.0, 1.0]]),
    "empty": np.zeros((0, 3)),
    "scalar": np.array(1.0),
}


@pytest.mark.parametrize("case", sorted(INVALID_POS))
def test_pos_weight_errors_identical(case):
    y = INVALID_POS[case]
    texts = []
    for impl, mod in _impls().items():
        with pytest.raises(ValueError) as err:
            mod.pos_weight_from_labels(_framework_input(impl, y))
        texts.append(str(err.value))
    assert texts[0].startswith("pos_weight_from_labels: ")
    assert texts[1] == texts[0] and texts[2] == texts[0], texts
    if case == "no-positive":
        assert "columns [1] (of 4) have no positive" in texts[0]
    if case == "no-negative":
        assert "columns [0] (of 3) have no negative" in texts[0]


# --------------------------------------------------------------------------- Keras class_weight
def test_keras_class_weight_equals_our_sample_weight_loss():
    """Keras ``fit(class_weight={0: w0, 1: w1})`` == our loss with ``sample_weight = w[y]``.

    Keras turns ``class_weight`` into a per-sample weight ``w[round(y)]`` (its data adapter) and
    reduces with ``sum_over_batch_size``: Σ_b w_i ℓ_i / n_b per batch; the epoch's reported loss is
    the batch-size-weighted mean of the batch losses, Σ_i w_i ℓ_i / N — exactly our
    ``reduction="mean"`` with ``sample_weight`` (whatever the batch split, here 40 + 24).

    Precision: ``floatx`` is float64 for the fit (model, class weights, loss tracker), the model is
    a single ``Dense(1)`` with fixed weights, and ``SGD(learning_rate=0)`` keeps them fixed, so the
    reported loss is the loss at known logits ``X @ kernel + bias`` and must equal ours to ~1e-13
    (only the summation order differs). A second fit on one batch with ``learning_rate=0.5``
    checks the loss Keras *uses*: its SGD step equals ``-0.5 ×`` the torch autograd gradient of
    our weighted loss. Compiled with Keras' own ``BinaryCrossentropy`` (an independent peer) and
    with our ``WeightedBCE``. Finally, for one binary output with hard labels, the class-weighted
    BCE is ``w0 · weighted_bce(pos_weight=w1/w0)`` (the per-class weight as a pos_weight).
    """
    import keras
    import tensorflow as tf
    import torch

    import tf_impl
    import torch_impl
    from tf_impl import training as kt
    from tf_impl.class_weights import balanced_class_weights as tf_balanced
    from torch_impl.class_weights import balanced_class_weights as torch_balanced

    rng = np.random.default_rng(3)
    n = 64
    x_data = rng.normal(size=(n, 3))
    y = (rng.random(n) < 0.2).astype(np.float64)[:, None]
    y[:2, 0] = [0.0, 1.0]
    labels = y[:, 0].astype(np.int64)
    kernel, bias = rng.normal(size=(3, 1)), np.array([0.3])

    w = scw.balanced_class_weights(labels, num_classes=2)
    _close(_to_numpy(tf_balanced(tf.constant(labels), 2, dtype="float64")), w)
    _close(_to_numpy(torch_balanced(torch.as_tensor(labels), 2, dtype="float64")), w)
    class_weight = {0: float(w[0]), 1: float(w[1])}
    sample_weight = w[labels]
    logits = x_data @ kernel + bias

    # ours, three ways
    entry = spec.get("weighted_bce")
    ours_ref = float(entry.reference_reduced(logits, y, sample_weight=sample_weight))
    ours_torch = float(torch_impl.get_loss("weighted_bce")(torch.as_tensor(logits), torch.as_tensor(y),
                                                          sample_weight=torch.as_tensor(sample_weight)))
    ours_tf = float(tf_impl.get_loss("weighted_bce")(tf.constant(y), tf.constant(logits),
                                                    sample_weight=tf.constant(sample_weight)))
    tol = spec.Tolerance(rtol=1e-13, atol=0.0)
    _close(ours_torch, ours_ref, tol)
    _close(ours_tf, ours_ref, tol)

    def fit(loss, lr, batch_size):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.layers[-1].set_weights([kernel, bias])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss=loss)
        hist = model.fit(x_data, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                         class_weight=class_weight)
        new_kernel, new_bias = (np.asarray(v, np.float64) for v in model.layers[-1].get_weights())
        return hist.history["loss"][0], new_kernel, new_bias

    with kt.floatx("float64"):
        reported = {}
        for tag, loss in (("keras-bce", keras.losses.BinaryCrossentropy(from_logits=True)),
                          ("ours", tf_impl.get_loss("weighted_bce"))):
            reported[tag], k1, b1 = fit(loss, 0.0, 40)
            np.testing.assert_array_equal(k1, kernel)  # lr = 0: the weights did not move
            _, k_step, b_step = fit(loss, 0.5, n)  # one batch, one step
            tk = torch.tensor(kernel, requires_grad=True)
            tb = torch.tensor(bias, requires_grad=True)
            value = torch_impl.get_loss("weighted_bce")(torch.as_tensor(x_data) @ tk + tb, torch.as_tensor(y),
                                                        sample_weight=torch.as_tensor(sample_weight))
            value.backward()
            step_tol = spec.Tolerance(rtol=1e-12, atol=1e-14)
            _close(k_step, kernel - 0.5 * tk.grad.numpy(), step_tol)
            _close(b_step, bias - 0.5 * tb.grad.numpy(), step_tol)
    assert set(reported) == {"keras-bce", "ours"}
    for value in reported.values():
        _close(value, ours_ref, tol)

    # class weight as pos_weight: w0 * weighted_bce(pos_weight = w1 / w0) without sample weights
    as_pos_weight = w[0] * float(entry.reference_reduced(logits, y, pos_weight=w[1] / w[0]))
    _close(as_pos_weight, ours_ref, tol)
