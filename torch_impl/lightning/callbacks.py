"""``EpochHistory``: the per-epoch values of every logged metric, like Keras' ``History``."""
from __future__ import annotations

from collections import defaultdict

import lightning.pytorch as L


class EpochHistory(L.Callback):
    """``history[name]``: one float per training epoch, for each epoch-level logged value
    (``train_loss``, ``val_loss``, ``val_<metric>``; the ``_epoch`` suffix removed, per-step
    values skipped). Not restored from checkpoints: it records the epochs this fit ran."""

    def __init__(self):
        self.history: dict[str, list[float]] = defaultdict(list)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        for key, value in metrics.items():
            # a value logged with on_step and on_epoch appears as key, key_step and key_epoch
            if key.endswith("_step") or f"{key}_epoch" in metrics:
                continue
            self.history[key.removesuffix("_epoch")].append(float(value))


__all__ = ["EpochHistory"]
