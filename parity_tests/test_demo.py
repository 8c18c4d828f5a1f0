"""``make demo``'s table: what a new user sees first."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.project
ROOT = Path(__file__).resolve().parents[1]


def test_demo_output_starts_with_the_table_header_and_has_no_framework_log_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell
    proc = subprocess.run([sys.executable, "-m", "lossparity.demo", "--only", "mean_squared_error"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    assert lines[0].split()[:3] == ["loss", "dtype", "runs"], lines[:3]
    assert set(lines[1]) <= {"-", " "}
    assert not [line for line in lines if "absl::InitializeLog" in line or line.startswith(("I0000", "W0000"))]
    assert lines[2].startswith("mean_squared_error") and lines[2].split()[-1] == "ok"
