"""Golden vectors: the spec's reference values and gradients for every case, committed as
``parity_tests/golden/<loss>.npz`` so a machine without TensorFlow (a CUDA box) can check torch
against the spec. NumPy only.

Layout of one file: ``__meta__`` (JSON: loss name, case ids, kinds and params) and per case
``<case>::prediction``, ``<case>::target``, ``<case>::sample_weight`` (if any) and, for each
dtype and reduction, ``<case>::<dtype>::<reduction>::value`` / ``::grad`` (the reference on the
inputs rounded to that dtype; "none" gradients use ``harness.standard_cotangent``).
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable

import numpy as np

import spec
from parity_tests import conditioning, harness

GOLDEN_DIR = pathlib.Path(__file__).parent / "golden"


def _encode(value):
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist()}
    return value


def _decode(value):
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], np.float64)
    return value


def build(entry: spec.LossSpec) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    meta = {"loss": entry.name, "cases": []}
    for case in entry.cases():
        meta["cases"].append({"id": case.id, "kind": case.kind,
                              "params": {k: _encode(v) for k, v in case.params.items()},
                              "dtypes": list(case.dtypes)})
        arrays[f"{case.id}::prediction"] = np.asarray(case.prediction)
        if case.target is not None:
            arrays[f"{case.id}::target"] = np.asarray(case.target)
        if case.sample_weight is not None:
            arrays[f"{case.id}::sample_weight"] = np.asarray(case.sample_weight)
        for dtype in case.dtypes:
            for reduction in entry.reductions(entry.validate_params(case.params)):
                res = harness.reference(entry, case, dtype, reduction)
                arrays[f"{case.id}::{dtype}::{reduction}::value"] = res.value
                arrays[f"{case.id}::{dtype}::{reduction}::grad"] = res.grad
    arrays["__meta__"] = np.asarray(json.dumps(meta, sort_keys=True))
    return arrays


def write(entries: Iterable[spec.LossSpec], out: pathlib.Path = GOLDEN_DIR) -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in entries:
        path = out / f"{entry.name}.npz"
        np.savez_compressed(path, **build(entry))
        paths.append(path)
    return paths


def check(entries: Iterable[spec.LossSpec], out: pathlib.Path = GOLDEN_DIR,
          computed: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] | None = None) -> list[str]:
    """Differences between the registry and the files (empty list: they agree).

    Labels and metadata must be equal; stored floats must equal the fresh ones up to what another
    machine's rounding can change (:func:`parity_tests.conditioning.within`): per element, 1e-13 of
    its size plus four times its spread under elementary functions perturbed by a few ulps. So
    vectors written on one CPU check on any other (x86-64 or ARM64, any libm, SIMD path or thread
    count), while a changed formula, or a stored number moved by 1e-9 of itself, is still caught
    in every element that rounding does not already blur.

    ``computed``: per loss name, its ``(build(entry), spread of build(entry))`` when the caller
    already has them (both are deterministic: the same numbers this function would compute).
    """
    problems = []
    for entry in entries:
        path = out / f"{entry.name}.npz"
        if not path.exists():
            problems.append(f"{path.name}: missing (run python -m lossparity.make_golden)")
            continue
        fresh, known_spread = (computed or {}).get(entry.name, (None, None))
        fresh = build(entry) if fresh is None else fresh
        with np.load(path) as stored:
            keys = set(stored.files)
            if keys != set(fresh):
                problems.append(f"{path.name}: keys differ: +{sorted(set(fresh) - keys)[:5]} -{sorted(keys - set(fresh))[:5]}")
                continue
            allowance = known_spread if known_spread is not None else conditioning.spread(
                lambda: build(entry), baseline=fresh)
            for key, value in fresh.items():
                old = stored[key]
                if key == "__meta__" or value.dtype.kind in "iuUSb":
                    if not np.array_equal(old, value):
                        problems.append(f"{path.name}: {key} differs from the registry")
                    continue
                ok = conditioning.within(old, value, allowance[key])
                if not ok.all():
                    worst = np.unravel_index(int(np.argmin(ok)), ok.shape) if ok.ndim else ()
                    problems.append(f"{path.name}: {key} differs from the registry at {tuple(int(i) for i in worst)}: "
                                    f"stored {float(np.asarray(old)[worst])!r}, computed {float(np.asarray(value)[worst])!r}")
    return problems


def load(path: pathlib.Path):
    """Yield ``(entry, case, {(dtype, reduction): Result})`` from one golden file."""
    with np.load(path) as data:
        meta = json.loads(str(data["__meta__"]))
        entry = spec.get(meta["loss"])
        for c in meta["cases"]:
            cid = c["id"]
            case = spec.Case(
                id=cid, kind=c["kind"], params={k: _decode(v) for k, v in c["params"].items()},
                prediction=data[f"{cid}::prediction"],
                target=data[f"{cid}::target"] if f"{cid}::target" in data.files else None,
                sample_weight=data[f"{cid}::sample_weight"] if f"{cid}::sample_weight" in data.files else None,
                dtypes=tuple(c["dtypes"]))
            expected = {}
            for key in data.files:
                parts = key.split("::")
                if len(parts) == 4 and parts[0] == cid and parts[3] == "value":
                    dtype, reduction = parts[1], parts[2]
                    expected[(dtype, reduction)] = harness.Result(
                        data[key], data[f"{cid}::{dtype}::{reduction}::grad"])
            yield entry, case, expected
