"""Keras string identifiers for our losses and regularizers.

After ``import tf_impl``, ``model.compile(loss="soft_dice")``, ``keras.losses.get("weighted_bce")``
and ``Dense(..., activity_regularizer="kl_sparsity")`` resolve to our classes (with their default
parameters) the way Keras' built-in names do, and so does a model saved with such a string.

Each class is reachable by its spec name (``"soft_dice"``), its class name (``"SoftDice"``) and
its registered serialization name (``"lossparity>SoftDice"``), except where Keras already has the
name: a built-in keeps its meaning (``"tversky"``, ``"Tversky"``, ``"mean_squared_error"``,
``"MeanSquaredError"``, ``"categorical_crossentropy"`` … are Keras'), and ours is reached by
``"lossparity>Tversky"`` or ``tf_impl.get_loss("tversky")``.

Keras 3 resolves a string through the ``ALL_OBJECTS_DICT`` of ``keras.losses`` and
``keras.regularizers`` (``keras.losses.get``, the compile path and deserialization all read it);
adding to it is the one hook Keras offers for plain string names.
"""
from __future__ import annotations

import importlib

PACKAGE = "lossparity"
#: name → class added by this module, per Keras table ("losses", "regularizers")
ADDED: dict[str, dict[str, type]] = {"losses": {}, "regularizers": {}}
#: names we would have added but Keras already defines (they keep Keras' meaning)
BUILT_IN: dict[str, set[str]] = {"losses": set(), "regularizers": set()}


def _table(kind: str) -> dict:
    return importlib.import_module(f"keras.src.{kind}").ALL_OBJECTS_DICT


def register(cls: type, spec_name: str, kind: str = "losses") -> list[str]:
    """Make ``cls`` resolvable by ``spec_name``, ``cls.__name__`` and ``"lossparity>ClassName"`` in
    Keras' ``kind`` table wherever Keras has no object of that name. Returns the names added."""
    table = _table(kind)
    added = []
    for name in (spec_name, cls.__name__, f"{PACKAGE}>{cls.__name__}"):
        current = table.get(name)
        if current is not None and current is not cls and name not in ADDED[kind]:
            BUILT_IN[kind].add(name)
            continue
        table[name] = cls
        ADDED[kind][name] = cls
        added.append(name)
    return added
