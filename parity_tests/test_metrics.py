"""Recall / Precision / FBeta / IoU: the spec reference, scikit-learn, torchmetrics and Keras agree.

Every metric is streamed (one update per batch, compute at the end) over several random batches
of different sizes, with degenerate classes where a score divides 0 by 0 (→ 0.0): class 3 has no
positive label in the whole stream, class 4 is never predicted positive, class 5 neither; on
probabilities, logits, a 1-D binary output and a
pooled middle axis, with and without ``sample_weight``. scikit-learn sees the concatenated,
thresholded labels (``zero_division=0``); the frameworks see the raw batches.
"""
from __future__ import annotations

import numpy as np
import pytest

import spec
from spec import metrics as sm

pytestmark = pytest.mark.project

TOL = spec.Tolerance(rtol=1e-12, atol=1e-15)
C = 6
SIZES = (7, 13, 1, 9)


def _close(actual, expected, tol=TOL):
    result = tol.compare(np.asarray(actual, np.float64), np.asarray(expected, np.float64))
    assert result.ok, result.detail


def _expit(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def _stream(kind: str, weighted: bool, threshold: float, seed: int = 0):
    """Batches ``(prediction, target, sample_weight)`` and the flattened thresholded truth for
    scikit-learn: ``(y_true (M, C'), y_pred (M, C'), weights (M,))``."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.25, 0.1, 0.0, 0.35, 0.0])  # classes 3 and 5: no positive label anywhere
    batches, flat_true, flat_pred, flat_w = [], [], [], []
    for n in SIZES:
        shape = {"probs": (n, C), "logits": (n, C), "binary-1d": (n,), "pooled-3d": (n, 3, C)}[kind]
        logits = rng.normal(size=shape) * 2.0
        if kind == "binary-1d":
            target = (rng.random(shape) < 0.3).astype(np.float32)
        else:
            target = (rng.random(shape) < rates).astype(np.float32)
            logits[..., 4:] = -12.0 - rng.random(shape[:-1] + (2,))  # classes 4, 5: never predicted positive
        probs = _expit(logits)
        # no value within 1e-9 of the threshold: the decision is unambiguous for every method
        assert np.all(np.abs(probs - threshold) > 1e-9)
        prediction = logits if kind in ("logits", "pooled-3d") else probs
        w = rng.uniform(0.0, 2.0, size=n) if weighted else None
        if w is not None and n > 1:
            w[0] = 0.0
        batches.append((prediction.astype(np.float32) if kind == "probs" else prediction,
                        target, w))
        cols = 1 if kind == "binary-1d" else C
        rows = int(np.prod(shape)) // cols
        flat_true.append(target.reshape(rows, cols))
        flat_pred.append((_expit(np.asarray(batches[-1][0], np.float64)) if kind in ("logits", "pooled-3d")
                          else np.asarray(batches[-1][0], np.float64)).reshape(rows, cols) > threshold)
        flat_w.append(np.repeat(np.ones(n) if w is None else w, rows // n))
    return batches, (np.concatenate(flat_true).astype(int), np.concatenate(flat_pred).astype(int),
                     np.concatenate(flat_w))


def _sklearn(metric, params, average, y_true, y_pred, weights, binary):
    import sklearn.metrics as skm

    fn = {"recall": skm.recall_score, "precision": skm.precision_score, "fbeta": skm.fbeta_score,
          "iou": skm.jaccard_score}[metric]
    kwargs = {"beta": params["beta"]} if metric == "fbeta" else {}
    if binary:  # one output: micro = macro = the single class = scikit-learn's "binary"
        value = fn(y_true[:, 0], y_pred[:, 0], average="binary", sample_weight=weights, zero_division=0,
                   **kwargs)
        return value  # "none" with one class is a scalar (torchmetrics' convention, spec'd)
    return fn(y_true, y_pred, average=None if average == "none" else average, sample_weight=weights,
              zero_division=0, **kwargs)


METRIC_PARAMS = [
    pytest.param("recall", {}, id="recall"),
    pytest.param("precision", {}, id="precision"),
    pytest.param("fbeta", {"beta": 1.0}, id="f1"),
    pytest.param("fbeta", {"beta": 0.5}, id="f0.5"),
    pytest.param("fbeta", {"beta": 2.0}, id="f2"),
    pytest.param("iou", {}, id="iou"),
]
KINDS = [  # (kind, threshold, from_logits)
    pytest.param("probs", 0.5, False, id="probs"),
    pytest.param("logits", 0.3, True, id="logits-t0.3"),
    pytest.param("binary-1d", 0.7, False, id="binary-1d-t0.7"),
    pytest.param("pooled-3d", 0.5, True, id="pooled-3d-logits"),
]
TORCH_CLASSES = {"recall": "Recall", "precision": "Precision", "fbeta": "FBeta", "iou": "IoU"}


def _torch_metric(metric, **config):
    from torch_impl import metrics as tm

    return getattr(tm, TORCH_CLASSES[metric])(**config)


def _keras_metric(metric, **config):
    from tf_impl import metrics as fm

    return getattr(fm, TORCH_CLASSES[metric])(**config)


def _torch_stream(m, batches):
    import torch

    for x, y, w in batches:
        m.update(torch.as_tensor(x), torch.as_tensor(y), None if w is None else torch.as_tensor(w))
    return m.compute().numpy()


def _keras_stream(m, batches):
    for x, y, w in batches:
        m.update_state(y, x, sample_weight=w)
    return np.asarray(m.result())


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("average", ["micro", "macro", "none"])
@pytest.mark.parametrize("kind,threshold,from_logits", KINDS)
@pytest.mark.parametrize("metric,extra", METRIC_PARAMS)
def test_stream_equals_sklearn_torch_keras(metric, extra, kind, threshold, from_logits, average, weighted):
    batches, (y_true, y_pred, weights) = _stream(kind, weighted, threshold)
    num_classes = 1 if kind == "binary-1d" else C
    config = dict(extra, threshold=threshold, from_logits=from_logits, average=average,
                  num_classes=None if average == "micro" else num_classes)
    params = sm.get(metric).validate_params(config)
    expected = _sklearn(metric, params, average, y_true, y_pred, weights if weighted else None,
                        binary=kind == "binary-1d")
    ref = sm.reference(metric, [(x, y, w) for x, y, w in batches], **config)
    assert np.shape(ref) == np.shape(expected)
    _close(ref, expected)
    got_torch = _torch_stream(_torch_metric(metric, **config), batches)
    got_keras = _keras_stream(_keras_metric(metric, **config), batches)
    assert got_torch.dtype == np.float64 and got_keras.dtype == np.float64
    _close(got_torch, ref)
    _close(got_keras, ref)
    _close(got_torch, got_keras)
    if kind == "probs" and average == "none":
        # zero division → 0.0: recall of classes 3, 5 (tp + fn = 0), precision of 4, 5 (tp + fp = 0),
        # every score of class 5 (tp = fp = fn = 0)
        tp, fp, fn = (sum(s) for s in zip(*(sm.stat_scores(x, y, threshold=threshold, sample_weight=w)
                                            for x, y, w in batches)))
        assert tp[3] + fn[3] == 0 and fp[3] > 0 and tp[4] + fp[4] == 0 and fn[4] > 0
        assert tp[5] == fp[5] == fn[5] == 0
        assert ref[5] == 0.0 and ref[3] == 0.0 and ref[4] == 0.0


@pytest.mark.parametrize("metric,extra", METRIC_PARAMS[:3] + METRIC_PARAMS[5:])
def test_functional_equals_one_batch_metric(metric, extra):
    import tensorflow as tf
    import torch

    from tf_impl import metrics as fm
    from torch_impl import metrics as tm

    batches, _ = _stream("logits", True, 0.5, seed=3)
    x, y, w = batches[1]
    config = dict(extra, from_logits=True, average="macro", num_classes=C)
    ref = sm.reference(metric, [(x, y, w)], **config)
    got_t = getattr(tm, metric)(torch.as_tensor(x), torch.as_tensor(y), sample_weight=torch.as_tensor(w), **config)
    got_k = getattr(fm, metric)(tf.constant(y), tf.constant(x), sample_weight=tf.constant(w), **config)
    _close(got_t.numpy(), ref)
    _close(got_k.numpy(), ref)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_reset_starts_a_new_stream(framework):
    first, _ = _stream("probs", False, 0.5, seed=1)
    second, _ = _stream("probs", True, 0.5, seed=2)
    config = dict(average="macro", num_classes=C)
    make, run = ((_torch_metric, _torch_stream) if framework == "torch" else (_keras_metric, _keras_stream))
    m = make("fbeta", beta=2.0, **config)
    _close(run(m, first), sm.reference("fbeta", first, beta=2.0, **config))
    m.reset() if framework == "torch" else m.reset_state()
    _close(run(m, second), sm.reference("fbeta", second, beta=2.0, **config))
    assert not np.isclose(sm.reference("fbeta", first, beta=2.0, **config),
                          sm.reference("fbeta", second, beta=2.0, **config))


def test_torchmetrics_forward_and_merge_state():
    """``forward`` returns the batch's value while accumulating; float64 states with
    ``dist_reduce_fx="sum"``; merging two metrics (what a DDP sync does) equals one stream."""
    import torch

    batches, _ = _stream("logits", True, 0.5, seed=4)
    config = dict(from_logits=True, average="none", num_classes=C)
    m = _torch_metric("iou", **config)
    for x, y, w in batches:
        batch_value = m(torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(w))
        _close(batch_value.numpy(), sm.reference("iou", [(x, y, w)], **config))
    _close(m.compute().numpy(), sm.reference("iou", batches, **config))
    assert m.tp.dtype == torch.float64 and m.tp.shape == (C,)
    assert all(m._reductions[s] is not None for s in ("tp", "fp", "fn"))
    a, b = _torch_metric("iou", **config), _torch_metric("iou", **config)
    for m, part in ((a, batches[:2]), (b, batches[2:])):  # update only: compute() caches its value
        for x, y, w in part:
            m.update(torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(w))
    a.merge_state(b)
    _close(a.compute().numpy(), sm.reference("iou", batches, **config))


def test_logit_threshold_is_exact_without_sigmoid():
    """The sparse multilabel answer's workaround applied ``sigmoid`` before a probability threshold. In float32
    ``sigmoid(20) == sigmoid(21) == 1.0``, so a threshold of ``1 - 1e-9`` sees two positives; the
    truth is σ(20) = 1 - 2.1e-9 (negative) and σ(21) = 1 - 7.6e-10 (positive). Comparing
    ``x > logit(t)`` (float64) decides both correctly."""
    import tensorflow as tf
    import torch

    x = np.array([20.0, 21.0], np.float32)
    y = np.array([1.0, 1.0], np.float32)
    t = 1.0 - 1e-9
    assert float(torch.sigmoid(torch.tensor(20.0))) == 1.0  # the naive path's saturation
    config = dict(threshold=t, from_logits=True)
    assert sm.reference("recall", [(x, y)], **config) == 0.5
    m = _torch_metric("recall", **config)
    m.update(torch.as_tensor(x), torch.as_tensor(y))
    assert float(m.compute()) == 0.5
    k = _keras_metric("recall", **config)
    k.update_state(tf.constant(y), tf.constant(x))
    assert float(k.result()) == 0.5


def test_threshold_is_strict_and_same_for_logits_and_probabilities():
    """``p > t``: a probability equal to the threshold (and the logit 0 for t = 0.5) is negative."""
    import torch

    y = np.array([1.0, 1.0, 0.0])
    probs, logits = np.array([0.5, 0.75, 0.5]), np.array([0.0, np.log(3.0), 0.0])
    for x, from_logits in ((probs, False), (logits, True)):
        for make, run in ((_torch_metric, _torch_stream), (_keras_metric, _keras_stream)):
            m = make("precision", from_logits=from_logits)
            assert float(run(m, [(x, y, None)])) == 1.0  # one positive decision, a true one
            m = make("recall", from_logits=from_logits)
            assert float(run(m, [(x, y, None)])) == 0.5
    assert float(torch.sigmoid(torch.tensor(0.0, dtype=torch.float64))) == 0.5


# --------------------------------------------------------------------------- errors
INVALID_CONFIGS = {
    "threshold-zero": {"threshold": 0.0},
    "threshold-one": {"threshold": 1.0},
    "threshold-string": {"threshold": "0.5"},
    "threshold-nan": {"threshold": float("nan")},
    "from-logits-int": {"from_logits": 1},
    "average-weighted": {"average": "weighted"},
    "average-None": {"average": None},
    "macro-without-num-classes": {"average": "macro"},
    "none-without-num-classes": {"average": "none"},
    "num-classes-zero": {"num_classes": 0},
    "num-classes-float": {"num_classes": 3.0},
    "validate-string": {"validate": "yes"},
}


def _param_errors(metric, config):
    import tf_impl.metrics as fm
    import torch_impl.metrics as tm

    texts = []
    for build in (lambda: sm.get(metric).validate_params(config),
                  lambda: _torch_metric(metric, **config),
                  lambda: _keras_metric(metric, **config),
                  lambda: getattr(tm, metric)(np.zeros((2, 3)), np.zeros((2, 3)), **config),
                  lambda: getattr(fm, metric)(np.zeros((2, 3)), np.zeros((2, 3)), **config)):
        with pytest.raises(ValueError) as err:
            build()
        texts.append(str(err.value))
    return texts


@pytest.mark.parametrize("case", sorted(INVALID_CONFIGS))
@pytest.mark.parametrize("metric", ["recall", "fbeta"])
def test_param_errors_identical(metric, case):
    texts = _param_errors(metric, INVALID_CONFIGS[case])
    assert texts[0].startswith(f"{metric}: ")
    assert len(set(texts)) == 1, texts


@pytest.mark.parametrize("beta", [-1.0, float("inf"), True])
def test_beta_errors_identical(beta):
    texts = _param_errors("fbeta", {"beta": beta})
    assert "invalid `beta`" in texts[0] and len(set(texts)) == 1, texts


def test_unknown_parameter_names_the_expected_ones():
    import tf_impl.metrics as fm
    import torch_impl.metrics as tm

    with pytest.raises(ValueError, match="unknown parameter `beta`; expected one of: threshold"):
        sm.get("recall").validate_params({"beta": 2.0})
    texts = []
    for cls in (tm.Recall, fm.Recall):  # explicit keyword-only signatures on both sides
        with pytest.raises(TypeError) as err:
            cls(beta=2.0)
        texts.append(str(err.value))
    assert texts[0] == texts[1] == "Recall.__init__() got an unexpected keyword argument 'beta'"
    assert tm.Recall(compute_with_cache=False).compute_with_cache is False  # torchmetrics options pass


P = np.array([[0.2, 0.8, 0.6], [0.9, 0.1, 0.4]])
T = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
INVALID_INPUTS = {  # (config, prediction, target, sample_weight, expected substring)
    "shape-mismatch": ({}, P, T[:, :2], None, "same shape"),
    "scalar": ({}, np.array(0.5), np.array(1.0), None, "batch axis"),
    "soft-target": ({}, P, T * 0.5, None, "target must be 0 or 1"),
    "logits-as-probabilities": ({}, P * 6 - 3, T, None, "pass from_logits=True"),
    "nan-prediction": ({"from_logits": True}, np.where(P > 0.85, np.nan, P), T, None, "NaN"),
    "sample-weight-shape": ({}, P, T, np.ones((2, 1)), "sample_weight must have shape (2,)"),
    "negative-weight": ({}, P, T, np.array([1.0, -0.5]), ">= 0"),
    "num-classes-mismatch": ({"num_classes": 4, "average": "macro"}, P, T, None, "num_classes=4"),
}


@pytest.mark.parametrize("case", sorted(INVALID_INPUTS))
def test_input_errors_identical(case):
    import tensorflow as tf
    import torch

    config, p, t, w, needle = INVALID_INPUTS[case]
    texts = []
    with pytest.raises(ValueError) as err:
        sm.reference("iou", [(p, t, w)], **config)
    texts.append(str(err.value))
    m = _torch_metric("iou", **config)
    with pytest.raises(ValueError) as err:
        m.update(torch.as_tensor(p), torch.as_tensor(t), None if w is None else torch.as_tensor(w))
    texts.append(str(err.value))
    k = _keras_metric("iou", **config)
    with pytest.raises(ValueError) as err:
        k.update_state(tf.constant(t), tf.constant(p), None if w is None else tf.constant(w))
    texts.append(str(err.value))
    assert needle in texts[0], texts[0]
    assert len(set(texts)) == 1, texts
    # a rejected batch leaves the statistics untouched
    assert float(m.tp.sum() + m.fp.sum() + m.fn.sum()) == 0.0
    assert float(np.sum(k.tp.numpy()) + np.sum(k.fp.numpy()) + np.sum(k.fn.numpy())) == 0.0


def test_validate_false_skips_data_checks():
    import torch

    m = _torch_metric("recall", validate=False)
    m.update(torch.as_tensor(P * 6 - 3), torch.as_tensor(T))  # logits read as probabilities
    assert float(m.compute()) == sm.compute("recall", *sm.stat_scores(P * 6 - 3, T))


# --------------------------------------------------------------------------- Keras integration
def test_keras_compile_fit_evaluate():
    """Our metrics inside ``compile(metrics=[...], weighted_metrics=[...])``: ``fit`` (graph mode;
    Keras passes ``sample_weight`` to ``weighted_metrics`` only) and ``evaluate`` report the
    streamed value of the reference on the model's outputs. The learning rate is 0, so every
    batch sees the same weights as ``predict``."""
    import keras

    import tf_impl
    from tf_impl import metrics as fm

    rng = np.random.default_rng(9)
    n, c = 48, 3
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (rng.random((n, c)) < 0.3).astype(np.float32)
    sw = rng.uniform(0.5, 2.0, size=n).astype(np.float32)

    def make(prefix):
        return [fm.Recall(from_logits=True, name=f"{prefix}recall"),
                fm.Precision(from_logits=True, threshold=0.4, name=f"{prefix}precision"),
                fm.FBeta(beta=2.0, from_logits=True, average="macro", num_classes=c, name=f"{prefix}f2"),
                fm.IoU(from_logits=True, average="macro", num_classes=c, name=f"{prefix}iou")]

    plain, weighted = make(""), make("w_")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(c)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=tf_impl.get_loss("weighted_bce"),
                  metrics=plain, weighted_metrics=weighted)
    hist = model.fit(x, y, sample_weight=sw, batch_size=16, epochs=1, shuffle=False, verbose=0)
    logits = model.predict(x, verbose=0)
    tol = spec.Tolerance(rtol=1e-6, atol=1e-7)  # the history holds float32-cast logs

    def expected(m, weights):
        config = {k: v for k, v in m.get_config().items() if k != "name"}
        return sm.reference(m.metric_name, [(logits, y, weights)], **config)

    for m in plain + weighted:
        assert m.name in hist.history, hist.history.keys()
        _close(hist.history[m.name][0], expected(m, sw if m in weighted else None), tol)
    assert not np.isclose(expected(plain[0], None), expected(weighted[0], sw))  # the weights matter
    results = model.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
    for m in plain:
        _close(results[m.name], expected(m, None), tol)


def test_keras_serialization_round_trip():
    import keras

    from tf_impl import metrics as fm

    m = fm.FBeta(beta=0.5, threshold=0.3, from_logits=True, average="none", num_classes=2, name="f_half")
    blob = keras.saving.serialize_keras_object(m)
    assert blob["registered_name"].startswith("lossparity>")
    back = keras.saving.deserialize_keras_object(blob)
    assert type(back) is fm.FBeta and back.get_config() == m.get_config()
    assert back.get_config() == {"name": "f_half", "beta": 0.5, "threshold": 0.3, "from_logits": True,
                                 "average": "none", "num_classes": 2, "validate": True}
    y, p = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[2.0, -1.0], [-0.5, 3.0]])
    m.update_state(y, p)
    back.update_state(y, p)
    np.testing.assert_array_equal(np.asarray(m.result()), np.asarray(back.result()))


def test_same_parameters_both_frameworks():
    import inspect

    from tf_impl import metrics as fm
    from torch_impl import metrics as tm

    for metric, cls in TORCH_CLASSES.items():
        t_sig = inspect.signature(getattr(tm, cls).__init__).parameters
        k_sig = inspect.signature(getattr(fm, cls).__init__).parameters
        expected = sm.get(metric).defaults()
        for name, default in expected.items():
            assert t_sig[name].default == default and k_sig[name].default == default, (metric, name)
            assert t_sig[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert set(k_sig) - {"self"} == set(expected) | {"name"}


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_keras_update_state_in_tf_function(jit):
    """Inside ``tf.function`` (unknown batch size) and XLA: shape checks at trace time, data
    checks skipped, same statistics as eager."""
    import tensorflow as tf

    batches, _ = _stream("logits", True, 0.5, seed=6)
    config = dict(from_logits=True, average="none", num_classes=C)
    m = _keras_metric("recall", **config)
    spec_f64 = tf.TensorSpec([None, C], tf.float64)

    @tf.function(jit_compile=jit, input_signature=[tf.TensorSpec([None, C], tf.float32), spec_f64,
                                                   tf.TensorSpec([None], tf.float64)])
    def step(y, x, w):
        m.update_state(y, x, sample_weight=w)

    for x, y, w in batches:
        step(tf.constant(y), tf.constant(x), tf.constant(w))
    _close(np.asarray(m.result()), sm.reference("recall", batches, **config))
    with pytest.raises(ValueError, match="num_classes=6 but the last axis of prediction has 4"):
        tf.function(lambda y, x: m.update_state(y, x))(tf.zeros((2, 4)), tf.zeros((2, 4)))
