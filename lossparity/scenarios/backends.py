"""The two backends of the scenario framework: Lightning (torch) and Keras.

Each imports its framework on construction only, so ``lossparity.run --framework keras`` never loads
torch and ``--framework torch`` never loads TensorFlow.

* :class:`TorchBackend` — ``torch_impl.lightning.LossModule`` + ``ArrayDataModule`` fitted by a
  ``lightning.Trainer`` (progress bar, ``ModelCheckpoint`` writing ``last.ckpt``, CSV logs, all under
  ``<out>/lightning/<job>``); final metrics from ``trainer.test`` (torchmetrics through ``self.log``).
* :class:`KerasBackend` — ``tf_impl.training``: ``compile`` / ``fit`` with our Keras loss and
  metrics (progress bar), saved to ``<out>/keras/<job>.keras``, loaded back (registered custom
  objects) and checked to predict exactly as before saving; final metrics from ``evaluate`` of
  the loaded model.
"""
from __future__ import annotations

import logging
import os
import time
import warnings

import numpy as np

from .base import Arrays, Backend, Job, RunConfig, Trained, metric_descriptions


def make_backend(framework: str, threads: int | None = 1) -> Backend:
    """``threads``: CPU threads of the framework's kernels (None: its default). The scenarios'
    networks are small, so one thread is as fast as several and immune to oversubscription
    (several threads on 2 busy cores made the digits run 6x slower)."""
    if framework == "torch":
        return TorchBackend(threads)
    if framework == "keras":
        return KerasBackend(threads)
    raise ValueError(f"unknown framework {framework!r}; expected 'torch' or 'keras'")


class TorchBackend(Backend):
    framework = "torch"

    def __init__(self, threads: int | None = 1):
        import lightning.pytorch as L
        import torch

        from torch_impl import lightning as tl

        if threads:
            torch.set_num_threads(int(threads))
        self.L, self.torch, self.tl = L, torch, tl
        # the data live in memory: worker processes would only add start-up time
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                     "lightning.fabric.utilities.seed"):
            logging.getLogger(name).setLevel(logging.WARNING)

    # -------------------------------------------------------------- building
    def module(self, job: Job, data: Arrays | None = None, *, weights=None):
        """The ``LossModule`` of ``job`` with its initial weights (``job.model.init_weights``)."""
        net = job.model.torch_module()
        net.set_numpy_weights(job.model.init_weights(job.seed) if weights is None else weights)
        return self.tl.LossModule(net, loss=job.loss.name, loss_params=job.loss.kwargs(),
                                  metrics=metric_descriptions(job.metrics), optimizer=job.optimizer.config())

    def datamodule(self, job: Job, data: Arrays, dtype: str = "float32"):
        return self.tl.ArrayDataModule(arrays=data.as_dict(), batch_size=job.batch_size,
                                       eval_batch_size=job.eval_batch_size, seed=job.seed, dtype=dtype)

    def trainer(self, job: Job, cfg: RunConfig, callbacks=(), **overrides):
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import CSVLogger

        run_dir = cfg.out / "lightning" / job.key
        options = dict(
            max_epochs=cfg.epochs or job.epochs, default_root_dir=str(run_dir),
            logger=CSVLogger(str(run_dir), name="logs", version=""),
            callbacks=[*callbacks, ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_top_k=0,
                                                   save_last=True)],
            enable_progress_bar=cfg.progress, enable_model_summary=False, deterministic=True,
            num_sanity_val_steps=0, limit_val_batches=1.0 if job.validate else 0, log_every_n_steps=50,
        )
        options.update(overrides)
        return self.L.Trainer(**options)

    # -------------------------------------------------------------- Backend
    def train(self, job: Job, data: Arrays, cfg: RunConfig) -> Trained:
        start = time.perf_counter()
        self.L.seed_everything(job.seed, verbose=False)
        module, dm = self.module(job), self.datamodule(job, data)
        history = self.tl.EpochHistory()
        trainer = self.trainer(job, cfg, callbacks=[history])
        trainer.fit(module, datamodule=dm)
        test = trainer.test(module, datamodule=dm, verbose=False)[0]
        metrics = {k.removeprefix("test_"): float(v) for k, v in test.items()}
        curves = {("loss" if k == "train_loss" else k): v for k, v in history.history.items()}
        ckpt = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
        return Trained(job.key, self.framework, metrics, curves, dict(module.resolved_loss_params or {}),
                       time.perf_counter() - start, predict=lambda x: self._forward(module, x),
                       features=lambda x: self._forward(module, x, features=True),
                       artifacts={"checkpoint": ckpt}, weights=lambda: module.net.numpy_weights())

    def _forward(self, module, x: np.ndarray, features: bool = False, batch_size: int = 4096) -> np.ndarray:
        torch = self.torch
        module.eval()
        param = next(module.net.parameters())
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.as_tensor(np.asarray(x[start:start + batch_size]), dtype=param.dtype, device=param.device)
                out = module.net.features(xb) if features else module(xb)
                outs.append(out.cpu().numpy())
        return np.concatenate(outs, axis=0)

    def rejection(self, job: Job, data: Arrays) -> str | None:
        module, dm = self.module(job), self.datamodule(job, data)
        dm.setup("fit")
        x, y = next(iter(dm.train_dataloader()))
        try:
            module._loss(module(x), y)  # what training_step computes first
        except ValueError as err:
            return str(err)
        return None


