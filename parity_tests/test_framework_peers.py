"""The frameworks' own losses against their twins, driven by the table :mod:`spec.ports`.

For every row with a twin and every configuration in its ``examples``:

* Keras rows: ``keras.losses.X(**config)`` and ``torch_impl.from_keras(that object)`` give the same
  value and the same gradient (Keras' tape vs torch's autograd) on the cases of the row's entry, and
  so does ``tf_impl.from_torch`` of that torch twin (the round trip back to our Keras loss);
* torch rows: ``torch.nn.X(**config)`` and ``tf_impl.from_torch(that module)`` the same, and
  ``torch_impl.from_keras`` of that Keras twin (back to our torch module);

in the row's dtypes (float32; float64 too for the regression rows) on its case kinds. Reductions are
compared per sample: a framework's ``reduction='none'`` keeps more axes (``spec.ports.NONE_REDUCTION``),
so its values are averaged over the non-batch axes first. Every class of both frameworks has a row,
every Keras string name resolves, unmappable configurations and classes without a twin raise
``ValueError`` naming the class (``test_isolation`` checks that the converters read the other
framework without importing it). Where a framework differs by design the row's note says how and a
test below pins it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import spec
from spec import ports

pytestmark = pytest.mark.project

#: keras.losses.LogCosh(dtype="float64") subtracts log 2 rounded to float32: each element is short by
#: float32(log 2) - log 2 = 1.9e-9 (the row's note and the entry's PeerNote; pinned below); its values are
#: compared after adding it back
LOG2_FLOAT32_EXCESS = float(np.float32(np.log(2.0))) - float(np.log(2.0))
KERAS_VALUE_SHIFT = {("LogCosh", "float64"): LOG2_FLOAT32_EXCESS}
DTYPES = ("float32", "float64")
#: (class, case id, dtype) where the framework differs by more than the tolerance, each pinned by the test named
PINNED_CASES = {
    ("MeanSquaredLogarithmicError", "edge-at-epsilon", "float64"):
        "test_keras_msle_in_float64_clamps_at_a_float32_epsilon",
    **{("CrossEntropyLoss", "ignore-every-row-edge", dtype): "test_torch_mean_of_every_row_ignored_is_nan_ours_is_zero"
       for dtype in DTYPES},
    **{(cls, "edge-minus-one-and-zero", dtype): "test_keras_hinge_converts_labels_by_batch"
       for cls in ("Hinge", "SquaredHinge") for dtype in DTYPES},
    ("CosineSimilarity", "edge-parallel-tiny-norm", "float32"):
        "test_cosine_similarity_float32_peers_lose_the_gradient_near_parallel",
    ("CTC", "edge-padding-inside", "float32"): "test_keras_ctc_reads_the_first_label_count_entries_of_a_row",
    ("CTC", "edge-infeasible", "float32"): "test_infeasible_labels_inf_and_no_gradient_keras_finite_torch_nan",
    ("CTC", "edge-infeasible-zero", "float32"): "test_infeasible_labels_inf_and_no_gradient_keras_finite_torch_nan",
}


def _examples(framework, field="examples"):
    return [pytest.param(row, config, id=f"{row.class_name}-{i}")
            for row in ports.rows(framework) if row.has_twin for i, config in enumerate(getattr(row, field))]


def _hard(target) -> bool:
    return bool(np.all((target == 0) | (target == 1)))


#: Keras rows that clip probabilities to [1e-7, 1 - 1e-7] (spec.ports.KERAS_PROBABILITIES; CategoricalGeneralized-
#: CrossEntropy's power has an infinite gradient at 0): the proof takes the cases whose probabilities ("every") or
#: labelled probabilities ("labelled") are inside the clip with a margin of 10; those beyond are pinned in
#: test_peers_multiclass (test_keras_focal_clips_the_softmax_of_logits, test_keras_generalized_ce_...)
KERAS_CLIP = 1e-7
KERAS_CLIPPED = {"CategoricalCrossentropy": "every", "SparseCategoricalCrossentropy": "labelled",
                 "CategoricalFocalCrossentropy": "every", "CategoricalGeneralizedCrossEntropy": "labelled"}


def _inside_keras_clip(row, ported, case) -> bool:
    how = KERAS_CLIPPED.get(row.class_name) if row.framework == ports.KERAS else None
    if how is None:
        return True
    from_logits = ported.params.get("from_logits", True)
    p = np.exp(spec.numerics.log_softmax(case.prediction)) if from_logits else case.prediction
    if how == "labelled":
        labels = case.target.astype(np.int64)
        counted = (labels >= 0) & (labels < p.shape[-1])  # ignored labels (outside the classes) aside
        p = np.take_along_axis(p, np.where(counted, labels, 0)[..., None], axis=-1)[..., 0]
        return bool(np.all(p[counted] >= 10 * KERAS_CLIP))
    return bool(np.all((p >= 10 * KERAS_CLIP) & (p <= 1.0 - 10 * KERAS_CLIP)))


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(a, b)
    return a == b


def _fits(row, ported, name, case) -> bool:
    """The case's parameters named by ``row.match_params`` are the twin's (its inputs are the twin's kind);
    a case of another entry (CrossEntropyLoss' class indices) is compared with the twin's ``index_targets``,
    else with the twin's parameters that entry has."""
    entry = spec.get(name)
    ours = entry.validate_params(case.params)
    twin = ported if ported.entry == name else ported.index_targets
    if twin is None or twin.entry != name:
        twin = dataclasses.replace(ported, params={k: v for k, v in ported.params.items() if k in ours})
    theirs = entry.validate_params(twin.params)
    weights = theirs.get("class_weight")
    if weights is not None and np.size(weights) != case.prediction.shape[-1]:
        return False  # the twin's class weights are for another number of classes
    # a case without the parameter (None: no ignored label in its data) fits any twin
    return all(ours.get(k) is None or _same(ours.get(k), theirs.get(k)) for k in row.match_params)


def _cases(row, ported, dtype):
    """(prediction, target) of the cases of the row's entries that fit the twin's configuration."""
    out = []
    for name in row.case_entries or (row.entry,):
        for case in spec.get(name).cases():
            if case.kind not in row.kinds or dtype not in case.dtypes:
                continue
            if (not _fits(row, ported, name, case) or (row.class_name, case.id, dtype) in PINNED_CASES
                    or not _inside_keras_clip(row, ported, case)):
                continue
            if ported.layout == ports.SIGNED_TARGET and not _hard(case.target):
                continue  # torch's log(1 + exp(-y x)) equals the BCE of (y + 1) / 2 for y = ±1 only
            if ported.axes is not None and case.prediction.ndim - 1 != len(ported.axes):
                continue
            labels = spec.get(name).target_shape is not None and case.target.dtype.kind == "f"
            out.append((case.prediction, case.target.astype(np.int64) if labels else case.target))  # class indices
    assert out, f"{row.qualified}: no case of {row.case_entries or row.entry} fits {ported}"
    return out


def _keras_native(row, ported, prediction, target):
    """The tensors a Keras loss takes for our case: Keras reduces the last axis per call, so a 1-D input
    (one element per sample here) is (N, 1) there; class indices get Keras' trailing axis of size 1."""
    if prediction.ndim == 1:
        prediction, target = prediction[:, None], target[:, None]
    if ported.layout == ports.SQUEEZE_TARGET and target.ndim == prediction.ndim - 1:
        target = target[..., None]
    return prediction, target


def _torch_native(row, ported, prediction, target):
    """The tensors a torch.nn loss takes for our case: class axis 1, ±1 targets (log-probabilities: made
    from the case's logits inside the graph, see ``_torch_value_grad``)."""
    if ported.layout == ports.CLASS_FIRST and prediction.ndim > 2:
        if target.ndim == prediction.ndim:
            target = np.moveaxis(target, -1, 1)
        prediction = np.moveaxis(prediction, -1, 1)
    if ported.layout == ports.SIGNED_TARGET:
        target = 2.0 * target - 1.0
    return prediction, target


def _per_sample(value, n):
    """A framework's reduced value as is; its 'none' values averaged over the non-batch axes."""
    return value if value.ndim == 0 else value.reshape((n, -1)).mean(1) if value.ndim > 1 else value


def _torch_value_grad(loss, prediction, target, dtype, log_softmax=False, sample_weight=None):
    """Value and gradient w.r.t. the prediction; ``log_softmax``: the loss takes log_softmax(prediction)
    over axis 1 (NLLLoss's input), the gradient is the logits'."""
    import torch

    x = torch.tensor(prediction, dtype=getattr(torch, dtype), requires_grad=True)
    y = torch.tensor(target) if target.dtype.kind in "iu" else torch.tensor(target, dtype=x.dtype)
    weights = {} if sample_weight is None else {"sample_weight": torch.tensor(sample_weight, dtype=x.dtype)}
    value = _per_sample(loss(torch.log_softmax(x, 1) if log_softmax else x, y, **weights), prediction.shape[0])
    value.sum().backward()
    assert value.dtype == x.dtype
    return value.detach().double().numpy(), x.grad.double().numpy()


def _keras_value_grad(loss, prediction, target, dtype, log_softmax=False, sample_weight=None):
    import tensorflow as tf

    x = tf.constant(prediction, dtype=dtype)
    y = tf.constant(target) if target.dtype.kind in "iu" else tf.constant(target, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        weights = {} if sample_weight is None else {"sample_weight": tf.constant(sample_weight, dtype=dtype)}
        value = loss(y, tf.nn.log_softmax(x, axis=1) if log_softmax else x, **weights)
        value = value if value.shape.rank == 0 else tf.reshape(tf.reduce_mean(
            tf.reshape(value, (prediction.shape[0], -1)), 1), (-1,)) if value.shape.rank > 1 else value
        total = tf.reduce_sum(value)
    assert value.dtype == tf.as_dtype(dtype)
    return value.numpy().astype(np.float64), tape.gradient(total, x).numpy().astype(np.float64)


def _along_the_simplex(grad):
    """The gradient's component along the probability simplex: each row's mean over the classes removed."""
    return grad - grad.mean(-1, keepdims=True)


def _assert_close(row, ported, dtype, what, actual, expected):
    tolerances = spec.get(ported.entry).tolerances
    if row.grad == "simplex" and not ported.params.get("from_logits", True):
        actual, expected = (actual[0], _along_the_simplex(actual[1])), (expected[0], _along_the_simplex(expected[1]))
    for field, a, e in (("value", actual[0], expected[0]), ("grad", actual[1], expected[1])):
        result = getattr(tolerances, field)[dtype].compare(a, e)
        assert result.ok, f"{what} {field} ({dtype}): {result.detail}"


# ---------------------------------------------------------------- the proof, row by row
@pytest.mark.parametrize("row,config", _examples(ports.KERAS))
def test_keras_loss_equals_its_torch_twin_and_the_round_trip(row, config):
    import tf_impl  # first: TensorFlow without the start-up log lines

    import keras

    import torch_impl

    cls = getattr(keras.losses, row.class_name)
    ported = ports.port(ports.KERAS, row.class_name, ports.keras_config(cls(**config)))
    twin = torch_impl.from_keras(cls(**config))
    back = tf_impl.from_torch(twin)
    assert ports.read_torch(twin) == ported and ports.read_keras(back) == ported
    for dtype in row.dtypes:
        peer = cls(**config, dtype=dtype)
        for prediction, target in _cases(row, ported, dtype):
            prediction, target = _keras_native(row, ported, prediction, target)
            value, grad = _keras_value_grad(peer, prediction, target, dtype)
            expected = (value + KERAS_VALUE_SHIFT.get((row.class_name, dtype), 0.0), grad)
            _assert_close(row, ported, dtype, "torch twin", _torch_value_grad(twin, prediction, target, dtype), expected)
            _assert_close(row, ported, dtype, "Keras round trip", _keras_value_grad(back, prediction, target, dtype),
                          expected)


@pytest.mark.parametrize("row", [r for r in ports.rows(ports.KERAS) if r.has_twin and r.class_name not in ("Dice", "Tversky")],
                         ids=lambda r: r.class_name)
def test_keras_sample_weight_on_2d_inputs_is_the_twins(row):
    """spec.ports.SAMPLE_WEIGHT: one weight per sample, Σ w ℓ / N ('sum_over_batch_size') and Σ w ℓ ('sum'),
    in Keras and in the torch twin, on the weighted (N, C) cases of the entry, and on its weighted cases of any
    rank where Keras gives one value per sample (CTC) (Keras' Dice and Tversky pool the batch: no sample to
    weight)."""
    import tf_impl  # noqa: F401

    import keras

    import torch_impl

    cls = getattr(keras.losses, row.class_name)
    checked = 0
    for reduction in ("sum_over_batch_size", "sum"):
        peer = cls(**{**row.examples[-1], "reduction": reduction})
        ported = ports.read_keras(peer)
        twin = torch_impl.from_keras(peer)
        for case in spec.get(row.entry).cases():
            if (case.kind != "typical" or case.sample_weight is None or not _fits(row, ported, row.entry, case)
                    or (case.prediction.ndim != 2 and row.sum_over == ports.POSITIONS)):
                continue
            prediction, target = _keras_native(row, ported, case.prediction, case.target)
            expected = _keras_value_grad(peer, prediction, target, "float32", sample_weight=case.sample_weight)
            _assert_close(row, ported, "float32", "torch twin, weighted",
                          _torch_value_grad(twin, prediction, target, "float32", sample_weight=case.sample_weight),
                          expected)
            checked += 1
    assert checked, row.qualified


def test_keras_sample_weight_on_higher_rank_inputs_is_one_per_position():
    """spec.ports.SAMPLE_WEIGHT: on (N, d, C) Keras takes one weight per position (N, d) and rejects (N,);
    the twin takes one per sample (N,)."""
    import tensorflow as tf

    import keras

    import torch
    import torch_impl

    x = np.linspace(-1.0, 1.0, 24, dtype=np.float32).reshape(2, 3, 4)
    y = np.zeros_like(x)
    with pytest.raises(tf.errors.InvalidArgumentError):
        keras.losses.MeanSquaredError()(y, x, sample_weight=np.array([0.0, 2.0], np.float32))
    per_position = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], np.float32)
    peer = float(keras.losses.MeanSquaredError()(y, x, sample_weight=per_position))
    twin = torch_impl.from_keras(keras.losses.MeanSquaredError())
    value = float(twin(torch.tensor(x), torch.tensor(y), sample_weight=torch.tensor([0.0, 2.0])))
    assert value == pytest.approx(peer, rel=1e-6)


def _torch_module(row, config, dtype="float32"):
    import torch

    tensors = {k: torch.tensor(v, dtype=getattr(torch, dtype)) for k, v in config.items()
               if k in ("weight", "pos_weight")}
    return getattr(torch.nn, row.class_name)(**{**config, **tensors})


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning")  # KLDivLoss (row note)
@pytest.mark.parametrize("row,config", _examples(ports.TORCH))
def test_torch_loss_equals_its_keras_twin_and_the_round_trip(row, config):
    import tf_impl  # first: TensorFlow without the start-up log lines

    import torch_impl

    ported = ports.read_torch(_torch_module(row, config))
    twin = tf_impl.from_torch(_torch_module(row, config))
    back = torch_impl.from_keras(twin)
    assert ports.read_keras(twin) == ported and ports.read_torch(back) == ported
    for dtype in row.dtypes:
        peer = _torch_module(row, config, dtype)
        for prediction, target in _cases(row, ported, dtype):
            prediction, target = _torch_native(row, ported, prediction, target)
            log_softmax = row.prediction == "log_softmax"
            expected = _torch_value_grad(peer, prediction, target, dtype, log_softmax)
            _assert_close(row, ported, dtype, "Keras twin",
                          _keras_value_grad(twin, prediction, target, dtype, log_softmax), expected)
            _assert_close(row, ported, dtype, "torch round trip",
                          _torch_value_grad(back, prediction, target, dtype, log_softmax), expected)


# ---------------------------------------------------------------- the table covers both frameworks
def test_every_keras_and_torch_loss_class_has_a_row():
    import inspect

    import tf_impl  # noqa: F401

    import keras
    import torch

    keras_classes = {n for n, c in vars(keras.losses).items()
                     if inspect.isclass(c) and issubclass(c, keras.losses.Loss) and c is not keras.losses.Loss}
    torch_classes = {n for n, c in vars(torch.nn).items()
                     if inspect.isclass(c) and issubclass(c, torch.nn.modules.loss._Loss)}
    assert keras_classes == set(ports.PORTS[ports.KERAS]), "keras.losses classes without a row / rows without a class"
    assert torch_classes == set(ports.PORTS[ports.TORCH]), "torch.nn loss classes without a row / rows without a class"
    for row in ports.rows():
        assert row.status in ports.STATUSES and (row.status in (ports.EQUAL,) or row.note), row.qualified
        assert row.has_twin == (row.status in (ports.EQUAL, ports.DIFFERS)), row.qualified


def test_every_keras_string_name_resolves_to_the_class_keras_resolves_it_to():
    import inspect

    import tf_impl
    from tf_impl import keras_names

    import keras
    from keras.src.losses import ALL_OBJECTS_DICT

    ours = set(keras_names.ADDED["losses"])
    for name in sorted(set(ALL_OBJECTS_DICT) - ours - {"Loss", "LossFunctionWrapper"}):
        obj = keras.losses.get(name)  # a class, an instance or a function
        expected = (obj.__name__ if inspect.isclass(obj) else type(obj).__name__ if isinstance(obj, keras.losses.Loss)
                    else ports.KERAS_NAMES.get(obj.__name__))
        assert ports.keras_name(name) == expected, name
    assert ports.catalog_name("tversky") is None and ports.catalog_name("lossparity>Tversky") == "tversky"
    assert isinstance(tf_impl.get_loss("tversky"), tf_impl.Tversky)


@pytest.mark.parametrize("row", [r for r in ports.rows(ports.KERAS) if r.has_twin], ids=lambda r: r.class_name)
def test_keras_string_names_functions_and_serialized_configs_port_like_the_object(row):
    import tf_impl  # noqa: F401

    import keras
    from keras.src.losses import ALL_OBJECTS_DICT

    config = getattr(keras.losses, row.class_name)().get_config()
    expected = ports.port(ports.KERAS, row.class_name, config)
    for name in (row.class_name, *row.names):
        assert ports.read_keras(name) == expected, name
        if hasattr(keras.losses, name) and not name[0].isupper():
            assert ports.read_keras(getattr(keras.losses, name)) == expected, name
    assert ports.read_keras(keras.losses.serialize(getattr(keras.losses, row.class_name)())) == expected
    function = next((getattr(keras.losses, n) for n in row.names if n[0].islower() and hasattr(keras.losses, n)), None)
    if function is not None:  # what Keras builds from a function: LossFunctionWrapper(fn)
        wrapped = ALL_OBJECTS_DICT["LossFunctionWrapper"](function, reduction="sum")
        assert ports.read_keras(wrapped) == ports.port(ports.KERAS, row.class_name, {**config, "reduction": "sum"})


def test_pending_rows_name_entries_not_in_the_catalog_yet():
    """A ``pending`` row is one edit from a mapped row: once its entry is registered, that edit is due."""
    for row in ports.rows():
        if row.status == ports.NO_TWIN_YET:
            assert row.entry not in spec.names(), (
                f"{row.qualified}: `{row.entry}` is in the catalog now; turn its pending() row into a mapped one")


# ---------------------------------------------------------------- what cannot be ported raises
def _build(row, config):
    import tf_impl  # noqa: F401

    if row.framework == ports.KERAS:
        import keras

        return getattr(keras.losses, row.class_name)(**config)
    import torch

    tensors = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in config.items() if k in ("weight", "pos_weight")}
    return getattr(torch.nn, row.class_name)(**{**config, **tensors})


