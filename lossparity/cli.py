"""The ``lossparity`` command: one entry point for the tools of the package.

    lossparity <command> [args ...]
    lossparity <command> --help          # the command's own options
    python -m lossparity <command> ...   # the same without the console script

Each command hands the rest of the command line to its module's ``main(argv)`` (the ``python -m``
forms keep working). Nothing here imports torch or TensorFlow: a command loads what it needs when
it runs, so ``lossparity --help`` is instant and works in a ``[torch]``-only or ``[tf]``-only
install.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str
    #: the module's main takes ``prog`` (argparse modules) or only ``argv`` (the Lightning CLI)
    takes_prog: bool = True
    #: arguments put before the user's (``fit`` → the Lightning CLI's ``fit`` subcommand)
    prefix: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("demo", "lossparity.demo", "print the parity table: every loss, torch and Keras vs the reference"),
    Command("check", "parity_tests.check", "run the parity suite on your own losses (a module of spec entries)"),
    Command("port", "parity_tests.port", "check a torch port of your Keras loss (or back): values and gradients"),
    Command("golden", "lossparity.make_golden", "write or check the golden vectors of a catalog"),
    Command("run", "lossparity.run", "train one scenario in torch (Lightning) or Keras"),
    Command("fit", "lossparity.lightning_cli", "train a scenario with the Lightning CLI and its YAML config",
            takes_prog=False, prefix=("fit",)),
    Command("report", "lossparity.report", "run every scenario in both frameworks over seeds: report.md + plots"),
    Command("bench", "lossparity.bench", "time every loss against its peers (forward+backward, memory)"),
    Command("bench-loop", "lossparity.bench_loop", "time each scenario's training step: Lightning and hand loops, ours and the peer loss"),
)
BY_NAME = {c.name: c for c in COMMANDS}

DESCRIPTION = ("One loss library for two frameworks: a NumPy spec, PyTorch/Lightning and TensorFlow/Keras "
               "implementations proven equal to it.")

EPILOG = """\
examples:
  lossparity demo --only weighted_bce soft_dice
  lossparity check --module my_pkg.loss_specs --junit-xml parity.xml
  lossparity port --keras my_pkg.keras_losses:focal --torch my_pkg.torch_losses:focal \\
      --prediction logits --target binary
  lossparity golden --module my_pkg.loss_specs --out golden/
  lossparity run multilabel --framework torch --quick --out out/multilabel-torch
  lossparity fit --config multilabel --trainer.max_epochs 3 --out out/fit
  lossparity report --out out/report --quick --seeds 1
  lossparity bench --quick --json out/bench.json

'lossparity <command> --help' shows a command's options."""


def version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version

        return dist_version("lossparity")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    width = max(len(c.name) for c in COMMANDS) + 2
    commands = "\n".join(f"  {c.name:<{width}}{c.summary}" for c in COMMANDS)
    parser = argparse.ArgumentParser(
        prog="lossparity", usage="lossparity [--version] [--help] <command> [args ...]",
        description=f"{DESCRIPTION}\n\ncommands:\n{commands}", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lossparity {version()}")
    return parser


def _forward_config(argv: list[str]) -> list[str]:
    """``--config NAME`` of ``fit``: a packaged scenario config when NAME is not a file."""
    from lossparity.paths import resolve_config

    out = list(argv)
    for i, arg in enumerate(out):
        if arg in ("--config", "-c") and i + 1 < len(out):
            out[i + 1] = resolve_config(out[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + resolve_config(arg.split("=", 1)[1])
    return out


def dispatch(command: Command, argv: Sequence[str]) -> int:
    """Run ``command`` with ``argv`` (what followed its name on the command line)."""
    argv = list(argv)
    main = importlib.import_module(command.module).main
    if not command.takes_prog:  # the Lightning CLI reads sys.argv (its prog and its arguments)
        argv = [*command.prefix, *(_forward_config(argv) if command.name == "fit" else argv)]
        saved = sys.argv
        sys.argv = ["lossparity", *argv]
        try:
            main()
        finally:
            sys.argv = saved
        return 0
    rc = main(argv, prog=f"lossparity {command.name}")
    return int(rc or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    first = argv[0]
    if first in BY_NAME:
        return dispatch(BY_NAME[first], argv[1:])
    if first in ("-h", "--help", "--version"):
        parser.parse_args([first])  # prints and exits 0
    if first.startswith("-"):
        parser.error(f"unrecognized option '{first}' (a command's options follow it: lossparity <command> {first})")
    close = difflib.get_close_matches(first, list(BY_NAME), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    parser.error(f"unknown command '{first}'{hint} (commands: {', '.join(BY_NAME)})")
    return 2

if __name__ == "__main__":
    sys.exit(main())
