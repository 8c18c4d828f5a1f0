"""``import torch_impl`` never loads TensorFlow; ``import tf_impl`` never loads torch; ``import
spec`` loads neither (checked in fresh interpreters). The converters too: ``torch_impl.from_keras``
of a name or a config dict, and ``tf_impl.from_torch`` of a module read by its class name and
attributes, load no other framework."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.project

CHECK = (
    "import sys, importlib; module = importlib.import_module({mod!r})\n{use}\n"
    "bad = [m for m in {forbidden!r} if m in sys.modules]; "
    "print(bad); sys.exit(1 if bad else 0)"
)
#: what each module is used for after its import, in the same interpreter
USE = {
    "torch_impl": (
        "m = module.from_keras('mse')\n"
        "t = module.from_keras({'class_name': 'Tversky', 'config': {'alpha': 0.7, 'beta': 0.3}})\n"
        "assert type(m).__name__ == 'MeanSquaredErrorLoss' and t.loss.params['alpha'] == 0.3, (m, t)"),
    "tf_impl": (  # a stand-in with torch.nn.HuberLoss's class name, module and attributes
        "HuberLoss = type('HuberLoss', (), {'__module__': 'torch.nn.modules.loss', 'delta': 2.0, 'reduction': 'none'})\n"
        "k = module.from_torch(HuberLoss())\n"
        "assert k.get_config()['delta'] == 2.0 and k.reduction == 'none', k.get_config()"),
}


@pytest.mark.parametrize("mod,forbidden", [
    ("torch_impl", ("tensorflow", "keras")),
    ("tf_impl", ("torch", "lightning", "torchmetrics")),
    ("spec", ("torch", "tensorflow", "keras")),
    ("parity_tests.harness", ("torch", "tensorflow")),
    ("lossparity.scenarios.base", ("torch", "tensorflow")),
])
def test_import_isolation(mod, forbidden):
    proc = subprocess.run([sys.executable, "-c", CHECK.format(mod=mod, forbidden=forbidden, use=USE.get(mod, ""))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"importing {mod} loaded {proc.stdout.strip()} {proc.stderr[-2000:]}"


def test_every_entry_names_exported_classes():
    """The loss pages (docs/losses/) name ``torch_impl.<torch_class>`` / ``tf_impl.<keras_class>``."""
    import spec
    import tf_impl
    import torch_impl

    for entry in spec.all_specs():
        assert isinstance(getattr(torch_impl, entry.torch_class, None), type), entry.name
        assert isinstance(getattr(tf_impl, entry.keras_class, None), type), entry.name
        assert torch_impl.loss_classes()[entry.name] is getattr(torch_impl, entry.torch_class)
        assert tf_impl.loss_classes()[entry.name] is getattr(tf_impl, entry.keras_class)


def test_import_object_takes_both_path_forms_and_names_a_bad_one():
    """``spec.api.import_object``: the scenario descriptions' and the DataModule's ``source``."""
    import os.path

    from spec.api import import_object

    assert import_object("os.path:join") is os.path.join
    assert import_object("os.path.join") is os.path.join
    with pytest.raises(ValueError, match="invalid import path 'join'"):
        import_object("join")


# ---------------------------------------------------------------- a [tf]-only or [torch]-only install
KERAS_FIT = (
    "import numpy as np, keras, tf_impl\n"
    "x = np.random.default_rng(0).normal(size=(64, 4)).astype('float32'); y = (x[:, :1] > 0).astype('float32')\n"
    "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
    "model.compile(optimizer='sgd', loss=tf_impl.get_loss('weighted_bce', pos_weight=2.0))\n"
    "loss = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history['loss']\n"
    "assert np.isfinite(loss).all() and loss[-1] < loss[0], loss\n"
)
TORCH_STEP = (
    "import torch, torch_impl\n"
    "torch.manual_seed(0); x = torch.randn(64, 4); y = (x[:, :1] > 0).float()\n"
    "model = torch.nn.Linear(4, 1); opt = torch.optim.SGD(model.parameters(), lr=0.5)\n"
    "loss_fn = torch_impl.get_loss('weighted_bce', pos_weight=2.0); losses = []\n"
    "for _ in range(5):\n"
    "    opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step(); losses.append(loss.item())\n"
    "assert losses[-1] < losses[0], losses\n"
)
#: top-level names (and their dist-info) of what a [tf]-only / [torch]-only install lacks
WITHOUT_TORCH = ("torch", "torchgen", "functorch", "torchmetrics", "lightning", "lightning_utilities",
                 "lightning_fabric", "pytorch_lightning", "sympy", "mpmath")
WITHOUT_TF = ("tensorflow", "tensorflow_cpu", "tensorflow_io_gcs_filesystem", "keras", "tf_keras", "tensorboard",
              "tensorboard_data_server")


def _site_packages_without(tmp_path, missing):
    """A copy of this environment's site-packages (symbolic links) lacking ``missing``: run with
    ``python -S`` and this folder as the only site directory, those packages are not installed."""
    import sysconfig

    source = sysconfig.get_paths()["purelib"]
    view = tmp_path / "site-packages"
    view.mkdir()
    for name in os.listdir(source):
        top = name.split("-")[0].split(".")[0].lower()
        if top not in missing:
            os.symlink(os.path.join(source, name), view / name)
    return view  # the script calls site.addsitedir on it: .pth files (the editable install) are processed


@pytest.mark.parametrize("script,missing,absent", [
    (KERAS_FIT, WITHOUT_TORCH, ("torch", "mpmath")),
    (TORCH_STEP, WITHOUT_TF, ("tensorflow", "keras")),
], ids=["tf-only", "torch-only"])
def test_one_framework_install_imports_and_trains(tmp_path, script, missing, absent):
    """``pip install lossparity[tf]`` has neither torch nor mpmath; mpmath is needed only by the
    exact references (the ``dev`` extra). torch brings mpmath through sympy, which is how a
    [torch] install hid the dependency. Simulated by an environment whose site-packages lacks the
    other framework (and, for [tf], mpmath): a model trains with our loss."""
    view = _site_packages_without(tmp_path, missing)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys, site; sys.path[:] = [p for p in sys.path if 'site-packages' not in p]; "
            f"sys.path.insert(0, {root!r}); site.addsitedir({str(view)!r})\n" + script +
            f"bad = [m for m in {absent!r} if m in sys.modules]\nassert not bad, bad\nprint('trained')\n")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""})
    assert proc.returncode == 0 and "trained" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    for name in absent:  # the simulation really lacks them
        probe = subprocess.run([sys.executable, "-S", "-c", code.split("\n")[0] + f"\nimport {name}"],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert probe.returncode != 0 and "No module named" in probe.stderr, (name, probe.stderr[-500:])


def test_a_broken_loss_plugin_is_reported_by_name_and_breaks_nothing(tmp_path):
    """An installed distribution whose ``lossparity.specs`` entry point cannot be imported: ``import
    spec`` and ``import torch_impl`` work, the registry has our catalog, and the plugin is named in a
    warning, in ``spec.entry_point_failures()`` and in ``spec.get``'s error."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lossparity.specs]\nbroken = no_such_module_for_lossparity\n")
    script = (
        "import warnings, spec, torch_impl\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    names = spec.names()\n"
        "assert 'weighted_bce' in names and torch_impl.get_loss('weighted_bce') is not None\n"
        "assert any('broken' in str(w.message) and 'no_such_module_for_lossparity' in str(w.message) for w in caught)\n"
        "assert list(spec.entry_point_failures()) == ['broken'], spec.entry_point_failures()\n"
        "try:\n"
        "    spec.get('from_the_plugin')\n"
        "except KeyError as exc:\n"
        "    assert 'broken (no_such_module_for_lossparity' in str(exc), exc\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_examples_use_only_the_public_api():
    """What a user's implementation needs is public: no example imports an underscored module."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "examples"
    private = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            private += [f"{path.relative_to(root)}: {n}" for n in names if any(p.startswith("_") for p in n.split("."))]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                private.append(f"{path.relative_to(root)}: .{node.attr}")
    assert list(root.rglob("*.py")) and not private, private


def _signature_defaults(fn):
    import inspect

    return {name: (p.kind, p.default) for name, p in inspect.signature(fn).parameters.items()}


@pytest.mark.parametrize("framework", ["torch_impl", "tf_impl"])
def test_every_catalog_entry_exports_its_functional_form_with_the_spec_defaults(framework):
    """``<framework>.functional.<name>`` exists for every entry of our catalog (``get_functional``
    would otherwise synthesize one from the class and hide a forgotten export), and its keyword-
    only parameters are the spec's, with the spec's defaults, plus the common ones."""
    import importlib
    import inspect

    import spec
    from spec.core import REQUIRED

    functional = importlib.import_module(f"{framework}.functional")
    problems = []
    for entry in spec.all_specs():
        if not spec.core.origin(entry.name).startswith("spec."):
            continue  # users' entries may use the derived form
        fn = getattr(functional, entry.name, None)
        if fn is None:
            problems.append(f"{entry.name}: not exported by {framework}.functional")
            continue
        sig = _signature_defaults(fn)
        # single-input entries (regularizers) have one reduction ("mean") and no sample weights
        common = {"validate": True} if entry.single_input else {"sample_weight": None, "reduction": "mean",
                                                                 "validate": True}
        for p in entry.params:
            got = sig.get(p.name)
            if got is None or got[0] is not inspect.Parameter.KEYWORD_ONLY:
                problems.append(f"{entry.name}: `{p.name}` is not a keyword-only parameter")
            elif not (got[1] is p.default or (p.required and got[1] in (None, REQUIRED)) or _same(got[1], p.default)):
                problems.append(f"{entry.name}: `{p.name}` defaults to {got[1]!r}, the spec to {p.default!r}")
        for name, default in common.items():
            if name not in sig or not _same(sig[name][1], default):
                problems.append(f"{entry.name}: `{name}` missing or not defaulting to {default!r}")
    assert not problems, "\n".join(problems)


def _same(a, b):
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b