def _convert(obj, framework):
    import tf_impl

    import torch_impl

    return torch_impl.from_keras(obj) if framework == ports.KERAS else tf_impl.from_torch(obj)


@pytest.mark.parametrize("row,config", _examples(ports.KERAS, "rejects") + _examples(ports.TORCH, "rejects"))
def test_configurations_the_twin_cannot_reproduce_raise_naming_the_class(row, config):
    with pytest.raises(ValueError, match=f"^cannot port {row.qualified} with "):
        _convert(_build(row, config), row.framework)


NO_TWIN_ARGS = {"LinearCrossEntropyLoss": {"in_features": 4, "num_classes": 3}}


@pytest.mark.filterwarnings("ignore:`NLLLoss2d` has been deprecated:FutureWarning")
@pytest.mark.parametrize("row", [r for r in ports.rows() if not r.has_twin], ids=lambda r: r.qualified)
def test_classes_without_a_twin_raise_naming_the_class_and_the_reason(row):
    with pytest.raises(ValueError) as err:
        _convert(_build(row, NO_TWIN_ARGS.get(row.class_name, {})), row.framework)
    assert str(err.value) == spec.messages.port_no_twin(row.qualified, row.note)


def test_objects_that_are_not_framework_losses_raise():
    import tf_impl

    import torch_impl

    for bad in ("no_such_loss", {"config": {}}, object(), len):
        with pytest.raises(ValueError, match="^cannot port .*: not a Keras loss"):
            torch_impl.from_keras(bad)
    for bad in ("mse", object()):
        with pytest.raises(ValueError, match="^cannot port .*: not a torch.nn loss"):
            tf_impl.from_torch(bad)


