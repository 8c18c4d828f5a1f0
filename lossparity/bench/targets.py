"""The performance targets: the fused paths against the fastest eager peer, the configurations that
miss a target, and the spec's performance note that covers a miss."""
from __future__ import annotations

import math
from typing import Any

from .settings import EAGER_NOISE, FUSED_LOSSES, FUSED_TARGET, TORCH_COMPILED


def fused_summary(rows: list[dict]) -> list[dict]:
    """Issue 7's fused-path target: for each elementwise loss and configuration, our fused
    implementations (``torch compile``, ``keras jit``) against the fastest *eager* peer of the same
    framework, shape, dtype and mode (``ratio`` ≤ FUSED_TARGET is the target)."""
    eager_peer: dict[tuple, float] = {}
    for r in rows:
        if r["peer_ms"] is not None and "eager" in r["impl"]:
            key = (r["loss"], r["framework"], r["shape"], r["dtype"], r["mode"])
            eager_peer[key] = min(eager_peer.get(key, math.inf), r["peer_ms"])
    out, seen = [], set()
    for r in rows:
        key = (r["loss"], r["framework"], r["shape"], r["dtype"], r["mode"])
        if r["loss"] not in FUSED_LOSSES or r["impl"] not in (TORCH_COMPILED, "keras jit") or key not in eager_peer:
            continue
        if (key, r["impl"]) in seen:
            continue
        seen.add((key, r["impl"]))
        out.append({"loss": r["loss"], "framework": r["framework"], "impl": r["impl"], "shape": r["shape"],
                    "shape_kind": r.get("shape_kind"), "dtype": r["dtype"], "mode": r["mode"],
                    "fused_ms": r["ours_ms"], "eager_peer_ms": eager_peer[key],
                    "ratio": round(r["ours_ms"] / eager_peer[key], 4),
                    "meets_target": r["ours_ms"] / eager_peer[key] <= FUSED_TARGET})
    return out


def target_misses(rows: list[dict]) -> list[dict]:
    """The configurations that miss the speed and memory targets: eager ``fwd+bwd`` more than
    :data:`EAGER_NOISE` × the fastest peer (``target`` 1.0), the fused paths of :data:`FUSED_LOSSES`
    above :data:`FUSED_TARGET` × the fastest eager peer (:func:`fused_summary`), and (``kind``
    "memory") the torch peaks above the leanest peer's plus one input-sized buffer
    (:func:`memory_summary`; ``ratio`` = ours / (peer + input), ``target`` 1.0). One dict per
    configuration: loss, framework, impl, shape_kind, dtype, mode, ratio, target, kind."""
    worst: dict[tuple, float] = {}  # per configuration, the ratio to the fastest peer
    for r in rows:
        if r["ratio"] is None or "eager" not in r["impl"] or r["mode"] != "fwd+bwd":
            continue
        key = (r["loss"], r["framework"], r["impl"], r.get("shape_kind") or r["shape"], r["dtype"], r["mode"])
        worst[key] = max(worst.get(key, 0.0), r["ratio"])
    keys = ("loss", "framework", "impl", "shape_kind", "dtype", "mode")
    out = [dict(zip(keys, key), ratio=ratio, target=1.0, kind="speed") for key, ratio in worst.items()
           if ratio > EAGER_NOISE]
    out += [{**{k: r[k] for k in keys if k != "shape_kind"}, "shape_kind": r.get("shape_kind") or r["shape"],
             "ratio": r["ratio"], "target": FUSED_TARGET, "kind": "speed"}
            for r in fused_summary(rows) if not r["meets_target"]]
    out += [{"loss": c["loss"], "framework": c["framework"], "impl": f"{c['framework']} eager",
             "shape_kind": c["shape_kind"], "dtype": c["dtype"], "mode": "fwd+bwd",
             "ratio": round(c["ours_bytes"] / (c["peer_bytes"] + c["input_bytes"]), 4), "target": 1.0,
             "kind": "memory"} for c in memory_summary(rows) if not c["meets_target"]]
    return out


def covering_note(miss: dict, entry) -> Any:
    """The entry's :class:`spec.PerformanceNote` that explains ``miss`` (a :func:`target_misses`
    dict: a note of the same target kind, framework, impl pattern and shape kind, up to the miss's
    ratio), or None."""
    import fnmatch

    for n in entry.performance_notes:
        if (n.target == miss.get("kind", "speed") and n.framework == miss["framework"]
                and fnmatch.fnmatchcase(miss["impl"], n.impl) and miss["shape_kind"] in n.shapes
                and miss["ratio"] <= n.up_to):
            return n
    return None


#: bytes of one element of the input-sized buffer: the compute dtype's (the library computes bfloat16 and
#: float16 predictions in float32, so the buffer its closed forms keep is a float32 one)
_ELEMENT_BYTES = {"float32": 4, "float64": 8, "bfloat16": 4, "float16": 4}


def _numel(shape: str) -> int:
    return math.prod(int(d) for d in shape.split("x"))


def memory_summary(rows: list[dict]) -> list[dict]:
    """The memory target: per torch eager ``fwd+bwd`` configuration with peak columns, our peak
    allocation against the leanest peer's plus one input-sized buffer (the prediction's elements in the
    compute dtype: float32 for a bfloat16 prediction).
    ``excess_bytes`` = ours - (peer + input); ``meets_target`` when it is at most 1% of the input buffer
    (the small allocations: scalars, per-sample vectors)."""
    out: dict[tuple, dict] = {}
    for r in rows:
        if (r["mode"] != "fwd+bwd" or "eager" not in r["impl"] or "validate=False" in r["impl"]
                or r.get("peak_bytes_ours") is None or r.get("peak_bytes_peer") is None):
            continue
        key = (r["loss"], r["framework"], r.get("shape_kind") or r["shape"], r["dtype"])
        cell = out.get(key)
        if cell is None or r["peak_bytes_peer"] < cell["peer_bytes"]:
            buffer = _numel(r["shape"]) * _ELEMENT_BYTES.get(r["dtype"], 4)
            out[key] = {"loss": r["loss"], "framework": r["framework"], "shape_kind": key[2], "dtype": r["dtype"],
                        "ours_bytes": r["peak_bytes_ours"], "peer_bytes": r["peak_bytes_peer"], "peer": r["peer"],
                        "input_bytes": buffer}
    for cell in out.values():
        cell["excess_bytes"] = cell["ours_bytes"] - (cell["peer_bytes"] + cell["input_bytes"])
        # beyond the buffer, 1% of it for the small allocations (scalars, per-sample vectors)
        cell["meets_target"] = cell["excess_bytes"] <= cell["input_bytes"] // 100
    return list(out.values())
