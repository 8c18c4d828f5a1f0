"""Write or check the golden vectors.

    python -m lossparity.make_golden            # (re)write parity_tests/golden/*.npz
    python -m lossparity.make_golden --check    # exit 1 when the files and the registry disagree
    python -m lossparity.make_golden --module my_pkg.loss_specs --out golden/   # a user's entries
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import spec
from lossparity.paths import output_root, repo_root
from parity_tests import golden


def main(argv=None, prog=None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m lossparity.make_golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="folder of the .npz files (default: parity_tests/golden in a source checkout and "
                             "for --check; ./golden when writing with an installed package)")
    parser.add_argument("--only", nargs="*", help="loss names (default: every registered loss)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--module", action="append", default=[],
                        help="module registering the entries to use (default: our catalog)")
    args = parser.parse_args(argv)
    if args.out is None:  # an installed package's golden data are read, never rewritten in place
        args.out = golden.GOLDEN_DIR if args.check or repo_root() is not None else output_root() / "golden"
    from parity_tests import selection

    names = selection.configure(args.module, args.only or ()) if (args.module or args.only) else spec.names()
    entries = [spec.get(n) for n in names]
    if args.check:
        problems = golden.check(entries, args.out)
        stale = [] if args.module else sorted({p.stem for p in args.out.glob("*.npz")} - set(spec.names()))
        problems += [f"{n}.npz: no such loss in the registry" for n in stale]
        for p in problems:
            print(p)
        print(f"golden check: {len(entries)} losses, {len(problems)} problems")
        return 1 if problems else 0
    for path in golden.write(entries, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