def test_a_keras_twin_with_a_layout_serializes_and_ports_back():
    """A PortedLoss (here: torch's class axis 1 and class-index or probability targets) round-trips through
    keras.losses.serialize / deserialize, and from_keras reads the serialized form."""
    import keras
    import torch

    import tf_impl
    import torch_impl

    twin = tf_impl.from_torch(torch.nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"))
    again = keras.losses.deserialize(keras.losses.serialize(twin))
    assert isinstance(again, tf_impl.PortedLoss) and again.ported == twin.ported
    assert ports.read_keras(keras.losses.serialize(twin)) == twin.ported
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    y = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
    peer = float(torch.nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")(torch.tensor(x), torch.tensor(y)))
    assert float(again(y, x)) == pytest.approx(peer, rel=1e-5)
    assert float(torch_impl.from_keras(keras.losses.serialize(twin))(torch.tensor(x), torch.tensor(y))) == \
        pytest.approx(peer, rel=1e-5)


# ---------------------------------------------------------------- reductions and layouts
def test_reduction_none_is_one_value_per_sample_where_the_frameworks_keep_more_axes():
    """spec.ports.NONE_REDUCTION: torch L1Loss(reduction='none') gives one value per element, its twin
    one per sample (the mean over the non-batch axes); Keras' 'none' on (N, C) is per sample too."""
    import keras
    import torch

    import tf_impl
    import torch_impl

    x = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -2.0]])
    y = np.zeros_like(x)
    peer = torch.nn.L1Loss(reduction="none")(torch.tensor(x), torch.tensor(y))
    twin = tf_impl.from_torch(torch.nn.L1Loss(reduction="none"))(y, x)
    assert tuple(peer.shape) == (2, 3) and tuple(twin.shape) == (2,)
    np.testing.assert_allclose(twin.numpy(), peer.numpy().mean(1), rtol=1e-15)
    k = keras.losses.MeanAbsoluteError(reduction=None, dtype="float64")
    np.testing.assert_allclose(torch_impl.from_keras(k)(torch.tensor(x), torch.tensor(y)).numpy(), k(y, x).numpy(),
                               rtol=1e-15)


