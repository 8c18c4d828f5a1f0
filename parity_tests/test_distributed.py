"""Batch-statistic losses under data parallelism (``ddp`` marker; CPU/gloo, 2 processes).

Contract: with ``sync=True`` the parameter gradients after DDP's averaging equal those of the
single-process step on the global batch (float64, 1e-10), and every replica's loss value is the
global-batch loss. With ``sync=False`` each replica sees only its shard's statistics: the
documented (different) per-shard result.
"""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests import distributed_checks as dc

from .conftest import distributed_results

pytestmark = [pytest.mark.ddp, pytest.mark.project]


@pytest.fixture(scope="module")
def torch_ddp_results(pytestconfig):
    """torch DDP, 2 spawned processes (gloo), every configuration with and without sync: run once per
    session in the background from collection on (``distributed_runs``)."""
    return distributed_results(pytestconfig, "torch_ddp_results")


CONFIGS = dc.batch_statistic_configs()


def test_there_are_batch_statistic_losses_to_check():
    names = {name for name, _, _ in CONFIGS}
    assert "soft_fbeta" in names


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[f"{n}-{p}" for n, p, _ in CONFIGS])
def test_torch_ddp_sync_equals_global_batch(torch_ddp_results, i):
    name, params, classes = CONFIGS[i]
    value, grads = torch_ddp_results[f"{i}:True"]
    ref_value, ref_grads = dc.torch_grads(name, params, classes)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(grads, ref_grads, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[f"{n}-{p}" for n, p, _ in CONFIGS])
def test_torch_ddp_without_sync_is_the_per_shard_result(torch_ddp_results, i):
    """Documents what users get with sync=False: the loss of rank 0's shard only, and DDP's
    average of the per-shard gradients — not the global-batch gradient."""
    name, params, classes = CONFIGS[i]
    value, grads = torch_ddp_results[f"{i}:False"]
    _, ref_grads = dc.torch_grads(name, params, classes)
    assert not np.allclose(grads, ref_grads, rtol=1e-6), "per-shard statistics differ from global ones"
    half_value, _ = dc.torch_grads(name, params, classes, sync=False, rows=slice(0, dc.N_GLOBAL // 2))
    np.testing.assert_allclose(value, half_value, rtol=1e-12)  # rank 0 reports its own shard's loss


@pytest.fixture(scope="module")
def keras_mirrored_results(pytestconfig):
    """MirroredStrategy on 2 logical CPUs in a fresh interpreter (``distributed_checks.keras_main``):
    run once per session in the background from collection on (``distributed_runs``)."""
    return distributed_results(pytestconfig, "keras_mirrored_results")


KERAS_CONFIGS = CONFIGS + dc.PER_SAMPLE_CONTROLS


@pytest.mark.parametrize("i", range(len(KERAS_CONFIGS)), ids=[f"{n}-{p}" for n, p, _ in KERAS_CONFIGS])
def test_keras_mirrored_strategy_equals_one_device(keras_mirrored_results, i):
    """model.fit under MirroredStrategy (2 logical CPUs, global batch split in two) takes the
    same SGD step and reports the same loss as on one device (float64)."""
    single_loss, single_w = keras_mirrored_results[f"{i}:single"]
    loss, weights = keras_mirrored_results[f"{i}:mirrored"]
    np.testing.assert_allclose(loss, single_loss, rtol=1e-10)
    np.testing.assert_allclose(weights, single_w, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[f"{n}-{p}" for n, p, _ in CONFIGS])
def test_keras_mirrored_without_sync_differs(keras_mirrored_results, i):
    _, single_w = keras_mirrored_results[f"{i}:single"]
    _, weights = keras_mirrored_results[f"{i}:mirrored-nosync"]
    assert not np.allclose(weights, single_w, rtol=1e-6)


SINGLE_INPUT = [i for i, (n, _, _) in enumerate(CONFIGS) if __import__("spec").get(n).single_input]


@pytest.mark.parametrize("i", SINGLE_INPUT, ids=[f"{CONFIGS[i][0]}-{CONFIGS[i][1]}" for i in SINGLE_INPUT])
def test_keras_activity_regularizer_with_sync_is_refused_under_mirrored(keras_mirrored_results, i):
    """Keras shares a layer's added losses between replica threads; with a cross-replica sum in
    the call one replica collects both penalties. Refused with a message naming the way out."""
    message = keras_mirrored_results[f"{i}:activity-sync"]
    assert message is not None and "sync=True is not supported as an activity_regularizer" in message
    assert "compile the penalty as the loss of a model output" in message


LIGHTNING_CONFIGS = dc.lightning_configs()


@pytest.fixture(scope="module")
def lightning_ddp_steps(pytestconfig):
    """Per configuration of ``LIGHTNING_CONFIGS``: ``{devices: result}`` of one step through
    Lightning's ddp_spawn (2 CPU processes) and of the one-device step, every configuration in one
    interpreter (``distributed_runs.lightning_ddp_steps``, run once per session in the background
    from collection on)."""
    return distributed_results(pytestconfig, "lightning_ddp_steps")


@pytest.mark.parametrize("i", range(len(LIGHTNING_CONFIGS)), ids=[f"{n}-{p}" for n, p, _ in LIGHTNING_CONFIGS])
def test_lightning_ddp_step_and_logged_loss_equal_the_global_batch(lightning_ddp_steps, i):
    """Lightning's ddp_spawn (2 CPU processes): the weights after one step and the logged loss
    equal the single-process step on the global batch (float64). The ddp_spawn step runs first: its
    two workers are fresh spawned interpreters, and the one-device step after it is a separate
    ``Trainer``."""
    name, params, classes = LIGHTNING_CONFIGS[i]
    results = lightning_ddp_steps[i]
    ref_value, _ = dc.torch_grads(name, params, classes)
    np.testing.assert_allclose(results[1]["logged"], ref_value, rtol=1e-12)
    np.testing.assert_allclose(results[2]["logged"], ref_value, rtol=1e-12)
    np.testing.assert_allclose(results[2]["weights"], results[1]["weights"], rtol=1e-10, atol=1e-13)


def test_lightning_cli_fits_with_ddp_on_two_cpu_processes(tmp_path):
    """The scenario CLI takes Lightning's own --trainer.* flags: strategy ddp, 2 CPU processes
    (gloo), one epoch of the quick multilabel data; checkpoint and metrics written once (rank 0),
    and the global step is the per-process batch count (each process saw half the data)."""
    import csv
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "lossparity.lightning_cli", "fit", "--config", "lossparity/configs/multilabel.yaml",
           "--out", str(tmp_path), "--trainer.max_epochs", "1", "--data.source_args", "{quick: true}",
           "--data.batch_size", "100", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
           "--trainer.strategy", "ddp", "--trainer.enable_progress_bar", "false"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpts = list(tmp_path.glob("logs/version_*/checkpoints/last.ckpt"))
    assert len(ckpts) == 1, sorted(str(p) for p in tmp_path.rglob("*"))
    import torch

    state = torch.load(ckpts[0], map_location="cpu", weights_only=False)
    # quick multilabel: 3000 training rows, batch 100 per process, 2 processes -> 15 steps
    assert state["global_step"] == 15
    rows = list(csv.DictReader(open(next(tmp_path.glob("logs/version_*/metrics.csv")))))
    assert any(r.get("val_f1") for r in rows)
