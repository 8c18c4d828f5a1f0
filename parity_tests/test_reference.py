"""The reference against truth: mpmath values at 80 digits, and the analytic gradient (vjp)
against high-precision central differences of the mpmath loss."""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

import spec
from spec.numerics import FD_STEP_EXP, MP_DPS, mp_array
from spec.validation import expected_message

from parity_tests import selection

from .conftest import case_params, get_case

CASES = case_params()


def _f64(a):
    return None if a is None else np.asarray(a, np.float64)


@pytest.fixture(autouse=True)
def _precision():
    with mp.workdps(MP_DPS):
        yield


@pytest.mark.parametrize("name,case_id", CASES)
def test_reference_matches_mpmath(name, case_id):
    entry, case = get_case(name, case_id)
    if not entry.has_exact:
        pytest.skip("the entry provides no mpmath exact")
    params = entry.validate_params(case.params)
    target = _f64(case.target)
    extra = {"sample_weight": _f64(case.sample_weight)} if entry.is_batch_statistic(params) else {}
    ref = np.atleast_1d(entry.reference(case.prediction, target, **extra, **params))
    exact = np.array([float(v) for v in entry.exact(mp_array(case.prediction), target, **extra, **params)])
    result = entry.tolerances.exact_value.compare(ref, exact)
    assert result.ok, result.detail


def _analytic_vjp(entry, case):
    """``(analytic vjp, cotangent, extra kwargs, batch)`` of a case; the cotangent is the standard
    one per sample, or a scalar 1 for a batch statistic. ``batch``: every sample's loss moves with
    every element (a batch statistic, or an entry whose samples are coupled: pairwise losses)."""
    params = entry.validate_params(case.params)
    target = _f64(case.target)
    if entry.is_batch_statistic(params):  # one value per batch: scalar cotangent, every row moves the value
        extra = {"sample_weight": _f64(case.sample_weight)}
        return entry.reference_vjp(case.prediction, target, 1.0, **extra, **params), np.ones(1), extra, True
    cot = np.linspace(0.5, 1.5, case.prediction.shape[0])
    return entry.reference_vjp(case.prediction, target, cot, **params), cot, {}, entry.couples_samples


def _numeric_vjp(entry, case, cot, extra, batch, indices, *, dps, step_exp):
    """Central differences of the mpmath loss, at ``dps`` digits with step ``10**step_exp``, for the
    prediction elements in ``indices``: ``{index: float}``. A nonzero element ``x`` smaller than
    ``10**(step_exp + 30)`` gets the step ``1e-30 |x|`` and as many more digits, so that the step
    never crosses a kink at 0 from an element like 1e-300."""
    params = entry.validate_params(case.params)
    target = _f64(case.target)
    base = mp_array(case.prediction)
    out = {}
    for idx in indices:
        shrink = 0 if base[idx] == 0 else max(0, int(mp.ceil(step_exp + 30 - mp.log10(abs(base[idx])))))
        with mp.workdps(dps + shrink):
            h = mp.mpf(10) ** (step_exp - shrink)
            sel = slice(None) if batch else slice(idx[0], idx[0] + 1)
            weights = cot if batch else cot[sel]
            plus, minus = base.copy(), base.copy()
            plus[idx] += h
            minus[idx] -= h
            t_sel = None if target is None else target[sel]
            f_plus = entry.exact(plus[sel], t_sel, **extra, **params)
            f_minus = entry.exact(minus[sel], t_sel, **extra, **params)
            out[idx] = float(mp.fsum(mp.mpf(float(w)) * (a - b) for w, a, b in zip(weights, f_plus, f_minus)) / (2 * h))
    return out


def _smooth_case(name, case_id):
    """The entry and case, or a skip: no mpmath exact, or a kink at an element (ties at the row
    max, x at a threshold, a clamp boundary: the subgradient convention is tested against the
    frameworks)."""
    entry, case = get_case(name, case_id)
    if not entry.has_exact:
        pytest.skip("the entry provides no mpmath exact")
    if not case.smooth:
        pytest.skip(f"a kink at an element ({case.note or case.id}); convention tested in the parity tests")
    return entry, case


@pytest.mark.parametrize("name,case_id", CASES)
def test_reference_gradient_matches_finite_differences(name, case_id):
    entry, case = _smooth_case(name, case_id)
    analytic, cot, extra, batch = _analytic_vjp(entry, case)
    found = _numeric_vjp(entry, case, cot, extra, batch, list(np.ndindex(case.prediction.shape)),
                         dps=MP_DPS, step_exp=FD_STEP_EXP)
    numeric = np.zeros(case.prediction.shape)
    for idx, value in found.items():
        numeric[idx] = value
    result = entry.tolerances.exact_grad.compare(analytic, numeric)
    assert result.ok, result.detail


#: below this size a gradient element of the 80-digit differences (step 1e-40: rounding ~1e-40 times
#: the loss) is not resolved to 1e-12 relative, and is recomputed at DEEP_DPS digits
RESOLVED = 1e-24
#: 640 digits, steps 1e-150 and 1e-170: rounding ~1e-470 and the O(h^2) truncation far below the
#: smallest normal float64 (2.2e-308); the difference of the two steps bounds what the step itself
#: adds (an O(h) term where the second derivative jumps, e.g. at an exact fit)
DEEP_DPS, DEEP_STEPS = 640, (-150, -170)
SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)


