"""Keras twins of :mod:`torch_impl.lightning`: the same network, optimizer, metrics and batch order.

One plain description drives both frameworks (a scenario of ``lossparity/scenarios``):

* :func:`build_mlp` — ``Dense`` blocks named ``hidden_0 …``, an ``output`` layer and the same heads
  as ``torch_impl.lightning.MLP`` (``"linear"`` logits, ``"sigmoid"``, ``"sigmoid_normalized"``
  through the registered :class:`RowNormalize` layer, ``"threshold"`` through
  :class:`tf_impl.layers.ThresholdActivation`), and the same optional penalty of the last hidden
  layer's activations (``activity_regularizer``) through :class:`ActivityLoss`, which adds it with
  ``add_loss`` undivided (``Dense(activity_regularizer=...)`` would add it divided by the batch
  size, a different objective than the torch twin's); Glorot-uniform kernels and zero biases are
  Keras' defaults. :func:`set_torch_layout_weights` loads ``[(W (out, in), b), …]``, so a Keras
  model can start from a torch model's weights.
* :func:`build_optimizer` — ``"adam"`` → ``keras.optimizers.Adam``, ``"sgd"`` → ``keras.optimizers.SGD``
  with the same names and defaults as ``torch_impl.lightning.build_optimizer`` (whose ``KerasAdam``
  follows Keras' update rule).
* :func:`build_metric` — ``recall`` / ``precision`` / ``fbeta`` / ``iou`` are our registered
  metrics (:mod:`tf_impl.metrics`), ``accuracy`` is ``keras.metrics.SparseCategoricalAccuracy``,
  ``mse`` is ``keras.metrics.MeanSquaredError``.
* :func:`build_loss` — ``tf_impl.get_loss`` with ``"auto"`` parameters computed from the
  training labels by :func:`spec.api.resolve_auto_params` (``pos_weight`` → negatives / positives per column), as in
  ``torch_impl.lightning``.
* :class:`ArrayBatches` — a ``keras.utils.PyDataset`` giving the batches of
  ``torch_impl.lightning.ArrayDataModule`` in the same order
  (``numpy.random.default_rng([seed, epoch]).permutation(n)``), its epoch set by
  :class:`EpochSetter` from ``fit``'s epoch index.
* :func:`fit` — ``model.fit`` on those batches (``sample_weight=``: per-sample training weights, the
  batches become ``(x, y, w)`` and our loss gets ``w`` as ``sample_weight``, like ``LossModule`` on an
  ``ArrayDataModule`` with ``w_train``), after one eager call of the compiled loss on the
  first batch: inside ``fit`` (graph mode) our losses can only check shapes, so data errors (a
  sigmoid head feeding a softmax loss, labels out of range) are raised here, before training,
  with the spec's message.
* :func:`save_model` / :func:`load_model` — ``.keras`` files; our losses, metrics and
  :class:`RowNormalize` are registered, so no ``custom_objects`` are needed.
* :func:`floatx` — ``with floatx("float64"):`` sets Keras' float type *and* its global dtype
  policy, and restores both.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from spec.api import AUTO, AUTO_PARAMS, resolve_auto_params  # noqa: F401  (the spec resolves "auto" parameters)

from . import metrics as _ours
from .layers import ThresholdActivation
from .losses import PACKAGE, get_loss

HEADS = ("linear", "sigmoid", "sigmoid_normalized", "threshold")


@contextlib.contextmanager
def floatx(dtype: str) -> Iterator[None]:
    """Keras' float type ``dtype`` inside the block (e.g. ``"float64"`` for float64 models and
    optimizer variables), the previous one after it.

    ``keras.config.set_floatx`` alone is not enough: the first layer built creates Keras' global
    dtype policy from the float type of that moment and keeps it, so layers built after
    ``set_floatx("float64")`` … ``set_floatx("float32")`` would still be float64. This sets and
    restores the policy too."""
    old_floatx, old_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(old_floatx)
        keras.config.set_dtype_policy(old_policy)
OPTIMIZERS = ("adam", "sgd")
METRIC_KINDS = ("recall", "precision", "fbeta", "iou", "accuracy", "mse")
KERAS_ADAM_DEFAULTS = {"lr": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}


# --------------------------------------------------------------------------- network
@keras.saving.register_keras_serializable(package=PACKAGE)
class RowNormalize(keras.layers.Layer):
    """``x / sum(x, axis=-1)``: rows of positive values become distributions (the
    renormalization Keras' ``sparse_categorical_crossentropy`` applies silently to
    ``from_logits=False`` inputs, made an explicit layer)."""

    def call(self, x):
        return x / keras.ops.sum(x, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ActivityLoss(keras.layers.Layer):
    """Identity that adds ``penalty(x)`` to the model's losses with ``add_loss`` — the value itself.

    ``Dense(..., activity_regularizer=penalty)`` would add ``penalty(x) / batch_size`` (Keras
    divides activity regularizers by the batch size); this layer adds what
    ``torch_impl.lightning.ActivityPenalty`` adds to ``LossModule``'s loss, so both frameworks
    minimize the same objective. ``penalty``: a Keras regularizer (e.g. ``tf_impl.KLSparsity``)
    or ``{"name": registered name, **params}`` (built with ``tf_impl.get_loss``)."""

    def __init__(self, penalty, **kwargs):
        super().__init__(**kwargs)
        if isinstance(penalty, Mapping) and "name" in penalty and "class_name" not in penalty:
            params = dict(penalty)
            penalty = get_loss(params.pop("name"), **params)
        self.penalty = keras.regularizers.get(penalty)

    def call(self, x):
        self.add_loss(self.penalty(x))
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "penalty": keras.regularizers.serialize(self.penalty)}


def build_mlp(in_features: int, hidden: Sequence[int] = (128, 128), out_features: int = 10, *,
              activation: str = "relu", head: str = "linear", threshold: float | None = None,
              activity_regularizer: Mapping[str, Any] | None = None, dtype: str | None = None,
              name: str = "mlp") -> keras.Sequential:
    """``Input(in_features) → Dense(h, activation) … → Dense(out_features)`` (+ head).

    Layer names: ``hidden_0``, ``hidden_1``, …, (``activity``), ``output``, then ``head`` /
    ``normalize``. ``threshold``: the bound of the ``"threshold"`` head (required by it only).
    ``activity_regularizer``: ``{"name": ..., **params}``, a penalty of the last hidden layer's
    activations added by an :class:`ActivityLoss` layer. ``dtype`` is the layers' dtype policy
    (``"float64"`` for a float64 model)."""
    if head not in HEADS:
        raise ValueError(f"build_mlp: unknown head {head!r}; expected one of {list(HEADS)}")
    if (head == "threshold") != (threshold is not None):
        raise ValueError(f"build_mlp: threshold={threshold!r} with head={head!r}; the 'threshold' head needs "
                         f"a threshold, and only it takes one")
    if activity_regularizer is not None and not hidden:
        raise ValueError("build_mlp: an activity_regularizer needs a hidden layer (it penalizes the last one)")
    layers: list[keras.layers.Layer] = [keras.Input((int(in_features),), dtype=dtype or keras.config.floatx())]
    for i, width in enumerate(hidden):
        layers.append(keras.layers.Dense(int(width), activation=activation, name=f"hidden_{i}", dtype=dtype))
    if activity_regularizer is not None:
        layers.append(ActivityLoss(dict(activity_regularizer), name="activity", dtype=dtype))
    layers.append(keras.layers.Dense(int(out_features), name="output", dtype=dtype))
    if head in ("sigmoid", "sigmoid_normalized"):
        layers.append(keras.layers.Activation("sigmoid", name="head", dtype=dtype))
    if head == "sigmoid_normalized":
        layers.append(RowNormalize(name="normalize", dtype=dtype))
    if head == "threshold":
        layers.append(ThresholdActivation(float(threshold), name="head", dtype=dtype))
    return keras.Sequential(layers, name=name)


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def set_torch_layout_weights(model: keras.Model, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    """Load ``[(W (out, in), b (out,)), …]`` (torch's ``nn.Linear`` layout) into the Dense layers
    (kernel ``W.T``), e.g. ``torch_mlp.numpy_weights()``."""
    layers = dense_layers(model)
    if len(weights) != len(layers):
        raise ValueError(f"got {len(weights)} (W, b) pairs for {len(layers)} Dense layers")
    for layer, (w, b) in zip(layers, weights):
        layer.set_weights([np.asarray(w).T, np.asarray(b)])


def torch_layout_weights(model: keras.Model) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W (out, in), b (out,)), …]`` as float64 NumPy arrays."""
    out = []
    for layer in dense_layers(model):
        kernel, bias = layer.get_weights()
        out.append((np.asarray(kernel, np.float64).T.copy(), np.asarray(bias, np.float64)))
    return out


def _chunks(model: keras.Model, x: np.ndarray, batch_size: int, upto: str | None = None) -> np.ndarray:
    """Eager forward pass in chunks (no ``tf.function`` retracing), optionally stopping after
    the layer named ``upto``."""
    outs = []
    if not isinstance(model, keras.Sequential):  # a functional model (e.g. tf_impl.unet): its own graph
        if upto is not None:
            model = keras.Model(model.inputs, model.get_layer(upto).output)
        for start in range(0, len(x), batch_size):
            outs.append(np.asarray(model(tf.convert_to_tensor(x[start:start + batch_size]), training=False)))
        return np.concatenate(outs, axis=0)
    for start in range(0, len(x), batch_size):
        h = tf.convert_to_tensor(x[start:start + batch_size])
        for layer in model.layers:
            h = layer(h, training=False)
            if layer.name == upto:
                break
        outs.append(np.asarray(h))
    return np.concatenate(outs, axis=0)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs (logits for a ``"linear"`` head) as a NumPy array."""
    return _chunks(model, np.asarray(x), batch_size)


def features(model: keras.Model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Activations of the last hidden layer (the penultimate layer's output); for a functional
    model, the output of its layer named ``features`` (``tf_impl.unet``: the bottleneck)."""
    if not isinstance(model, keras.Sequential) and any(layer.name == "features" for layer in model.layers):
        return _chunks(model, np.asarray(x), batch_size, upto="features")
    hidden = [layer.name for layer in model.layers if layer.name.startswith("hidden_")]
    if not hidden:
        raise ValueError("features: the model has no hidden layer")
    return _chunks(model, np.asarray(x), batch_size, upto=hidden[-1])


# --------------------------------------------------------------------------- optimizer, metrics, loss
def build_optimizer(name: str = "adam", **config: Any) -> keras.optimizers.Optimizer:
    """``"adam"`` (``lr``, ``beta_1``, ``beta_2``, ``epsilon``; Keras defaults) or ``"sgd"``
    (``lr``); the twin of ``torch_impl.lightning.build_optimizer``."""
    name = str(name).lower()
    if name == "adam":
        cfg = {**KERAS_ADAM_DEFAULTS, **config}
        _no_extra("adam", cfg, KERAS_ADAM_DEFAULTS)
        return keras.optimizers.Adam(learning_rate=float(cfg["lr"]), beta_1=float(cfg["beta_1"]),
                                     beta_2=float(cfg["beta_2"]), epsilon=float(cfg["epsilon"]))
    if name == "sgd":
        cfg = {"lr": 0.01, **config}
        _no_extra("sgd", cfg, {"lr": None})
        return keras.optimizers.SGD(learning_rate=float(cfg["lr"]))
    raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")


def _no_extra(name: str, cfg: dict, allowed: dict) -> None:
    extra = sorted(set(cfg) - set(allowed))
    if extra:
        raise ValueError(f"optimizer {name!r}: unknown settings {extra}; allowed: {sorted(allowed)}")
    lr = cfg["lr"]
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"optimizer {name!r}: invalid lr={lr!r}; expected a finite float > 0")


