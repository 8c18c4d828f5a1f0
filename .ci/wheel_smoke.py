"""Smoke test of an installed lossparity wheel, run by .ci/wheel_smoke.sh from a directory outside
the repository in a fresh virtualenv:

    python wheel_smoke.py contents WHEEL     # the wheel holds our five packages and their data only
    python wheel_smoke.py torch              # a [torch]-only install
    python wheel_smoke.py tf                 # a [tf]-only install
    python wheel_smoke.py all USER_PKG_DIR   # an [all] install: lossparity check on the example package
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile

PACKAGES = ("spec", "torch_impl", "tf_impl", "parity_tests", "lossparity")


def say(msg: str) -> None:
    print(f"[wheel-smoke {sys.argv[1]}] {msg}", flush=True)


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def from_site_packages(module) -> None:
    """Imported from this environment's site-packages, not from a source checkout."""
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    where = os.path.realpath(module.__file__)
    assert where.startswith(site + os.sep), f"{module.__name__} imported from {where}, not {site}"


def console(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "lossparity")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise SystemExit(f"lossparity {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return proc


def every_help() -> None:
    from lossparity import cli

    out = console("--help").stdout
    assert out.startswith("usage: lossparity") and all(c.name in out for c in cli.COMMANDS), out
    for command in cli.COMMANDS:
        out = console(command.name, "--help").stdout
        assert "usage: lossparity" in out, (command.name, out[:300])
    say(f"lossparity --help and the --help of {len(cli.COMMANDS)} commands")


def contents(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    extra = {t for t in tops if t not in PACKAGES and not t.endswith(".dist-info")}
    assert not extra, f"unexpected top-level entries in the wheel: {sorted(extra)}"
    assert set(PACKAGES) <= tops, f"missing packages: {sorted(set(PACKAGES) - tops)}"
    golden = [n for n in names if n.startswith("parity_tests/golden/") and n.endswith(".npz")]
    configs = [n for n in names if n.startswith("lossparity/configs/") and n.endswith(".yaml")]
    assert golden and configs, (len(golden), len(configs))
    stray = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]
    assert not stray, stray
    entry = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry[0]).decode()
    assert "lossparity = lossparity.cli:main" in text, text
    say(f"{len(names)} files: {', '.join(sorted(tops))}; {len(golden)} golden files, {len(configs)} configs")


def torch_only() -> None:
    import torch

    import torch_impl

    from_site_packages(torch_impl)
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules
    assert not installed("tensorflow") and not installed("keras"), "[torch] installed TensorFlow/Keras"
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, :1] > 0).float()
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = torch_impl.get_loss("weighted_bce", pos_weight=2.0)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert "tensorflow" not in sys.modules
    say(f"import torch_impl without TensorFlow; 3 steps of weighted_bce: {losses[0]:.4f} -> {losses[-1]:.4f}")
    every_help()


def tf_only() -> None:
    assert not installed("torch"), "[tf] installed torch"
    assert not installed("mpmath"), "mpmath is installed: uninstall it first"
    import numpy as np

    import keras
    import tf_impl

    from_site_packages(tf_impl)
    assert "torch" not in sys.modules and "mpmath" not in sys.modules
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=tf_impl.get_loss("weighted_bce", pos_weight=2.0))
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"]
    assert np.isfinite(history).all(), history
    assert "torch" not in sys.modules
    say(f"import tf_impl without torch or mpmath; Keras fit, 2 epochs: loss {history[0]:.4f} -> {history[-1]:.4f}")
    out = console("--help").stdout
    assert out.startswith("usage: lossparity"), out
    say("lossparity --help")


def all_extras(user_pkg: str) -> None:
    import tf_impl
    import torch_impl

    from_site_packages(torch_impl)
    from_site_packages(tf_impl)
    assert console("--help").stdout.startswith("usage: lossparity")
    os.environ["PYTHONPATH"] = user_pkg  # the example package only, not the repository
    proc = console("check", "--module", "user_loss.loss_specs", "--only", "squared_margin", check=False)
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, f"lossparity check failed ({proc.returncode}):\n{tail}"
    assert "squared_margin" in proc.stdout, tail
    say("lossparity check --module user_loss.loss_specs: passed; lossparity --help")


if __name__ == "__main__":
    mode = sys.argv[1]
    assert not os.path.exists("pyproject.toml"), "run from a directory outside the repository"
    if mode == "contents":
        contents(sys.argv[2])
    elif mode == "torch":
        torch_only()
    elif mode == "tf":
        tf_only()
    elif mode == "all":
        all_extras(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
