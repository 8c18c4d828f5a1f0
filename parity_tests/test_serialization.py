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
