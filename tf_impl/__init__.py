"""TensorFlow/Keras implementations of the spec'd losses. Never imports torch.

>>> import tf_impl
>>> loss = tf_impl.get_loss("weighted_bce", pos_weight=3.0)
>>> round(float(loss([[1.0, 1.0]], [[0.0, 0.0]])), 6)  # truth first (Keras order)
2.079442

After ``import tf_impl`` Keras knows our losses by name where the name is free:
``model.compile(loss="soft_dice")``, ``keras.losses.get("weighted_bce")``,
``activity_regularizer="kl_sparsity"`` (:mod:`tf_impl.keras_names`; Keras' own names such as
``"tversky"`` keep their meaning, ours is ``"lossparity>Tversky"``).

Every registered Keras loss class (``WeightedBCE``, ``SoftDice``, ...) is exported here;
metrics live in :mod:`tf_impl.metrics`, layers in :mod:`tf_impl.layers`, regularizers in
:mod:`tf_impl.regularizers`.

Porting from torch: :func:`from_torch` turns a ``torch.nn`` loss module into the Keras loss that
computes the same (the table is :mod:`spec.ports`).

Writing your own loss (see ``examples/user_loss``): subclass :class:`SpecLoss` (or call
:func:`register_impl`) and build the per-sample loss with :func:`mean_nonbatch` (the mean over
every non-batch axis); :func:`reduce_weighted` applies ``sample_weight`` and the reduction the
way every loss here does (``"mean"``: Σ wᵢ ℓᵢ / N, Keras' ``sum_over_batch_size``).
"""
from ._quiet import import_tensorflow

import_tensorflow()  # before any submodule imports it: no C++ start-up log lines (see _quiet)

from . import functional, losses  # noqa: E402
from .class_weights import balanced_class_weights, pos_weight_from_labels  # noqa: E402
from ._core import mean_nonbatch  # noqa: E402
from ._core import reduce as reduce_weighted  # noqa: E402
from .losses import *  # noqa: F401,F403  (every loss class, get_loss, get_functional, register_impl)
from .ports import PortedLoss, from_torch  # noqa: E402

__all__ = ["functional", "balanced_class_weights", "from_torch", "mean_nonbatch", "pos_weight_from_labels",
           "PortedLoss", "reduce_weighted", *losses.__all__]
