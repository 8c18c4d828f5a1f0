"""Batch-statistic losses across machines (``ddp`` marker; CPU, localhost).

Each framework is launched the way a cluster runs it: two separate processes, each one node (one
worker) of the job, told its place only by environment variables:

- Lightning: ``Trainer(accelerator="cpu", devices=1, num_nodes=2, strategy="ddp")`` in each of two
  node processes given ``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``WORLD_SIZE`` and
  ``LOCAL_RANK`` (Lightning's own environment for manually launched jobs; gloo);
- Keras/TF: ``MultiWorkerMirroredStrategy`` in each of two worker processes given ``TF_CONFIG``
  (collectives over gRPC on localhost ports); each worker builds its own half of the batch
  (``distribute_datasets_from_function``), and the step is a custom one under ``strategy.run``
  (Keras 3's ``model.fit`` does not run under this strategy: ``distributed_checks``).

Contract, as on one machine (``test_distributed.py``): with ``sync=True`` the gradients (torch) and
the weights after one SGD step (Keras) equal the single-process step on the global batch (float64,
1e-10), and the loss is the global-batch loss; with ``sync=False`` each node sees its shard only,
and what is checked is exactly that per-shard result. One launch per framework covers every
configuration.
"""
from __future__ import annotations

import numpy as np
import pytest

import spec
from parity_tests import distributed_checks as dc

from .conftest import distributed_results

pytestmark = [pytest.mark.ddp, pytest.mark.project]


CONFIGS = dc.batch_statistic_configs()
IDS = [f"{n}-{p}" for n, p, _ in CONFIGS]
KERAS_CONFIGS = CONFIGS + dc.PER_SAMPLE_CONTROLS
KERAS_IDS = [f"{n}-{p}" for n, p, _ in KERAS_CONFIGS]
SYNC_PARAM = [i for i, (n, _, _) in enumerate(KERAS_CONFIGS) if "sync" in spec.get(n).param_names]


@pytest.fixture(scope="module")
def lightning_nodes(pytestconfig):
    """Two Lightning nodes (one CPU process each) on localhost: every configuration, sync on and off
    (``distributed_runs.lightning_nodes``, run once per session in the background from collection on)."""
    return distributed_results(pytestconfig, "lightning_nodes")


def test_lightning_nodes_form_one_job_and_split_the_batch(lightning_nodes):
    """Lightning read the job from the environment variables (no process of its own launched):
    2 ranks, each with 4 of the 8 rows, none twice."""
    for result in lightning_nodes.values():
        assert result["environment"] == "LightningEnvironment"
        rows = result["rows_by_rank"]
        assert rows.shape == (2, dc.N_GLOBAL // 2)
        assert sorted(rows.ravel()) == list(range(dc.N_GLOBAL))


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=IDS)
def test_lightning_two_nodes_sync_equals_global_batch(lightning_nodes, i):
    name, params, classes = CONFIGS[i]
    result = lightning_nodes[f"{i}:True"]
    ref_value, ref_grads = dc.torch_grads(name, params, classes)
    np.testing.assert_allclose(result["grads"], ref_grads, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(result["logged_by_rank"], [ref_value] * 2, rtol=1e-12)  # both nodes


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=IDS)
def test_lightning_two_nodes_without_sync_is_the_per_shard_result(lightning_nodes, i):
    """sync=False: each node logs its own shard's loss, and the gradient is DDP's average of the
    per-shard gradients, not the global-batch one."""
    name, params, classes = CONFIGS[i]
    result = lightning_nodes[f"{i}:False"]
    shards = [dc.torch_grads(name, params, classes, sync=False, rows=list(rows)) for rows in result["rows_by_rank"]]
    np.testing.assert_allclose(result["logged_by_rank"], [value for value, _ in shards], rtol=1e-12)
    np.testing.assert_allclose(result["grads"], np.mean([g for _, g in shards], axis=0), rtol=1e-10, atol=1e-14)
    _, ref_grads = dc.torch_grads(name, params, classes)
    assert not np.allclose(result["grads"], ref_grads, rtol=1e-6), "per-shard statistics differ from global ones"


@pytest.fixture(scope="module")
def keras_workers(pytestconfig):
    """Two MultiWorkerMirroredStrategy workers on localhost (CPU; worker 0 writes the results):
    ``distributed_runs.keras_workers``, run once per session in the background from collection on."""
    return distributed_results(pytestconfig, "keras_workers")


def test_keras_workers_form_one_strategy(keras_workers):
    """Both worker processes joined the cluster: two replicas in sync, one per worker."""
    assert keras_workers["replicas, workers"] == (2, 2)


@pytest.mark.parametrize("i", range(len(KERAS_CONFIGS)), ids=KERAS_IDS)
def test_keras_two_workers_equal_one_device(keras_workers, i):
    """One SGD step, each worker on its half of the global batch: the same weights and loss as
    one device on the whole batch (float64)."""
    single_loss, single_w = keras_workers[f"{i}:single"]
    loss, weights = keras_workers[f"{i}:multiworker"]
    np.testing.assert_allclose(loss, single_loss, rtol=1e-10)
    np.testing.assert_allclose(weights, single_w, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("i", SYNC_PARAM, ids=[KERAS_IDS[i] for i in SYNC_PARAM])
def test_keras_two_workers_without_sync_are_the_per_worker_result(keras_workers, i):
    """sync=False: the step is the average of the two workers' own one-device steps on their
    halves (the summed gradients of losses divided by the replica count), and the loss their
    mean — not the global-batch step."""
    _, single_w = keras_workers[f"{i}:single"]
    loss, weights = keras_workers[f"{i}:multiworker-nosync"]
    shards = keras_workers[f"{i}:shards"]
    np.testing.assert_allclose(weights, np.mean([w for _, w in shards], axis=0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(loss, np.mean([value for value, _ in shards]), rtol=1e-10)
    assert not np.allclose(weights, single_w, rtol=1e-6)
