"""The parity table: every registered loss, every case, float32 and float64, every reduction.

    python -m lossparity.demo [--only NAME ...] [--no-keras]

For each loss and dtype it prints the largest absolute and relative error of the value and of
the gradient, torch vs reference, Keras vs reference and torch vs Keras, and whether all are
within the entry's tolerances. Exits 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import sys
import time

import spec
from parity_tests import harness

COLUMNS = ("loss", "dtype", "runs", "torch-ref val", "torch-ref grad", "keras-ref val", "keras-ref grad",
           "torch-keras val", "torch-keras grad", "status")


def _fmt(abs_err: float, rel_err: float) -> str:
    return f"{abs_err:.1e}/{rel_err:.1e}"


def rows(names, with_keras=True):
    for name in names:
        entry = spec.get(name)
        for dtype in spec.DTYPES:
            worst = {k: [0.0, 0.0] for k in ("tv", "tg", "kv", "kg", "xv", "xg")}
            failures, runs = [], 0
            for case in entry.cases():
                if dtype not in case.dtypes:
                    continue
                for reduction in entry.reductions(entry.validate_params(case.params)):
                    ref = harness.reference(entry, case, dtype, reduction)
                    t = harness.run_torch(entry, case, dtype, reduction)
                    failures += harness.compare(t, ref, entry, dtype, what=f"{case.id}[{reduction}] torch")
                    pairs = [("t", t, ref)]
                    if with_keras:
                        k = harness.run_keras(entry, case, dtype, reduction)
                        failures += harness.compare(k, ref, entry, dtype, what=f"{case.id}[{reduction}] keras")
                        failures += harness.compare(t, k, entry, dtype, what=f"{case.id}[{reduction}] torch-keras")
                        pairs += [("k", k, ref), ("x", t, k)]
                    for tag, a, b in pairs:
                        va, vr, ga, gr = harness.errors(a, b)
                        for key, ab, rl in ((tag + "v", va, vr), (tag + "g", ga, gr)):
                            worst[key][0] = max(worst[key][0], ab)
                            worst[key][1] = max(worst[key][1], min(rl, 1e99))
                    runs += 1
            cells = [_fmt(*worst[k]) if (with_keras or k[0] == "t") else "-" for k in ("tv", "tg", "kv", "kg", "xv", "xg")]
            yield [name, dtype, str(runs), *cells, "ok" if not failures else "MISMATCH"], failures


def main(argv=None, prog=None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m lossparity.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--no-keras", action="store_true", help="torch vs reference only")
    args = parser.parse_args(argv)
    start = time.time()
    names = args.only or spec.names()
    widths = [max(24, *map(len, names)), 8, 5] + [16] * 6 + [8]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    print("  ".join("-" * w for w in widths))
    all_failures = []
    for row, failures in rows(names, with_keras=not args.no_keras):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)), flush=True)
        all_failures += [f"{row[0]} {row[1]}: {f}" for f in failures]
    print("\nEach cell: max|Δ|/scale / max relative error (elements with |ref| >= 1e-6·scale), over every\n"
          "case (typical, extreme, edge) and reduction; scale = max(1, max|ref|). Pass/fail uses each\n"
          "spec entry's tolerances (float64: rtol 1e-10 value, 1e-9 grad; float32: 1e-5 / 1e-4).\n")
    for f in all_failures[:50]:
        print("MISMATCH", f)
    print(f"{len(names)} losses, {len(all_failures)} mismatches, {time.time() - start:.1f} s")
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