def test_keras_mean_with_sample_weight_has_no_counterpart():
    import keras

    import torch_impl

    with pytest.raises(ValueError, match="reduction='mean_with_sample_weight': it divides by the sum of the sample"):
        torch_impl.from_keras(keras.losses.MeanSquaredError(reduction="mean_with_sample_weight"))


def test_keras_dice_axis_must_name_every_non_batch_axis_of_the_call():
    import keras
    import torch

    import torch_impl

    twin = torch_impl.from_keras(keras.losses.Dice(axis=(1, 2)))
    p = torch.full((2, 3, 4), 0.5)
    assert torch.isfinite(twin(p, torch.ones(2, 3, 4)))
    with pytest.raises(ValueError, match=r"axis=\(1, 2\) reduces those axes per sample.*shape \(2, 3, 4, 1\)"):
        twin(p[..., None], torch.ones(2, 3, 4, 1))
    pooled = torch_impl.from_keras(keras.losses.Dice())
    with pytest.raises(ValueError, match="pools the whole batch into one value"):
        pooled(p, torch.ones(2, 3, 4), sample_weight=torch.ones(2))


# ---------------------------------------------------------------- differences pinned
def test_keras_tversky_alpha_weights_the_false_negatives():
    """Row Tversky and the entry's PeerNote: keras.losses.Tversky(alpha=0.7, beta=0.3) equals our tversky
    with alpha=0.3 on the false positives and beta=0.7 on the false negatives (pooled over the batch), not
    ours with the same alpha and beta."""
    import keras
    import torch

    import torch_impl

    p = np.array([[0.9, 0.8, 0.1, 0.3], [0.2, 0.7, 0.6, 0.1]], np.float32)
    y = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]], np.float32)
    peer = float(keras.losses.Tversky(alpha=0.7, beta=0.3)(y, p))
    twin = torch_impl.from_keras(keras.losses.Tversky(alpha=0.7, beta=0.3))
    assert twin.loss.params["alpha"] == 0.3 and twin.loss.params["beta"] == 0.7
    assert float(twin(torch.tensor(p), torch.tensor(y))) == pytest.approx(peer, rel=1e-6)
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    assert peer == pytest.approx(1 - tp / (tp + 0.7 * fn + 0.3 * fp), rel=1e-6)
    same_names = torch_impl.get_loss("tversky", alpha=0.7, beta=0.3, smooth=0.0, from_logits=False)
    assert abs(float(same_names(torch.tensor(p).reshape(1, -1), torch.tensor(y).reshape(1, -1))) - peer) > 1e-2


