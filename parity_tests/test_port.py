"""The port check (``python -m parity_tests.port`` / ``check_port``) on the shipped example
(examples/port_example): it passes on the correct torch port, fails on the two broken ones naming
a case and a reproduce command, catches a port that computes in float32, writes JUnit XML and JSON
reports that reflect the outcome, honours --case / --dtype, exits 2 on a usage error, compares a
NumPy reference, and generates inputs in the declared domains. Most checks call the Python
function (or ``main``) in-process; ``python -m parity_tests.port`` runs in two subprocesses: the
correct port (started first, in the background) and a usage error (no framework loaded)."""
from __future__ import annotations

import json
import os
import pathlib
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from parity_tests import port

pytestmark = pytest.mark.project

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "port_example"
KERAS = "port_example.keras_loss:soft_count_mse"
TORCH = "port_example.torch_port:loss"
SWAPPED = "port_example.broken_ports:swapped_arguments"
DROPPED = "port_example.broken_ports:missing_penalty"
DOMAINS = dict(prediction="real", target="real")
CLI_DOMAINS = ["--prediction", "real", "--target", "real"]
EXAMPLE_CASES = ["typical", "extreme-real-huge", "extreme-real-tiny", "edge-batch1", "edge-all-positive",
                 "edge-all-negative", "edge-ties", "edge-zeros"]


def _env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE), str(ROOT)]))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tool keeps TensorFlow's start-up lines off stderr itself
    return env


class _CliRun:
    """``python -m parity_tests.port`` on the correct port with --json and --junit-xml."""

    def __init__(self, out: pathlib.Path):
        self.out, self.proc, self.result = out, None, None

    def start(self):
        if self.proc is None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "parity_tests.port", "--keras", KERAS, "--torch", TORCH, *CLI_DOMAINS,
                 "--json", str(self.out / "ok.json"), "--junit-xml", str(self.out / "ok.xml")],
                cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __call__(self):
        if self.result is None:
            self.start()
            stdout, stderr = self.proc.communicate(timeout=600)
            self.result = (self.proc.returncode, stdout, stderr, self.out / "ok.json", self.out / "ok.xml")
        return self.result

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run = _CliRun(tmp_path_factory.mktemp("port_cli"))
    yield run
    run.stop()


@pytest.fixture(scope="module", autouse=True)
def example_on_path(request, cli_run):
    """The example package importable in this process (the CLI run gets it through PYTHONPATH).
    In a single-process run the CLI subprocess starts here, in the background, so it overlaps the
    in-process tests (under pytest-xdist it starts in the worker running its test)."""
    if not os.environ.get("PYTEST_XDIST_WORKER") and any(
            item.name == "test_cli_passes_on_the_correct_port_and_writes_reports" for item in request.session.items):
        cli_run.start()
    sys.path.insert(0, str(EXAMPLE))
    yield
    sys.path.remove(str(EXAMPLE))


# ------------------------------------------------------------------------- helper ports
def torch_float32_port(input, target):
    """A port that silently computes in float32 (and returns float32)."""
    from port_example.keras_loss import FACTOR, TEMPERATURE, THRESHOLD
    import torch

    x, y = input.float(), target.float()
    return torch.square(y - x).mean(dim=-1) + FACTOR * torch.sigmoid((x - THRESHOLD) / TEMPERATURE).mean(dim=-1)


def torch_float32_port_cast_back(input, target):
    """The same, cast back to the input's dtype: only the numbers give it away."""
    return torch_float32_port(input, target).to(input.dtype)


def numpy_reference(y_true, y_pred):
    from port_example.keras_loss import FACTOR, TEMPERATURE, THRESHOLD

    return (np.mean((y_true - y_pred) ** 2, axis=-1)
            + FACTOR * np.mean(1.0 / (1.0 + np.exp(-(y_pred - THRESHOLD) / TEMPERATURE)), axis=-1))


def numpy_reference_without_penalty(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2, axis=-1)


