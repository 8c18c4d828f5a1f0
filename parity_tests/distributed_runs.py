"""The data-parallel runs of ``test_distributed.py`` and ``test_multinode.py``, one after the other in
one background process started at collection (``conftest.py``, like the quick report), so that each
runs once per test session however pytest-xdist splits the tests between its workers, and beside
the other tests instead of inside one worker's fixture setup.

    python -m parity_tests.distributed_runs FOLDER NAME [NAME ...]

runs each named run (:data:`RUNS`) into ``FOLDER/NAME``: ``results.npy`` (what its workers
returned) and ``exit_code`` ("0", or "1" with the traceback in ``error.txt``); a failing run does not
stop the next one. Each test fixture waits for its own run's ``exit_code``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: seconds any one launch may take
TIMEOUT_S = 600
#: what a surrounding scheduler or launcher may have set: the nodes must see only what we give them
CLUSTER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "WORLD_SIZE", "RANK", "LOCAL_RANK", "GROUP_RANK",
                     "LOCAL_WORLD_SIZE", "TF_CONFIG")
CLUSTER_PREFIXES = ("SLURM_", "TORCHELASTIC_", "OMPI_", "PMI_", "LSB_")


class LaunchFailed(RuntimeError):
    """A launched process failed or outlived :data:`TIMEOUT_S`; the message has every process's exit
    status and the tail of its output."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the OS has free now (bound together, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(code: str, node_envs: list[dict], log_dir: Path) -> None:
    """Run ``python -c code`` once per entry of ``node_envs`` (from the repository root), all at
    once; wait for all. When one fails or ``TIMEOUT_S`` passes, the others are killed and
    :class:`LaunchFailed` tells every process's exit status and the tail of its output."""
    base = {k: v for k, v in os.environ.items() if k not in CLUSTER_VARIABLES and not k.startswith(CLUSTER_PREFIXES)}
    base.update(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    logs = [log_dir / f"node{i}.log" for i in range(len(node_envs))]
    procs, killed, timed_out = [], set(), False
    try:
        for env, log in zip(node_envs, logs):
            with open(log, "w") as out:
                procs.append(subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**base, **env},
                                              stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + TIMEOUT_S
        while None in (codes := [p.poll() for p in procs]) and not any(codes):
            if timed_out := time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for i, p in enumerate(procs):
            if p.poll() is None:
                p.kill()
                p.wait()
                killed.add(i)
    if all(p.returncode == 0 for p in procs):
        return
    why = f"still running after {TIMEOUT_S} s" if timed_out else "another node failed"
    report = [f"--- node {i}: {f'killed ({why})' if i in killed else f'exit status {p.returncode}'}; "
              f"last output:\n{log.read_text()[-3000:]}" for i, (p, log) in enumerate(zip(procs, logs))]
    raise LaunchFailed("launch failed\n" + "\n".join(report))


def torch_ddp(folder: Path) -> None:
    """torch DDP, 2 spawned processes (gloo): every batch-statistic configuration, sync on and off."""
    import torch.multiprocessing as mp

    from parity_tests import distributed_checks as dc

    mp.spawn(dc.torch_worker, args=(2, free_ports(1)[0], str(folder / "results.npy")), nprocs=2, join=True)


def keras_mirrored(folder: Path) -> None:
    """MirroredStrategy on 2 logical CPUs, in a fresh interpreter (the logical devices are configured
    before TensorFlow starts)."""
    out = folder / "results.npy"
    launch(f"from parity_tests.distributed_checks import keras_main; keras_main({str(out)!r})", [{}], folder)


def lightning_ddp_steps(folder: Path) -> None:
    """Lightning's ddp_spawn step and the one-device step of each Lightning configuration, in one fresh
    interpreter (one import of torch and Lightning)."""
    out = folder / "results.npy"
    launch(f"from parity_tests.distributed_checks import lightning_ddp_steps; lightning_ddp_steps({str(out)!r})",
           [{}], folder)


def lightning_nodes(folder: Path) -> None:
    """Two Lightning nodes (one CPU process each) on localhost: every configuration, sync on and off."""
    out = folder / "results.npy"
    code = f"from parity_tests.distributed_checks import lightning_node_main; lightning_node_main({str(out)!r})"
    (port,) = free_ports(1)
    launch(code, [{"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(node), "WORLD_SIZE": "2",
                   "LOCAL_RANK": "0"} for node in range(2)], folder)


def keras_workers(folder: Path) -> None:
    """Two MultiWorkerMirroredStrategy workers on localhost (CPU; worker 0 writes the results)."""
    out = folder / "results.npy"
    code = f"from parity_tests.distributed_checks import keras_main; keras_main({str(out)!r}, 'multiworker')"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    launch(code, [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   "CUDA_VISIBLE_DEVICES": ""} for index in range(2)], folder)


#: fixture name → run, in the order they run (test_distributed's first: its tests come first)
RUNS = {"torch_ddp_results": torch_ddp, "keras_mirrored_results": keras_mirrored,
        "lightning_ddp_steps": lightning_ddp_steps, "lightning_nodes": lightning_nodes, "keras_workers": keras_workers}


def background_command(names, folder: Path) -> list[str]:
    return [sys.executable, "-m", "parity_tests.distributed_runs", str(folder), *names]


def main(argv) -> None:
    folder, names = Path(argv[0]), argv[1:]
    for name in names:
        run_dir = folder / name
        run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            RUNS[name](run_dir)
            code = "0"
        except Exception:  # the fixture reports it; the next run still runs
            (run_dir / "error.txt").write_text(traceback.format_exc())
            code = "1"
        print(f"{name}: exit {code} in {time.monotonic() - started:.1f} s", flush=True)
        (run_dir / "exit_code").write_text(code)


if __name__ == "__main__":
    main(sys.argv[1:])
