"""The scenario registry: one module per scenario, each exposing ``SCENARIO``.

>>> from lossparity import scenarios
>>> scenarios.names()
['multilabel', 'digits']

``lossparity.run``, ``lossparity.report``, ``lossparity.lightning_cli`` configs and
``parity_tests/test_training_parity.py`` iterate this list; adding a scenario is adding a module
here (see :mod:`lossparity.scenarios.base` for what it declares).
"""
from __future__ import annotations

from . import count_penalty, digits, imbalanced, multilabel, segmentation, sparse_autoencoder
from .base import FRAMEWORKS, Scenario

_REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.name in _REGISTRY and _REGISTRY[scenario.name] is not scenario:
        raise ValueError(f"scenario {scenario.name!r} registered twice")
    _REGISTRY[scenario.name] = scenario
    return scenario


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Scenario:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {names()}") from None


for _module in (multilabel, digits, count_penalty, imbalanced, segmentation, sparse_autoencoder):
    register(_module.SCENARIO)

__all__ = ["FRAMEWORKS", "Scenario", "get", "names", "register"]
