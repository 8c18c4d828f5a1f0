"""torch against the committed golden vectors (``pytest -m golden [--device cuda]``); needs
neither TensorFlow nor the case generators. Plus: the files match the registry, and the golden
suite really runs with TensorFlow import blocked."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import spec
from parity_tests import conditioning, golden, harness, selection


def _golden_params():
    out = []
    selected = set(selection.names())
    for path in sorted(golden.GOLDEN_DIR.glob("*.npz")):
        if path.stem in selected or not selection.ACTIVE:
            out.append(pytest.param(path, id=path.stem))
    return out


@pytest.mark.golden
@pytest.mark.parametrize("path", _golden_params())
def test_torch_matches_golden(path, device):
    failures = []
    count = 0
    for entry, case, expected in golden.load(path):
        for (dtype, reduction), result in expected.items():
            actual = harness.run_torch(entry, case, dtype, reduction, device=device)
            failures += harness.compare(actual, result, entry, dtype, what=f"{case.id} [{reduction}] torch/{device}")
            count += 1
    assert count > 0
    assert not failures, "\n".join(failures[:20])


@pytest.fixture(scope="module")
def fresh_vectors():
    """Per loss, ``golden.build`` of the registry and its spread under perturbed elementary
    functions: what ``golden.check`` computes for each file (deterministic), computed once for the
    tests of this module that check every file."""
    out = {}
    for entry in spec.all_specs():
        arrays = golden.build(entry)
        out[entry.name] = arrays, conditioning.spread(lambda: golden.build(entry), baseline=arrays)
    return out


@pytest.mark.golden
@pytest.mark.project
def test_golden_files_match_the_registry(fresh_vectors):
    problems = golden.check(spec.all_specs(), computed=fresh_vectors)
    stale = sorted({p.stem for p in golden.GOLDEN_DIR.glob("*.npz")} - set(spec.names()))
    assert not problems and not stale, "\n".join(problems + stale) + "\nrun: python -m lossparity.make_golden"


BLOCK_TF = (
    "import sys\n"
    "for m in ('tensorflow', 'keras', 'tf_keras'):\n"
    "    sys.modules[m] = None  # any import of TensorFlow/Keras now raises ImportError\n"
    "import pytest\n"
    "rc = pytest.main(['-q', '-m', 'golden and not project', '-p', 'no:cacheprovider', 'parity_tests'])\n"
    "assert 'tensorflow' not in sys.modules or sys.modules['tensorflow'] is None\n"
    "sys.exit(int(rc))\n"
)


@pytest.mark.project
def test_golden_suite_runs_with_tensorflow_blocked():
    """torch against the golden vectors on a machine without TensorFlow (every import of it fails): the
    ``golden`` tests of the torch side; the registry-against-files check is NumPy alone and runs in
    the suite itself."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", BLOCK_TF], cwd=root, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout and "error" not in proc.stdout.lower().split("passed")[-1]


# ---------------------------------------------------------------- the check survives another machine
OTHER_MACHINES = (20261205, 7, 31337)


@pytest.mark.project
@pytest.mark.parametrize("seed", OTHER_MACHINES)
def test_golden_check_passes_when_elementary_functions_round_differently(seed):
    """Another CPU simulated: every exp/log/log1p/expm1/tanh/logaddexp/power result moved by up to
    4 ulps (NumPy's SIMD and libm paths differ by 1-3). The check passes, while the last-bit
    comparison it replaces (rtol 1e-13, atol 0) fails on the same vectors. What the check computes
    on that machine (each file's vectors and their spread there) is computed once and given to it."""
    entries = spec.all_specs()
    with conditioning.perturbed_elementary_functions(ulps=conditioning.ULPS, seed=seed):
        moved = {entry.name: golden.build(entry) for entry in entries}
        computed = {entry.name: (moved[entry.name], conditioning.spread(lambda: golden.build(entry),
                                                                          baseline=moved[entry.name]))
                    for entry in entries}
    problems = golden.check(entries, computed=computed)
    assert not problems, "\n".join(problems[:20])
    last_bit = []
    for name, arrays in moved.items():
        with np.load(golden.GOLDEN_DIR / f"{name}.npz") as stored:
            last_bit += [f"{name}: {key}" for key, value in arrays.items()
                         if value.dtype.kind == "f" and not np.allclose(stored[key], value, rtol=1e-13, atol=0.0)]
    assert last_bit, "the perturbation moved no stored number past a last-bit comparison: it proves nothing"


