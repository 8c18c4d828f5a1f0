"""Workers of the data-parallel tests (``test_distributed.py``): run in spawned processes.

For every batch-statistic configuration of the registry (an entry with a ``sync`` parameter and
a case whose parameters make it one value per batch) a small float64 model produces the loss
input; the global batch is split between two replicas. Each check returns the parameter
gradients of the data-parallel step and of the single-process step on the global batch.
"""
from __future__ import annotations

import os

import numpy as np

import spec

N_GLOBAL, FEATURES = 8, 5


def batch_statistic_configs():
    """``(name, params)`` of every configuration whose value couples samples and that has ``sync``."""
    out = []
    for entry in spec.all_specs():
        if "sync" not in entry.param_names:
            continue
        seen = set()
        for case in entry.cases():
            params = entry.validate_params(case.params)
            key = repr(sorted((k, repr(v)) for k, v in case.params.items()))
            if entry.is_batch_statistic(params) and case.prediction.ndim == 2 and key not in seen:
                seen.add(key)
                out.append((entry.name, dict(case.params), case.prediction.shape[-1]))
    return out


def data(name, classes, seed=0):
    """Global batch: features, targets in the entry's target domain."""
    entry = spec.get(name)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_GLOBAL, FEATURES))
    if entry.single_input:
        return x, None
    y = (rng.uniform(size=(N_GLOBAL, classes)) < 0.4).astype(np.float64)
    y[:, 0] = 0.0  # a class with no positives in the batch
    return x, y


def torch_grads(name, params, classes, rank=None, world=1, sync=True, rows=None):
    """Value and parameter gradients; ``rows`` restricts the batch (one process, no DDP)."""
    import torch

    import torch_impl

    entry = spec.get(name)
    torch.manual_seed(0)
    model = torch.nn.Linear(FEATURES, classes).double()
    x, y = data(name, classes)
    if rows is not None:
        x, y = x[rows], (None if y is None else y[rows])
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        shard = slice(rank * N_GLOBAL // world, (rank + 1) * N_GLOBAL // world)
        x = x[shard]
        y = None if y is None else y[shard]
        model = DistributedDataParallel(model)
    loss = torch_impl.get_loss(name, **dict(params, sync=sync))
    out = model(torch.tensor(x))
    if entry.prediction_domain(entry.validate_params(params)) is not None:
        out = torch.sigmoid(out)
    value = loss(out) if entry.single_input else loss(out, torch.tensor(y))
    value.backward()
    module = model.module if world > 1 else model
    return float(value.detach()), np.concatenate([p.grad.numpy().ravel() for p in module.parameters()])


def torch_worker(rank, world, port, out_path):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results = {}
        for i, (name, params, classes) in enumerate(batch_statistic_configs()):
            for sync in (True, False):
                results[f"{i}:{sync}"] = torch_grads(name, params, classes, rank, world, sync)
        if rank == 0:
            np.save(out_path, np.array(results, dtype=object), allow_pickle=True)
    finally:
        dist.destroy_process_group()


def _keras_split_batch(strategy, x, y):
    """The batch ``(x, y)`` as a distributed dataset of one step, split explicitly: worker ``w``
    (input pipeline ``w``) builds only its own rows, ``w * N / W`` to ``(w + 1) * N / W``, batched
    per replica; no auto-sharding involved."""
    import tensorflow as tf

    def dataset(ctx):
        rows = len(x) // ctx.num_input_pipelines
        mine = slice(ctx.input_pipeline_id * rows, (ctx.input_pipeline_id + 1) * rows)
        return tf.data.Dataset.from_tensor_slices((x[mine], y[mine])).batch(
            ctx.get_per_replica_batch_size(len(x)))

    return strategy.distribute_datasets_from_function(dataset)


def keras_fit(name, params, classes, strategy=None, sync=True, rows=None):
    """Loss reported by one SGD step (lr 1) on the global batch (on one device: on its ``rows``
    when given) and the weights after: ``model.fit``, or under ``MultiWorkerMirroredStrategy`` a
    custom step (``_keras_strategy_run_step``), each worker on its half of the batch."""
    import contextlib

    import keras
    import tensorflow as tf

    import tf_impl

    entry = spec.get(name)
    keras.config.set_floatx("float64")
    x, y = data(name, classes)
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(FEATURES, classes)) * 0.5, rng.normal(size=classes) * 0.1
    config = dict(params, sync=sync) if "sync" in entry.param_names else dict(params)
    probabilities = entry.prediction_domain(entry.validate_params(params)) is not None
    with strategy.scope() if strategy else contextlib.nullcontext():
        inp = keras.Input((FEATURES,))
        dense = keras.layers.Dense(classes)
        out = dense(inp)
        if entry.single_input:
            # the penalty as the compiled loss of the activations (y_true ignored): the supported
            # form under tf.distribute; as an activity_regularizer, sync=True raises there
            out = keras.layers.Activation("sigmoid")(out)
            loss, y = tf_impl.get_loss(name, **config), np.zeros((N_GLOBAL, classes))
        else:
            if probabilities:
                out = keras.layers.Activation("sigmoid")(out)
            loss = tf_impl.get_loss(name, **config)
        model = keras.Model(inp, out)
        dense.set_weights([w0, b0])
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        value = _keras_strategy_run_step(model, loss, strategy, _keras_split_batch(strategy, x, y))
    else:  # under MirroredStrategy, fit splits the batch between the replicas: rows 0-3 and 4-7
        x, y = (x, y) if rows is None else (x[rows], y[rows])
        value = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0).history["loss"][0]
    return float(value), np.concatenate([w.ravel() for w in dense.get_weights()])


