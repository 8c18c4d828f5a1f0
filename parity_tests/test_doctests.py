"""The ``>>>`` examples in the packages' docstrings run and print what they say."""
from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.project
ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples():
    out = []
    for package in ("spec", "torch_impl", "tf_impl"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text():
                parts = path.relative_to(ROOT).with_suffix("").parts
                out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


MODULES = _modules_with_examples()


def test_there_are_examples():
    assert {"spec", "torch_impl", "tf_impl"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.attempted > 0 and result.failed == 0, f"{module}: {result.failed} of {result.attempted} examples failed"