class KerasBackend(Backend):
    framework = "keras"

    def __init__(self, threads: int | None = 1):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        import tensorflow as tf

        from tf_impl import training as kt

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(int(threads))
            except RuntimeError:  # TensorFlow already initialized in this process: keep its pools
                pass
        self.keras, self.kt = keras, kt

    def model(self, job: Job, data: Arrays | None = None, *, weights=None, dtype: str | None = None):
        """The compiled Keras model of ``job`` with its initial weights."""
        kt = self.kt
        initial = job.model.init_weights(job.seed) if weights is None else weights
        model = job.model.keras_model(dtype=dtype)
        job.model.set_keras_weights(model, initial)
        loss = kt.build_loss(job.loss.name, job.loss.kwargs(), None if data is None else data.y_train)
        kt.compile_model(model, loss=loss, metrics=metric_descriptions(job.metrics), optimizer=job.optimizer.config())
        return model

    def train(self, job: Job, data: Arrays, cfg: RunConfig) -> Trained:
        kt = self.kt
        start = time.perf_counter()
        self.keras.utils.set_random_seed(job.seed)
        model = self.model(job, data)
        x, y = kt.cast_inputs(data.x_train), kt.cast_targets(data.y_train)
        xt, yt = kt.cast_inputs(data.x_test), kt.cast_targets(data.y_test)
        fit = kt.fit(model, x, y, epochs=cfg.epochs or job.epochs, batch_size=job.batch_size, seed=job.seed,
                     validation_data=(xt, yt) if job.validate else None, eval_batch_size=job.eval_batch_size,
                     verbose=1 if cfg.progress else 0, sample_weight=data.w_train)
        path = cfg.out / "keras" / f"{job.key}.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        kt.save_model(model, path)
        loaded = kt.load_model(path)
        before, after = kt.predict(model, xt[:256]), kt.predict(loaded, xt[:256])
        if not np.array_equal(before, after):
            raise AssertionError(f"{path}: the loaded model predicts differently (max diff "
                                 f"{np.max(np.abs(before - after)):.3g})")
        metrics = {k: float(v) for k, v in loaded.evaluate(xt, yt, batch_size=job.eval_batch_size, verbose=0,
                                                           return_dict=True).items()}
        metric_names = {m.name for m in job.metrics}
        curves = {(f"train_{k}" if k in metric_names else k): [float(v) for v in vals]
                  for k, vals in fit.history.items()}
        params = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                  for k, v in kt.resolve_auto_params(job.loss.kwargs(), data.y_train).items()}
        return Trained(job.key, self.framework, metrics, curves, params, time.perf_counter() - start,
                       predict=lambda a: kt.predict(loaded, kt.cast_inputs(a)),
                       features=lambda a: kt.features(loaded, kt.cast_inputs(a)),
                       artifacts={"model": str(path)},
                       weights=lambda: job.model.keras_weights(loaded))

    def rejection(self, job: Job, data: Arrays) -> str | None:
        kt = self.kt
        model = self.model(job, data)
        batches = kt.ArrayBatches(kt.cast_inputs(data.x_train), kt.cast_targets(data.y_train),
                                  batch_size=job.batch_size, seed=job.seed,
                                  sample_weight=None if data.w_train is None else kt.cast_inputs(data.w_train))
        try:
            kt.check_first_batch(model, batches)  # what kt.fit runs first
        except ValueError as err:
            return str(err)
        return None