# ------------------------------------------------------------------------ the function
def test_check_port_passes_on_the_correct_port():
    from port_example import keras_loss, torch_port

    report = port.check_port(keras_loss.soft_count_mse, torch_port.loss, **DOMAINS)
    assert report.ok, report.format()
    assert [(r.case, r.dtype) for r in report.results] == [(c, d) for c in EXAMPLE_CASES for d in port.DTYPES]
    assert all(r.value.ok and r.grad.ok and not r.messages for r in report.results)
    assert report.keras == KERAS and report.torch == TORCH  # import paths derived for the reproduce lines
    text = report.format()
    assert "16 of 16 case × dtype checks agree" in text and "MISMATCH" not in text


@pytest.mark.parametrize("broken", [SWAPPED, DROPPED])
def test_check_port_fails_on_each_broken_port(broken):
    report = port.check_port(KERAS, broken, **DOMAINS)
    assert not report.ok
    failed = {(r.case, r.dtype) for r in report.mismatches}
    assert {("typical", "float32"), ("typical", "float64")} <= failed
    text = report.format()
    assert "MISMATCH typical float64" in text and "worst at" in text
    assert (f"reproduce: python -m parity_tests.port --keras {KERAS} --torch {broken} --prediction real "
            "--target real --case typical --dtype float64") in text
    typical = report.result("typical", "float64")
    assert not typical.value.ok and not typical.grad.ok
    assert typical.value.worst is not None and typical.value.actual_at_worst != typical.value.expected_at_worst


@pytest.mark.parametrize("fn", [torch_float32_port, torch_float32_port_cast_back])
def test_a_port_computing_in_float32_fails_the_float64_comparison(fn):
    report = port.check_port(KERAS, fn, **DOMAINS)
    assert not report.ok
    assert all(r.ok for r in report.results if r.dtype == "float32"), report.format()
    assert {r.case for r in report.mismatches} >= {"typical"}
    assert all(r.dtype == "float64" for r in report.mismatches)
    typical = report.result("typical", "float64")
    assert 1e-10 < typical.value.max_rel < 1e-5
    if fn is torch_float32_port:
        assert any("torch returned float32 for float64 inputs" in m for m in typical.messages)


def test_case_and_dtype_filters():
    report = port.check_port(KERAS, SWAPPED, **DOMAINS, cases=["edge-ties", "typical"], dtypes=["float64"])
    assert [(r.case, r.dtype) for r in report.results] == [("typical", "float64"), ("edge-ties", "float64")]
    # a case's inputs depend only on the seed and its id, not on which other cases run
    alone = port.check_port(KERAS, SWAPPED, **DOMAINS, cases="typical", dtypes="float64").results[0]
    assert alone.value == report.results[0].value and alone.grad == report.results[0].grad


def test_scalar_against_per_sample_is_a_clear_shape_mismatch():
    def torch_mean(input, target):  # the usual torch habit: reduce to a scalar
        from port_example import torch_port

        return torch_port.loss(input, target).mean()

    report = port.check_port(KERAS, torch_mean, **DOMAINS, cases=["typical"])
    assert not report.ok
    message = report.result("typical", "float64").messages[0]
    assert "output shapes differ: Keras returns per-sample values (shape (8,)), torch returns a scalar" in message
    assert "only the reduction differs" in message


def test_a_side_that_raises_is_a_mismatch():
    def torch_raises(input, target):
        raise RuntimeError("shape mismatch in my port")

    report = port.check_port(KERAS, torch_raises, **DOMAINS, cases=["typical"], dtypes=["float32"])
    assert not report.ok
    assert "torch raised RuntimeError: shape mismatch in my port" in report.results[0].messages[0]


def test_numpy_reference_is_compared_with_both_sides():
    report = port.check_port(KERAS, TORCH, **DOMAINS, reference=numpy_reference)
    assert report.ok, report.format()
    assert all(set(r.reference) == {"keras", "torch"} and all(c.ok for c in r.reference.values())
               for r in report.results)
    assert "ref abs" in report.format()
    wrong = port.check_port(KERAS, TORCH, **DOMAINS, reference=numpy_reference_without_penalty,
                            cases=["typical"], dtypes=["float64"])
    assert not wrong.ok
    messages = wrong.results[0].messages
    assert any(m.startswith("Keras vs reference, value (float64)") for m in messages)
    assert any(m.startswith("torch vs reference, value (float64)") for m in messages)
    assert wrong.results[0].value.ok and wrong.results[0].grad.ok  # Keras and torch still agree


