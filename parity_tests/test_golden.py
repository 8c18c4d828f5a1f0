"""torch against the committed golden vectors (``pytest -m golden [--device cuda]``); needs
neither TensorFlow nor the case generators. Plus: the files match the registry, and the golden
suite really runs with TensorFlow import blocked."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import spec
from parity_tests import golden, harness, selection


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


@pytest.mark.golden
@pytest.mark.project
def test_golden_files_match_the_registry():
    problems = golden.check(spec.all_specs())
    stale = sorted({p.stem for p in golden.GOLDEN_DIR.glob("*.npz")} - set(spec.names()))
    assert not problems and not stale, "\n".join(problems + stale) + "\nrun: python -m scripts.make_golden"


BLOCK_TF = (
    "import sys\n"
    "for m in ('tensorflow', 'keras', 'tf_keras'):\n"
    "    sys.modules[m] = None  # any import of TensorFlow/Keras now raises ImportError\n"
    "import pytest\n"
    "rc = pytest.main(['-q', '-m', 'golden', '-p', 'no:cacheprovider', 'parity_tests'])\n"
    "assert 'tensorflow' not in sys.modules or sys.modules['tensorflow'] is None\n"
    "sys.exit(int(rc))\n"
)


@pytest.mark.project
def test_golden_suite_runs_with_tensorflow_blocked():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", BLOCK_TF], cwd=root, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout and "error" not in proc.stdout.lower().split("passed")[-1]
