"""Registry-driven parametrization: every spec entry is tested by every generic test.

Nothing here imports torch or TensorFlow at collection time, so ``pytest -m golden`` runs on a
machine without TensorFlow (a CUDA box): the framework is imported inside the tests that need it.
"""
from __future__ import annotations

import functools

import pytest

import spec
from parity_tests import harness


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for the golden tests (cpu, cuda)")


@pytest.fixture(scope="session")
def device(request):
    dev = request.config.getoption("--device")
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("--device cuda given but no CUDA device is available")
    return dev


def _case_params():
    out = []
    for entry in spec.all_specs():
        for case in entry.cases():
            out.append(pytest.param(entry.name, case.id, id=f"{entry.name}-{case.id}"))
    return out


CASES = _case_params()
REDUCTIONS = [pytest.param(r, id=r) for r in spec.REDUCTIONS]
DTYPES = [pytest.param(d, id=d) for d in spec.DTYPES]


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