def test_torch_nll_loss_reads_the_input_as_given_its_twin_normalizes_it():
    """Row NLLLoss: equal on log-probabilities; on raw scores torch gives -x[y], the twin the cross-entropy."""
    import torch

    import tf_impl

    x = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], np.float32)
    y = np.array([0, 2])
    peer = float(torch.nn.NLLLoss()(torch.tensor(x), torch.tensor(y)))
    twin = float(tf_impl.from_torch(torch.nn.NLLLoss())(y, x))
    assert peer == pytest.approx(-(2.0 + 3.0) / 2)
    log_p = torch.log_softmax(torch.tensor(x), -1)
    assert twin == pytest.approx(float(torch.nn.NLLLoss()(log_p, torch.tensor(y))), rel=1e-6)
    assert twin > 0 > peer


def test_torch_bce_loss_clamps_the_log_at_minus_100():
    """Row BCELoss and weighted_bce's PeerNote: at p = 0 with y = 1 torch gives 100, its twin -log(2**-126)."""
    import torch

    import tf_impl

    p = np.array([[0.0], [1e-30]], np.float32)
    y = np.ones_like(p)
    peer = torch.nn.BCELoss(reduction="none")(torch.tensor(p), torch.tensor(y)).numpy()[:, 0]
    twin = tf_impl.from_torch(torch.nn.BCELoss(reduction="none"))(y, p).numpy()
    assert peer[0] == 100.0 and twin[0] == pytest.approx(126 * np.log(2.0), rel=1e-6)
    np.testing.assert_allclose(twin[1], peer[1], rtol=1e-6)  # -log(1e-30) = 69.1 in both


def test_torch_soft_margin_loss_overflows_where_its_twin_is_finite():
    """Row SoftMarginLoss and weighted_bce's PeerNote: torch's log1p(exp(-y x)) is inf once -y x > 88.7 in
    float32; the twin (softplus) gives -y x."""
    import torch

    import tf_impl

    x = np.array([[-100.0, 100.0]], np.float32)
    y = np.array([[1.0, -1.0]], np.float32)
    peer = torch.nn.SoftMarginLoss()(torch.tensor(x), torch.tensor(y))
    twin = tf_impl.from_torch(torch.nn.SoftMarginLoss())(y, x)
    assert torch.isinf(peer)
    assert float(twin) == pytest.approx(100.0, rel=1e-6)


