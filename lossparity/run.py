"""Train one scenario in one framework.

    python -m lossparity.run SCENARIO --framework {torch,keras} [--quick] [--seed N] --out DIR
                          [--data PATH] [--epochs N] [--quiet]

Writes ``DIR/metrics.json`` (a flat dict of the final held-out metrics, ``"<job>/<metric>"``, plus
``"framework"``, ``"scenario"``, ``"seed"``, ``"quick"`` and ``"seconds"``: the wall-clock time of
the whole command, imports included), ``DIR/history.json`` (per-epoch curves of every job),
``DIR/notes.json`` and the scenario's plots ``DIR/*.png``. Lightning logs and checkpoints go to
``DIR/lightning/<job>/``, Keras models to ``DIR/keras/<job>.keras``. ``--quick`` (small subsets,
2 epochs) finishes in under a minute on 2 CPU cores. Scenarios: ``multilabel`` (the sparse-multilabel problem of docs/problems.md),
``digits`` (MNIST thresholding and data selection; ``--data`` = a local ``mnist.npz`` or MNIST IDX folder, else scikit-learn's
bundled digits), ``imbalanced`` (the cost-sensitive problem; ``--data`` = a local ``.csv`` / ``.npz`` of features and 0/1
labels, else a seeded ``make_classification`` problem), ``count_penalty`` (count above a threshold: hard vs soft count
penalty vs a clipping head; the hard count trains the plain-MSE weights bit for bit),
``sparse_autoencoder`` (KL sparsity: ``kl_sparsity`` on a sigmoid coding layer, scikit-learn's digits),
``segmentation`` (segmentation overlap losses, ship detection: a U-Net on synthetic sea images, seven losses, which ones
collapse to all-zero masks).
"""
from __future__ import annotations

import time

_START = time.perf_counter()

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from lossparity import scenarios  # noqa: E402
from lossparity.scenarios.base import RunConfig, write_json  # noqa: E402

PROG = "python -m lossparity.run"


def parse_args(argv=None, prog=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog or PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=scenarios.names())
    parser.add_argument("--framework", required=True, choices=scenarios.FRAMEWORKS)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--quick", action="store_true", help="small subsets and 2 epochs (< 1 min)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batch order (default 0)")
    parser.add_argument("--data", type=Path, default=None,
                        help="digits: a local mnist.npz or folder of MNIST IDX files (default: sklearn digits); "
                             "imbalanced: a local .csv/.npz of features + 0/1 label (default: synthetic)")
    parser.add_argument("--epochs", type=int, default=None, help="override every job's number of epochs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of torch / TensorFlow kernels (default 1: the networks are small; "
                             "0 = the framework's default)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.data is not None and args.scenario not in ("digits", "imbalanced"):
        parser.error("--data is only used by the digits and imbalanced scenarios")
    if args.data is not None and not args.data.exists():
        parser.error(f"--data {args.data}: no such file or folder (a local mnist.npz or MNIST IDX folder, or a "
                     f".csv/.npz table for imbalanced; "
                     f"nothing is downloaded)")
    return args


def run(args: argparse.Namespace, start: float | None = None) -> dict:
    """Run ``args.scenario`` and write the outputs; return the metrics written."""
    from lossparity.scenarios.backends import make_backend

    start = time.perf_counter() if start is None else start
    scenario = scenarios.get(args.scenario)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig(out=out, quick=args.quick, seed=args.seed, data=args.data, epochs=args.epochs,
                    progress=not args.quiet)
    backend = make_backend(args.framework, args.threads or None)
    data = scenario.data(cfg)
    result = scenario.run(backend, data, cfg)
    metrics = {"scenario": scenario.name, "framework": args.framework, "seed": args.seed,
               "quick": bool(args.quick), **result.metrics}
    plots = scenario.plot_run(result, args.framework, out)
    metrics["seconds"] = time.perf_counter() - start
    write_json(out / "metrics.json", metrics)
    write_json(out / "history.json", result.histories)
    write_json(out / "notes.json", {"data": data.info, "notes": result.notes,
                                    "plots": [p.name for p in plots]})
    return metrics


def main(argv=None, prog=None) -> int:
    from lossparity.scenarios.data import DataFormatError

    args = parse_args(argv, prog)
    try:
        metrics = run(args, _START if argv is None else None)
    except (DataFormatError, FileNotFoundError) as err:
        print(f"{prog or PROG}: error: {err}", file=sys.stderr)
        return 2
    print(f"{metrics['scenario']} [{metrics['framework']}] seed {metrics['seed']}: "
          f"{metrics['seconds']:.1f} s -> {args.out / 'metrics.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