@pytest.mark.project
@pytest.mark.parametrize("name,case_id", case_params(kinds=("extreme", "edge")))
def test_reference_gradient_is_relatively_accurate_at_the_extremes(name, case_id):
    """Every element of the reference gradient to ``exact_grad.rtol`` *relative* to its own size,
    however far below its array's scale (confident rows of the CE family, saturated logits, near-
    perfect masks), down to the smallest normal float64 (below it float64 cannot hold the answer
    relatively). The truth is the mpmath loss's central difference at a precision that resolves
    the element. ``exact_grad``'s absolute part (``atol * scale``) lets a 1e-14 element be anything
    below 1e-13; here it must be right to 1e-9 of itself. (Values are already compared relatively
    on every case: ``exact_value`` has ``atol`` 1e-300.) Every extreme and edge case of the catalog
    passes; a smooth case that could not would say why in its ``note`` and be skipped here."""
    entry, case = _smooth_case(name, case_id)
    analytic, cot, extra, batch = _analytic_vjp(entry, case)
    indices = list(np.ndindex(case.prediction.shape))
    numeric = _numeric_vjp(entry, case, cot, extra, batch, indices, dps=MP_DPS, step_exp=FD_STEP_EXP)
    step_error = dict.fromkeys(indices, 0.0)
    small = [i for i in indices if abs(numeric[i]) < RESOLVED]
    if small:
        first, second = (_numeric_vjp(entry, case, cot, extra, batch, small, dps=DEEP_DPS, step_exp=e)
                         for e in DEEP_STEPS)
        for i in small:
            numeric[i], step_error[i] = second[i], abs(first[i] - second[i])
    rtol = entry.tolerances.exact_grad.rtol
    bad = [(i, float(analytic[i]), numeric[i]) for i in indices
           if abs(analytic[i] - numeric[i]) > rtol * abs(numeric[i]) + step_error[i] + SMALLEST_NORMAL]
    assert not bad, (f"{len(bad)} of {len(indices)} elements off by more than {rtol} of their size; "
                     f"first (index, reference, mpmath): {bad[:3]}")


@pytest.mark.parametrize("name", selection.names())
def test_invalid_cases_are_rejected_by_the_spec(name):
    entry = spec.get(name)
    cases = entry.all_invalid_cases()
    assert cases, "every entry declares invalid inputs"
    for case in cases:
        message = expected_message(entry, case)
        assert message.startswith(f"{name}: "), message


@pytest.mark.parametrize("name", selection.names())
def test_entry_is_complete(name):
    entry = spec.get(name)
    assert entry.formula and entry.grad_convention and entry.stability and entry.summary
    kinds = {c.kind for c in entry.cases()}
    assert {"typical", "extreme", "edge"} <= kinds
    ids = [c.id for c in entry.cases()]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert entry.torch_class and entry.keras_class


def test_reduction_contract():
    per_sample = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([0.0, 1.0, 2.0, 0.5])
    assert spec.reduce(per_sample, w, "sum") == pytest.approx(10.0)
    assert spec.reduce(per_sample, w, "mean") == pytest.approx(10.0 / 4)  # Σ w ℓ / N, not / Σ w
    np.testing.assert_allclose(spec.reduce(per_sample, w, "none"), per_sample * w)
    np.testing.assert_allclose(spec.per_sample_cotangent(4, w, "mean"), w / 4)


@pytest.mark.project
def test_ctc_reference_posteriors_keep_their_digits_where_the_gradient_cancels():
    """Found by the property test: logits ±1e4 beside 88 / 89 put the log-domain sums near -2e4, and at
    (t = 2, c = 7) the gradient softmax - G cancels from 0.73 to 1.4e-7. The reference's posteriors come
    from reverse mode through the recursion (neighbouring forward variables only): the element within
    1e-8 of itself against mpmath (``α + β - lp + nll``, sums of size 2e4, left it 7.6e-6 off)."""
    from spec.sequence import _ctc_exact

    x = np.zeros((1, 8, 11))
    for t, c, v in ((0, 6, -1e4), (1, 6, 89.0), (2, 0, 88.0), (2, 7, 89.0), (3, 7, 1e4), (4, 10, 1e4),
                    (5, 0, -14.135014533996582), (7, 0, 1e4)):
        x[0, t, c] = v
    labels = np.array([[6, 7, 7, 7]], np.int64)
    params = {"blank": 0, "zero_infinity": False, "divide_by_target_length": False}
    analytic = spec.get("ctc").reference_vjp(x, labels, np.ones(1), **params)
    with mp.workdps(60):
        for index in ((0, 2, 7), (0, 2, 0)):
            def loss(delta, index=index):
                xx = np.vectorize(mp.mpf, otypes=[object])(x)
                xx[index] += delta
                return _ctc_exact(xx, labels, **params)[0]
            h = mp.mpf("1e-25")
            numeric = float((loss(h) - loss(-h)) / (2 * h))
            assert abs(analytic[index] - numeric) <= 1e-8 * abs(numeric), (index, analytic[index], numeric)
