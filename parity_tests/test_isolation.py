"""``import torch_impl`` never loads TensorFlow; ``import tf_impl`` never loads torch; ``import
spec`` loads neither (checked in fresh interpreters)."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.project

CHECK = (
    "import sys, importlib; importlib.import_module({mod!r}); "
    "bad = [m for m in {forbidden!r} if m in sys.modules]; "
    "print(bad); sys.exit(1 if bad else 0)"
)


@pytest.mark.parametrize("mod,forbidden", [
    ("torch_impl", ("tensorflow", "keras")),
    ("tf_impl", ("torch", "lightning", "torchmetrics")),
    ("spec", ("torch", "tensorflow", "keras")),
    ("parity_tests.harness", ("torch", "tensorflow")),
    ("scripts.scenarios.base", ("torch", "tensorflow")),
])
def test_import_isolation(mod, forbidden):
    proc = subprocess.run([sys.executable, "-c", CHECK.format(mod=mod, forbidden=forbidden)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"importing {mod} loaded {proc.stdout.strip()} {proc.stderr[-2000:]}"


def test_every_entry_names_exported_classes():
    """The README's catalog names ``torch_impl.<torch_class>`` / ``tf_impl.<keras_class>``."""
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
