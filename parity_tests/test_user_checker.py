"""The harness as a product: the checker on the example third-party package (passes), on a
deliberately broken copy (fails with a report naming the case and a reproduction command),
entry-point discovery, and golden vectors made for a user's module."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.project, pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "user_loss"


def _run(args, pythonpath, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pythonpath), str(ROOT)]), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_checker_passes_on_the_example(tmp_path):
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    proc = _run(["-m", "parity_tests.check", "--module", "user_loss.loss_specs", "--json", str(report),
                 "--junit-xml", str(junit)], EXAMPLE)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    results = json.loads(report.read_text())["results"]
    assert {r["loss"] for r in results if r["loss"] != "-"} == {"squared_margin"}
    assert sum(r["outcome"] == "passed" for r in results) > 100
    assert not [r for r in results if r["outcome"] == "failed"]
    assert "<testsuite" in junit.read_text()
    assert "squared_margin" in proc.stdout and " ok " in proc.stdout


def test_checker_fails_on_a_broken_copy_with_a_useful_report(tmp_path):
    broken = tmp_path / "pkg"
    shutil.copytree(EXAMPLE, broken)
    torch_file = broken / "user_loss" / "torch_losses.py"
    source = torch_file.read_text()
    assert "margin - (2.0 * y - 1.0) * x" in source
    torch_file.write_text(source.replace("margin - (2.0 * y - 1.0) * x", "margin - (2.0 * y - 1.0) * x * 1.001"))
    proc = _run(["-m", "parity_tests.check", "--module", "user_loss.loss_specs", "--dtype", "float64",
                 "--json", str(tmp_path / "r.json")], broken)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "squared_margin" in out and "FAIL" in out
    assert "torch vs reference" in out and "worst at" in out and "reference" in out
    assert "reproduce: python -m parity_tests.check --module user_loss.loss_specs --only squared_margin --case" in out
    failed = [r for r in json.loads((tmp_path / "r.json").read_text())["results"] if r["outcome"] == "failed"]
    assert failed and all("keras" not in r["test"] or "torch" in r["test"] for r in failed)
    # the reproduction command re-runs exactly the failing case and fails again
    line = next(ln for ln in out.splitlines() if "reproduce: python -m parity_tests.check" in ln)
    repro = line.split("reproduce: ", 1)[1].split()[1:]  # drop "python"
    again = _run(repro, broken)
    assert again.returncode == 1 and "passed" in again.stdout


def test_installed_packages_register_through_entry_points(tmp_path):
    dist = tmp_path / "user_loss-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: user-loss\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[lossparity.specs]\nuser_loss = user_loss.loss_specs\n")
    code = ("import spec, sys; assert 'squared_margin' in spec.names(), spec.names(); "
            "import torch_impl; loss = torch_impl.get_loss('squared_margin', margin=2.0); "
            "assert type(loss).__name__ == 'SquaredMarginLoss'; print('ok')")
    proc = _run(["-c", code], os.pathsep.join([str(tmp_path), str(EXAMPLE)]))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_golden_vectors_for_a_user_module(tmp_path):
    out = tmp_path / "golden"
    proc = _run(["-m", "lossparity.make_golden", "--module", "user_loss.loss_specs", "--out", str(out)], EXAMPLE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "squared_margin.npz").exists()
    check = _run(["-m", "lossparity.make_golden", "--module", "user_loss.loss_specs", "--out", str(out), "--check"], EXAMPLE)
    assert check.returncode == 0, check.stdout
    proc = _run(["-m", "parity_tests.check", "--module", "user_loss.loss_specs", "--golden-dir", str(out),
                 "--golden-only"], EXAMPLE)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed" in proc.stdout


def test_checker_on_our_catalog_reproduces_the_suite(tmp_path):
    """Our catalog is registered through the same public API: the checker run on it gives the
    same outcomes, test by test, as the plain pytest run of the generic files."""
    from parity_tests import plugin

    a, b = tmp_path / "checker.json", tmp_path / "pytest.json"
    proc = _run(["-m", "parity_tests.check", "--module", "spec.classification", "--only", "weighted_bce",
                 "--dtype", "float64", "--json", str(a)], ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    files = [str(plugin.SUITE_DIR / f) for f in plugin.GENERIC_FILES]
    proc = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", *files, "--lossparity-only", "weighted_bce",
                 "--lossparity-dtype", "float64", "--lossparity-json", str(b)], ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]

    def outcomes(path):
        return {(pathlib.Path(r["nodeid"].split("::")[0]).name, r["nodeid"].split("::", 1)[1], r["outcome"])
                for r in json.loads(path.read_text())["results"]}

    checker, suite = outcomes(a), outcomes(b)
    assert len(checker) > 200
    assert checker == suite
