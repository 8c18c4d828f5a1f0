"""Every Keras loss round-trips through get_config/from_config, Keras serialization and a saved
``.keras`` model; every torch loss through ``state_dict`` / ``torch.save`` /
``torch.load(weights_only=True)``. Outputs are identical after the round trip."""
from __future__ import annotations

import io

import numpy as np
import pytest

import spec
from parity_tests import harness, selection


def _param_sets():
    out = []
    for entry in selection.entries():
        seen = set()
        for case in entry.cases():
            key = repr(sorted((k, repr(v)) for k, v in case.params.items()))
            if key not in seen:
                seen.add(key)
                out.append(pytest.param(entry.name, case.id, id=f"{entry.name}-{case.id}"))
    return out


PARAM_SETS = _param_sets()


def _case(name, case_id):
    entry = spec.get(name)
    return entry, next(c for c in entry.cases() if c.id == case_id)


def _keras_call(loss, entry, case):
    import tensorflow as tf

    x = tf.constant(case.prediction)
    if entry.single_input:
        return loss(x).numpy()
    t = tf.constant(case.target, dtype="int64" if harness.is_integer(case.target) else "float64")
    return loss(t, x).numpy()


@pytest.mark.parametrize("name,case_id", PARAM_SETS)
def test_keras_config_round_trip(name, case_id):
    import keras

    import tf_impl

    entry, case = _case(name, case_id)
    loss = tf_impl.get_loss(name, **case.params)
    clone = type(loss).from_config(loss.get_config())
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(revived) is type(loss)
    expected = _keras_call(loss, entry, case)
    np.testing.assert_array_equal(_keras_call(clone, entry, case), expected)
    np.testing.assert_array_equal(_keras_call(revived, entry, case), expected)


@pytest.mark.parametrize("name", [e.name for e in selection.entries() if not e.single_input])
def test_keras_saved_model_round_trip(name, tmp_path):
    import keras

    import tf_impl

    entry = spec.get(name)
    case = entry.cases()[0]
    loss = tf_impl.get_loss(name, **case.params)
    model = keras.Sequential([keras.Input(shape=case.prediction.shape[1:]), keras.layers.Identity()])
    model.compile(optimizer="sgd", loss=loss)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    revived = loaded.loss
    assert type(revived) is type(loss)
    assert revived.get_config() == loss.get_config()
    np.testing.assert_array_equal(_keras_call(revived, entry, case), _keras_call(loss, entry, case))


@pytest.mark.parametrize("name,case_id", PARAM_SETS)
def test_torch_state_dict_round_trip(name, case_id):
    import torch

    import torch_impl

    entry, case = _case(name, case_id)
    loss = torch_impl.get_loss(name, **case.params)
    buf = io.BytesIO()
    torch.save(loss.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = torch_impl.get_loss(name, **case.params)
    fresh.load_state_dict(state)
    x = torch.tensor(case.prediction)
    args = (x,) if entry.single_input else (
        x, torch.tensor(case.target, dtype=torch.int64 if harness.is_integer(case.target) else torch.float64))
    torch.testing.assert_close(fresh(*args), loss(*args), rtol=0, atol=0)
    assert repr(fresh) == repr(loss)


# ---------------------------------------------------------------- Keras string names
def _keras_name_params():
    return [pytest.param(e.name, id=e.name) for e in selection.entries()]


@pytest.mark.parametrize("name", _keras_name_params())
def test_keras_string_names_resolve_to_our_class(name):
    """After ``import tf_impl``: ``keras.losses.get("soft_dice")`` (regularizers:
    ``keras.regularizers.get("kl_sparsity")``) is our class with its defaults, by spec name, class
    name and registered name, except where Keras has that name (a built-in keeps its meaning)."""
    import keras

    import tf_impl
    from tf_impl import keras_names

    entry = spec.get(name)
    cls = tf_impl.loss_classes()[name]
    kind, get = ("regularizers", keras.regularizers.get) if entry.single_input else ("losses", keras.losses.get)
    names = (name, cls.__name__, f"lossparity>{cls.__name__}")
    required = [p.name for p in entry.params if p.required or p.default is spec.core.REQUIRED]
    for key in names:
        if key in keras_names.BUILT_IN[kind]:
            builtin = get(key)
            assert not isinstance(builtin, cls), key
            assert getattr(builtin, "__module__", type(builtin).__module__).startswith("keras"), key
            continue
        if required:  # no default configuration: the spec's error naming the parameter
            with pytest.raises(ValueError, match=f"^{name}: .*`{required[0]}`"):
                get(key)
            continue
        obj = get(key)
        assert isinstance(obj, cls), (key, obj)
        assert obj.get_config() == cls().get_config()
    assert f"lossparity>{cls.__name__}" in keras_names.ADDED[kind]


def test_keras_builtin_names_are_not_shadowed():
    import keras

    import tf_impl  # noqa: F401
    from tf_impl import keras_names

    assert {"tversky", "Tversky", "mean_squared_error", "categorical_crossentropy"} <= keras_names.BUILT_IN["losses"]
    assert keras.losses.get("tversky").__module__.startswith("keras")
    assert keras.losses.get("mean_squared_error").__module__.startswith("keras")
    assert isinstance(keras.losses.get("lossparity>Tversky"), __import__("tf_impl").Tversky)


def test_model_compiled_with_a_string_name_trains_saves_and_loads(tmp_path):
    import keras

    import tf_impl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, :2] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(2, activity_regularizer="kl_sparsity")])
    model.compile(optimizer="sgd", loss="soft_dice")
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert isinstance(model.layers[0].activity_regularizer, tf_impl.KLSparsity)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)
