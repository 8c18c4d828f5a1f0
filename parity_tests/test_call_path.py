"""The valid call's short path of the torch losses (``torch_impl._core.LossCall._accepts``): an entry
whose whole check of the common call is its shape rule and the bounds of its arrays
(``InputChecker.pair_bounds``, ``InputChecker.label_bounds``, ``InputChecker.single_bounds``) accepts a valid call with those tests
alone. Two properties: the short path is taken on the entry's valid typical calls (else it saves
nothing), and it never accepts a call that the full check rejects: on every invalid case it either
raises the spec's own message (a shape rule) or hands the call to the full check, which raises."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import spec
from parity_tests import selection
from torch_impl._core import OPS, RESULT_DECIDES


def _base_params(entry) -> dict:
    """The parameters of the entry's first case (its defaults, plus any required one)."""
    return dict(entry.cases()[0].params)


def _key(params) -> tuple:
    """A comparable form of a validated parameter set (array values as tuples)."""
    return tuple(sorted((k, tuple(np.ravel(v).tolist()) if isinstance(v, np.ndarray) else v)
                        for k, v in params.items()))


def _short_path_entries():
    out = []
    for entry in selection.entries():
        check = spec.validation.InputChecker(entry, entry.validate_params(_base_params(entry)))
        if check.pair_bounds is not None or check.label_bounds is not None or check.single_bounds is not None:
            out.append(pytest.param(entry.name, id=entry.name))
    return out


def _tensor(a, like_float=torch.float64):
    a = np.asarray(a)
    return torch.as_tensor(a) if a.dtype.kind in "iub" else torch.as_tensor(a, dtype=like_float)


def _loss_call(name, **config):
    import torch_impl

    entry = spec.get(name)
    return torch_impl.get_loss(name, **_base_params(entry), **config)._call


def test_short_path_entries_cover_the_common_losses():
    """The losses a port most often calls take the short path with default arguments (a change to a
    hook or a domain that drops one of them fails here, not only in the benchmark)."""
    names = {p.values[0] for p in _short_path_entries()}
    expected = {"mean_squared_error", "mean_absolute_error", "huber", "weighted_bce", "poisson",
                "categorical_crossentropy", "sparse_categorical_crossentropy", "kl_sparsity"}
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("name", _short_path_entries())
def test_short_path_taken_on_valid_calls(name):
    entry = spec.get(name)
    call = _loss_call(name)
    base = _key(entry.validate_params(_base_params(entry)))
    taken = 0
    for case in entry.cases():
        if (_key(entry.validate_params(case.params)) != base or case.sample_weight is not None
                or (case.target is None) != entry.single_input):
            continue
        x, y = _tensor(case.prediction), None if entry.single_input else _tensor(case.target)
        if y is not None and y.is_floating_point() and entry.target_shape is not None:
            continue  # whole-number float labels go through the full check (it reads them)
        assert call._accepts(x, y, None), f"{name}: valid case {case.id} missed the short path"
        call(x, y, None)  # and the call itself succeeds
        taken += 1
    assert taken, f"{name}: no case with the base parameters to take the short path with"


@pytest.mark.parametrize("name", _short_path_entries())
def test_short_path_never_accepts_an_invalid_call(name):
    entry = spec.get(name)
    base = _key(entry.validate_params(_base_params(entry)))
    seen = 0
    for case in entry.all_invalid_cases():
        if case.prediction is None:  # a construction error: no call
            continue
        try:
            params = entry.validate_params(case.params)
        except ValueError:
            continue
        if _key(params) != base:
            continue
        call = _loss_call(name)
        x = _tensor(case.prediction)
        y = None if case.target is None else _tensor(case.target)
        w = None if case.sample_weight is None else _tensor(case.sample_weight)
        with pytest.raises(ValueError) as full:
            call(x, y, w)  # the call as a user makes it
        with pytest.raises(ValueError) as checked:
            call.check(x, y, w, OPS, True)  # the full check alone: the spec's message
        assert str(full.value) == str(checked.value), (name, case.id)
        try:
            accepted = call._accepts(x, y, w)
        except ValueError as short:  # a shape rule raised on the short path: the same message
            assert str(short) == str(full.value), (name, case.id)
        else:
            # accepted on its reads so far only where the loss's value decides the rest (and the
            # call above raised the full check's message after seeing a non-finite loss)
            assert not accepted or accepted is RESULT_DECIDES, \
                f"{name}: the short path accepted the invalid case {case.id}"
        seen += 1
    assert seen, f"{name}: no invalid call with the base parameters"


@pytest.mark.parametrize("name", _short_path_entries())
def test_short_path_with_validate_off_only_checks_shapes(name):
    """``validate=False`` reads no value: an out-of-domain prediction is accepted there (and a
    wrong shape still raises)."""
    entry = spec.get(name)
    base = _key(entry.validate_params(_base_params(entry)))
    case = next(c for c in entry.cases() if _key(entry.validate_params(c.params)) == base and c.sample_weight is None
                and (c.target is None) == entry.single_input
                and (entry.single_input
                     or np.asarray(c.target).dtype.kind in ("iu" if entry.target_shape is not None else "fiub")))
    call = _loss_call(name, validate=False)
    x = _tensor(case.prediction).clone()
    x.view(-1)[0] = float("nan")
    assert call._accepts(x, None if entry.single_input else _tensor(case.target), None)
    # with the values checked, the NaN is not accepted outright (read, or left to the loss's value)
    assert _loss_call(name)._accepts(x, None if entry.single_input else _tensor(case.target), None) is not True


# ---- the result decides (``LossSpec.nonfinite_propagates``) --------------------------------------------

