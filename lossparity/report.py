"""Run every scenario in both frameworks over several seeds and write a report.

    python -m lossparity.report --out DIR [--quick] [--seeds 5] [--scenarios NAME ...]
                             [--frameworks torch keras] [--data PATH] [--reuse]

Each (scenario, framework, seed) is one ``python -m lossparity.run`` process (so torch and TensorFlow
never share a process), writing to ``DIR/runs/<scenario>/<framework>/seed<N>/`` (its log in
``run.log``). Then ``DIR/report.md`` gets, per scenario, the seed question it reproduces, the
data, a side-by-side table of the key metrics (mean ± std over seeds, torch | Keras | difference),
the notes (e.g. the error our loss raises for the seed's sigmoid head) and the plots
``DIR/<scenario>_*.png`` (metrics per framework with std error bars, training curves averaged over
seeds), plus ``DIR/frameworks.png`` (every metric, torch mean vs Keras mean). Both frameworks
start from the same weights and see the same batches, so their columns differ only by
floating-point rounding amplified by training.

``--quick`` uses quick runs (about a minute per run on 2 CPU cores: ~2 × 2 × seeds minutes in
all); the full report (the seeds' epochs) takes about an hour of runs per seed on 2 CPU cores
(``docs/report``: 3 seeds, digits and imbalanced 5, 3.5 hours of runs, two at a time). ``--reuse`` keeps runs
whose ``metrics.json`` exists (with the same ``--quick``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from lossparity import scenarios
from lossparity.scenarios import plotting
from lossparity.docs import PROBLEMS
from lossparity.paths import repo_root
from lossparity.scenarios.base import Stat, Table, aggregate



def parse_args(argv=None, prog=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog or "python -m lossparity.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="quick runs (small subsets, 2 epochs)")
    parser.add_argument("--seeds", type=int, default=5,
                        help="seeds 0..N-1 (default 5; a full report runs a scenario's full_seeds at least)")
    parser.add_argument("--scenarios", nargs="+", choices=scenarios.names(), default=scenarios.names())
    parser.add_argument("--frameworks", nargs="+", choices=scenarios.FRAMEWORKS, default=list(scenarios.FRAMEWORKS))
    parser.add_argument("--data", type=Path, default=None, help="digits: local mnist.npz or MNIST IDX folder")
    parser.add_argument("--reuse", action="store_true", help="keep existing runs (same --quick)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    return args


def run_dir(out: Path, scenario: str, framework: str, seed: int) -> Path:
    return out / "runs" / scenario / framework / f"seed{seed}"


def _reusable(folder: Path, quick: bool) -> bool:
    path = folder / "metrics.json"
    if not path.is_file():
        return False
    try:
        return bool(json.loads(path.read_text()).get("quick")) == quick
    except json.JSONDecodeError:
        return False


def run_one(args, scenario: str, framework: str, seed: int) -> Path:
    folder = run_dir(args.out, scenario, framework, seed)
    if args.reuse and _reusable(folder, args.quick):
        print(f"  reuse  {scenario} {framework} seed {seed}", flush=True)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lossparity.run", scenario, "--framework", framework, "--seed", str(seed),
           "--out", str(folder), "--quiet"]
    if args.quick:
        cmd.append("--quick")
    if args.data is not None and scenario == "digits":
        cmd += ["--data", str(args.data)]
    start = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    root = repo_root()  # a source checkout: its packages first; an installed package: as installed
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    with open(folder / "run.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = (folder / "run.log").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    print(f"  ran    {scenario} {framework} seed {seed}: {time.perf_counter() - start:.1f} s", flush=True)
    return folder


def load_runs(out: Path, scenario: str, framework: str, seeds: int):
    metrics, histories, notes = [], [], []
    for seed in range(seeds):
        folder = run_dir(out, scenario, framework, seed)
        metrics.append(json.loads((folder / "metrics.json").read_text()))
        histories.append(json.loads((folder / "history.json").read_text()))
        notes.append(json.loads((folder / "notes.json").read_text()))
    return metrics, histories, notes


# --------------------------------------------------------------------------- markdown
def _cell(stat: Stat | None) -> str:
    return "—" if stat is None else stat.fmt()


def _diff(d: float) -> str:
    if d == 0:
        return "0"
    return f"{d:+.1e}" if abs(d) < 1e-3 else f"{d:+.4f}"


#: "the frameworks agree within the seed-to-seed spread": |mean_keras − mean_torch| ≤ the larger of
#: the two sample stds over seeds, plus this floor for metrics that no seed moves (std 0: the
#: difference must then be rounding)
AGREEMENT_FLOOR = 1e-6


def agreement(a: Stat | None, b: Stat | None, key: str = "") -> tuple[float, float, bool] | None:
    """``(difference of means, spread, within)`` of one metric, or None without two seeds a side
    (or for a wall time: ``…seconds`` measures the machine, not the model)."""
    if a is None or b is None or a.n < 2 or b.n < 2 or key.endswith("seconds"):
        return None
    spread = max(a.std, b.std)
    delta = b.mean - a.mean
    return delta, spread, bool(abs(delta) <= spread + AGREEMENT_FLOOR)


def agreement_summary(table: Table, keys, frameworks) -> tuple[int, int, list[str]]:
    """``(within, compared, keys outside)`` over ``keys`` for two frameworks (0, 0, [] otherwise)."""
    if len(frameworks) != 2:
        return 0, 0, []
    checks = {k: agreement(table.get(frameworks[0], {}).get(k), table.get(frameworks[1], {}).get(k), k) for k in keys}
    checks = {k: c for k, c in checks.items() if c is not None}
    outside = [k for k, c in checks.items() if not c[2]]
    return len(checks) - len(outside), len(checks), outside


def metric_table(table: Table, keys, frameworks) -> list[str]:
    two = len(frameworks) == 2
    head = "| metric | " + " | ".join(frameworks) + (" | difference | spread | within |" if two else " |")
    sep = "|---|" + "---:|" * len(frameworks) + ("---:|---:|:---:|" if two else "")
    lines = [head, sep]
    for key in keys:
        stats = [table.get(f, {}).get(key) for f in frameworks]
        if all(s is None for s in stats):
            continue
        row = f"| `{key}` | " + " | ".join(_cell(s) for s in stats) + " |"
        if two:
            a, b = stats
            row += (f" {_diff(b.mean - a.mean)} |" if a is not None and b is not None else " — |")
            check = agreement(a, b, key)
            row += " — | — |" if check is None else f" {check[1]:.2g} | {'✓' if check[2] else '✗'} |"
        lines.append(row)
    return lines


def frameworks_plot(tables: dict[str, Table], keys: dict[str, tuple], out: Path) -> Path | None:
    """Every headline metric. Left: torch mean (x) vs Keras mean (y), std as error bars. Right
    (with two seeds or more): |mean Keras − mean torch| against the seed-to-seed spread, per
    scenario; points on or below the diagonal agree within the spread."""
    xs, ys, xe, ye = [], [], [], []
    spread: dict[str, list[tuple[float, float]]] = {}
    for name, table in tables.items():
        if not {"torch", "keras"} <= set(table):
            continue
        for key in keys[name]:
            a, b = table["torch"].get(key), table["keras"].get(key)
            if a is not None and b is not None:
                xs.append(a.mean), ys.append(b.mean), xe.append(a.std), ye.append(b.std)
                check = agreement(a, b, key)
                if check is not None:
                    spread.setdefault(name, []).append((check[1], abs(check[0])))
    if not xs:
        return None
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2 if spread else 1, figsize=(10.4 if spread else 5.2, 5), squeeze=False)
    ax = axes[0, 0]
    ax.errorbar(xs, ys, xerr=xe, yerr=ye, fmt="o", markersize=4, capsize=2, alpha=0.8)
    lo, hi = min(xs + ys), max(xs + ys)
    ax.plot([lo, hi], [lo, hi], "k:", lw=1)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("torch (Lightning), mean over seeds")
    ax.set_ylabel("Keras, mean over seeds")
    ax.set_title("every headline metric: torch vs Keras")
    ax.grid(alpha=0.3)
    if spread:
        ax = axes[0, 1]
        floor = AGREEMENT_FLOOR
        top = max(max(max(s, d) for s, d in pts) for pts in spread.values()) * 2 + floor
        for name, pts in spread.items():
            ax.scatter([s + floor for s, _ in pts], [d + floor for _, d in pts], s=18, alpha=0.8, label=name)
        ax.plot([floor, top], [floor, top], "k:", lw=1, label="|Δ| = spread")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"seed-to-seed spread (larger std over seeds) + {floor:g}")
        ax.set_ylabel(f"|mean Keras − mean torch| + {floor:g}")
        ax.set_title("frameworks vs seeds (below the line: agree)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return plotting.save(fig, out / "frameworks.png")


def versions() -> str:
    import importlib.metadata as md

    parts = []
    for pkg in ("torch", "lightning", "torchmetrics", "tensorflow-cpu", "tensorflow", "keras", "numpy"):
        try:
            parts.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            continue
    return ", ".join(parts)


def write_report(args, tables: dict[str, Table], runs: dict, plots: dict[str, list[Path]], frameworks_png,
                 seconds: float) -> Path:
    fw = list(args.frameworks)
    lines = [
        "# Scenario report",
        "",
        f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} by `python -m lossparity.report "
        f"--out {args.out}{' --quick' if args.quick else ''} --seeds {args.seeds}` in {seconds / 60:.1f} min "
        f"on {platform.platform()} ({os.cpu_count()} CPUs); {versions()}.",
        "",
        f"Every scenario ran in {', '.join(fw)} with "
        f"{'seed 0' if args.seeds == 1 else f'seeds 0–{args.seeds - 1}'} "
        f"({'quick runs: small subsets, 2 epochs' if args.quick else 'full runs'}). Values are mean ± std "
        "(sample std over seeds) of the final held-out metrics. Within one seed both frameworks start from "
        "the same initial weights and see the same batches in the same order (same model, loss, optimizer "
        "rule and hyperparameters), so the difference column is floating-point rounding amplified by "
        "training, not a different experiment; `parity_tests/test_training_parity.py` checks the first 10 "
        "steps to 1e-9 in float64.",
        "",
    ]
    summaries = {n: agreement_summary(tables[n], scenarios.get(n).headline, fw) for n in args.scenarios}
    if any(c for _, c, _ in summaries.values()):
        within, compared = sum(w for w, _, _ in summaries.values()), sum(c for _, c, _ in summaries.values())
        lines += [f"**Agreement of the frameworks**: {within} of {compared} headline metrics have "
                  f"|mean Keras − mean torch| within the seed-to-seed spread (the larger sample std over seeds, "
                  f"+{AGREEMENT_FLOOR:g} for metrics no seed moves): "
                  + "; ".join(f"`{n}` {w}/{c}" for n, (w, c, _) in summaries.items() if c) + ".", ""]
    if frameworks_png:
        lines += [f"![torch vs Keras]({frameworks_png.name})", ""]
    for name in args.scenarios:
        scenario = scenarios.get(name)
        table = tables[name]
        first = runs[name][fw[0]]
        info = first["notes"][0]["data"]
        lines += [f"## `{name}` — {scenario.title} (problem: [{PROBLEMS[scenario.problem]}]"
                  f"(../problems.md#{scenario.problem}))", "",
                  scenario.summary.strip(), "",
                  "**Data**: " + ", ".join(f"{k}={v}" for k, v in info.items()), ""]
        if seeds_of(args, name) != args.seeds:
            lines += [f"**Seeds**: 0–{seeds_of(args, name) - 1} (the scenario asks for {scenario.full_seeds})", ""]
        times = [f"{f}: {table[f]['seconds'].fmt(1)} s per run" + _over_budget(args, table[f]['seconds'].mean)
                 for f in fw if "seconds" in table.get(f, {})]
        if times:
            lines += ["**Time**: " + "; ".join(times), ""]
        within, compared, outside = summaries[name]
        if compared:
            lines += [f"**Agreement**: {within} of {compared} headline metrics within the seed-to-seed spread"
                      + (f"; outside: {', '.join(f'`{k}`' for k in outside)}" if outside else "") + ".", ""]
        lines += metric_table(table, scenario.headline, fw) + [""]
        data_keys = sorted({k for f in fw for k in table.get(f, {}) if k.startswith("data/")})
        if data_keys:
            lines += ["Data statistics:", ""] + metric_table(table, data_keys, fw) + [""]
        notes: dict[str, list[str]] = {}  # seed 0's notes, once each, with the frameworks giving them
        for f in fw:
            for note in runs[name][f]["notes"][0]["notes"]:
                notes.setdefault(note, []).append(f)
        if notes:
            lines += ["Notes (seed 0):", ""]
            lines += [f"- {n}" + ("" if len(who) == len(fw) else f" ({', '.join(who)})") for n, who in notes.items()]
            lines += [""]
        for path in plots.get(name, []):
            lines += [f"![{path.stem}]({path.name})", ""]
        other = sorted({k for f in fw for k in table.get(f, {})} - set(scenario.headline) - set(data_keys)
                       - {"seed", "seconds"})
        if other:
            lines += ["<details><summary>All metrics</summary>", ""] + metric_table(table, other, fw)
            lines += ["", "</details>", ""]
    path = args.out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


#: speed target of ``lossparity.run --quick`` on 2 CPU cores; checked here, not by a timed test
QUICK_BUDGET_S = 60.0


def _over_budget(args, seconds: float) -> str:
    return f" (over the {QUICK_BUDGET_S:.0f} s budget of --quick)" if args.quick and seconds > QUICK_BUDGET_S else ""


def slow_quick_runs(runs: dict) -> list[str]:
    """``scenario/framework/seedN: seconds`` of every quick run over ``QUICK_BUDGET_S``."""
    return [f"{name}/{framework}/seed{m.get('seed', '?')}: {m['seconds']:.1f} s"
            for name, by_framework in runs.items() for framework, r in by_framework.items()
            for m in r["metrics"] if m.get("quick") and m.get("seconds", 0.0) > QUICK_BUDGET_S]


def seeds_of(args, name: str) -> int:
    """Seeds of one scenario: ``--seeds``, raised to the scenario's ``full_seeds`` in full reports."""
    return args.seeds if args.quick else max(args.seeds, scenarios.get(name).full_seeds)


