"""Lightning pieces for training with our losses (imports lightning; never TensorFlow).

* :class:`MLP` — the scenarios' network (Keras initialization, optional sigmoid heads);
* :class:`LossModule` — a ``LightningModule`` for any registered loss or loss object (``compile_loss``:
  through ``torch.compile``), metrics via torchmetrics;
* :class:`ArrayDataModule` — in-memory arrays, epoch-seeded batch order (resume-exact);
* :class:`KerasAdam` / :func:`build_optimizer` — optimizers that step exactly like Keras';
* :class:`EpochHistory` — per-epoch logged values;
* :mod:`torch_impl.lightning.cli` — ``LossParityCLI`` (``python -m lossparity.lightning_cli``).
"""
from .callbacks import EpochHistory
from .datamodules import ArrayDataModule, EpochShuffleSampler, epoch_permutation, import_object
from .metrics import build_metric
from .models import MLP, ActivityPenalty, RowNormalize, activity_losses
from .modules import AUTO, LossModule, resolve_auto_params
from .optim import KerasAdam, build_optimizer

__all__ = ["MLP", "RowNormalize", "ActivityPenalty", "activity_losses", "LossModule", "ArrayDataModule", "EpochShuffleSampler", "epoch_permutation",
           "import_object", "KerasAdam", "build_optimizer", "build_metric", "EpochHistory", "AUTO",
           "resolve_auto_params"]
