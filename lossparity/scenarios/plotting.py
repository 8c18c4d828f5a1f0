"""Matplotlib helpers shared by the scenarios (Agg backend: files only, no display)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .base import Stat, _is_number

COLORS = {"torch": "#d62728", "keras": "#1f77b4"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color(framework: str) -> str:
    return COLORS.get(framework, "#444444")


def single(value) -> Stat:
    return Stat(float(value), 0.0, 1)


def is_number(value) -> bool:
    return _is_number(value)


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def mean_curves(runs: Sequence[Mapping[str, Mapping[str, Sequence[float]]]]) -> dict[str, dict[str, list[float]]]:
    """Average per-epoch curves over seeds (curves of unequal length are cut to the shortest)."""
    out: dict[str, dict[str, list[float]]] = {}
    jobs = sorted({j for r in runs for j in r})
    for job in jobs:
        metrics = sorted({m for r in runs if job in r for m in r[job]})
        for metric in metrics:
            series = [list(r[job][metric]) for r in runs if job in r and metric in r[job] and r[job][metric]]
            if not series:
                continue
            n = min(len(s) for s in series)
            out.setdefault(job, {})[metric] = np.mean([s[:n] for s in series], axis=0).tolist()
    return out


def curves(curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], jobs: Sequence[str],
           metrics: Sequence[str], path: Path, title: str) -> Path | None:
    """One panel per metric; one line per (framework, job): ``curves[framework][job][metric]``."""
    present = [m for m in metrics if any(m in c.get(j, {}) for c in curves.values() for j in jobs)]
    if not present:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 3.8), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, metric in zip(axes[0], present):
        for framework, per_job in sorted(curves.items()):
            for k, job in enumerate(jobs):
                values = per_job.get(job, {}).get(metric)
                if values:
                    # the frameworks' curves often coincide: a wide pale line under a thin marked one
                    wide = framework == "keras"
                    ax.plot(np.arange(1, len(values) + 1), values, styles[k % len(styles)],
                            marker="o" if wide else "x", markersize=6 if wide else 5,
                            linewidth=3.0 if wide else 1.2, alpha=0.45 if wide else 0.95,
                            color=color(framework), label=f"{framework} {job}")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def grouped_bars(table: Mapping[str, Mapping[str, Stat]], groups: Sequence[tuple[str, str]], series: Sequence[tuple[str, str]],
                 path: Path, title: str, ylabel: str, ylim=(0.0, 1.02)) -> Path:
    """Bars ``table[framework][f"{group}/{series}"]`` with std error bars; ``groups`` and ``series``
    are ``(key, label)`` pairs; one bar per (framework, series) in each group."""
    plt = pyplot()
    frameworks = sorted(table)
    bars = [(f, s) for f in frameworks for s in series]
    width = 0.8 / max(len(bars), 1)
    fig, ax = plt.subplots(figsize=(min(16.0, max(8.0, 0.3 * len(groups) * max(len(bars), 1) + 3)), 4.2))
    x = np.arange(len(groups))
    hatches = ["", "//", "..", "xx"]
    for b, (framework, (skey, slabel)) in enumerate(bars):
        means, stds = [], []
        for gkey, _ in groups:
            s = table[framework].get(f"{gkey}/{skey}")
            means.append(np.nan if s is None else s.mean)
            stds.append(0.0 if s is None else s.std)
        ax.bar(x + (b - (len(bars) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               color=color(framework), alpha=0.85 if series.index((skey, slabel)) == 0 else 0.45,
               hatch=hatches[series.index((skey, slabel)) % len(hatches)], label=f"{framework}: {slabel}")
    ax.set_xticks(x)
    ax.set_xticklabels([label for _, label in groups], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)
