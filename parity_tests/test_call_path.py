"""The valid call's short path of the torch losses (``torch_impl._core.LossCall._accepts``): an entry
whose whole check of the common call is its shape rule and the bounds of its arrays
(``InputChecker.pair_bounds``, ``InputChecker.label_bounds``) accepts a valid call with those tests
alone. Two properties: the short path is taken on the entry's valid typical calls (else it saves
nothing), and it never accepts a call that the full check rejects: on every invalid case it either
raises the spec's own message (a shape rule) or hands the call to the full check, which raises."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import spec
from parity_tests import selection


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
        if entry.single_input:
            continue
        check = spec.validation.InputChecker(entry, entry.validate_params(_base_params(entry)))
        if check.pair_bounds is not None or check.label_bounds is not None:
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
                "categorical_crossentropy", "sparse_categorical_crossentropy"}
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("name", _short_path_entries())
def test_short_path_taken_on_valid_calls(name):
    entry = spec.get(name)
    call = _loss_call(name)
    base = _key(entry.validate_params(_base_params(entry)))
    taken = 0
    for case in entry.cases():
        if _key(entry.validate_params(case.params)) != base or case.sample_weight is not None or case.target is None:
            continue
        x, y = _tensor(case.prediction), _tensor(case.target)
        if np.asarray(case.target).dtype.kind == "f" and (entry.target_shape is not None):
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
            call(x, y, w)  # the full contract: the spec's message
        try:
            accepted = call._accepts(x, y, w)
        except ValueError as short:  # a shape rule raised on the short path: the same message
            assert str(short) == str(full.value), (name, case.id)
        else:
            assert not accepted, f"{name}: the short path accepted the invalid case {case.id}"
        seen += 1
    assert seen, f"{name}: no invalid call with the base parameters"


@pytest.mark.parametrize("name", _short_path_entries())
def test_short_path_with_validate_off_only_checks_shapes(name):
    """``validate=False`` reads no value: an out-of-domain prediction is accepted there (and a
    wrong shape still raises)."""
    entry = spec.get(name)
    base = _key(entry.validate_params(_base_params(entry)))
    case = next(c for c in entry.cases() if _key(entry.validate_params(c.params)) == base and c.sample_weight is None and c.target is not None
                and np.asarray(c.target).dtype.kind in ("iu" if entry.target_shape is not None else "fiub"))
    call = _loss_call(name, validate=False)
    x = _tensor(case.prediction).clone()
    x.view(-1)[0] = float("nan")
    assert call._accepts(x, _tensor(case.target), None)
