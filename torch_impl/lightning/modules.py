"""``LossModule``: a ``LightningModule`` training any network with any of our losses.

Everything is described by plain values, so the same description drives the scenario runner
(``lossparity/run.py``), the Lightning CLI (``lossparity/configs/*.yaml``) and the Keras twin
(``tf_impl.training``):

* ``loss`` / ``loss_params``: a registered loss name and its parameters (``torch_impl.get_loss``).
  A parameter given as ``"auto"`` is computed from the training labels of the datamodule in
  ``setup`` (``pos_weight`` → ``torch_impl.pos_weight_from_labels``); the value used is saved in
  the checkpoint, so ``load_from_checkpoint`` and resumed runs use it too.
* ``loss`` may also be a loss object: any ``nn.Module`` or callable taking ``(input, target)``
  (``nn.BCEWithLogitsLoss(pos_weight=...)``, a function of one's own, a peer of ours), trained
  through the same module; ``loss_params`` must then be empty. An object given in Python cannot
  be rebuilt from hyperparameters (as ``net``): the checkpoint holds its state (an ``nn.Module``'s
  buffers and parameters, under ``loss_fn.``) and, in the hyperparameters, ``loss: "object:<its
  class>"``; ``load_from_checkpoint(path, net=..., loss=...)`` takes it again (the checkpoint's
  state then replaces the object's), and loading without it raises ``ValueError`` naming the
  class, never a silent default loss. On the Lightning CLI the object is a ``class_path`` config
  (``--model.loss '{class_path: torch.nn.BCEWithLogitsLoss, init_args: {reduction: sum}}'
  --model.loss_params null``), which the hyperparameters keep: ``test --ckpt_path`` and
  ``load_from_checkpoint(path, net=...)`` rebuild it.
  With weighted batches ``(x, y, w)`` the object is called ``loss(input, target, sample_weight=w)``.
* ``compile_loss``: train through ``torch.compile(loss, **compile_options)`` (inductor fuses the
  loss's elementwise chain and its closed-form gradient; see docs/benchmarks.md for when it pays).
  The compilation runs at the first training step, timed apart on a probe call (forward and
  backward of a detached copy of the step's prediction) and logged once as ``loss_compile_s``
  (also kept in :attr:`LossModule.loss_compile_s`). Validation and test call the eager loss (a
  no-grad call would compile a second graph for a few batches); values agree within float32
  rounding. A batch of another shape (a shorter last batch) compiles once more, with dynamic shapes.
* ``metrics``: ``{name: {"kind": ..., **arguments}}`` (:func:`torch_impl.lightning.metrics.build_metric`),
  updated in ``validation_step`` / ``test_step`` and logged through ``self.log`` as
  ``val_<name>`` / ``test_<name>`` (Lightning computes and resets them at the epoch end).
* ``optimizer``: ``{"name": "adam" | "sgd", "lr": ..., ...}`` with Keras' names and defaults
  (:func:`torch_impl.lightning.optim.build_optimizer`).

Training batches ``(x, y, w)`` (an ``ArrayDataModule`` with ``w_train``) pass ``w`` as the loss's
``sample_weight``; ``(x, y)`` batches call the loss without it.

A network with :class:`torch_impl.lightning.ActivityPenalty` modules (``MLP(activity_regularizer=...)``)
adds their values, recorded in the forward pass, to the loss (train, validation and test): Keras'
``add_loss``.

Logged: ``train_loss_step`` (the batch's loss, on the steps the loggers write: every
``Trainer(log_every_n_steps)``-th, and in the progress bar), ``train_loss`` (the epoch mean,
weighted by batch size, averaged over processes under DDP), ``val_loss``, ``val_<metric>``,
``test_loss``, ``test_<metric>``.

Cost: ``self.log`` goes through Lightning's result collection (tens of microseconds of Python a
call); calling it for the step value on every batch, as ``self.log(on_step=True, on_epoch=True)``
does, cost 1-1.6 ms a step and made the loop 1.1-1.6x slower than a hand-written one for the
scenario MLPs (``lossparity/bench_loop.py``). The epoch mean is therefore kept as a running tensor
sum (one small in-place op a step, no host sync) and logged once, on the epoch's last batch; the
step value is logged only on the steps a logger writes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch import nn

from spec.api import AUTO, AUTO_PARAMS, has_auto, resolve_auto_params

from ..losses import get_loss
from .metrics import build_metric
from .models import activity_losses
from .optim import build_optimizer

#: ``"auto"`` loss parameters (computed from the training labels) are resolved by the spec, the
#: same way (and with the same messages) as in ``tf_impl.training``
_has_auto = has_auto


#: hyperparameter value of ``loss`` standing for a loss object: ``"object:" + its class``
OBJECT_LOSS_PREFIX = "object:"


def _qualified_name(obj) -> str:
    """``module.qualname`` of a function, or of the class of a loss object."""
    named = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(named, '__module__', None) or '?'}.{named.__qualname__}"


def _loss_given_as_config() -> bool:
    """True while ``LightningCLI`` instantiates the module with a loss object from its config: the
    hyperparameters are then the config, where the loss is a ``class_path`` mapping that the CLI
    (``--ckpt_path``) and ``load_from_checkpoint`` (through the CLI's instantiator) rebuild."""
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # another Lightning: the object is then recorded by its class, as from Python
        return False
    given = _given_hyperparameters.get()
    loss = given.get("loss") if isinstance(given, Mapping) else None
    return isinstance(loss, Mapping) or hasattr(loss, "class_path")


def _check_loss_argument(loss, loss_params: Mapping[str, Any]) -> None:
    if isinstance(loss, str):
        if loss.startswith(OBJECT_LOSS_PREFIX):
            raise ValueError(
                f"LossModule: this module was trained with the loss object {loss[len(OBJECT_LOSS_PREFIX):]}, "
                "which hyperparameters cannot rebuild; pass it again: "
                "LossModule.load_from_checkpoint(path, net=..., loss=...)")
        return
    if not callable(loss):
        raise ValueError(f"LossModule: loss must be a registered loss name or a callable taking (input, target), "
                         f"got {type(loss).__name__}")
    if loss_params:
        raise ValueError(f"LossModule: loss_params {sorted(loss_params)} apply to a registered loss name only; "
                         f"give them to the loss object ({_qualified_name(loss)}) itself")


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy().tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class LossModule(L.LightningModule):
    """Train ``net`` with the loss ``loss(**loss_params)``; see the module docstring.

    Args:
        net: the network (its ``forward`` returns the loss's prediction: logits for
            ``from_logits=True`` losses).
        loss: registered loss name (``spec.names()``), or a loss object: an ``nn.Module`` or callable
            taking ``(input, target)`` (pass it again to ``load_from_checkpoint``).
        loss_params: the registered loss's parameters; ``"auto"`` values are computed from the
            training labels. Empty with a loss object.
        metrics: ``{name: {"kind": ..., **arguments}}``.
        optimizer: ``{"name": "adam" | "sgd", "lr": ..., ...}`` (Keras names and defaults).
        compile_loss: train through ``torch.compile`` of the loss (compiled at the first training
            step; the seconds it took are logged once as ``loss_compile_s``).
        compile_options: keyword arguments of ``torch.compile`` (``mode``, ``dynamic``,
            ``backend``, ...); only with ``compile_loss``.
    """

    def __init__(self, net: nn.Module, loss: str | nn.Module | Callable[..., torch.Tensor] = "weighted_bce",
                 loss_params: dict[str, Any] | None = None,
                 metrics: dict[str, dict[str, Any]] | None = None, optimizer: dict[str, Any] | None = None,
                 compile_loss: bool = False, compile_options: dict[str, Any] | None = None):
        super().__init__()
        _check_loss_argument(loss, loss_params or {})
        if compile_options and not compile_loss:
            raise ValueError("LossModule: compile_options are given but compile_loss is False")
        if isinstance(loss, str) or _loss_given_as_config():
            self.save_hyperparameters(ignore=["net"])
        else:  # like net, the object is not a hyperparameter; its class is recorded, its state is in state_dict
            self.save_hyperparameters(ignore=["net", "loss"])
            for hparams in (self._hparams, self._hparams_initial):
                hparams["loss"] = OBJECT_LOSS_PREFIX + _qualified_name(loss)
        self.net = net
        self.loss_name = loss if isinstance(loss, str) else _qualified_name(loss)
        self.loss_params = dict(loss_params or {})
        self.compile_loss = bool(compile_loss)
        self.compile_options = dict(compile_options or {})
        #: seconds the first training step's compilation of the loss took (``compile_loss=True``)
        self.loss_compile_s: float | None = None
        self.optimizer_config = dict(optimizer or {"name": "adam"})
        build_optimizer([torch.zeros(1, requires_grad=True)], **self.optimizer_config)  # fail early
        self.metric_specs = {k: dict(v) for k, v in (metrics or {}).items()}
        self.val_metrics = nn.ModuleDict({k: build_metric(v, name=k) for k, v in self.metric_specs.items()})
        self.test_metrics = nn.ModuleDict({k: build_metric(v, name=k) for k, v in self.metric_specs.items()})
        self.loss_fn: nn.Module | None = None
        self.resolved_loss_params: dict[str, Any] | None = None
        self._epoch_loss_sum: torch.Tensor | None = None
        self._epoch_samples = 0
        self._compiled_loss: Callable | None = None  # torch.compile(loss_fn), made at its first use
        if not isinstance(loss, str):
            self.loss_fn = loss  # an nn.Module is registered (its state in the checkpoint); a function is kept
        elif not _has_auto(self.loss_params):
            self._build_loss(self.loss_params)

    # ------------------------------------------------------------------ loss
    def _build_loss(self, params: Mapping[str, Any]) -> None:
        self.loss_fn = get_loss(self.loss_name, **params)
        self.resolved_loss_params = {k: _plain(v) for k, v in params.items()}
        self._compiled_loss = None

    def _training_loss_fn(self) -> Callable:
        """The loss the training step calls: ``loss_fn``, or with ``compile_loss`` its compiled form
        (kept out of the module's children: it wraps ``loss_fn``, whose state is saved once)."""
        if not self.compile_loss:
            return self.loss_fn
        if self._compiled_loss is None:
            object.__setattr__(self, "_compiled_loss", torch.compile(self.loss_fn, **self.compile_options))
        return self._compiled_loss

    def _time_compilation(self, prediction, target, sample_weight) -> None:
        """Compile the loss (forward, and backward where there is a gradient) on a detached copy of
        the step's prediction, so that the step itself runs compiled code; record the seconds, from
        ``torch.compile`` (its first call imports the compiler) to the compiled backward."""
        if prediction.is_cuda:
            torch.cuda.synchronize(prediction.device)
        start = time.perf_counter()
        fn = self._training_loss_fn()
        probe = prediction.detach().requires_grad_(prediction.requires_grad)
        value = fn(probe, target) if sample_weight is None else fn(probe, target, sample_weight=sample_weight)
        if value.requires_grad:
            torch.autograd.grad(value, probe)
        if prediction.is_cuda:
            torch.cuda.synchronize(prediction.device)
        self.loss_compile_s = time.perf_counter() - start

    def setup(self, stage: str) -> None:
        if self.loss_fn is None:
            dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
            self._build_loss(resolve_auto_params(self.loss_params, getattr(dm, "train_targets", None)))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["resolved_loss_params"] = self.resolved_loss_params

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        resolved = checkpoint.get("resolved_loss_params")
        if resolved is not None and (self.loss_fn is None or resolved != self.resolved_loss_params):
            self._build_loss({k: np.asarray(v, np.float64) if isinstance(v, list) else v
                              for k, v in resolved.items()})
            self.loss_fn.to(self.device)

    def _loss(self, prediction, target, sample_weight=None, training: bool = False):
        if self.loss_fn is None:
            raise RuntimeError("LossModule: the loss has 'auto' parameters and is built in setup(); "
                               "run it through a Trainer with a datamodule that has train_targets")
        if training and self.compile_loss and self.loss_compile_s is None:
            self._time_compilation(prediction, target, sample_weight)
        fn = self._training_loss_fn() if training else self.loss_fn
        if sample_weight is None:
            value = fn(prediction, target)
        else:
            value = fn(prediction, target, sample_weight=sample_weight)
        # penalties of activations recorded by the net's ActivityPenalty modules in this forward
        # pass (e.g. kl_sparsity of a coding layer): added undivided, as Keras' add_loss
        for extra in activity_losses(self.net):
            value = value + extra
        return value

    # ------------------------------------------------------------------ steps
    def forward(self, x):
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        self._epoch_loss_sum: torch.Tensor | None = None  # sum over the epoch of batch loss x batch size
        self._epoch_samples = 0

    def _log_epoch_loss(self) -> None:
        if self._epoch_samples:
            self.log("train_loss", self._epoch_loss_sum / self._epoch_samples, on_step=False, on_epoch=True,
                     prog_bar=True, batch_size=1, sync_dist=True)
            self._epoch_samples = 0

    def _log_train_loss(self, loss: torch.Tensor, batch_size: int, batch_idx: int) -> None:
        trainer = self.trainer
        weighted = loss.detach() * batch_size
        self._epoch_loss_sum = weighted if self._epoch_loss_sum is None else self._epoch_loss_sum + weighted
        self._epoch_samples += batch_size
        last = (trainer.is_last_batch or batch_idx + 1 >= trainer.num_training_batches
                or 0 < trainer.max_steps <= trainer.global_step + 1)  # the epoch's (or the fit's) last step
        # loggers write on every log_every_n_steps-th step (Lightning's rule, global_step counting
        # the steps before this one; 0: never); the step value is only needed there and in the
        # progress bar
        every = trainer.log_every_n_steps
        if last or (every > 0 and (trainer.global_step + 1) % every == 0):
            self.log("train_loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        if last:  # logged here, not in on_train_epoch_end, so callbacks' epoch-end hooks see it
            self._log_epoch_loss()

    def training_step(self, batch, batch_idx):
        x, y, *w = batch  # (x, y) or (x, y, per-sample weights)
        compiling = self.compile_loss and self.loss_compile_s is None
        loss = self._loss(self(x), y, w[0] if w else None, training=True)
        if self._trainer is not None:
            self._log_train_loss(loss, len(x), batch_idx)
            if compiling:  # once, on the step that compiled
                self.log("loss_compile_s", self.loss_compile_s, on_step=False, on_epoch=True, batch_size=1,
                         reduce_fx="max", sync_dist=True)
        return loss

    def on_train_epoch_end(self) -> None:
        self._log_epoch_loss()  # an epoch cut short otherwise (max_time, an exception handled): its partial mean

    def _eval_step(self, batch, stage: str, metrics: nn.ModuleDict):
        x, y = batch
        prediction = self(x)
        self.log(f"{stage}_loss", self._loss(prediction, y), on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(x))
        for name, metric in metrics.items():
            metric.update(prediction, y)
            self.log(f"{stage}_{name}", metric, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", self.test_metrics)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    def configure_optimizers(self):
        return build_optimizer(self.net.parameters(), **self.optimizer_config)


__all__ = ["LossModule", "AUTO", "AUTO_PARAMS", "OBJECT_LOSS_PREFIX", "resolve_auto_params"]