def test_classification_targets_with_builtin_losses():
    """The generators of the class and binary kinds, on Keras' built-in losses against torch's."""
    import keras
    import torch.nn.functional as F

    def keras_cce(y, p):
        return keras.losses.categorical_crossentropy(y, p, from_logits=True)

    def keras_sparse(y, p):
        return keras.losses.sparse_categorical_crossentropy(y, p, from_logits=True)

    def torch_ce(x, y):
        return F.cross_entropy(x, y, reduction="none")

    def keras_bce(y, p):
        return keras.losses.binary_crossentropy(y, p, from_logits=True)

    def torch_bce(x, y):
        return F.binary_cross_entropy_with_logits(x, y, reduction="none")  # (N, D): averaged per sample

    for keras_fn, torch_fn, target in ((keras_cce, torch_ce, "onehot:5"), (keras_sparse, torch_ce, "sparse:4"),
                                       (keras_bce, torch_bce, "binary")):
        report = port.check_port(keras_fn, torch_fn, prediction="logits", target=target)
        assert report.ok, report.format()
        assert {"extreme-logits-1e4", "extreme-logits-88", "edge-ties"} <= {r.case for r in report.results}


# -------------------------------------------------------------------- inputs, comparison
def test_generated_inputs_follow_the_declared_domains():
    cases = {c.id: c for c in port.make_cases("probabilities", "sparse:3", "4,6,3", seed=7)}
    typical = cases["typical"]
    assert typical.prediction.shape == (4, 6, 3) and typical.target.shape == (4, 6)
    assert typical.target.dtype == np.int64 and set(np.unique(typical.target)) <= {0, 1, 2}
    np.testing.assert_allclose(typical.prediction.sum(-1), 1.0)
    assert {0.0, 1.0} == set(np.unique(cases["extreme-probs-0-1"].prediction))
    assert cases["edge-batch1"].prediction.shape == (1, 6, 3)
    assert set(cases) == {"typical", "extreme-probs-0-1", "extreme-probs-1e-7", "edge-batch1", "edge-same-class",
                          "edge-ties"}

    binary = {c.id: c for c in port.make_cases("logits", "binary")}
    assert binary["typical"].prediction.shape == binary["typical"].target.shape == (8, 5)
    assert set(np.unique(binary["typical"].target)) == {0.0, 1.0}
    soft = binary["typical-soft"].target
    assert ((soft > 0) & (soft < 1)).all()
    assert set(np.abs(binary["extreme-logits-1e4"].prediction).ravel()) == {1e4}
    grid = binary["extreme-logits-88"]
    assert {(p > 0, t) for p, t in zip(grid.prediction.ravel(), grid.target.ravel())} == \
        {(True, 0.0), (False, 0.0), (True, 1.0), (False, 1.0)}
    assert (binary["edge-all-positive"].target == 1).all() and (binary["edge-all-negative"].target == 0).all()
    ties = binary["edge-ties"].prediction
    assert (ties == ties[:, :1]).all()
    onehot = port.make_cases("logits", "onehot:4")[0]
    assert onehot.prediction.shape == onehot.target.shape == (8, 4) and (onehot.target.sum(-1) == 1).all()
    a, b = port.make_cases("real", "real", seed=1)[0], port.make_cases("real", "real", seed=2)[0]
    assert not np.array_equal(a.prediction, b.prediction)


def test_comparison_rules_for_non_finite_values():
    inf, nan = np.inf, np.nan
    assert port.compare([1.0, inf, -inf], [1.0, inf, -inf], rtol=1e-10, atol=1e-12).ok
    for actual, expected in (([inf], [1.0]), ([1.0], [nan]), ([nan], [1.0]), ([-inf], [inf])):
        c = port.compare(actual, expected, rtol=1e-5, atol=1e-6)
        assert not c.ok and c.one_sided == 1 and c.max_abs == inf and c.worst == (0,)
    both = port.compare([nan, 2.0], [nan, 2.0], rtol=1e-10, atol=1e-12)
    assert both.ok and both.both_nan == 1
    # tolerance: rtol·|expected| + atol·max(1, max|expected|)
    assert port.compare([1000.0 + 1e-7], [1000.0], rtol=1e-10, atol=1e-12).ok
    assert not port.compare([1000.0 + 1e-6], [1000.0], rtol=1e-10, atol=1e-12).ok
    assert port.compare([1e-13], [0.0], rtol=1e-10, atol=1e-12).ok