# ---------------------------------------------------------------- mean_absolute_error
def test_mean_absolute_error_subgradient_at_an_exact_fit_is_zero_everywhere():
    """grad_convention of mean_absolute_error: sign(0) = 0 at ŷ = y, in both twins and both peers."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    pred = np.array([[0.0, 1.5, -2.0], [3.0, 0.0, 1.0]])
    target = np.array([[0.0, 1.0, -2.0], [2.0, 0.0, 1.0]])  # ŷ = y at four elements
    at_kink = pred == target
    expected = spec.get("mean_absolute_error").reference_grad(pred, target)
    assert np.all(expected[at_kink] == 0.0)
    for dtype in DTYPES:
        for build in (lambda: torch_impl.get_loss("mean_absolute_error"), torch.nn.L1Loss):
            x = torch.tensor(pred, dtype=getattr(torch, dtype), requires_grad=True)
            build()(x, torch.tensor(target, dtype=getattr(torch, dtype))).backward()
            assert np.all(x.grad.numpy()[at_kink] == 0.0)
            np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
        x = tf.constant(pred, dtype=dtype)
        for loss in (tf_impl.get_loss("mean_absolute_error"), keras.losses.MeanAbsoluteError(dtype=dtype)):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(tf.constant(target, dtype=dtype), x)
            g = tape.gradient(value, x).numpy()
            assert np.all(g[at_kink] == 0.0)
            np.testing.assert_allclose(g, expected, rtol=1e-6)


def test_keras_mean_absolute_error_computes_float64_inputs_in_float32_by_default():
    """PeerNote of mean_absolute_error (spec.ports.KERAS_DTYPE): keras.losses.MeanAbsoluteError() casts to
    floatx (float32); ours keeps float64."""
    import tf_impl

    import keras

    y = np.array([[0.0]])
    p = np.array([[0.1]])
    assert keras.losses.MeanAbsoluteError()(y, p).dtype == "float32"
    ours = tf_impl.get_loss("mean_absolute_error")(y, p)
    assert ours.dtype == "float64" and float(ours) == 0.1


# ---------------------------------------------------------------- huber
def test_keras_huber_config_leaves_out_delta_and_from_keras_reads_the_object():
    """Row Huber: keras.losses.Huber(delta=0.25).get_config() has no delta, so its serialized form (and a
    model saved with it) comes back with delta=1; from_keras of the object reads its delta=0.25."""
    import keras

    import torch_impl

    peer = keras.losses.Huber(delta=0.25)
    assert "delta" not in peer.get_config()
    assert torch_impl.from_keras(peer).params["delta"] == 0.25
    assert torch_impl.from_keras(keras.losses.serialize(peer)).params["delta"] == 1.0


@pytest.mark.parametrize("case", [c for c in spec.get("huber").cases() if c.sample_weight is None],
                         ids=lambda c: c.id)
def test_torch_smooth_l1_is_huber_divided_by_beta(case):
    """PeerNote of huber: torch.nn.SmoothL1Loss(beta) = huber(delta=beta) / beta, values and gradients
    (the SmoothL1Loss row's scale)."""
    import torch

    import torch_impl

    entry = spec.get("huber")
    delta = entry.validate_params(case.params)["delta"]
    x_peer = torch.tensor(case.prediction, requires_grad=True)
    x_ours = torch.tensor(case.prediction, requires_grad=True)
    y = torch.tensor(case.target)
    peer = torch.nn.SmoothL1Loss(beta=delta)(x_peer, y)
    ours = torch_impl.get_loss("huber", delta=delta)(x_ours, y) / delta
    peer.backward()
    ours.backward()
    for field, a, e in (("value", ours.detach().numpy(), peer.detach().numpy()), ("grad", x_ours.grad, x_peer.grad)):
        result = getattr(entry.tolerances, field)["float64"].compare(np.asarray(a), np.asarray(e))
        assert result.ok, f"{field}: {result.detail}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_at_the_boundary_both_branches_agree_exactly(dtype):
    """grad_convention of huber: at |d| = δ torch's kernel (linear branch) and the Keras twin
    (quadratic branch, as keras.losses.Huber) give the same value δ²/2 and gradient ±δ, bit for bit."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    delta = 0.25
    pred = np.array([[0.25, -0.25, 1.25, 0.75]])
    target = np.array([[0.0, 0.0, 1.0, 1.0]])  # d = ±δ exactly, in float32 too
    x = torch.tensor(pred, dtype=getattr(torch, dtype), requires_grad=True)
    t_value = torch_impl.get_loss("huber", delta=delta, reduction="sum")(x, torch.tensor(target, dtype=x.dtype))
    t_value.backward()
    xt = tf.constant(pred, dtype=dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        k_value = tf_impl.get_loss("huber", delta=delta, reduction="sum")(tf.constant(target, dtype=dtype), xt)
        peer = keras.losses.Huber(delta=delta, reduction="sum", dtype=dtype)(tf.constant(target, dtype=dtype), xt)
    expected_grad = np.array([[0.25, -0.25, 0.25, -0.25]]) / 4
    assert t_value.item() == float(k_value) == float(peer) == 0.03125  # one sample: δ²/2 per element, mean of 4
    np.testing.assert_array_equal(x.grad.numpy(), expected_grad)
    np.testing.assert_array_equal(tape.gradient(k_value, xt).numpy(), expected_grad)
    np.testing.assert_array_equal(tape.gradient(peer, xt).numpy(), expected_grad)


# ---------------------------------------------------------------- log_cosh
def test_keras_log_cosh_cancels_near_zero_where_ours_keeps_every_digit():
    """PeerNote of log_cosh: Keras' d + softplus(-2d) - log 2 in float32 at d = 2**-12 (true value
    log cosh d = 2.98e-8) is the rounding noise of log 2; ours (both twins) is right to float32 precision."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    d = np.array([[2.0 ** -12, -(2.0 ** -12), 1e-3, -3e-3]], np.float32)
    zeros = np.zeros_like(d)
    per_element = keras.losses.LogCosh(reduction=None)  # Keras' per-element values (mean over the last axis)
    keras_each = np.array([float(per_element(zeros[:, i:i + 1], d[:, i:i + 1])[0]) for i in range(d.shape[1])])
    ours_each = np.array([float(tf_impl.get_loss("log_cosh")(zeros[:, i:i + 1], d[:, i:i + 1]))
                          for i in range(d.shape[1])])
    torch_each = np.array([float(torch_impl.get_loss("log_cosh")(torch.tensor(d[:, i:i + 1]),
                                                                   torch.tensor(zeros[:, i:i + 1])))
                           for i in range(d.shape[1])])
    exact_each = np.array([spec.get("log_cosh").reference(d[:, i:i + 1].astype(np.float64), zeros[:, :1].astype(
        np.float64))[0] for i in range(d.shape[1])])
    np.testing.assert_allclose(ours_each, exact_each, rtol=1e-6)
    np.testing.assert_allclose(torch_each, exact_each, rtol=1e-6)
    keras_rel = np.abs(keras_each - exact_each) / exact_each
    assert keras_rel[:2].min() > 0.1, keras_rel  # d = ±2**-12: no correct digit
    assert np.abs(keras_each - exact_each).max() <= 1.2e-7  # but within the float32 tolerance's absolute part


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_cosh_far_out_is_finite_where_log_of_cosh_overflows(dtype):
    """PeerNote of log_cosh: log(cosh(d)) overflows past |d| = 89 (float32) / 710 (float64), with a NaN
    gradient; ours and Keras' are |d| - log 2 there, with gradient ±1 (tanh)."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    pred = np.array([[800.0, -800.0, 1e4, -95.0]])
    target = np.zeros_like(pred)
    expected = spec.get("log_cosh").reference_reduced(pred, target)
    expected_grad = spec.get("log_cosh").reference_grad(pred, target)
    tdtype = getattr(torch, dtype)
    naive_x = torch.tensor(pred, dtype=tdtype, requires_grad=True)
    naive = torch.log(torch.cosh(naive_x))
    naive.sum().backward()
    assert torch.isinf(naive).any() and torch.isnan(naive_x.grad).any()  # the overflow and its NaN gradient
    x = torch.tensor(pred, dtype=tdtype, requires_grad=True)
    value = torch_impl.get_loss("log_cosh")(x, torch.tensor(target, dtype=tdtype))
    value.backward()
    tol = spec.get("log_cosh").tolerances
    assert tol.value[dtype].compare(value.item(), expected).ok
    assert tol.grad[dtype].compare(x.grad.numpy(), expected_grad).ok
    xt = tf.constant(pred, dtype=dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        ours = tf_impl.get_loss("log_cosh")(tf.constant(target, dtype=dtype), xt)
        peer = keras.losses.LogCosh(dtype=dtype)(tf.constant(target, dtype=dtype), xt)
    for v in (ours, peer):
        assert tol.value[dtype].compare(float(v), expected).ok
        assert tol.grad[dtype].compare(tape.gradient(v, xt).numpy(), expected_grad).ok


def test_keras_log_cosh_in_float64_uses_a_float32_log_2():
    """PeerNote of log_cosh: keras.losses.LogCosh(dtype="float64") subtracts log 2 rounded to float32, so
    every value is short by 1.9e-9 (relative 2e-9 at d = 1, far above float64's 1e-16); ours is exact."""
    import tf_impl

    import keras

    y = np.zeros((1, 1))
    p = np.ones((1, 1))
    exact = float(np.log(np.cosh(1.0)))
    ours = float(tf_impl.get_loss("log_cosh")(y, p))
    peer = float(keras.losses.LogCosh(dtype="float64")(y, p))
    assert ours == pytest.approx(exact, rel=1e-15)
    assert peer - ours == pytest.approx(-LOG2_FLOAT32_EXCESS, rel=1e-6)
    assert LOG2_FLOAT32_EXCESS == pytest.approx(1.9046e-9, rel=1e-4)


# ---------------------------------------------------------------- mean_absolute_percentage_error
def test_mean_absolute_percentage_error_targets_near_zero_divide_by_epsilon():
    """Keras' definition, ours by default: |y| <= 1e-7 divides by 1e-7 (both twins and
    keras.losses.MeanAbsolutePercentageError), and the subgradient at ŷ = y is 0."""
    import tf_impl

    import keras
    import tensorflow as tf
    import torch

    import torch_impl

    y = np.array([[0.0, 1e-8, -1e-7, 2.0, 3.0]])
    p = np.array([[1e-3, 0.0, 1e-7, 1.0, 3.0]])
    expected = 100 * np.array([1e-3 / 1e-7, 1e-8 / 1e-7, 2e-7 / 1e-7, 1.0 / 2.0, 0.0]).mean()
    expected_grad = 100 * np.array([[1 / 1e-7, -1 / 1e-7, 1 / 1e-7, -1 / 2.0, 0.0]]) / 5
    x = torch.tensor(p, requires_grad=True)
    t_value = torch_impl.get_loss("mean_absolute_percentage_error")(x, torch.tensor(y))
    t_value.backward()
    xt = tf.constant(p)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        ours = tf_impl.get_loss("mean_absolute_percentage_error")(tf.constant(y), xt)
        peer = keras.losses.MeanAbsolutePercentageError(dtype="float64")(tf.constant(y), xt)
    for value in (t_value.item(), float(ours), float(peer)):
        assert value == pytest.approx(expected, rel=1e-12)
    for grad in (x.grad.numpy(), tape.gradient(ours, xt).numpy(), tape.gradient(peer, xt).numpy()):
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)
        assert grad[0, -1] == 0.0


