"""Where the tooling finds its packaged files and where it writes.

The scenario configs ship inside the package (``lossparity/configs/*.yaml``) and are found through
:mod:`importlib.resources`, so ``lossparity run`` and ``lossparity fit`` work from any directory
after a wheel install. Outputs go under the current directory unless a command is given a path.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

PACKAGE = "lossparity"


def config_names() -> list[str]:
    """The scenarios that have a packaged Lightning CLI config."""
    folder = resources.files(PACKAGE).joinpath("configs")
    return sorted(p.name[:-len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def config_path(name: str) -> Path:
    """The packaged Lightning CLI config of scenario ``name`` (``multilabel``, ``digits``, ...)."""
    path = Path(str(resources.files(PACKAGE).joinpath("configs", f"{name}.yaml")))
    if not path.is_file():
        raise ValueError(f"no packaged config {name!r}; available: {', '.join(config_names())}")
    return path


def resolve_config(value: str) -> str:
    """A ``--config`` value as given when it is a file, else the packaged config it names:
    ``multilabel``, ``multilabel.yaml`` and ``lossparity/configs/multilabel.yaml`` all name
    ``config_path("multilabel")``."""
    if os.path.isfile(value):
        return value
    name = Path(value).name
    name = name[:-len(".yaml")] if name.endswith(".yaml") else name
    return str(config_path(name)) if name in config_names() else value


def repo_root() -> Path | None:
    """The source checkout the package runs from (it has ``pyproject.toml`` beside the package),
    or ``None`` for an installed package."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "parity_tests").is_dir() else None


def output_root() -> Path:
    """The folder relative outputs are written under: the current directory."""
    return Path.cwd()