def _keras_strategy_run_step(model, loss, strategy, batches):
    """One SGD step as a custom training step under ``strategy.run`` (for
    ``MultiWorkerMirroredStrategy``: Keras 3's ``fit`` there calls ``strategy.reduce`` on the
    ``(x, y)`` batch tuple, which that strategy rejects): each replica's loss (divided by the
    replica count, as Keras' losses and ours are under ``tf.distribute``), the optimizer's
    cross-replica sum of the gradients, and the replicas' losses summed: the global-batch loss."""
    import tensorflow as tf

    with strategy.scope():
        model.optimizer.build(model.trainable_variables)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        grads = tape.gradient(value, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value

    @tf.function
    def step(x, y):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=(x, y)), axis=None)

    return step(*next(iter(batches)))


def activity_regularizer_fit(name, params, classes, strategy):
    """``activity_regularizer=<entry>(sync=True)`` under ``strategy``: the ValueError text, or
    None when fit ran (it must not: Keras would count one replica's penalty twice)."""
    import keras

    import tf_impl

    keras.config.set_floatx("float64")
    x, _ = data(name, classes)
    with strategy.scope():
        inp = keras.Input((FEATURES,))
        reg = tf_impl.get_loss(name, **dict(params, sync=True))
        model = keras.Model(inp, keras.layers.Dense(classes, activation="sigmoid", activity_regularizer=reg)(inp))
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    try:
        model.fit(x, np.zeros((N_GLOBAL, classes)), batch_size=N_GLOBAL, epochs=1, verbose=0)
    except ValueError as err:
        return str(err)
    return None


def lightning_configs():
    """The configurations of the Lightning ddp_spawn step check: the first two of a loss with a
    target (a single-input penalty is checked under DDP by the torch and multi-node checks)."""
    return [c for c in batch_statistic_configs() if not spec.get(c[0]).single_input][:2]


def lightning_ddp_steps(out_path):
    """Every configuration of :func:`lightning_configs`: one step through ddp_spawn (2 CPU processes),
    then one on one device; ``{i: {devices: result}}`` saved to ``out_path``."""
    results = {}
    for i, (name, params, classes) in enumerate(lightning_configs()):
        results[i] = {}
        for devices in (2, 1):
            step = os.path.join(os.path.dirname(out_path), f"{i}-d{devices}.npy")
            lightning_ddp_step(name, params, classes, step, devices=devices)
            results[i][devices] = np.load(step, allow_pickle=True).item()
    np.save(out_path, np.array(results, dtype=object), allow_pickle=True)


#: per-sample losses checked too: Keras' replica scaling of mean losses must hold for ours
PER_SAMPLE_CONTROLS = [("weighted_bce", {"pos_weight": 3.0}, 3)]


