"""The drivers: every loss, shape, dtype and mode timed against its peers in torch and Keras, and the
per-call table."""
from __future__ import annotations

import time

import numpy as np

import spec

from .inputs import make_inputs, percall_shape, shapes_for
from .keras_peers import KerasRunner, _keras_peers
from .render import _print
from .settings import FUSED_LOSSES, MODES, PERCALL_MIN_MS, PERCALL_MODE, PERCALL_REPEATS, TORCH_COMPILED, note
from .timing import _run_group, _time_percall, ratio
from .torch_peers import TorchRunner, _torch_peers


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _build_peers(table, name, params, shape, framework):
    out = {}
    for label, builder in table.get(name, []):
        try:
            fn = builder(params, shape)
        except Exception as exc:  # noqa: BLE001  (a peer that cannot be built is reported, not fatal)
            note(f"{name} [{framework}]: peer {label!r} unavailable: {type(exc).__name__}: {exc}")
            continue
        if fn is not None:
            out[label] = fn
    return out


def bench_torch(names, settings, device) -> list[dict]:
    import torch

    import torch_impl

    runner = TorchRunner(device)
    peers_table = _torch_peers()
    rows = []
    for name in names:
        t0 = time.perf_counter()
        entry = spec.get(name)
        params = entry.validate_params(entry.cases()[0].params)
        try:
            impls = {"torch eager": torch_impl.get_loss(name, **params),
                     "torch eager validate=False": torch_impl.get_loss(name, validate=False, **params)}
            impls = {k: m.to(runner.device) for k, m in impls.items()}
        except NotImplementedError as exc:
            note(f"skip {name} [torch]: {exc}")
            continue
        rng = np.random.default_rng(0)
        for skey, shape in shapes_for(entry, params, settings).items():
            peers = _build_peers(peers_table, name, params, shape, "torch")
            if not peers:
                note(f"{name} [torch]: no peer")
            x, y = make_inputs(entry, params, shape, rng)
            for dtype in settings.dtypes:
                if dtype != "float32" and skey not in settings.bf16_shapes:
                    continue
                xt, yt = runner.tensors(x, y, dtype)
                for mode in MODES:
                    meta = {"shape": _shape_text(shape), "shape_kind": skey, "dtype": dtype, "mode": mode,
                            "device": str(runner.device)}
                    group = dict(impls)
                    if settings.fused and name in FUSED_LOSSES:
                        # a fresh compilation per configuration: no recompile limit, no dynamic shapes
                        torch._dynamo.reset()
                        group[TORCH_COMPILED] = torch.compile(impls["torch eager validate=False"])
                    rows += _print(_run_group(name, "torch", group, peers, lambda fn: runner.step(fn, xt, yt, mode),
                                              runner.memory, runner.sync, settings, meta))
        note(f"{name} [torch]: {time.perf_counter() - t0:.1f} s")
    return rows


def bench_keras(names, settings, device) -> list[dict]:
    import tensorflow as tf

    runner = KerasRunner(device)
    if runner.gpu and not tf.config.list_physical_devices("GPU"):
        note("skip Keras: TensorFlow sees no GPU (tensorflow-cpu); run with --device cpu for the Keras rows")
        return []
    import tf_impl

    peers_table = _keras_peers()
    rows = []
    for name in names:
        t0 = time.perf_counter()
        entry = spec.get(name)
        params = entry.validate_params(entry.cases()[0].params)
        try:
            ours = tf_impl.get_loss(name, **params)
            ours_unchecked = tf_impl.get_loss(name, validate=False, **params)
        except NotImplementedError as exc:
            note(f"skip {name} [Keras]: {exc}")
            continue
        rng = np.random.default_rng(0)
        for skey, shape in shapes_for(entry, params, settings).items():
            peers = _build_peers(peers_table, name, params, shape, "Keras")
            if not peers:
                note(f"{name} [Keras]: no peer")
            x, y = make_inputs(entry, params, shape, rng)
            for dtype in settings.dtypes:
                if dtype != "float32" and skey not in settings.bf16_shapes:
                    continue
                xt, yt = runner.tensors(x, y, dtype)
                for mode in MODES:
                    for jit in (False, True):
                        if jit and (skey not in settings.keras_jit_shapes or dtype not in settings.keras_jit_dtypes):
                            continue
                        # under XLA the data checks are skipped (values unknown at trace time)
                        impls = {"keras jit": ours} if jit else {"keras eager": ours,
                                                                 "keras eager validate=False": ours_unchecked}
                        meta = {"shape": _shape_text(shape), "shape_kind": skey, "dtype": dtype, "mode": mode,
                                "device": runner.device_name}
                        rows += _print(_run_group(name, "keras", impls, peers,
                                                  lambda fn: runner.step(fn, xt, yt, mode, jit),
                                                  runner.memory, runner.sync, settings, meta))
        note(f"{name} [Keras]: {time.perf_counter() - t0:.1f} s")
    return rows