_OURS = {"recall": _ours.Recall, "precision": _ours.Precision, "fbeta": _ours.FBeta, "iou": _ours.IoU}


def build_metric(description: Mapping[str, Any], *, name: str = "") -> keras.metrics.Metric:
    """``{"kind": ..., **arguments}`` → a Keras metric named ``name`` (twin of
    ``torch_impl.lightning.build_metric``)."""
    params = dict(description)
    kind = params.pop("kind", name)
    if kind in _OURS:
        return _OURS[kind](name=name or kind, **params)
    if kind == "accuracy":
        extra = sorted(set(params) - {"num_classes"})
        if extra:
            raise ValueError(f"metric {name or kind!r}: unknown accuracy arguments {extra}")
        return keras.metrics.SparseCategoricalAccuracy(name=name or kind)
    if kind == "mse":
        if params:
            raise ValueError(f"metric {name or kind!r}: mse takes no arguments; got {sorted(params)}")
        return keras.metrics.MeanSquaredError(name=name or kind)
    raise ValueError(f"metric {name!r}: unknown kind {kind!r}; expected one of {list(METRIC_KINDS)}")


def build_loss(name: str, params: Mapping[str, Any] | None = None, train_targets=None) -> keras.losses.Loss:
    """``tf_impl.get_loss(name, **params)`` with ``"auto"`` parameters resolved."""
    return get_loss(name, **resolve_auto_params(params or {}, train_targets))


