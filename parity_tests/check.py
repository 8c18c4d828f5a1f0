"""Check your own losses in CI: run the generic parity suite on the entries a module registers.

    python -m parity_tests.check --module my_pkg.loss_specs [--only NAME ...] [--case ID ...]
        [--dtype float32|float64] [--device cpu|cuda] [--golden-dir DIR] [--golden-only]
        [--junit-xml FILE] [--json FILE]

Runs reference vs mpmath, torch vs reference, Keras vs reference, torch vs Keras (values and
gradients, typical/extreme/edge cases, every reduction), the error contract, serialization and
the golden vectors of DIR if given; prints a per-loss table; exits 0 only when everything holds
(1 on any failure, 2 on a usage error). Every failure prints the loss, params, case, dtype, the
worst element, both values, the reference value and a one-line reproduction command.
"""
from __future__ import annotations

import argparse
import sys


def build_pytest_args(args) -> list[str]:
    from parity_tests import plugin  # pytest: imported when the check runs, not for --help

    files = [str(plugin.SUITE_DIR / f) for f in plugin.GENERIC_FILES]
    out = ["-p", "parity_tests.plugin", "-p", "no:cacheprovider", "-o", "addopts=", "-q", "-rf",
           "-W", "ignore::pytest.PytestAssertRewriteWarning",
           "--rootdir", str(plugin.SUITE_DIR), *files, "--device", args.device]
    for m in args.module:
        out += ["--lossparity-module", m]
    for n in args.only or []:
        out += ["--lossparity-only", n]
    for c in args.case or []:
        out += ["--lossparity-case", c]
    if args.dtype:
        out += ["--lossparity-dtype", args.dtype]
    if args.golden_dir:
        out += ["--lossparity-golden-dir", args.golden_dir]
    if args.golden_only:
        out += ["-m", "golden"]
    if args.junit_xml:
        out += ["--junit-xml", args.junit_xml]
    if args.json:
        out += ["--lossparity-json", args.json]
    return out


def main(argv=None, prog=None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m parity_tests.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", required=True,
                        help="module that registers the entries (repeatable)")
    parser.add_argument("--only", nargs="+", help="loss names")
    parser.add_argument("--case", nargs="+", help="case ids (as printed in a failure report)")
    parser.add_argument("--dtype", choices=("float32", "float64"))
    parser.add_argument("--device", default="cpu", help="torch device of the golden check")
    parser.add_argument("--golden-dir", help="golden vectors made by python -m lossparity.make_golden --module")
    parser.add_argument("--golden-only", action="store_true",
                        help="only torch vs the golden vectors (for a TF-less or GPU-only job)")
    parser.add_argument("--junit-xml")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import pytest

    rc = int(pytest.main(build_pytest_args(args)))
    if rc == 0:
        return 0
    return 2 if rc in (2, 3, 4) else 1


if __name__ == "__main__":
    sys.exit(main())
