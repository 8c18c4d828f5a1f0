"""Timing: interleaved medians per call, and one timed group of our implementations and their peers
(one row per implementation and peer)."""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from .settings import Settings, note


def _interleaved_medians(fns: dict, number: dict, sync, repeats: int, *, unit: float) -> dict[str, float]:
    """Median time per call of each function (seconds × ``unit``), the functions interleaved repeat
    by repeat, each repeat ``number[key]`` calls followed by ``sync()``."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(number[key]):
                fn()
            sync()
            times[key].append((time.perf_counter() - t0) * unit / number[key])
    return {k: statistics.median(v) for k, v in times.items()}


def time_group(fns: dict[str, Callable[[], Any]], sync: Callable[[], None], settings: Settings) -> dict[str, float]:
    """Median milliseconds per call of each function, the functions interleaved repeat by repeat."""
    number = {}
    for key, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(settings.warmup):
            fn()
        sync()
        per_call = (time.perf_counter() - t0) / max(settings.warmup, 1) * 1e3
        number[key] = max(1, math.ceil(settings.min_ms / max(per_call, 1e-3))) if settings.min_ms else 1
    return _interleaved_medians(fns, number, sync, settings.repeats, unit=1e3)


def ratio(ours: float, peer: float) -> float:
    """``ours / peer`` to 4 significant digits (a fixed number of decimals would lose a small ratio's
    digits: 0.00197 is not 0.002)."""
    return float(f"{ours / peer:.4g}")


def _rel_diff(ours: float, peer: float) -> float:
    """``|ours - peer| / |ours|``: 0 up to rounding where the peer computes the same math."""
    if ours == peer:
        return 0.0
    return float(f"{abs(ours - peer) / max(abs(ours), 1e-30):.3g}")


def _run_group(name, framework, impls: dict, peers: dict, make_step, memory, sync, settings, meta) -> list[dict]:
    """Time ``impls`` (our variants) and ``peers`` in one interleaved group; one row per (impl, peer)."""
    steps, failed, values = {}, {}, {}
    for key, fn in {**{("ours", k): v for k, v in impls.items()}, **{("peer", k): v for k, v in peers.items()}}.items():
        try:
            step = make_step(fn)
            out = step()
            sync()
            if isinstance(out, (tuple, list)) and out[1] is None:  # Keras: tape.gradient gives None
                raise ValueError("no gradient w.r.t. the prediction (not differentiable)")
            values[key] = float(out[0] if isinstance(out, (tuple, list)) else out)
            steps[key] = step
        except Exception as exc:  # noqa: BLE001
            failed[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            note(f"{name} [{framework} {meta['mode']} {meta['shape']}]: {key[0]} {key[1]!r} failed: {failed[key]}")
    ms = time_group(steps, sync, settings)
    mem = {key: memory(step, meta["mode"]) for key, step in steps.items()}
    rows = []
    for impl in impls:
        ours = ("ours", impl)
        if ours not in steps:
            continue
        peer_keys = [k for k in steps if k[0] == "peer"] or [None]
        for pk in peer_keys:
            peer_ms = None if pk is None else ms[pk]
            row = dict(meta, loss=name, framework=framework, impl=impl, peer=None if pk is None else pk[1],
                       ours_ms=round(ms[ours], 4), peer_ms=None if peer_ms is None else round(peer_ms, 4),
                       ratio=None if peer_ms is None else ratio(ms[ours], peer_ms),
                       peak_bytes_ours=mem[ours][0], peak_bytes_peer=None if pk is None else mem[pk][0],
                       saved_bytes_ours=mem[ours][1], saved_bytes_peer=None if pk is None else mem[pk][1],
                       value_rel_diff=None if pk is None else _rel_diff(values[ours], values[pk]))
            if pk is None:
                row["note"] = "no peer of the same math" if not failed else "; ".join(
                    f"{k[1]}: {v}" for k, v in failed.items() if k[0] == "peer")
            rows.append(row)
    return rows


def _time_percall(fns: dict, sync, repeats: int, min_ms: float) -> dict[str, float]:
    """Median µs per call of each function, interleaved repeat by repeat (after a warm-up sizing
    each repeat to last ``min_ms``)."""
    number = {}
    for key, fn in fns.items():
        for _ in range(3):
            fn()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        number[key] = max(1, math.ceil(min_ms / max((time.perf_counter() - t0) * 1e3, 1e-3)))
    return _interleaved_medians(fns, number, sync, repeats, unit=1e6)
