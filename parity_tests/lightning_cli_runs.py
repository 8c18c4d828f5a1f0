"""Several ``python -m lossparity.lightning_cli`` command lines in one interpreter, one after the
other: each goes through the module's ``__main__`` with its own ``sys.argv`` (exactly as on the
command line), and torch + Lightning are imported once instead of once per command (their import
is most of a quick command's time).

:func:`run_cli_commands` runs a list and waits. The quick fit + test of every scenario's committed
config (``test_scenarios.py::test_lightning_cli_fit``) is one such list, started in the background
at collection (``conftest.py``, like the quick report) and read by each test from
:func:`scenario_commands`' folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
#: where a CLI run without --out would write: nothing may appear there
STRAY = (ROOT / "lightning_logs", ROOT / "build" / "lightning_cli")

# argv[1]: JSON list of argument lists; argv[2] (optional): a JSON file with each command's outcome
# (``null`` or the exception's traceback) and the files that appeared under STRAY during it. Each
# command's output follows a ``=== CLI <n>`` line. Without argv[2] a failing command ends the process;
# with it the others still run (each test reads its own command's outcome).
CLI_COMMANDS = (
    "import json, runpy, sys, traceback\n"
    "from pathlib import Path\n"
    f"stray = [Path(p) for p in {[str(p) for p in STRAY]!r}]\n"
    "def snapshot():\n"
    "    return {str(p) for d in stray for p in d.rglob('*')}\n"
    "commands, record = json.loads(sys.argv[1]), sys.argv[2:]\n"
    "seen, outcomes, stray_files = snapshot(), [], []\n"
    "for n, argv in enumerate(commands):\n"
    "    print(f'=== CLI {n}', flush=True)\n"
    "    sys.argv = ['lossparity.lightning_cli', *argv]\n"
    "    try:\n"
    "        try:\n"
    "            runpy.run_module('lossparity.lightning_cli', run_name='__main__', alter_sys=True)\n"
    "        except SystemExit as done:  # exit status 0, as the command line would end\n"
    "            if done.code not in (None, 0):\n"
    "                raise\n"
    "        outcomes.append(None)\n"
    "    except BaseException as err:\n"
    "        if not record or isinstance(err, KeyboardInterrupt):\n"
    "            raise\n"
    "        outcomes.append(traceback.format_exc())\n"
    "    sys.stdout.flush()\n"
    "    sys.stderr.flush()\n"
    "    now = snapshot()\n"
    "    stray_files.append(sorted(now - seen))\n"
    "    seen = now\n"
    "if record:\n"
    "    Path(record[0]).write_text(json.dumps({'outcomes': outcomes, 'stray': stray_files}))\n"
)


def run_cli_commands(commands, timeout=600):
    """``(proc, [stdout of each command that started])``: ``commands`` (argument lists after
    ``python -m lossparity.lightning_cli``) run in one subprocess, in order, from the repository root."""
    proc = subprocess.run([sys.executable, "-c", CLI_COMMANDS, json.dumps(commands)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)
    return proc, split_output(proc.stdout)


def split_output(stdout: str) -> list[str]:
    parts = stdout.split("=== CLI ")[1:]
    return [part.split("\n", 1)[1] if "\n" in part else "" for part in parts]


def scenario_commands(names, folder: Path) -> dict[str, list[list[str]]]:
    """Per scenario: its quick fit (one epoch of the quick data, ``--out folder/<name>``) and the test
    of the fit's last checkpoint, both with the committed config."""
    from lossparity import scenarios

    out = {}
    for name in names:
        config, run = scenarios.get(name).config_path(), folder / name
        ckpt = run / "logs" / "version_0" / "checkpoints" / "last.ckpt"  # a fresh --out: the first version
        out[name] = [
            ["fit", "--config", str(config), "--out", str(run), "--trainer.max_epochs", "1",
             "--data.source_args", "{quick: true}", "--trainer.enable_progress_bar", "false"],
            ["test", "--config", str(config), "--out", str(run), "--data.source_args", "{quick: true}",
             "--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false"],
        ]
    return out


def background_command(names, folder: Path) -> list[str]:
    """The command line that runs :func:`scenario_commands` of ``names`` in one interpreter, writing
    ``folder/log.txt`` (via the caller) and ``folder/outcomes.json``."""
    commands = [c for pair in scenario_commands(names, folder).values() for c in pair]
    (folder / "commands.json").write_text(json.dumps({"names": list(names), "commands": commands}))
    return [sys.executable, "-c", CLI_COMMANDS, json.dumps(commands), str(folder / "outcomes.json")]
