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


# ---------------------------------------------------------------- background runs of the slow tests
# `python -m lossparity.report --quick --seeds 1` (minutes) feeds the slow scenario tests, and the
# quick Lightning CLI fit + test of every scenario config (``lightning_cli_runs``: one interpreter)
# feeds ``test_scenarios.py::test_lightning_cli_fit``. Each starts in the background as soon as
# collection shows a test that needs it, so it runs beside the other tests instead of after them;
# under pytest-xdist exactly one worker starts it (an O_EXCL marker file in the directory the
# workers share) and every worker waits for the same result.
def _shared_dir(config, name: str) -> Path:
    base = config._tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # popen-gwN/ → the run's directory, shared by the workers
        base = base.parent
    return base / name


def _quick_report_dir(config) -> Path:
    return _shared_dir(config, "quick_report")


def _distributed_dir(config) -> Path:
    return _shared_dir(config, "distributed_runs")


def _start_once(session, folder: Path, command) -> None:
    """Run ``command()`` (the argument list, made once the folder is ours) in the background unless
    another worker has; its output goes to ``folder/log.txt``, its exit code to ``folder/exit_code``."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        marker = os.open(folder / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # another worker started it
    os.close(marker)
    args = command()
    # the exit code lands in a file any worker can read (only the starting one could wait() on it)
    wrapper = (f"import subprocess, sys; rc = subprocess.call({args!r}, stdout=sys.stdout, stderr=sys.stdout); "
               f"open({str(folder / 'exit_code')!r}, 'w').write(str(rc))")
    with open(folder / "log.txt", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", wrapper], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    session.config._background_procs = [*getattr(session.config, "_background_procs", []), proc]


def _wait_for(folder: Path, what: str) -> tuple[str, str]:
    """``(exit code, log)`` of the background run in ``folder``, once it has finished."""
    exit_code = folder / "exit_code"
    deadline = time.monotonic() + 1800
    while not exit_code.is_file():
        assert (folder / "started").is_file(), f"{what} was not started at collection"
        assert time.monotonic() < deadline, f"{what} did not finish within 30 minutes"
        time.sleep(1.0)
    time.sleep(0.1)  # the exit code is written in one call; let it land
    log = (folder / "log.txt").read_text() if (folder / "log.txt").is_file() else ""
    return exit_code.read_text().strip(), log


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if any("quick_report" in getattr(item, "fixturenames", ()) for item in session.items):
        folder = _quick_report_dir(session.config)
        _start_once(session, folder, lambda: [sys.executable, "-m", "lossparity.report", "--out", str(folder / "report"),
                                              "--quick", "--seeds", "1"])
    names = sorted({item.callspec.params["name"] for item in session.items
                    if "lightning_cli_fits" in getattr(item, "fixturenames", ())
                    and "name" in getattr(getattr(item, "callspec", None), "params", {})})
    if names:
        from parity_tests import lightning_cli_runs

        folder = _shared_dir(session.config, "lightning_cli_fits")
        _start_once(session, folder, lambda: lightning_cli_runs.background_command(names, folder))
    from parity_tests import distributed_runs

    runs = [name for name in distributed_runs.RUNS if any(name in getattr(item, "fixturenames", ()) and not (
        selection.ACTIVE and item.get_closest_marker("project")) for item in session.items)]
    if runs:
        folder = _distributed_dir(session.config)
        _start_once(session, folder, lambda: distributed_runs.background_command(runs, folder))


def pytest_sessionfinish(session, exitstatus):
    for proc in getattr(session.config, "_background_procs", []):
        if proc.poll() is not None:
            continue
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
    code, log = _wait_for(folder, "the quick report")
    assert code == "0", log[-6000:]
    return folder / "report"


def distributed_results(config, name: str) -> dict:
    """What the data-parallel run ``name`` of :mod:`parity_tests.distributed_runs` returned (started
    at collection, in the background, once per session); waits for it."""
    import numpy as np

    folder = _distributed_dir(config)
    run = folder / name
    deadline = time.monotonic() + 1800
    while not (run / "exit_code").is_file():  # written by the runner before it goes on to the next run
        assert (folder / "started").is_file(), f"the data-parallel run {name} was not started at collection"
        if (folder / "exit_code").is_file():  # the runner itself ended without running it
            pytest.fail(f"the data-parallel runs ended before {name}:\n{(folder / 'log.txt').read_text()[-6000:]}")
        assert time.monotonic() < deadline, f"the data-parallel run {name} did not finish within 30 minutes"
        time.sleep(1.0)
    error = run / "error.txt"
    assert (run / "exit_code").read_text() == "0", error.read_text()[-8000:] if error.is_file() else "no error.txt"
    return np.load(run / "results.npy", allow_pickle=True).item()


@pytest.fixture(scope="session")
def lightning_cli_fits(pytestconfig):
    """Per scenario (of the collected ``test_lightning_cli_fit`` cases): ``{"out": its --out folder,
    "fit" / "test": (outcome: None or the traceback, output, files written outside --out)}`` of
    :func:`parity_tests.lightning_cli_runs.scenario_commands`, run one after the other in one
    interpreter, started at collection; waits for them."""
    import json

    from parity_tests import lightning_cli_runs

    folder = _shared_dir(pytestconfig, "lightning_cli_fits")
    code, log = _wait_for(folder, "the quick Lightning CLI runs")
    assert code == "0" and (folder / "outcomes.json").is_file(), log[-6000:]
    names = json.loads((folder / "commands.json").read_text())["names"]
    recorded = json.loads((folder / "outcomes.json").read_text())
    outputs = lightning_cli_runs.split_output(log)
    runs = {}
    for k, name in enumerate(names):
        runs[name] = {"out": folder / name}
        for j, stage in enumerate(("fit", "test")):
            n = 2 * k + j
            runs[name][stage] = (recorded["outcomes"][n], outputs[n], recorded["stray"][n])
    return runs


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
def _cases_by_id(name: str):
    """The entry and its cases by id, generated once per entry (``entry.cases()`` builds every case
    of the entry, and the modules ask for each of them)."""
    entry = spec.get(name)
    return entry, {case.id: case for case in entry.cases()}


def get_case(name: str, case_id: str):
    entry, cases = _cases_by_id(name)
    return entry, cases[case_id]


@functools.lru_cache(maxsize=None)
def reference_result(name, case_id, dtype, reduction):
    entry, case = get_case(name, case_id)
    return harness.reference(entry, case, dtype, reduction)


@pytest.fixture
def lightning_env():
    """``(torch, lightning.pytorch, torch_impl.lightning)`` on one intra-op thread (skipped without
    them); the thread count and the deterministic-algorithms flag (``Trainer(deterministic=True)``
    sets it) are restored for the tests that follow."""
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning.pytorch")
    from torch_impl import lightning as tl

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield torch, L, tl
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