def bench_percall(names, frameworks=("torch", "keras"), device="cpu", repeats: int = PERCALL_REPEATS,
                  min_ms: float = PERCALL_MIN_MS) -> list[dict]:
    """The per-call table: for every loss with a peer in a framework, our loss (``get_loss`` with the
    entry's first case's parameters: the defaults, plus required ones) and each peer, forward +
    backward at :func:`percall_shape`, float32, eager, timed interleaved. One row per (loss,
    framework, peer): ``ours_us``, ``peer_us``, ``diff_us`` (ours - peer), ``ratio``; a peer that
    cannot run forward+backward (no gradient) leaves ``peer_us`` null and a ``note``."""
    rows = []
    for framework in frameworks:
        if framework == "torch":
            import torch_impl

            runner, table, get_loss = TorchRunner(device), _torch_peers(), torch_impl.get_loss
            impl = "torch eager"

            def make_step(fn, xt, yt, runner=runner):
                return runner.step(fn, xt, yt, "fwd+bwd")
        else:
            runner = KerasRunner(device)
            if runner.gpu and not runner.tf.config.list_physical_devices("GPU"):
                note("per-call: skip Keras (TensorFlow sees no GPU)")
                continue
            import tf_impl

            table, get_loss, impl = _keras_peers(), tf_impl.get_loss, "keras eager"

            def make_step(fn, xt, yt, runner=runner):
                return runner.step(fn, xt, yt, "fwd+bwd", False)
        for name in names:
            entry = spec.get(name)
            params = entry.validate_params(entry.cases()[0].params)
            shape = percall_shape(entry, params)
            peers = _build_peers(table, name, params, shape, framework)
            if not peers:
                continue
            try:
                ours = get_loss(name, **params)
            except NotImplementedError as exc:
                note(f"per-call: skip {name} [{framework}]: {exc}")
                continue
            if framework == "torch":
                ours = ours.to(runner.device)
            x, y = make_inputs(entry, params, shape, np.random.default_rng(0))
            xt, yt = runner.tensors(x, y, "float32")
            steps, failed = {}, {}
            for key, fn in {"ours": ours, **peers}.items():
                try:
                    step = make_step(fn, xt, yt)
                    out = step()
                    runner.sync()
                    if out[1] is None:  # Keras: tape.gradient gives None
                        raise ValueError("no gradient w.r.t. the prediction")
                    steps[key] = step
                except Exception as exc:  # noqa: BLE001  (a peer without a gradient is reported)
                    failed[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            if "ours" not in steps:
                note(f"per-call: {name} [{framework}]: ours failed: {failed['ours']}")
                continue
            us = _time_percall(steps, runner.sync, repeats, min_ms)
            meta = {"loss": name, "framework": framework, "impl": impl, "shape": _shape_text(shape),
                    "shape_kind": "per-call", "dtype": "float32", "mode": PERCALL_MODE,
                    "device": str(device), "peak_bytes_ours": None, "peak_bytes_peer": None}
            for peer in peers:
                peer_us = us.get(peer)
                row = dict(meta, peer=peer, ours_us=round(us["ours"], 2),
                           peer_us=None if peer_us is None else round(peer_us, 2),
                           diff_us=None if peer_us is None else round(us["ours"] - peer_us, 2),
                           ratio=None if peer_us is None else ratio(us["ours"], peer_us),
                           ours_ms=round(us["ours"] / 1e3, 6),
                           peer_ms=None if peer_us is None else round(peer_us / 1e3, 6))
                if peer_us is None:
                    row["note"] = failed.get(peer, "not timed")
                rows.append(row)
    return rows
