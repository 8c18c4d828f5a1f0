"""pytest plugin (auto-loaded through the ``pytest11`` entry point once lossparity is installed).

    pytest --lossparity-module my_pkg.loss_specs [--lossparity-only NAME] [--lossparity-json F]

imports the module (which registers entries) and adds the generic parity suite, restricted to
its entries, to the session — so a team folds the parity checks into its existing test suite.
Also owns ``--device`` (torch device of the golden tests) and prints a per-loss summary table.
"""
from __future__ import annotations

import json
import pathlib
from collections import defaultdict

import pytest

from parity_tests import selection

SUITE_DIR = pathlib.Path(__file__).parent
#: the generic, registry-driven test files (what the checker runs on a user's entries)
GENERIC_FILES = ("test_reference.py", "test_parity.py", "test_errors.py", "test_identities.py",
                 "test_serialization.py", "test_param_grads.py", "test_golden.py")


def pytest_addoption(parser):
    group = parser.getgroup("lossparity", "loss parity suite")
    group.addoption("--device", default="cpu", help="torch device for the golden tests (cpu, cuda)")
    group.addoption("--lossparity-module", action="append", default=[], metavar="MODULE",
                    help="import MODULE (it registers entries) and run the parity suite on them")
    group.addoption("--lossparity-only", action="append", default=[], metavar="NAME")
    group.addoption("--lossparity-case", action="append", default=[], metavar="CASE_ID")
    group.addoption("--lossparity-dtype", choices=("float32", "float64"), default=None)
    group.addoption("--lossparity-json", default=None, metavar="FILE", help="write a JSON report")
    group.addoption("--lossparity-golden-dir", default=None, metavar="DIR",
                    help="golden vectors to check (default: parity_tests/golden)")


def pytest_configure(config):
    for marker in ("project: checks of this repository itself (skipped for user selections)",
                   "golden: torch checked against golden vectors (runs without TensorFlow)",
                   "slow: long-running tests", "ddp: multi-process data-parallel tests",
                   "cuda: needs a CUDA device"):
        config.addinivalue_line("markers", marker)
    modules = config.getoption("lossparity_module")
    names = selection.configure(modules, config.getoption("lossparity_only"),
                                config.getoption("lossparity_case"), config.getoption("lossparity_dtype"))
    if (modules or config.getoption("lossparity_only")) and not names:
        raise pytest.UsageError(f"no loss entries selected (modules {modules}); does the module call "
                                "spec.register / spec.define?")
    golden_dir = config.getoption("lossparity_golden_dir")
    if golden_dir:
        from parity_tests import golden

        golden.GOLDEN_DIR = pathlib.Path(golden_dir)
    if modules:
        suite = [str(SUITE_DIR / f) for f in GENERIC_FILES]
        if not any(pathlib.Path(a).resolve() == SUITE_DIR.resolve() for a in config.args):
            config.args[:] = [a for a in config.args if a] + [s for s in suite if s not in config.args]
    config._lossparity_results = []


def pytest_collection_modifyitems(config, items):
    if not selection.ACTIVE:
        return
    skip = pytest.mark.skip(reason="checks this repository itself, not the selected entries")
    for item in items:
        if item.get_closest_marker("project"):
            item.add_marker(skip)


def _loss_of(item) -> str:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return "-"
    for key in ("name", "path"):
        if key in callspec.params:
            value = callspec.params[key]
            value = getattr(value, "stem", value)
            return value if isinstance(value, str) else "-"
    return "-"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        message = ""
        if report.failed:
            message = str(report.longrepr)[-3000:]
        elif report.skipped and isinstance(report.longrepr, tuple):
            message = report.longrepr[2]
        item.config._lossparity_results.append({
            "nodeid": item.nodeid, "loss": _loss_of(item), "test": item.originalname or item.name,
            "outcome": report.outcome, "message": message})
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = getattr(config, "_lossparity_results", [])
    if not results:
        return
    table = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for r in results:
        idx = {"passed": 0, "failed": 1, "skipped": 2}[r["outcome"]]
        table[r["loss"]][r["test"]][idx] += 1
    if selection.ACTIVE:
        tw = terminalreporter
        tw.section("lossparity summary (passed/failed/skipped)")
        for loss in sorted(table):
            if loss == "-":
                continue
            cells = ", ".join(f"{test} {p}/{f}/{s}" for test, (p, f, s) in sorted(table[loss].items()))
            status = "FAIL" if any(f for p, f, s in table[loss].values()) else "ok"
            tw.write_line(f"{loss:28s} {status:5s} {cells}")
    path = config.getoption("lossparity_json")
    if path:
        pathlib.Path(path).write_text(json.dumps({"exitstatus": int(exitstatus), "results": results}, indent=1))
