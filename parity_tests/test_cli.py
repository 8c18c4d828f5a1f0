"""The ``lossparity`` command (``lossparity/cli.py``): its help, every command's own help, usage
errors, lazy imports, the packaged scenario configs, and arguments forwarded to the modules.

Every command runs in a fresh interpreter from a temporary directory outside the repository."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from lossparity import cli, paths

pytestmark = pytest.mark.project

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _lossparity(args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "lossparity", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_command_with_examples(tmp_path):
    proc = _lossparity(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("usage: lossparity ")
    for command in cli.COMMANDS:
        assert f"\n  {command.name} " in out, command.name
        assert f"lossparity {command.name} " in out or command.name == "bench-loop", f"no example of {command.name}"
    assert "examples:" in out and "'lossparity <command> --help'" in out


def test_version(tmp_path):
    proc = _lossparity(["--version"], tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("lossparity "), proc.stdout + proc.stderr


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_every_command_shows_its_own_help(command, tmp_path):
    proc = _lossparity([command, "--help"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    usage = "usage: lossparity [options] fit" if command == "fit" else f"usage: lossparity {command} "
    assert proc.stdout.startswith(usage), proc.stdout[:500]


@pytest.mark.parametrize("args,message", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["rn"], "did you mean 'run'?"),
    (["--no-such-option"], "unrecognized option"),
])
def test_usage_errors_exit_2_with_a_message(args, message, tmp_path):
    proc = _lossparity(args, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and proc.stderr.startswith("usage: lossparity"), proc.stderr


def test_no_command_prints_the_help_and_exits_2(tmp_path):
    proc = _lossparity([], tmp_path)
    assert proc.returncode == 2 and "commands:" in proc.stderr


def test_help_imports_neither_framework(tmp_path):
    code = ("import sys\nfrom lossparity import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', [m for m in ('torch', 'tensorflow', 'keras', 'lightning') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout[-500:]


def test_a_command_forwards_its_arguments(tmp_path):
    """``lossparity port ...`` is ``python -m parity_tests.port ...``: same output, same exit status."""
    args = ["--list-cases", "--prediction", "logits", "--target", "binary"]
    proc = _lossparity(["port", *args], tmp_path)
    assert proc.returncode == 0, proc.stderr
    direct = subprocess.run([sys.executable, "-m", "parity_tests.port", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert proc.stdout == direct.stdout and "edge-zeros" in proc.stdout
    bad = _lossparity(["port", "--prediction", "nonsense", "--target", "binary"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("usage: lossparity port"), bad.stderr


def test_every_scenario_has_a_packaged_config():
    from lossparity import scenarios

    assert paths.config_names() == sorted(scenarios.names())
    for name in scenarios.names():
        path = paths.config_path(name)
        assert path.is_file() and scenarios.get(name).config_path() == path
        for value in (name, f"{name}.yaml", f"lossparity/configs/{name}.yaml"):
            assert pathlib.Path(paths.resolve_config(value)).samefile(path), value
    assert paths.resolve_config("no_such.yaml") == "no_such.yaml"  # left for the Lightning CLI to report
    with pytest.raises(ValueError, match="no packaged config 'no_such'"):
        paths.config_path("no_such")


def test_fit_finds_the_packaged_config_from_any_directory(tmp_path):
    proc = _lossparity(["fit", "--config", "multilabel", "--print_config"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lossparity.scenarios.multilabel:lightning_data" in proc.stdout


def test_console_script_and_module_entry_point_are_declared():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"lossparity": "lossparity.cli:main"}
    assert "configs/*.yaml" in project["tool"]["setuptools"]["package-data"]["lossparity"]
    assert (ROOT / "lossparity" / "__main__.py").is_file()