# --------------------------------------------------------------------------- data
def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch ``epoch`` (same function in ``torch_impl.lightning``)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


class ArrayBatches(keras.utils.PyDataset):
    """Batches of ``(x, y)`` in the order of ``torch_impl.lightning.ArrayDataModule``: epoch ``e`` is
    ``epoch_permutation(n, seed, e)`` cut in ``batch_size`` pieces, the last one shorter.

    The epoch is set by :meth:`set_epoch` (:func:`fit` does it from ``Callback.on_epoch_begin``,
    with ``fit``'s own epoch index): Keras also calls ``on_epoch_end`` outside training epochs (when
    it peeks at batches to build the input signature), so counting those calls would shift the order.
    """

    def __init__(self, x, y, *, batch_size: int, seed: int = 0, shuffle: bool = True, epoch: int = 0,
                 sample_weight=None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = np.asarray(x), np.asarray(y)
        if len(self.x) != len(self.y):
            raise ValueError(f"ArrayBatches: x has {len(self.x)} rows, y {len(self.y)}")
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        if self.sample_weight is not None and self.sample_weight.shape != (len(self.x),):
            raise ValueError(f"ArrayBatches: sample_weight must have shape ({len(self.x)},); got "
                             f"{self.sample_weight.shape}")
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), bool(shuffle)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        n = len(self.x)
        self._order = epoch_permutation(n, self.seed, self.epoch) if self.shuffle else np.arange(n)

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.sample_weight is not None:
            return self.x[idx], self.y[idx], self.sample_weight[idx]
        return self.x[idx], self.y[idx]


