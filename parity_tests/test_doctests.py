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


# ---------------------------------------------------------------- docstrings rendered from the spec entries
def _public_forms(framework):
    """``[(kind, object), ...]`` of each catalog entry in ``framework``: its class and its functional
    form (both exported)."""
    import spec
    from spec.docstrings import builtin_entries

    module = importlib.import_module(spec.docstrings.FRAMEWORKS[framework]["module"])
    classes = module.loss_classes()
    out = {}
    for entry in builtin_entries():
        out[entry.name] = (entry, [("class", classes[entry.name]), ("function", getattr(module.functional, entry.name))])
    return out


def _entry_names():
    from spec.docstrings import builtin_entries

    return [e.name for e in builtin_entries()]


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("name", _entry_names())
def test_generated_examples_run(framework, name):
    """The class's and the functional form's ``>>>`` example (rendered from the spec entry) runs and
    prints the spec reference's value."""
    entry, forms = _public_forms(framework)[name]
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for kind, obj in forms:
        test = parser.get_doctest(obj.__doc__, {}, f"{framework}.{name}.{kind}", None, 0)
        assert test.examples, f"{framework} {name} {kind}: no example"
        result = runner.run(test, out=lambda s: None)
        assert result.failed == 0, f"{framework} {name} {kind}: the example failed:\n{obj.__doc__}"


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_every_public_loss_has_the_generated_sections(framework):
    """Every exported loss class and functional form of the catalog carries the sections rendered
    from its entry (summary, formula, every parameter with its default, gradient convention, a
    runnable example); so does every other class registered for ``get_loss`` in our package."""
    from spec.docstrings import missing_sections

    lacking = {}
    for name, (entry, forms) in _public_forms(framework).items():
        for kind, obj in forms:
            missing = missing_sections(obj.__doc__, entry)
            if missing:
                lacking[f"{name} {kind} {obj.__qualname__}"] = missing
    assert not lacking, lacking


def _metric_forms(framework):
    import spec.metrics

    module = importlib.import_module(spec.docstrings.FRAMEWORKS[framework]["module"] + ".metrics")
    for metric in spec.metrics.METRICS.values():
        cls = getattr(module, spec.docstrings.obj_name(metric, framework))
        yield metric, [("class", cls), ("function", getattr(module, metric.name))]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_metric_docstrings_are_rendered_and_their_examples_run(framework):
    """The metrics (classes and functions) carry the sections rendered from their
    ``spec.metrics.MetricSpec`` and their examples print the spec reference's value."""
    import spec.docstrings

    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for metric, forms in _metric_forms(framework):
        for kind, obj in forms:
            doc = obj.__doc__ or ""
            missing = [s for s in spec.docstrings.METRIC_SECTIONS if s not in doc]
            missing += [p.name for p in metric.params if f"    {p.name} (default " not in doc]
            assert doc.startswith(metric.summary) and not missing, (metric.name, kind, missing)
            result = runner.run(parser.get_doctest(doc, {}, f"{framework}.{metric.name}.{kind}", None, 0),
                                out=lambda s: None)
            assert result.failed == 0, f"{framework} {metric.name} {kind}: the example failed:\n{doc}"
