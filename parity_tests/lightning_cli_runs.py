"""Several ``python -m lossparity.lightning_cli`` command lines in one interpreter, one after the
other: each goes through the module's ``__main__`` with its own ``sys.argv`` (exactly as on the
command line), and torch + Lightning are imported once instead of once per command (their import
is most of a quick command's time)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

# each command's output follows a ``=== CLI <n>`` line; a failing command ends the process
CLI_COMMANDS = (
    "import json, runpy, sys\n"
    "for n, argv in enumerate(json.loads(sys.argv[1])):\n"
    "    print(f'=== CLI {n}', flush=True)\n"
    "    sys.argv = ['lossparity.lightning_cli', *argv]\n"
    "    runpy.run_module('lossparity.lightning_cli', run_name='__main__', alter_sys=True)\n"
    "    sys.stdout.flush()\n"
)


def run_cli_commands(commands, timeout=600):
    """``(proc, [stdout of each command that started])``: ``commands`` (argument lists after
    ``python -m lossparity.lightning_cli``) run in one subprocess, in order, from the repository root."""
    proc = subprocess.run([sys.executable, "-c", CLI_COMMANDS, json.dumps(commands)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    parts = proc.stdout.split("=== CLI ")[1:]
    return proc, [part.split("\n", 1)[1] if "\n" in part else "" for part in parts]
