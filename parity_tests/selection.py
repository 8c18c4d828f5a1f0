"""Which entries, cases and dtypes the generic suite runs on (set by the pytest plugin).

Default: every registered entry. ``--lossparity-module M`` restricts to the entries registered by
M (or its submodules); ``--lossparity-only NAME`` and ``--lossparity-case ID`` narrow further.
"""
from __future__ import annotations

import importlib
import shlex

import spec

MODULES: list[str] = []
ONLY: list[str] = []
CASE_IDS: list[str] = []
DTYPE: str | None = None
ACTIVE = False  # True when a user selection is active: project-only tests are skipped


def configure(modules=(), only=(), cases=(), dtype=None) -> list[str]:
    global ACTIVE, DTYPE
    MODULES[:] = list(modules)
    ONLY[:] = list(only)
    CASE_IDS[:] = list(cases)
    DTYPE = dtype
    for module in MODULES:
        importlib.import_module(module)
    ACTIVE = bool(MODULES or ONLY or CASE_IDS or DTYPE)
    return names()


def names() -> list[str]:
    out = spec.names()
    if MODULES:
        out = [n for n in out if any(spec.core.origin(n) == m or spec.core.origin(n).startswith(m + ".")
                                     for m in MODULES)]
    if ONLY:
        out = [n for n in out if n in ONLY]
    return out


def entries():
    return [spec.get(n) for n in names()]


def case_selected(case_id: str) -> bool:
    return not CASE_IDS or case_id in CASE_IDS


def dtypes() -> tuple[str, ...]:
    return (DTYPE,) if DTYPE else spec.DTYPES


def repro(name: str, case_id: str | None = None, dtype: str | None = None) -> str:
    """A one-line command that re-runs exactly this check."""
    parts = ["python", "-m", "parity_tests.check"]
    for m in MODULES:
        parts += ["--module", m]
    parts += ["--only", name]
    if case_id:
        parts += ["--case", case_id]
    if dtype:
        parts += ["--dtype", dtype]
    return " ".join(shlex.quote(p) for p in parts)
