"""One error contract: every invalid case of every entry raises ``ValueError`` with the exact
text the spec produces, in torch and in Keras, through ``get_loss`` and the functional API."""
from __future__ import annotations

import pytest

import spec
from parity_tests import harness
from parity_tests import selection
from spec.validation import expected_message


def _invalid_params():
    out = []
    for entry in selection.entries():
        for case in entry.all_invalid_cases():
            out.append(pytest.param(entry.name, case.id, id=f"{entry.name}-{case.id}"))
    return out


INVALID = _invalid_params()


def _case(name, case_id):
    entry = spec.get(name)
    return entry, next(c for c in entry.all_invalid_cases() if c.id == case_id)


def _split(params):
    params = dict(params)
    reduction = params.pop("reduction", "mean")
    validate = params.pop("validate", True)
    return params, reduction, validate


def _torch_tensor(a):
    import torch

    if a is None:
        return None
    return torch.as_tensor(a, dtype=torch.int64 if harness.is_integer(a) else torch.float64)


def _tf_tensor(a):
    import tensorflow as tf

    if a is None:
        return None
    return tf.constant(a, dtype="int64" if harness.is_integer(a) else "float64")


def _call(entry, case, get_loss, get_functional, tensor, torch_order):
    """Raise through the module path, then through the functional path; return both messages."""
    messages = []
    params, reduction, validate = _split(case.params)
    pred, tgt, sw = tensor(case.prediction), tensor(case.target), tensor(case.sample_weight)
    with pytest.raises(ValueError) as module_err:
        loss = get_loss(entry.name, **case.params)
        if case.prediction is not None:
            if entry.single_input:
                loss(pred)
            elif torch_order:
                loss(pred, tgt, sample_weight=sw)
            else:
                loss(tgt, pred, sample_weight=sw)
    messages.append(str(module_err.value))
    fn = get_functional(entry.name)
    kwargs = dict(params) if entry.single_input else dict(params, reduction=reduction, validate=validate,
                                                             sample_weight=sw)
    if entry.single_input:
        kwargs.update(reduction=reduction, validate=validate)
    x = pred if pred is not None else tensor(entry.cases()[0].prediction)
    t = tgt if case.prediction is not None else tensor(entry.cases()[0].target)
    if case.id == "param-unknown":
        # an unknown keyword of an explicit Python signature is a TypeError, as everywhere in
        # Python; a functional taking **params (derived for users' losses) gives the spec's text
        with pytest.raises((TypeError, ValueError)) as err:
            fn(x, **kwargs) if entry.single_input else (fn(x, t, **kwargs) if torch_order else fn(t, x, **kwargs))
        if err.type is ValueError:
            messages.append(str(err.value))
        return messages
    with pytest.raises(ValueError) as fn_err:
        if entry.single_input:
            fn(x, **kwargs)
        elif torch_order:
            fn(x, t, **kwargs)
        else:
            fn(t, x, **kwargs)
    messages.append(str(fn_err.value))
    return messages


@pytest.mark.parametrize("name,case_id", INVALID)
def test_torch_raises_the_spec_message(name, case_id):
    import torch_impl

    entry, case = _case(name, case_id)
    expected = expected_message(entry, case)
    for got in _call(entry, case, torch_impl.get_loss, torch_impl.get_functional, _torch_tensor, True):
        assert got == expected


@pytest.mark.parametrize("name,case_id", INVALID)
def test_keras_raises_the_spec_message(name, case_id):
    import tf_impl

    entry, case = _case(name, case_id)
    expected = expected_message(entry, case)
    for got in _call(entry, case, tf_impl.get_loss, tf_impl.get_functional, _tf_tensor, False):
        assert got == expected


@pytest.mark.parametrize("name", [e.name for e in selection.entries() if not e.single_input])
def test_validate_false_skips_data_checks_but_not_shapes(name):
    """``validate=False`` lets a NaN through (it propagates) but a shape error still raises."""
    import numpy as np
    import tensorflow as tf
    import torch

    import tf_impl
    import torch_impl

    entry = spec.get(name)
    case = entry.cases()[0]
    pred = np.array(case.prediction, copy=True)
    pred.reshape(-1)[0] = np.nan
    t_loss = torch_impl.get_loss(name, validate=False, **case.params)
    k_loss = tf_impl.get_loss(name, validate=False, **case.params)
    tgt_t = _torch_tensor(case.target)
    assert torch.isnan(t_loss(torch.as_tensor(pred), tgt_t)).item()
    assert bool(tf.math.is_nan(k_loss(_tf_tensor(case.target), tf.constant(pred))))
    bad_t = case.target[:-1]
    with pytest.raises(ValueError):
        t_loss(torch.as_tensor(case.prediction), _torch_tensor(bad_t))
    with pytest.raises(ValueError):
        k_loss(_tf_tensor(bad_t), tf.constant(case.prediction))


@pytest.mark.project
def test_shape_errors_raise_at_trace_time_under_tf_function():
    import tensorflow as tf

    import tf_impl

    loss = tf_impl.get_loss("weighted_bce")

    @tf.function(jit_compile=True)
    def f(y_true, y_pred):
        return loss(y_true, y_pred)

    with pytest.raises(ValueError, match="prediction and target must have the same shape"):
        f(tf.zeros((4, 3)), tf.zeros((4, 2)))


@pytest.mark.project
def test_unknown_loss_names_the_registered_ones():
    import torch_impl

    with pytest.raises(KeyError, match="weighted_bce"):
        torch_impl.get_loss("no_such_loss")