def _copy_golden(tmp_path):
    for path in golden.GOLDEN_DIR.glob("*.npz"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _rewrite(path, key, index, factor):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = arrays[key].copy()
    arrays[key][index] *= factor
    np.savez_compressed(path, **arrays)


def _smallest_checkable(arrays, spread):
    """``(key, index)`` of the smallest normal nonzero gradient element (float64, extreme/edge cases)
    whose machine-to-machine allowance is below 1e-10 of its size: the hardest element to catch."""
    best = None
    for key, value in arrays.items():
        if "::float64::" not in key or not key.endswith("::grad") or "typical" in key:
            continue
        size = np.abs(value)
        ok = conditioning.allowance(value, spread[key]) < 1e-10 * size
        for index in zip(*np.nonzero(ok)):
            if best is None or size[index] < best[0]:
                best = (size[index], key, index)
    return best


@pytest.mark.project
def test_golden_check_catches_a_stored_gradient_moved_by_1e_9(tmp_path, fresh_vectors):
    """In every file, the smallest checkable gradient element of the extreme and edge cases (down to
    1e-300 and below), and the confident-correct CE element of the report that made the check
    portable, moved by 1e-9 of itself: each file reports that key. (The fresh vectors and their
    spread, that pick the element, are the check's own: it is given them, ``fresh_vectors``.)"""
    out = _copy_golden(tmp_path)
    moved = {}
    for entry in spec.all_specs():
        picked = _smallest_checkable(*fresh_vectors[entry.name])
        assert picked is not None, entry.name
        size, key, index = picked
        moved[entry.name] = key
        _rewrite(out / f"{entry.name}.npz", key, index, 1 + 1e-9)
    confident = "argmax-3-edge-confident-correct::float64::mean::grad"
    _rewrite(out / "cost_sensitive_cce.npz", confident, (0, 1), 1 + 1e-9)
    problems = golden.check(spec.all_specs(), out, computed=fresh_vectors)
    for name, key in moved.items():
        assert any(p.startswith(f"{name}.npz: {key} ") for p in problems), (name, key, problems)
    assert any(p.startswith(f"cost_sensitive_cce.npz: {confident} ") for p in problems), problems
    assert len(problems) == len(moved) + 1, problems


@pytest.mark.project
def test_golden_check_catches_a_changed_formula(monkeypatch):
    """Two changes of the math: the logit losses' ``log σ(x)`` written as ``-log1p(exp(-x))`` (equal on
    paper, inf for x << 0), and one loss's gradient scaled by 1 + 1e-9 (every nonzero gradient is
    reported). A change that only loses accuracy (``q_k - 1`` for a confident row instead of
    ``-Σ_{c≠k} q_c``) widens its own allowance here: that is caught by
    ``test_reference_gradient_is_relatively_accurate_at_the_extremes`` against mpmath."""
    import spec.classification as classification

    with np.errstate(all="ignore"):
        monkeypatch.setattr(classification, "log_sigmoid", lambda x: -np.log1p(np.exp(-np.asarray(x, np.float64))))
        problems = golden.check([spec.get("weighted_bce")])
    assert any("extreme-grid" in p for p in problems), problems
    monkeypatch.undo()

    entry = spec.get("tversky")
    scaled = dataclasses.replace(entry, reference_vjp=lambda *a, **k: entry.reference_vjp(*a, **k) * (1 + 1e-9))
    fresh = golden.build(entry)
    nonzero = {key for key, value in fresh.items() if key.endswith("::grad") and np.any(value)}
    flagged = {p.split(": ")[1].split(" ")[0] for p in golden.check([scaled])}
    assert nonzero and flagged == nonzero, sorted(nonzero ^ flagged)[:5]