def test_importing_the_module_loads_no_framework():
    code = ("import sys, parity_tests.port; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'mpmath') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# ------------------------------------------------------------------------------- CLI
def test_usage_errors_exit_2(capsys):
    proc = subprocess.run([sys.executable, "-m", "parity_tests.port", "--keras", KERAS, "--torch", TORCH,
                           "--prediction", "real", "--target", "onehot:x"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown target kind 'onehot:x'" in proc.stderr, proc.stderr
    assert port.main(["--keras", KERAS, "--torch", TORCH, *CLI_DOMAINS, "--case", "nope"]) == 2
    assert "unknown case id(s) nope" in capsys.readouterr().err
    assert port.main(["--keras", KERAS, "--torch", TORCH, "--prediction", "logits", "--target", "sparse:3",
                      "--shape", "8,4"]) == 2
    assert "the last axis must be the 3 classes" in capsys.readouterr().err
    assert port.main(["--keras", "port_example.no_such_module:fn", "--torch", TORCH, *CLI_DOMAINS]) == 2
    assert "cannot be imported" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        port.main(["--keras", KERAS, *CLI_DOMAINS])
    assert exc.value.code == 2


def test_cli_passes_on_the_correct_port_and_writes_reports(cli_run):
    rc, stdout, stderr, json_path, xml_path = cli_run()
    assert rc == 0, stdout[-3000:] + stderr[-3000:]
    assert "16 of 16 case × dtype checks agree" in stdout and "MISMATCH" not in stdout
    assert "oneDNN" not in stderr and "absl" not in stderr  # TensorFlow's start-up lines kept off stderr
    report = json.loads(json_path.read_text())
    assert report["ok"] is True and report["summary"] == {"checks": 16, "mismatches": 0}
    assert {r["case"] for r in report["results"]} == set(EXAMPLE_CASES)
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite.get("tests") == "16" and suite.get("failures") == "0"
    assert "typical[float64]" in {tc.get("name") for tc in suite.iter("testcase")}
    assert not list(suite.iter("failure"))


@pytest.mark.parametrize("broken", [SWAPPED, DROPPED])
def test_cli_fails_on_a_broken_port_and_the_reproduce_command_reruns_it(broken, tmp_path, capsys):
    """``main`` in-process (the subprocess above covers ``python -m``; this keeps the file fast)."""
    json_path, xml_path = tmp_path / "r.json", tmp_path / "r.xml"
    rc = port.main(["--keras", KERAS, "--torch", broken, *CLI_DOMAINS, "--json", str(json_path),
                    "--junit-xml", str(xml_path)])
    stdout = capsys.readouterr().out
    assert rc == 1, stdout[-3000:]
    assert "MISMATCH typical float64" in stdout and "worst at" in stdout
    report = json.loads(json_path.read_text())
    assert report["ok"] is False and report["summary"]["mismatches"] > 0
    failed = [r for r in report["results"] if r["outcome"] == "mismatch"]
    assert {"typical"} <= {r["case"] for r in failed} and all(r["messages"] and r["reproduce"] for r in failed)
    suite = ET.parse(xml_path).getroot().find("testsuite")
    failures = {tc.get("name"): tc.find("failure") for tc in suite.iter("testcase") if tc.find("failure") is not None}
    assert suite.get("failures") == str(len(failed)) == str(len(failures))
    assert "--case typical --dtype float64" in failures["typical[float64]"].text
    line = next(ln for ln in stdout.splitlines() if ln.strip().startswith("reproduce:") and "--case typical" in ln)
    argv = shlex.split(line.split("reproduce:", 1)[1])
    assert argv[:3] == ["python", "-m", "parity_tests.port"]
    assert argv[-4:] == ["--case", "typical", "--dtype", "float32"]
    assert port.main(argv[3:]) == 1
    again = capsys.readouterr().out
    assert "0 of 1 case × dtype checks agree" in again and "MISMATCH typical float32" in again