def _keras_strategy(kind):
    """``"mirrored"``: two logical CPUs of this process (configured before TF starts);
    ``"multiworker"``: one replica per worker process, the cluster read from ``TF_CONFIG``."""
    import tensorflow as tf

    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def keras_main(out_path, kind="mirrored"):
    """Run in a fresh interpreter (every worker of the cluster under ``"multiworker"``): one step
    per configuration under the strategy, with and without ``sync``, and the one-device
    references (global batch; each replica's rows). Every worker makes the same distributed calls
    in the same order (their collectives pair up); the chief alone computes the references and
    writes ``out_path``."""
    strategy = _keras_strategy(kind)
    resolver = strategy.cluster_resolver  # None under MirroredStrategy
    chief = resolver is None or resolver.task_id in (None, 0)
    replicas = strategy.num_replicas_in_sync
    shards = [slice(r * N_GLOBAL // replicas, (r + 1) * N_GLOBAL // replicas) for r in range(replicas)]
    workers = resolver.cluster_spec().num_tasks("worker") if resolver else 1
    results = {"replicas, workers": (replicas, workers)}
    for i, (name, params, classes) in enumerate(batch_statistic_configs() + PER_SAMPLE_CONTROLS):
        entry = spec.get(name)
        if chief:
            results[f"{i}:single"] = keras_fit(name, params, classes)
        results[f"{i}:{kind}"] = keras_fit(name, params, classes, strategy)
        if "sync" in entry.param_names:
            results[f"{i}:{kind}-nosync"] = keras_fit(name, params, classes, strategy, sync=False)
            if chief and kind == "multiworker":  # what each worker's shard alone gives
                results[f"{i}:shards"] = [keras_fit(name, params, classes, sync=False, rows=rows) for rows in shards]
        if entry.single_input and kind == "mirrored":
            results[f"{i}:activity-sync"] = activity_regularizer_fit(name, params, classes, strategy)
    if chief:
        np.save(out_path, np.array(results, dtype=object), allow_pickle=True)


def _lightning_module_class():
    import lightning as L
    import torch

    import torch_impl

    class StepModule(L.LightningModule):
        """Linear model + a batch-statistic loss (``sync=True`` unless told otherwise); after the
        step ``result`` holds the gradients DDP averaged, the weights, the loss rank 0 logged,
        every rank's logged loss and every rank's rows; rank 0 saves it to ``out_path`` when one
        is given."""

        def __init__(self, name, params, classes, probabilities, out_path=None, sync=True):
            super().__init__()
            torch.manual_seed(0)
            self.model = torch.nn.Linear(FEATURES, classes).double()
            self.loss = torch_impl.get_loss(name, **dict(params, sync=sync))
            self.probabilities, self.out_path = probabilities, out_path
            self.grads = self.result = None

        def training_step(self, batch, _):
            xb, *yb = batch  # no target for a single-input loss (kl_sparsity)
            out = self.model(xb)
            value = self.loss(torch.sigmoid(out) if self.probabilities else out, *yb)
            self.log("train_loss", value)  # with sync every rank holds the global-batch loss: no sync_dist
            return value

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1.0)

        def on_before_optimizer_step(self, optimizer):  # backward done: DDP has averaged the gradients
            self.grads = np.concatenate([p.grad.numpy().ravel() for p in self.model.parameters()])

        def on_train_end(self):
            logged = self.trainer.callback_metrics["train_loss"]
            rows = torch.tensor(list(self.trainer.train_dataloader.sampler))  # this rank's shard
            self.result = {"weights": np.concatenate([p.detach().numpy().ravel() for p in self.model.parameters()]),
                           "grads": self.grads, "logged": float(logged),
                           "logged_by_rank": self.all_gather(logged).numpy().ravel(),
                           "rows_by_rank": self.all_gather(rows).numpy().reshape(-1, len(rows)),
                           "environment": type(getattr(self.trainer.strategy, "cluster_environment", None)).__name__}
            if self.out_path and self.global_rank == 0:
                np.save(self.out_path, np.array(self.result, dtype=object), allow_pickle=True)

    return StepModule


def __getattr__(attr):  # StepModule is importable by name (ddp_spawn pickles it by reference)
    if attr == "StepModule":
        cls = _lightning_module_class()
        cls.__module__, cls.__qualname__ = __name__, "StepModule"
        globals()["StepModule"] = cls
        return cls
    raise AttributeError(attr)


def lightning_ddp_step(name, params, classes, out_path=None, devices=2, num_nodes=1, sync=True):
    """One SGD step (lr 1) through a Lightning Trainer on CPU and this process's ``result`` (see
    ``StepModule``): ``devices`` processes started by the ddp_spawn strategy on one machine, or,
    with ``num_nodes`` > 1, the ddp strategy in a process launched as one node of the job (the
    cluster environment read from ``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``WORLD_SIZE``
    and ``LOCAL_RANK``, as on a cluster)."""
    import lightning as L
    import torch

    entry = spec.get(name)
    x, y = data(name, classes)
    probabilities = entry.prediction_domain(entry.validate_params(params)) is not None
    module = __getattr__("StepModule")(name, params, classes, probabilities, out_path, sync)
    dataset = torch.utils.data.TensorDataset(*(torch.tensor(a) for a in (x, y) if a is not None))
    # Lightning's DistributedSampler for training shuffles (seed 0): N/W rows each, in "rows_by_rank"
    world = devices * num_nodes
    loader = torch.utils.data.DataLoader(dataset, batch_size=N_GLOBAL // world, shuffle=False)
    strategy = "ddp" if num_nodes > 1 else "ddp_spawn" if devices > 1 else "auto"
    trainer = L.Trainer(accelerator="cpu", devices=devices, num_nodes=num_nodes, strategy=strategy,
                        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=True)
    trainer.fit(module, loader)
    return module.result  # None in the parent of ddp_spawn's processes


def lightning_node_main(out_path, num_nodes=2):
    """One node (one CPU device) of a multi-node Lightning job, launched with the cluster's
    environment variables: a step per batch-statistic configuration, with and without ``sync``;
    global rank 0 writes every result to ``out_path``. The process group (which Lightning leaves
    open) is destroyed before the interpreter exits: left to exit-time teardown, gloo sometimes
    aborts the process ("terminate called without an active exception")."""
    import torch.distributed as dist

    results = {}
    try:
        for i, (name, params, classes) in enumerate(batch_statistic_configs()):
            for sync in (True, False):
                results[f"{i}:{sync}"] = lightning_ddp_step(name, params, classes, devices=1, num_nodes=num_nodes,
                                                            sync=sync)
        if dist.get_rank() == 0:
            np.save(out_path, np.array(results, dtype=object), allow_pickle=True)
        dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