def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name in args.scenarios:
        for framework in args.frameworks:
            for seed in range(seeds_of(args, name)):
                run_one(args, name, framework, seed)
    tables, runs, plots, curves_all = {}, {}, {}, {}
    for name in args.scenarios:
        runs[name] = {}
        per_framework, curves = {}, {}
        for framework in args.frameworks:
            metrics, histories, notes = load_runs(args.out, name, framework, seeds_of(args, name))
            runs[name][framework] = {"metrics": metrics, "notes": notes}
            per_framework[framework] = metrics
            curves[framework] = plotting.mean_curves(histories)
        tables[name] = aggregate(per_framework)
        curves_all[name] = curves
        plots[name] = scenarios.get(name).plot_report(tables[name], curves, args.out)
    png = frameworks_plot(tables, {n: scenarios.get(n).headline for n in args.scenarios}, args.out)
    path = write_report(args, tables, runs, plots, png, time.perf_counter() - start)
    summary = {name: {f: {k: [s.mean, s.std, s.n] for k, s in t.items()} for f, t in table.items()}
               for name, table in tables.items()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path} ({(time.perf_counter() - start) / 60:.1f} min)")
    slow = slow_quick_runs(runs)
    if slow:  # reported, not failed: a busy machine slows runs (the suite has no timed tests)
        print(f"quick runs over the {QUICK_BUDGET_S:.0f} s budget: " + "; ".join(slow), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