def test_torchmetrics_mape_is_ours_with_its_epsilon_over_100():
    """PeerNote of mean_absolute_percentage_error: torchmetrics' MeanAbsolutePercentageError is a fraction
    with epsilon 1.17e-6 (targets below it included): ours(epsilon=1.17e-6) / 100."""
    import torch
    from torchmetrics.functional import mean_absolute_percentage_error as torchmetrics_mape

    import torch_impl

    for case in spec.get("mean_absolute_percentage_error").cases():
        if case.sample_weight is not None or case.prediction.ndim < 2:
            continue
        x, y = torch.tensor(case.prediction), torch.tensor(case.target)
        ours = torch_impl.get_loss("mean_absolute_percentage_error", epsilon=1.17e-6)(x, y) / 100
        assert float(ours) == pytest.approx(float(torchmetrics_mape(x, y)), rel=1e-12), case.id


# ---------------------------------------------------------------- mean_squared_logarithmic_error
def test_keras_msle_loses_digits_of_small_values_where_ours_keeps_them():
    """Row MeanSquaredLogarithmicError and the entry's PeerNote: Keras' log(x + 1) in float32 for ŷ = 3e-6,
    y = 1e-6 (true value (log1p(3e-6) - log1p(1e-6))² = 4.0e-12) is several percent off; ours (both twins) is
    right to float32 precision; the absolute error stays far below the float32 tolerance's absolute part."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    p = np.array([[3e-6], [2e-4], [1e-5]], np.float32)
    y = np.array([[1e-6], [1e-4], [4e-6]], np.float32)
    exact = spec.get("mean_squared_logarithmic_error").reference(p.astype(np.float64), y.astype(np.float64),
                                                                          epsilon=1e-7)
    keras_each = keras.losses.MeanSquaredLogarithmicError(reduction=None)(y, p).numpy()
    ours = tf_impl.get_loss("mean_squared_logarithmic_error", reduction="none")(y, p).numpy()
    torch_each = torch_impl.get_loss("mean_squared_logarithmic_error", reduction="none")(
        torch.tensor(p), torch.tensor(y)).numpy()
    np.testing.assert_allclose(ours, exact, rtol=1e-5)
    np.testing.assert_allclose(torch_each, exact, rtol=1e-5)
    keras_rel = np.abs(keras_each - exact) / exact
    assert keras_rel[0] > 0.01, keras_rel
    assert np.abs(keras_each - exact).max() < 1e-10


def test_keras_msle_in_float64_clamps_at_a_float32_epsilon():
    """Row MeanSquaredLogarithmicError (its float64 edge-at-epsilon case, PINNED_CASES) and the entry's PeerNote:
    keras.losses.MeanSquaredLogarithmicError(dtype="float64")
    clamps at float32(1e-7) = 1.0000000116860974e-07: at ŷ = 1e-7 its gradient is 0 (clamped), ours is the
    ŷ >= ε branch; a target 1e-7 < y < float32(1e-7) is clamped by Keras only."""
    import tf_impl

    import keras
    import tensorflow as tf

    eps32 = float(np.float32(1e-7))
    assert eps32 == pytest.approx(1.0000000116860974e-07, rel=1e-15)
    p = tf.constant([[1e-7]], tf.float64)
    y = tf.constant([[2.0]], tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(p)
        ours = tf_impl.get_loss("mean_squared_logarithmic_error")(y, p)
        peer = keras.losses.MeanSquaredLogarithmicError(dtype="float64")(y, p)
    expected_grad = spec.get("mean_squared_logarithmic_error").reference_grad(np.array([[1e-7]]), np.array([[2.0]]))
    np.testing.assert_allclose(tape.gradient(ours, p).numpy(), expected_grad, rtol=1e-12)
    assert expected_grad[0, 0] < -1.0
    assert float(tape.gradient(peer, p)[0, 0]) == 0.0
    between = np.array([[1.00000001e-7]])
    assert float(keras.losses.MeanSquaredLogarithmicError(dtype="float64")(between, np.array([[0.0]]))) == 0.0
    assert float(tf_impl.get_loss("mean_squared_logarithmic_error")(between, np.array([[0.0]]))) > 0.0


# ---------------------------------------------------------------- poisson
def test_torch_poisson_full_is_stirling_not_log_factorial():
    """Row PoissonNLLLoss and poisson's PeerNote: torch.nn.PoissonNLLLoss(full=True) adds Stirling's
    approximation of log y! for y > 1 (0.652 at y = 2, log 2! = 0.693), 0 for y <= 1; ours with full=True adds
    the same term."""
    import math

    import torch

    import torch_impl

    x = torch.zeros((1, 4), dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 2.0, 10.0]], dtype=torch.float64)
    per_element = (torch.nn.PoissonNLLLoss(full=True, reduction="none")(x, y)
                   - torch.nn.PoissonNLLLoss(full=False, reduction="none")(x, y))[0].numpy()
    stirling = [0.0, 0.0] + [v * math.log(v) - v + 0.5 * math.log(2 * math.pi * v) for v in (2.0, 10.0)]
    np.testing.assert_allclose(per_element, stirling, rtol=1e-14, atol=0)
    assert per_element[2] == pytest.approx(0.6518, abs=1e-4) and math.lgamma(3.0) == pytest.approx(0.6931, abs=1e-4)
    ours = (torch_impl.get_loss("poisson", full=True, reduction="sum")(x, y)
            - torch_impl.get_loss("poisson", full=False, reduction="sum")(x, y))
    assert float(ours) == pytest.approx(sum(stirling) / 4, rel=1e-14)


def test_poisson_keras_takes_rates_torch_log_rates():
    """Rows Poisson and PoissonNLLLoss: keras.losses.Poisson() is poisson(log_input=False); torch.nn.PoissonNLLLoss()
    is poisson(log_input=True): the log-rate x and the rate e^x give the same loss, both twins."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 3))
    y = rng.poisson(2.0, size=(4, 3)).astype(np.float64)
    keras_value = float(keras.losses.Poisson(dtype="float64")(y, np.exp(x)))
    torch_value = float(torch.nn.PoissonNLLLoss()(torch.tensor(x), torch.tensor(y)))
    ours_rates = float(tf_impl.get_loss("poisson", log_input=False)(y, np.exp(x)))
    ours_log = float(torch_impl.get_loss("poisson")(torch.tensor(x), torch.tensor(y)))
    assert ours_rates == pytest.approx(keras_value, rel=1e-12)
    assert ours_log == pytest.approx(torch_value, rel=1e-12)
    # the rate form shifts log by epsilon: log(e^x + 1e-7) vs x, relative 1e-7 of the rate at most
    assert ours_rates == pytest.approx(ours_log, rel=1e-6)


def test_poisson_rejects_negative_rates_where_keras_returns_nan():
    """Rows Poisson and PoissonNLLLoss, poisson's PeerNote: keras.losses.Poisson and
    torch.nn.PoissonNLLLoss(log_input=False) take a negative rate (log of a negative number: NaN); ours raises the
    spec's ValueError in both frameworks."""
    import tf_impl

    import keras
    import torch

    import torch_impl

    y = np.array([[1.0, 2.0]])
    p = np.array([[0.5, -0.25]])
    assert np.isnan(float(keras.losses.Poisson()(y, p)))
    assert torch.isnan(torch.nn.PoissonNLLLoss(log_input=False)(torch.tensor(p), torch.tensor(y)))
    with pytest.raises(ValueError) as torch_error:
        torch_impl.get_loss("poisson", log_input=False)(torch.tensor(p), torch.tensor(y))
    with pytest.raises(ValueError) as keras_error:
        tf_impl.get_loss("poisson", log_input=False)(y, p)
    assert str(torch_error.value) == str(keras_error.value)
    assert "log_input=True" in str(torch_error.value)
