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


def keras_fit(name, params, classes, strategy=None, sync=True):
    """Loss reported by one ``model.fit`` step (SGD, lr 1, the global batch) and the weights after."""
    import contextlib

    import keras

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
    hist = model.fit(x, y, batch_size=N_GLOBAL, epochs=1, shuffle=False, verbose=0)
    return float(hist.history["loss"][0]), np.concatenate([w.ravel() for w in dense.get_weights()])


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


#: per-sample losses checked too: Keras' replica scaling of mean losses must hold for ours
PER_SAMPLE_CONTROLS = [("weighted_bce", {"pos_weight": 3.0}, 3)]


def keras_main(out_path):
    """Run in a fresh interpreter: two logical CPUs must be configured before TF starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for i, (name, params, classes) in enumerate(batch_statistic_configs() + PER_SAMPLE_CONTROLS):
        results[f"{i}:single"] = keras_fit(name, params, classes)
        results[f"{i}:mirrored"] = keras_fit(name, params, classes, strategy)
        if "sync" in spec.get(name).param_names:
            results[f"{i}:mirrored-nosync"] = keras_fit(name, params, classes, strategy, sync=False)
        if spec.get(name).single_input:
            results[f"{i}:activity-sync"] = activity_regularizer_fit(name, params, classes, strategy)
    np.save(out_path, np.array(results, dtype=object), allow_pickle=True)


def _lightning_module_class():
    import lightning as L
    import torch

    import torch_impl

    class StepModule(L.LightningModule):
        """Linear model + a batch-statistic loss with sync=True; rank 0 saves what it sees."""

        def __init__(self, name, params, classes, probabilities, out_path):
            super().__init__()
            torch.manual_seed(0)
            self.model = torch.nn.Linear(FEATURES, classes).double()
            self.loss = torch_impl.get_loss(name, **dict(params, sync=True))
            self.probabilities, self.out_path = probabilities, out_path

        def training_step(self, batch, _):
            xb, yb = batch
            out = self.model(xb)
            value = self.loss(torch.sigmoid(out) if self.probabilities else out, yb)
            self.log("train_loss", value)  # every rank holds the global-batch loss: no sync_dist
            return value

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1.0)

        def on_train_end(self):
            if self.global_rank == 0:
                weights = np.concatenate([p.detach().numpy().ravel() for p in self.model.parameters()])
                logged = float(self.trainer.callback_metrics["train_loss"])
                np.save(self.out_path, np.array({"weights": weights, "logged": logged}, dtype=object),
                        allow_pickle=True)

    return StepModule


def __getattr__(attr):  # StepModule is importable by name (ddp_spawn pickles it by reference)
    if attr == "StepModule":
        cls = _lightning_module_class()
        cls.__module__, cls.__qualname__ = __name__, "StepModule"
        globals()["StepModule"] = cls
        return cls
    raise AttributeError(attr)


def lightning_ddp_step(name, params, classes, out_path, devices=2):
    """One SGD step (lr 1) through a Lightning Trainer with the ddp_spawn strategy on CPU; rank 0
    writes the logged loss and the weights after the step."""
    import lightning as L
    import torch

    entry = spec.get(name)
    x, y = data(name, classes)
    probabilities = entry.prediction_domain(entry.validate_params(params)) is not None
    module = __getattr__("StepModule")(name, params, classes, probabilities, out_path)
    dataset = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    # DistributedSampler (no shuffling) gives rank r the rows r, r + 2, ...: N/devices each
    loader = torch.utils.data.DataLoader(dataset, batch_size=N_GLOBAL // devices, shuffle=False)
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto",
                        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=True)
    trainer.fit(module, loader)