class EpochSetter(keras.callbacks.Callback):
    """Sets ``batches.set_epoch(epoch)`` at the start of every ``fit`` epoch."""

    def __init__(self, batches: ArrayBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)


def cast_inputs(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    return np.asarray(x, dtype=dtype)


def cast_targets(y: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Integer labels (class indices) stay int64; everything else takes ``dtype``."""
    y = np.asarray(y)
    return y.astype(np.int64) if y.dtype.kind in "iub" else y.astype(dtype)


# --------------------------------------------------------------------------- compile / fit
def compile_model(model: keras.Model, *, loss: keras.losses.Loss, metrics: Mapping[str, Mapping[str, Any]] | None = None,
                  optimizer: Mapping[str, Any] | None = None, run_eagerly: bool = False) -> keras.Model:
    """``model.compile`` with our loss, the described metrics and optimizer (no XLA: the same
    kernels as eager execution)."""
    model.compile(optimizer=build_optimizer(**dict(optimizer or {"name": "adam"})), loss=loss,
                  metrics=[build_metric(v, name=k) for k, v in (metrics or {}).items()],
                  run_eagerly=run_eagerly, jit_compile=False)
    return model


def check_first_batch(model: keras.Model, batches: ArrayBatches) -> None:
    """Call the compiled loss eagerly on the first batch: raises the spec's ``ValueError`` for
    data the loss rejects (checks that cannot run inside the graph-mode ``fit``)."""
    x, y, *w = batches[0]
    model.loss(y, model(x, training=False), w[0] if w else None)


def fit(model: keras.Model, x, y, *, epochs: int, batch_size: int, seed: int = 0, shuffle: bool = True,
        initial_epoch: int = 0, validation_data: tuple | None = None, eval_batch_size: int = 1024,
        verbose: int | str = "auto", callbacks=(), check_data: bool = True,
        sample_weight=None) -> keras.callbacks.History:
    """``model.fit`` on :class:`ArrayBatches` (the torch run's batches); ``verbose`` 1 is the
    progress bar. With ``check_data`` the loss is first called eagerly on the first batch.
    ``sample_weight``: per-sample training weights ``(N,)`` (cast to ``x``'s dtype), or None."""
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.asarray(x).dtype)
    batches = ArrayBatches(x, y, batch_size=batch_size, seed=seed, shuffle=shuffle, epoch=initial_epoch,
                           sample_weight=sample_weight)
    if check_data:
        check_first_batch(model, batches)
    # shuffle=False: the order is ArrayBatches' (Keras would shuffle the order of the batches)
    return model.fit(batches, epochs=int(epochs), initial_epoch=int(initial_epoch), shuffle=False,
                     validation_data=validation_data,
                     validation_batch_size=eval_batch_size if validation_data is not None else None,
                     verbose=verbose, callbacks=[EpochSetter(batches), *callbacks])


def save_model(model: keras.Model, path) -> None:
    """Write a ``.keras`` file (architecture, weights, compile state, optimizer state)."""
    model.save(str(path))


def load_model(path, *, compile: bool = True) -> keras.Model:
    """Read a ``.keras`` file written by :func:`save_model`; our losses, metrics and
    :class:`RowNormalize` are registered serializables (package ``"lossparity"``)."""
    return keras.saving.load_model(str(path), compile=compile)


__all__ = ["floatx", "RowNormalize", "ActivityLoss", "build_mlp", "dense_layers", "set_torch_layout_weights", "torch_layout_weights",
           "predict", "features", "build_optimizer", "build_metric", "build_loss", "resolve_auto_params",
           "epoch_permutation", "ArrayBatches", "EpochSetter", "cast_inputs", "cast_targets", "compile_model",
           "check_first_batch", "fit", "save_model", "load_model", "HEADS", "OPTIMIZERS", "METRIC_KINDS",
           "AUTO"]
