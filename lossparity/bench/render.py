"""Rendering: the stdout table, the Markdown tables of a run, the per-call table and the machine's
description."""
from __future__ import annotations

import os
import platform

from .settings import FUSED_TARGET, PERCALL_MODE, PERCALL_SHAPE, PERCALL_TARGET_US, is_native_peer


def percall_summary(rows: list[dict]) -> list[dict]:
    """Per (loss, framework) of the per-call rows: ours, the fastest peer that ran (``peer``,
    ``peer_us``, ``diff_us``, ``ratio``) and the fastest framework-native one (``native_peer``,
    ``native_us``, ``native_diff_us``; :func:`is_native_peer`). ``meets_target``: ours - the
    fastest native peer <= :data:`PERCALL_TARGET_US`, None where no native peer ran (the target is
    against the loss a user would otherwise call from the framework)."""
    out: dict[tuple, dict] = {}
    for r in rows:
        if r["mode"] != PERCALL_MODE:
            continue
        key = (r["loss"], r["framework"])
        cell = out.setdefault(key, {"loss": r["loss"], "framework": r["framework"], "shape": r["shape"],
                                    "ours_us": r["ours_us"], "peer": None, "peer_us": None, "diff_us": None,
                                    "ratio": None, "native_peer": None, "native_us": None, "native_diff_us": None,
                                    "meets_target": None})
        if r["peer_us"] is None:
            continue
        if cell["peer_us"] is None or r["peer_us"] < cell["peer_us"]:
            cell.update(peer=r["peer"], peer_us=r["peer_us"], diff_us=r["diff_us"], ratio=r["ratio"])
        if is_native_peer(r["peer"]) and (cell["native_us"] is None or r["peer_us"] < cell["native_us"]):
            cell.update(native_peer=r["peer"], native_us=r["peer_us"], native_diff_us=r["diff_us"],
                        meets_target=r["diff_us"] <= PERCALL_TARGET_US)
    for cell in out.values():
        if cell["peer"] is None:
            cell["peer"] = next(r.get("note", "") for r in rows
                                if r["mode"] == PERCALL_MODE and (r["loss"], r["framework"]) ==
                                (cell["loss"], cell["framework"]))
    return list(out.values())


