"""``ArrayDataModule``: a ``LightningDataModule`` over in-memory NumPy arrays.

The arrays come from ``arrays=`` (a mapping) or from ``source=``, the import path of a function
returning one (``"lossparity.scenarios.multilabel:lightning_data"``, called with ``source_args``), which
is how the Lightning CLI configs name a scenario's data. Keys: ``x_train``, ``y_train``, ``x_test``,
``y_test`` and optionally ``x_val``, ``y_val`` (default: the test split) and ``w_train``: per-sample
training weights ``(N_train,)``; with them the training batches are ``(x, y, w)`` and
``LossModule`` passes ``w`` as the loss's ``sample_weight`` (Keras twin:
``tf_impl.training.fit(sample_weight=...)``).

Batch order: the training batches of epoch ``e`` are the permutation
``numpy.random.default_rng([seed, e]).permutation(n)`` cut in ``batch_size`` pieces (the last one
shorter), by :class:`EpochShuffleSampler`. The order depends on ``(seed, epoch)`` only, so a run
resumed from a checkpoint sees the same batches as an uninterrupted one, and the Keras twin
(``tf_impl.training.ArrayBatches``) feeds the very same batches.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from spec.api import import_object

SPLITS = ("train", "val", "test")


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch ``epoch`` (same function in ``tf_impl.training``)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


class EpochShuffleSampler(Sampler[int]):
    """Indices ``epoch_permutation(n, seed, epoch)``; Lightning calls ``set_epoch`` every epoch
    (with the restored epoch when resuming)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else np.arange(self.n)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n


def _tensor(a: np.ndarray, float_dtype: torch.dtype) -> torch.Tensor:
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return torch.as_tensor(a.astype(np.int64))
    return torch.as_tensor(a, dtype=float_dtype)


class ArrayDataModule(L.LightningDataModule):
    """In-memory arrays → seeded ``DataLoader``s (see the module docstring).

    Args:
        source: import path of a function returning the arrays (used when ``arrays`` is None).
        source_args: keyword arguments of ``source``.
        arrays: the arrays themselves (``x_train``, ``y_train``, ``x_test``, ``y_test``, …).
        batch_size: training batch size.
        eval_batch_size: validation / test / predict batch size.
        seed: shuffling seed (the order of epoch ``e`` is a function of ``(seed, e)``).
        shuffle: shuffle the training set (else the stored order every epoch).
        dtype: floating dtype of the inputs and float targets (``"float32"`` or ``"float64"``);
            integer targets (class indices) stay ``int64``.
    """

    def __init__(self, source: str | None = None, source_args: dict[str, Any] | None = None,
                 arrays: Mapping[str, Any] | None = None, batch_size: int = 32, eval_batch_size: int = 1024,
                 seed: int = 0, shuffle: bool = True, dtype: str = "float32"):
        super().__init__()
        if arrays is None and source is None:
            raise ValueError("ArrayDataModule: give `arrays` or `source`")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"ArrayDataModule: dtype must be 'float32' or 'float64'; got {dtype!r}")
        self.save_hyperparameters(ignore=["arrays"])
        self.source, self.source_args = source, dict(source_args or {})
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.float_dtype = getattr(torch, dtype)
        self._arrays = None if arrays is None else self._check(arrays)
        self.datasets: dict[str, TensorDataset] = {}

    @staticmethod
    def _check(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        for key in ("x_train", "y_train", "x_test", "y_test"):
            if key not in arrays:
                raise ValueError(f"ArrayDataModule: the arrays lack {key!r} (got {sorted(arrays)})")
        for split in SPLITS:
            x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
            if (x is None) != (y is None) or (x is not None and len(x) != len(y)):
                raise ValueError(f"ArrayDataModule: x_{split} and y_{split} must both be given, with as "
                                 f"many rows")
        w = arrays.get("w_train")
        if w is not None and (w.ndim != 1 or len(w) != len(arrays["x_train"]) or w.dtype.kind not in "iuf"
                              or not np.all(np.isfinite(w)) or np.any(w < 0)):
            raise ValueError(f"ArrayDataModule: w_train must be {len(arrays['x_train'])} finite per-sample "
                             f"weights >= 0 of shape (N_train,); got shape {w.shape}, dtype {w.dtype}")
        return arrays

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            fn: Callable[..., Mapping[str, Any]] = import_object(self.source)
            self._arrays = self._check(fn(**self.source_args))
        return self._arrays

    @property
    def train_targets(self) -> np.ndarray:
        """The training labels (for loss parameters computed from data, e.g. ``pos_weight="auto"``)."""
        return self.arrays["y_train"]

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        a = self.arrays
        for split in SPLITS:
            src = split if f"x_{split}" in a else "test"
            tensors = [_tensor(a[f"x_{src}"], self.float_dtype), _tensor(a[f"y_{src}"], self.float_dtype)]
            if split == "train" and a.get("w_train") is not None:
                tensors.append(torch.as_tensor(np.asarray(a["w_train"], np.float64), dtype=self.float_dtype))
            self.datasets[split] = TensorDataset(*tensors)

    def train_dataloader(self) -> DataLoader:
        ds = self.datasets["train"]
        return DataLoader(ds, batch_size=self.batch_size,
                          sampler=EpochShuffleSampler(len(ds), self.seed, self.shuffle))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["val"], batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["test"], batch_size=self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


__all__ = ["ArrayDataModule", "EpochShuffleSampler", "epoch_permutation", "import_object"]
