"""Registry-driven parametrization: every spec entry is tested by every generic test.

Parameter lists are built when a test module is imported (collection time, after the plugin in
``parity_tests/plugin.py`` has applied a user selection). Nothing here imports torch or
TensorFlow, so ``pytest -m golden`` runs on a machine without TensorFlow.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import spec
from parity_tests import harness, selection

ROOT = Path(__file__).resolve().parents[1]


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


# ---------------------------------------------------------------- the quick scenario report
# `python -m lossparity.report --quick --seeds 1` (minutes) feeds the slow scenario tests. It starts
# in the background as soon as collection shows a test that needs it, so it runs beside the other
# tests instead of after them; under pytest-xdist exactly one worker starts it (an O_EXCL marker
# file in the directory the workers share) and every worker waits for the same result.
def _quick_report_dir(config) -> Path:
    base = config._tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # popen-gwN/ → the run's directory, shared by the workers
        base = base.parent
    return base / "quick_report"


def pytest_collection_finish(session):
    if session.config.option.collectonly or not any("quick_report" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    folder = _quick_report_dir(session.config)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        marker = os.open(folder / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # another worker started it
    os.close(marker)
    report = [sys.executable, "-m", "lossparity.report", "--out", str(folder / "report"), "--quick", "--seeds", "1"]
    # the exit code lands in a file any worker can read (only the starting one could wait() on it)
    wrapper = (f"import subprocess, sys; rc = subprocess.call({report!r}, stdout=sys.stdout, stderr=sys.stdout); "
               f"open({str(folder / 'exit_code')!r}, 'w').write(str(rc))")
    with open(folder / "log.txt", "w") as log:
        session.config._quick_report_proc = subprocess.Popen(
            [sys.executable, "-c", wrapper], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def pytest_sessionfinish(session, exitstatus):
    proc = getattr(session.config, "_quick_report_proc", None)
    if proc is None or proc.poll() is not None:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        proc.terminate()
    else:  # other workers may still be waiting for it
        proc.wait()


@pytest.fixture(scope="session")
def quick_report(pytestconfig):
    """``python -m lossparity.report --quick --seeds 1`` (one quick ``lossparity.run`` per scenario and
    framework, then the report), started at collection; waits for it. The scenario modules read
    their quick runs from ``<out>/runs/<scenario>/<framework>/seed0``."""
    folder = _quick_report_dir(pytestconfig)
    exit_code = folder / "exit_code"
    deadline = time.monotonic() + 1800
    while not exit_code.is_file():
        assert (folder / "started").is_file(), "the quick report was not started at collection"
        assert time.monotonic() < deadline, "the quick report did not finish within 30 minutes"
        time.sleep(1.0)
    time.sleep(0.1)  # the exit code is written in one call; let it land
    log = (folder / "log.txt").read_text() if (folder / "log.txt").is_file() else ""
    assert exit_code.read_text().strip() == "0", log[-6000:]
    return folder / "report"


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