def render_percall(rows: list[dict]) -> str:
    """Markdown table of :func:`percall_summary`: per loss and framework, ours, the fastest
    framework-native peer (the target: ours - it <= +15 µs; ✗ over it) and the fastest peer of any
    kind, in µs per forward+backward call."""
    summary = percall_summary(rows)
    if not summary:
        return ""
    lines = [f"Per-call cost, forward+backward at {PERCALL_SHAPE[0]}×{PERCALL_SHAPE[1]} (float32, default "
             f"arguments, eager), µs per call; target: ours - the fastest framework-native peer (the framework's "
             f"own loss) ≤ +{PERCALL_TARGET_US:g} µs; the fastest peer of any kind for comparison:", "",
             "| loss | framework | ours µs | native peer µs | ours - native µs | native peer | fastest peer µs "
             "| ours - peer µs | ratio | fastest peer |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for c in summary:
        if c["native_us"] is None:
            native = "- | - | -"
        else:
            flag = "" if c["meets_target"] else " ✗"
            native = f"{c['native_us']:.1f} | {c['native_diff_us']:+.1f}{flag} | {c['native_peer']}"
        fastest = "- | - | -" if c["peer_us"] is None else \
            f"{c['peer_us']:.1f} | {c['diff_us']:+.1f} | {c['ratio']:.2f}"
        lines.append(f"| {c['loss']} | {c['framework']} | {c['ours_us']:.1f} | {native} | {fastest} "
                     f"| {c['peer'] or '-'} |")
    return "\n".join(lines) + "\n"


def _print(rows: list[dict]) -> list[dict]:
    for row in rows:
        print(format_row(row), flush=True)
    return rows


def _fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def _mb(v):
    return "-" if v is None else f"{v / 2**20:.2f}"


HEADER = (f"{'loss':<26} {'framework':<6} {'impl':<27} {'mode':<7} {'shape':<14} {'dtype':<8} "
          f"{'ours ms':>9} {'peer ms':>9} {'ratio':>6}  {'MB ours':>8} {'MB peer':>8}  peer")


def format_row(r) -> str:
    return (f"{r['loss']:<26} {r['framework']:<6} {r['impl']:<27} {r['mode']:<7} {r['shape']:<14} {r['dtype']:<8} "
            f"{_fmt(r['ours_ms']):>9} {_fmt(r['peer_ms']):>9} {_fmt(r['ratio']):>6}  "
            f"{_mb(r['peak_bytes_ours']):>8} {_mb(r['peak_bytes_peer']):>8}  {r['peer'] or '-'}")


def _config_label(r) -> str:
    dtype = "" if r["dtype"] == "float32" else " bf16" if r["dtype"] == "bfloat16" else f" {r['dtype']}"
    return f"{r.get('shape_kind', r['shape'])}{dtype} {r['mode']}"


def render_markdown(rows: list[dict]) -> str:
    """Markdown: a pivot of ``ours / fastest peer`` per implementation and configuration, then
    every row; the per-call table (:func:`render_percall`) last."""
    percall = render_percall(rows)
    rows = [r for r in rows if r["mode"] != PERCALL_MODE]
    configs = list(dict.fromkeys(_config_label(r) for r in rows))
    groups: dict[tuple, dict[str, float | None]] = {}
    for r in rows:
        cell = groups.setdefault((r["loss"], r["framework"], r["impl"]), {})
        label = _config_label(r)
        best = cell.get(label)
        if r["ratio"] is not None and (best is None or r["ratio"] > best):  # max ratio = vs the fastest peer
            cell[label] = r["ratio"]
        else:
            cell.setdefault(label, None)
    out = ["Ratio = ours / fastest peer of the same configuration (> 1: ours is slower; - : no peer).", "",
           "| loss | framework | impl | " + " | ".join(configs) + " |",
           "|---|---|---|" + "---:|" * len(configs)]
    for (loss, framework, impl), cell in groups.items():
        vals = [("-" if cell.get(c) is None else f"{cell[c]:.2f}") if c in cell else "" for c in configs]
        out.append(f"| {loss} | {framework} | {impl} | " + " | ".join(vals) + " |")
    mem_rows = [r for r in rows if r["peak_bytes_ours"] is not None and r["mode"] == "fwd+bwd"]
    if mem_rows:
        mconfigs = list(dict.fromkeys(_config_label(r) for r in mem_rows))
        mem: dict[tuple, dict[str, list]] = {}
        for r in mem_rows:
            group = mem.setdefault((r["loss"], r["framework"], r["impl"]), {})
            cell = group.setdefault(_config_label(r), [None, None, None, None])
            cell[0], cell[2] = r["peak_bytes_ours"], r.get("saved_bytes_ours")
            for i, key in ((1, "peak_bytes_peer"), (3, "saved_bytes_peer")):  # the leanest peer
                if r.get(key) is not None and (cell[i] is None or r[key] < cell[i]):
                    cell[i] = r[key]
        header = " | ".join(f"{c} peak | {c} saved" for c in mconfigs)
        out += ["", "Memory of fwd+bwd, MiB: peak allocated ours / leanest peer; saved for backward ours / "
                "leanest peer.", "", f"| loss | framework | impl | {header} |",
                "|---|---|---|" + "---:|---:|" * len(mconfigs)]
        for (loss, framework, impl), cell in mem.items():
            vals = []
            for c in mconfigs:
                a, b, sa, sb = cell.get(c, [None] * 4)
                vals += [f"{_mb(a)} / {_mb(b)}", f"{_mb(sa)} / {_mb(sb)}"]
            out.append(f"| {loss} | {framework} | {impl} | " + " | ".join(vals) + " |")
    out += ["", "<details><summary>Every row</summary>", "",
            "| loss | framework | impl | mode | shape | dtype | ours ms | peer ms | ratio | MB ours | MB peer "
            "| saved MB ours | saved MB peer | value Δ | peer |",
            "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        diff = r.get("value_rel_diff")
        out.append(f"| {r['loss']} | {r['framework']} | {r['impl']} | {r['mode']} | {r['shape']} | {r['dtype']} "
                   f"| {_fmt(r['ours_ms'])} | {_fmt(r['peer_ms'])} | {_fmt(r['ratio'])} "
                   f"| {_mb(r['peak_bytes_ours'])} | {_mb(r['peak_bytes_peer'])} "
                   f"| {_mb(r.get('saved_bytes_ours'))} | {_mb(r.get('saved_bytes_peer'))} "
                   f"| {'-' if diff is None else f'{diff:.1e}'} | {r['peer'] or r.get('note', '-')} |")
    out += ["", "</details>", ""]
    if percall:
        out += [percall]
    return "\n".join(out)


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    from importlib import metadata

    for key, dists in (("torch", ("torch",)), ("tensorflow", ("tensorflow-cpu", "tensorflow")),
                       ("keras", ("keras",)), ("monai", ("monai",))):
        info[key] = None
        for dist in dists:  # metadata only: importing TensorFlow for a torch-only run costs seconds
            try:
                info[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return info


def render_fused(summary: list[dict]) -> str:
    lines = [f"Fused path vs fastest eager peer (target ≤ {FUSED_TARGET}):", "",
             "| loss | framework | impl | shape | dtype | mode | fused ms | eager peer ms | ratio |",
             "|---|---|---|---|---|---|---:|---:|---:|"]
    for r in summary:
        flag = "" if r["meets_target"] else " ✗"
        lines.append(f"| {r['loss']} | {r['framework']} | {r['impl']} | {r['shape']} | {r['dtype']} | {r['mode']} | "
                     f"{r['fused_ms']:.3f} | {r['eager_peer_ms']:.3f} | {r['ratio']:.2f}{flag} |")
    return "\n".join(lines) + "\n"


def render_memory(summary: list[dict]) -> str:
    """Markdown table of :func:`memory_summary` (✗: over the peer's peak plus one input-sized buffer)."""
    if not summary:
        return "The run has no peak-memory columns."
    lines = ["| loss | framework | shape | dtype | ours MiB | leanest peer MiB | input MiB | ours - (peer + input) MiB "
             "| leanest peer |", "|---|---|---|---|---:|---:|---:|---:|---|"]
    for c in summary:
        flag = "" if c["meets_target"] else " ✗"
        lines.append(f"| {c['loss']} | {c['framework']} | {c['shape_kind']} | {c['dtype']} | {_mb(c['ours_bytes'])} "
                     f"| {_mb(c['peer_bytes'])} | {_mb(c['input_bytes'])} | {c['excess_bytes'] / 2**20:+.2f}{flag} "
                     f"| {c['peer']} |")
    return "\n".join(lines) + "\n"
