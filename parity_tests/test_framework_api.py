"""The framework-neutral front door, written once in ``spec``: ``get_loss``, ``register_impl``,
``get_functional``, the functional call and the ``"auto"`` loss parameters. Both frameworks raise
the same errors with the same text."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.project


@pytest.fixture(scope="module")
def frameworks():
    import tf_impl
    import torch_impl

    return torch_impl, tf_impl


def _error(call):
    try:
        call()
    except (KeyError, ValueError) as err:
        return type(err), str(err)
    raise AssertionError("no error raised")


@pytest.mark.parametrize("call", [
    lambda m: m.get_loss("no_such_loss"),
    lambda m: m.get_loss("weighted_bce", pos_weight=-1.0),
    lambda m: m.get_loss("weighted_bce", no_such_param=1.0),
    lambda m: m.get_loss("weighted_bce", reduction="avg"),
    lambda m: m.get_loss("kl_sparsity", reduction="sum"),
    lambda m: m.get_functional("weighted_bce")(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=0.0),
], ids=["unknown-name", "bad-param", "unknown-param", "bad-reduction", "batch-reduction", "functional-param"])
def test_configuration_errors_are_identical(frameworks, call):
    torch_impl, tf_impl = frameworks
    assert _error(lambda: call(torch_impl)) == _error(lambda: call(tf_impl))


def test_get_loss_unknown_name_is_the_spec_message(frameworks):
    import spec

    with pytest.raises(KeyError) as expected:
        spec.get("no_such_loss")
    for module in frameworks:
        with pytest.raises(KeyError) as got:
            module.get_loss("no_such_loss")
        assert str(got.value) == str(expected.value)


def test_auto_parameters_resolve_once_in_spec():
    """``torch_impl.lightning`` and ``tf_impl.training`` resolve ``"auto"`` through the spec: same
    values, same messages."""
    import tf_impl.training as tt
    import torch_impl.lightning as tl
    from spec import api
    from spec.class_weights import pos_weight_from_labels

    assert tl.resolve_auto_params is tt.resolve_auto_params is api.resolve_auto_params
    labels = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    out = api.resolve_auto_params({"pos_weight": "auto", "from_logits": True}, labels)
    np.testing.assert_array_equal(out["pos_weight"], pos_weight_from_labels(labels))
    assert out["from_logits"] is True
    for params, targets, match in [({"pos_weight": "auto"}, None, "needs the training labels"),
                                   ({"gamma": "auto"}, labels, "'auto' is only available for")]:
        messages = set()
        for resolve in (tl.resolve_auto_params, tt.resolve_auto_params):
            with pytest.raises(ValueError, match=match) as err:
                resolve(params, targets)
            messages.add(str(err.value))
        assert len(messages) == 1, messages
    built = tt.build_loss("weighted_bce", {"pos_weight": "auto"}, labels)
    np.testing.assert_array_equal(built.params["pos_weight"], pos_weight_from_labels(labels))


def test_functional_call_is_the_spec_call_plan(frameworks):
    """One call pipeline: each framework's ``apply`` is ``spec.validation.CallPlans.apply`` of its
    ``LossCall``, whose end (batch statistic, reduced form, weights and reduction) is
    ``CheckedCall.finish`` with the framework's tensor ops; a changed reduction or ``validate`` rebuilds a loss object's checked
    configuration through ``CheckedCall.rebuilt`` (the spec's messages)."""
    from spec.validation import CallPlans, CheckedCall

    from tf_impl import _core as tf_core
    from torch_impl import _core as torch_core

    for core in (torch_core, tf_core):
        assert isinstance(core._PLANS, CallPlans) and core.apply == core._PLANS.apply
        assert issubclass(core.LossCall, CheckedCall) and core.LossCall.finish is CheckedCall.finish
    torch_impl, tf_impl = frameworks
    errors = []
    for module in frameworks:
        loss = module.get_loss("soft_dice")
        with pytest.raises(ValueError) as err:
            loss.reduction = "avg"
            loss(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))  # Keras checks at the call
        errors.append(str(err.value))
    assert errors[0] == errors[1]
