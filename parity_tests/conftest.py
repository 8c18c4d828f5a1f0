"""Registry-driven parametrization: every spec entry is tested by every generic test.

Parameter lists are built when a test module is imported (collection time, after the plugin in
``parity_tests/plugin.py`` has applied a user selection). Nothing here imports torch or
TensorFlow, so ``pytest -m golden`` runs on a machine without TensorFlow.
"""
from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, settings

import spec
from parity_tests import harness, selection


# hypothesis profiles (test_properties.py): "ci" is the default, 200 examples per loss;
# pick another with --hypothesis-profile=deep (10,000) or HYPOTHESIS_PROFILE=dev (25)
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=_QUIET)
settings.register_profile("deep", max_examples=10_000, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def device(request):
    dev = request.config.getoption("--device")
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("--device cuda given but no CUDA device is available")
    return dev


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadgroup`` (``make test``), every test that reads the quick
    report runs on one worker, so the session fixture below runs once, not once per worker."""
    group = pytest.mark.xdist_group("quick_report")
    for item in items:
        if "quick_report" in getattr(item, "fixturenames", ()):
            item.add_marker(group)


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory):
    """``python -m scripts.report --quick --seeds 1`` once per session (per xdist worker): one
    quick ``scripts.run`` per scenario and framework (subprocesses), then the report. The
    scenario modules read their quick runs from ``<out>/runs/<scenario>/<framework>/seed0``."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path_factory.mktemp("report")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "scripts.report", "--out", str(out), "--quick", "--seeds", "1"],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def case_params(kinds=("typical", "extreme", "edge")):
    """``(name, case_id)`` for every selected entry and case."""
    out = []
    for entry in selection.entries():
        for case in entry.cases():
            if case.kind in kinds and selection.case_selected(case.id):
                out.append(pytest.param(entry.name, case.id, id=f"{entry.name}-{case.id}"))
    return out


def name_params(predicate=lambda entry: True):
    return [e.name for e in selection.entries() if predicate(e)]


def dtype_params():
    return [pytest.param(d, id=d) for d in selection.dtypes()]


REDUCTIONS = [pytest.param(r, id=r) for r in spec.REDUCTIONS]


def __getattr__(attr):  # CASES / DTYPES evaluated on access (after the selection is applied)
    if attr == "CASES":
        return case_params()
    if attr == "DTYPES":
        return dtype_params()
    raise AttributeError(attr)


@functools.lru_cache(maxsize=None)
def get_case(name: str, case_id: str):
    entry = spec.get(name)
    for case in entry.cases():
        if case.id == case_id:
            return entry, case
    raise KeyError(case_id)


@functools.lru_cache(maxsize=None)
def reference_result(name, case_id, dtype, reduction):
    entry, case = get_case(name, case_id)
    return harness.reference(entry, case, dtype, reduction)