_NONFINITE = (float("nan"), float("inf"), float("-inf"))


def _propagation_failures(entry, argument: str, dtype=torch.float64) -> list[str]:
    """Where a NaN or ±inf in ``argument`` ("prediction" or "target") of a valid case leaves the torch
    loss (``validate=False``, each reduction) finite: the case, reduction, value and position. Every
    valid case of the entry with a target of the prediction's shape and no sample weight, the value at
    the first, a middle and the last element."""
    import torch_impl

    failures = []
    index = ("prediction", "target").index(argument)
    for case in entry.cases():
        if case.target is None or case.sample_weight is not None:
            continue
        params = entry.validate_params(case.params)
        if not spec.validation.InputChecker(entry, params).unbounded[index]:
            continue  # a bounded argument is read by the short path (e.g. probabilities, not logits)
        x, y = _tensor(case.prediction, dtype), _tensor(case.target, dtype)
        arrays = {"prediction": x, "target": y}
        if not arrays[argument].is_floating_point() or not arrays[argument].numel():
            continue
        for reduction in spec.REDUCTIONS:
            try:
                loss = torch_impl.get_loss(entry.name, reduction=reduction, validate=False, **params)
            except ValueError:  # a batch statistic has "mean" only
                continue
            n = arrays[argument].numel()
            for value in _NONFINITE:
                for position in sorted({0, n // 2, n - 1}):
                    changed = {k: v.clone() for k, v in arrays.items()}
                    changed[argument].view(-1)[position] = value
                    out = loss(changed["prediction"], changed["target"])
                    if bool(torch.isfinite(out).all()):
                        failures.append(f"{case.id} {reduction} {value} at {position}")
    return failures


def _propagating_entries():
    return [pytest.param(e.name, a, id=f"{e.name}-{a}") for e in selection.entries()
            for a in e.nonfinite_propagates]


@pytest.mark.parametrize("name, argument", _propagating_entries())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_nonfinite_argument_makes_a_nonfinite_loss(name, argument, dtype):
    """The claim of ``nonfinite_propagates`` on which the short path's result check rests: NaN or ±inf
    anywhere in the argument gives a non-finite loss, for every valid case and reduction."""
    entry = spec.get(name)
    assert argument in ("prediction", "target") and not entry.single_input
    failures = _propagation_failures(entry, argument, dtype)
    assert not failures, f"{name}: a non-finite {argument} gave a finite loss: {failures[:5]}"


def test_propagation_check_sees_a_loss_that_absorbs_infinities():
    """The test above can fail: the hinge's max(0, 1 - yŷ) turns ŷ = +inf (y = 1) into 0, and the sparse
    cross-entropy ignores a -inf logit of a class that is not the label; neither makes the claim."""
    assert _propagation_failures(spec.get("hinge"), "prediction")
    assert _propagation_failures(spec.get("sparse_categorical_crossentropy"), "prediction")
    assert "prediction" not in spec.get("hinge").nonfinite_propagates
    assert "prediction" not in spec.get("sparse_categorical_crossentropy").nonfinite_propagates


def test_a_valid_call_whose_loss_overflows_returns_it():
    """A non-finite loss from finite arguments (an overflow) goes through the full check, which passes:
    the call returns the loss (inf), as the full check alone would."""
    call = _loss_call("mean_squared_error")
    assert call._deferred == (True, True)
    x = torch.full((2, 3), 1e200, dtype=torch.float64, requires_grad=True)
    y = torch.full((2, 3), -1e200, dtype=torch.float64)
    assert call._accepts(x, y, None) is RESULT_DECIDES
    out = call(x, y, None)
    assert out.item() == float("inf")
    x = x.detach().clone()
    x.view(-1)[1] = float("nan")  # and a NaN is still the spec's error
    with pytest.raises(ValueError, match="prediction"):
        call(x.requires_grad_(), y, None)


def test_a_loss_object_sees_every_change_of_its_vector_parameters_and_shapes():
    """The call reuses its last keyword arguments (the vector parameters cast to the prediction's dtype and
    device) and remembers the last prediction shape that passed the entry's shape rule; neither hides a
    change: a buffer changed in place or replaced, another dtype, a shape the rule rejects after one it
    accepted."""
    import torch_impl

    def fresh(pos_weight):
        return torch_impl.get_loss("weighted_bce", pos_weight=np.asarray(pos_weight))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, requires_grad=True)
    y = torch.rand(4, 3, generator=g)
    loss = fresh([1.0, 2.0, 3.0])
    first = loss(x, y)
    assert torch.equal(loss(x, y), first)
    loss.pos_weight.mul_(2.0)  # in place
    assert torch.equal(loss(x, y), fresh([2.0, 4.0, 6.0])(x, y)) and not torch.equal(loss(x, y), first)
    loss.pos_weight = torch.tensor([5.0, 1.0, 0.5], dtype=torch.float64)  # replaced
    assert torch.equal(loss(x, y), fresh([5.0, 1.0, 0.5])(x, y))
    assert torch.equal(loss(x.double(), y.double()), fresh([5.0, 1.0, 0.5])(x.double(), y.double()))
    with pytest.raises(ValueError) as short:
        loss(torch.randn(4, 5), torch.rand(4, 5))  # 5 classes against 3 weights
    with pytest.raises(ValueError) as full:
        fresh([5.0, 1.0, 0.5])._call.check(torch.randn(4, 5), torch.rand(4, 5), None, OPS, True)
    assert str(short.value) == str(full.value)
    assert torch.equal(loss(x, y), fresh([5.0, 1.0, 0.5])(x, y))
