"""The tested version matrix (docs/versions.md): each session builds its own virtualenv and runs
the same whole suite as ``make test``.

    make test-matrix                       # every session below
    make test-matrix SESSION=lowest        # one session
    make test-matrix MATRIX_ARGS="-m 'not slow'"   # arguments passed through to pytest

Sessions
  lowest        the oldest Python and the lower bound of every range in pyproject.toml, each
                installed as an exact pin (read from pyproject.toml, so the session always tests
                what the ranges claim)
  newest        the newest release of every dependency that pip resolves here, on the newest
                Python the CPU torch pin supports; torch is the Makefile's TORCH_PIN when one
                is set (torch==2.13.0 on a Linux machine without nvidia-smi)
  newest-torch  as newest, with torch left to pip as well (the newest torch it may install:
                a CUDA build on Linux, used on the CPU)

The Makefile runs nox from its own small virtualenv (.matrix/tools); the sessions' virtualenvs
live in .matrix/envs and are reused between runs (every run re-applies the session's pins, so a
changed range is picked up); MATRIX_FRESH=1 in the Makefile rebuilds them.
"""
from __future__ import annotations

import os
import re
import sys
import time
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

nox.options.default_venv_backend = "venv"
nox.options.envdir = ".matrix/envs"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.sessions = ["lowest", "newest", "newest-torch"]

# The oldest and newest Python that requires-python admits (and the suite has run on).
_PY_MIN = re.search(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"])
_PY_MAX = re.search(r"<\s*3\.(\d+)", PYPROJECT["project"]["requires-python"])
PY_OLDEST = f"3.{_PY_MIN.group(1)}"
PY_NEWEST = f"3.{int(_PY_MAX.group(1)) - 1}" if _PY_MAX else PY_OLDEST
# The extras the suite needs (the same as `make install`: .[all] = torch, tf, dev).
EXTRAS = ("torch", "tf", "dev")


def lowest_pins() -> list[str]:
    """Every requirement of the project and of EXTRAS with its lower bound as an exact pin."""
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in EXTRAS:
        reqs += PYPROJECT["project"]["optional-dependencies"][extra]
    pins = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue  # e.g. `tensorflow` where `tensorflow-cpu` applies
        lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        if len(lows) != 1:
            raise ValueError(f"pyproject.toml: {text!r} needs exactly one lower bound for the lowest session")
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        pins.append(f"{req.name}{extras}=={lows[0]}")
    return pins


def _pytest(session: nox.Session) -> None:
    workers = os.environ.get("PYTEST_WORKERS", "2")
    args = [] if workers == "0" else ["-n", workers]
    session.run("python", "-m", "pip", "freeze", "--exclude-editable",
                stdout=open(ROOT / ".matrix" / f"{session.name}-freeze.txt", "w"))
    session.run("python", "-c", _VERSIONS, silent=False)
    start = time.monotonic()
    try:
        # `make test`'s command; pytest's exit code 5 (no tests ran) is a failure here too
        session.run("python", "-m", "pytest", "--durations=20", *args, *session.posargs,
                    env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    finally:
        session.log(f"pytest wall time: {time.monotonic() - start:.0f} s")


_VERSIONS = """
import platform
from importlib import metadata
names = ["numpy", "torch", "lightning", "torchmetrics", "jsonargparse", "tensorflow-cpu", "keras",
         "pytest", "pytest-xdist", "hypothesis", "scipy", "scikit-learn", "matplotlib", "mpmath"]
print("python", platform.python_version())
for name in names:
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "-")
"""


def _pip(session: nox.Session, *args: str) -> None:
    session.run_install("python", "-m", "pip", "install", "-q", *args)


@nox.session(python=PY_OLDEST)
def lowest(session: nox.Session) -> None:
    """The lower bound of every range in pyproject.toml, on the oldest Python it admits."""
    _pip(session, "--upgrade", "pip")
    pins = lowest_pins()
    session.log("pins: " + " ".join(pins))
    # one resolve: the pins together with the project, so pip checks them against its ranges
    _pip(session, *pins, "-e", f".[{','.join(EXTRAS)}]")
    _pytest(session)


def _newest(session: nox.Session, torch_pin: str) -> None:
    _pip(session, "--upgrade", "pip")
    pins = [torch_pin] if torch_pin else []
    session.log(f"torch: {torch_pin or 'newest pip installs'}")
    _pip(session, "--upgrade", "--upgrade-strategy", "eager", *pins, "-e", f".[{','.join(EXTRAS)}]")
    _pytest(session)


@nox.session(python=PY_NEWEST)
def newest(session: nox.Session) -> None:
    """The newest release of every dependency, torch as the Makefile's TORCH_PIN (CPU wheel)."""
    _newest(session, os.environ.get("TORCH_PIN", ""))


@nox.session(python=PY_NEWEST, name="newest-torch")
def newest_torch(session: nox.Session) -> None:
    """As newest, with torch's newest release too (whatever build pip installs for this machine)."""
    _newest(session, "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through nox: make test-matrix")
