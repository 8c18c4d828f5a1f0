"""The original: a custom Keras loss written the way users write them (``keras.ops``).

Squared error plus a soft count of predictions above a threshold, per sample::

    loss_i = mean_j (y_ij - p_ij)^2 + FACTOR * mean_j sigmoid((p_ij - THRESHOLD) / TEMPERATURE)

``y`` is the target (``y_true``), ``p`` the prediction (``y_pred``), ``j`` runs over the last
axis. The second term is a differentiable count of the outputs above ``THRESHOLD`` (a sigmoid
step of width ``TEMPERATURE``): it discourages many large predictions. The result has one value
per sample (shape ``y_pred.shape[:-1]``); ``model.compile(loss=soft_count_mse)`` averages it
over the batch. Float64 inputs are computed in float64.
"""
from keras import ops

FACTOR = 0.5
THRESHOLD = 1.0
TEMPERATURE = 0.25


def soft_count_mse(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
    soft_count = ops.mean(ops.sigmoid((y_pred - THRESHOLD) / TEMPERATURE), axis=-1)
    return mse + FACTOR * soft_count
