"""Property-based parity (hypothesis): for every entry, inputs drawn from its declared domains —
batch sizes from 1, class counts up to 33, logits up to ±1e4 and the float32 exp edge (±88/89),
probabilities including exact 0 and 1, hard and soft targets, sample weights with zeros — and
parameter sets from its cases. A regression loss that is a function of ŷ - y alone has its target
drawn as ŷ - g, the gap g from (-50, 50) and the gaps of the entry's extreme cases, so every draw
lies where the entry's terms are representable (an independent target beside ŷ = 1e4 or 89 made
``asymmetric_exponential``'s e^{ŷ - y} overflow in most draws, which were then rejected). torch,
Keras and the reference must agree on values and gradients. Profiles: ``ci`` (default, 200 examples per loss), ``deep`` (10,000:
``pytest parity_tests/test_properties.py --hypothesis-profile=deep``), ``dev`` (25).
A failure found here becomes a permanent edge case of the entry."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from parity_tests import harness, selection

LOGIT_EDGES = [-1e4, -89.0, -88.0, -40.0, 0.0, 40.0, 88.0, 89.0, 1e4]


def _templates(entry):
    """One template case per distinct parameter set of the entry."""
    seen, out = set(), []
    for case in entry.cases():
        key = repr(sorted((k, repr(v)) for k, v in case.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out


def _vector_param(params) -> bool:
    return any(isinstance(v, np.ndarray) for v in params.values())


def _one_hot(target) -> bool:
    t = np.asarray(target)
    return t.ndim >= 2 and t.dtype.kind == "f" and bool(np.isin(t, (0.0, 1.0)).all()) and bool(
        np.all(t.sum(axis=-1) == 1.0))


@functools.lru_cache(maxsize=None)
def _gap_function(name: str) -> bool:
    """Whether the regression entry's loss is a function of ŷ - y alone (real targets of the
    prediction's shape; the value of its first typical case unchanged when ŷ and y both move by 1.5),
    as mean_squared_error, huber or asymmetric_exponential and unlike a relative error."""
    import spec

    entry = spec.get(name)
    case = next(c for c in entry.cases() if c.kind == "typical")
    if (entry.family != "regression" or entry.target_domain is not None or entry.target_shape is not None
            or case.target is None or harness.is_integer(case.target)):
        return False
    params = entry.validate_params(case.params)
    value = entry.reference(case.prediction, case.target, **params)
    shifted = entry.reference(case.prediction + 1.5, case.target + 1.5, **params)
    return bool(np.allclose(shifted, value, rtol=1e-9, atol=0.0))


def _extreme_gaps(entry) -> list[float]:
    """The gaps ŷ - y of the entry's unweighted extreme cases (its declared range: e.g. up to 80 for
    ``asymmetric_exponential``, whose e^{ŷ - y} is finite in float32 there, and ±1e4 for the others)."""
    gaps = {float(g) for c in entry.cases() if c.kind == "extreme" and c.sample_weight is None
            for g in np.ravel(np.asarray(c.prediction, np.float64) - np.asarray(c.target, np.float64))}
    assert gaps, f"{entry.name}: no extreme case to take the gaps from"
    return sorted(gaps)


@st.composite
def examples(draw, entry):
    template = draw(st.sampled_from(_templates(entry)))
    params = entry.validate_params(template.params)
    labels = template.target is not None and harness.is_integer(template.target)
    one_hot = template.target is not None and _one_hot(template.target)
    classes = labels or one_hot  # a softmax head: class axis last, rows of probabilities
    shape = list(template.prediction.shape)
    shape[0] = draw(st.integers(1, 8))
    if len(shape) >= 2 and shape[-1] > 1 and not _vector_param(params):
        # an entry whose target is drawn by make_target keeps at least its template's classes (a class
        # index parameter such as ctc's blank must stay one)
        fewest = shape[-1] if entry.make_target is not None else 2 if classes else 1
        shape[-1] = draw(st.integers(fewest, 33))
    shape = tuple(shape)
    n = int(np.prod(shape))
    domain = entry.prediction_domain(params)
    if domain is None:
        elem = st.one_of(st.floats(-30, 30, allow_nan=False, width=32), st.sampled_from(LOGIT_EDGES))
    else:  # a side at infinity stops like the logits: rates (>= 0) are drawn up to 30, log-probabilities
        # ((-inf, 0]) down to the largest logit edge
        lo = max(domain[0], LOGIT_EDGES[0])
        hi = domain[1] if np.isfinite(domain[1]) else 30.0
        elem = st.one_of(st.floats(lo, hi, allow_nan=False, width=32), st.sampled_from([lo, hi]))
    pred = np.asarray(draw(st.lists(elem, min_size=n, max_size=n)), np.float64).reshape(shape)
    if classes and domain is not None:  # probabilities of a softmax head sum to one per row
        pred = (pred + 1e-3) / (pred + 1e-3).sum(axis=-1, keepdims=True)
    target = None
    if template.target is not None:
        t_shape = entry.target_shape(shape) if entry.target_shape else shape
        m = int(np.prod([d for d in t_shape if d is not None]))
        if entry.make_target is not None:  # a target not fixed by the prediction's shape (label sequences)
            target = entry.make_target(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), shape)
        elif labels:
            target = np.asarray(draw(st.lists(st.integers(0, shape[-1] - 1), min_size=m, max_size=m)),
                                np.int64).reshape(t_shape)
        elif one_hot:
            idx = draw(st.lists(st.integers(0, shape[-1] - 1), min_size=m // shape[-1], max_size=m // shape[-1]))
            target = np.eye(shape[-1])[np.asarray(idx, int)].reshape(t_shape)
        elif entry.family == "divergence":  # distributions: probabilities, or log-probabilities (log_target)
            if params.get("log_target"):
                vals = st.one_of(st.floats(-30, 0, allow_nan=False, width=32), st.sampled_from([-1e4, 0.0]))
            else:
                vals = st.one_of(st.floats(0, 1, allow_nan=False, width=32), st.sampled_from([0.0, 1.0]))
            target = np.asarray(draw(st.lists(vals, min_size=m, max_size=m)), np.float64).reshape(t_shape)
        elif entry.target_domain == (-1.0, 1.0):  # hard labels of a hinge loss: -1 / 1, or 0 / 1 (0 means -1)
            vals = st.sampled_from([-1.0, 0.0, 1.0])
            target = np.asarray(draw(st.lists(vals, min_size=m, max_size=m)), np.float64).reshape(t_shape)
        elif entry.target_domain == (0.0, 1.0):
            hard = st.sampled_from([0.0, 1.0])
            vals = st.floats(0, 1, allow_nan=False, width=32) if draw(st.booleans()) else hard
            target = np.asarray(draw(st.lists(vals, min_size=m, max_size=m)), np.float64).reshape(t_shape)
        elif entry.target_domain is not None:  # e.g. counts >= 0: the finite part up to 50
            lo, hi = entry.target_domain
            vals = st.floats(lo, min(hi, 50.0), allow_nan=False, width=32)
            target = np.asarray(draw(st.lists(vals, min_size=m, max_size=m)), np.float64).reshape(t_shape)
        elif _gap_function(entry.name):  # ŷ - g: the gap is drawn, not left to chance
            gaps = st.one_of(st.floats(-50, 50, allow_nan=False, width=32), st.sampled_from(_extreme_gaps(entry)))
            target = pred - np.asarray(draw(st.lists(gaps, min_size=m, max_size=m)), np.float64).reshape(t_shape)
        else:
            vals = st.floats(-50, 50, allow_nan=False, width=32)
            target = np.asarray(draw(st.lists(vals, min_size=m, max_size=m)), np.float64).reshape(t_shape)
    weights = None
    if not entry.single_input and draw(st.booleans()):
        weights = np.asarray(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=shape[0],
                                           max_size=shape[0])), np.float64)
    return harness.Case(id="hypothesis", kind="typical", params=template.params, prediction=pred,
                        target=target, sample_weight=weights)


# Inputs below this magnitude become 0: sqrt(tiny · 2**8) (2**-59 in float32, 2**-507 in float64),
# so a product of two inputs times a factor >= 2**-8 (a sample weight, β², 1/C) is a normal number
PRODUCT_MARGIN = 2.0 ** 8


def _flush_tiny(a, dtype):
    """``a`` with every element whose square (with the margin) is not a normal number in ``dtype``
    set to 0: subnormals themselves, and the tiny normals whose products underflow."""
    if a is None or not np.issubdtype(np.asarray(a).dtype, np.floating):
        return a
    floor = np.sqrt(float(np.finfo(dtype).tiny) * PRODUCT_MARGIN)
    return np.where(np.abs(a.astype(dtype)) < floor, 0.0, a)


def _entries():
    return [pytest.param(e.name, id=e.name) for e in selection.entries()]


@pytest.mark.parametrize("name", _entries())
def test_property_parity(name):
    import spec

    entry = spec.get(name)
    checked = []  # examples that reached the comparison (not rejected by `assume`)

    @given(case=examples(entry), dtype=st.sampled_from(list(selection.dtypes())),
           reduction=st.sampled_from(list(spec.REDUCTIONS)))
    def check(case, dtype, reduction):
        if not harness.supports(entry, case, reduction):
            reduction = "mean"
        # TensorFlow's CPU kernels run with flush-to-zero / denormals-are-zero: a subnormal input
        # (e.g. 1.4e-45 in float32), or a subnormal product of two tiny normal inputs (1.2e-38 ·
        # 0.5 in a weighted soft-F-beta sum), is 0 to them, and the sign of ŷ - y at a kink or a
        # 0/0 guard follows; torch keeps subnormals. The contract covers inputs whose products
        # are normal numbers (and zero), so smaller inputs (in the tested dtype) become 0
        case = dataclasses.replace(case, prediction=_flush_tiny(case.prediction, dtype),
                                   target=_flush_tiny(case.target, dtype))
        # an input where the result amplifies absolute rounding without bound is pinned by the edge
        # cases, not drawn here (circle's zero rows)
        assume(entry.ill_conditioned is None or not entry.ill_conditioned(case.prediction, case.target,
                                                                          entry.validate_params(case.params)))
        ref = harness.reference(entry, case, dtype, reduction)
        # the contract covers results whose elementwise terms are representable in the dtype
        # (e^{1e4} is not; nor is e^{89} in float32, even when a mean over M terms would be)
        # (judged without sample weights: a zero weight hides an overflowed term, inf · 0 = NaN)
        bare = ref if case.sample_weight is None else harness.reference(
            entry, dataclasses.replace(case, sample_weight=None), dtype, reduction)
        per_sample = max(1, case.prediction.size // case.prediction.shape[0])
        limit = np.finfo(dtype).max / 16 / per_sample
        assume(np.all(np.abs(bare.value) < limit) and np.all(np.abs(bare.grad) * per_sample < limit))
        torch_res = harness.run_torch(entry, case, dtype, reduction)
        keras_res = harness.run_keras(entry, case, dtype, reduction)
        failures = (harness.compare(torch_res, ref, entry, dtype, what="torch vs reference")
                    + harness.compare(keras_res, ref, entry, dtype, what="keras vs reference"))
        assert not failures, (f"{name} params={dict(case.params)} dtype={dtype} reduction={reduction}\n"
                              f"prediction={case.prediction.tolist()}\ntarget={None if case.target is None else case.target.tolist()}\n"
                              f"sample_weight={case.sample_weight}\n" + "\n".join(failures))
        checked.append(dtype)

    check()
    # the count a deep run records (`pytest -s` shows it); zero would mean nothing was compared
    print(f"\n{name}: {len(checked)} examples compared (torch, Keras, reference), "
          f"{checked.count('float32')} in float32, 0 mismatches")
    assert checked, f"{name}: every drawn example was rejected; nothing was compared"
