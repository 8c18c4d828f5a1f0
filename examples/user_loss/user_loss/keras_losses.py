"""The Keras implementation: a registered, serializable Loss under the spec's name."""
import keras
import tensorflow as tf

import tf_impl


def _squared_margin_per_sample(x, y, *, margin):
    return tf_impl.mean_nonbatch(tf.square(tf.maximum(margin - (2.0 * y - 1.0) * x, 0.0)))


@keras.saving.register_keras_serializable(package="user_loss")
class SquaredMargin(tf_impl.SpecLoss):
    spec_name = "squared_margin"
    per_sample = staticmethod(_squared_margin_per_sample)

    def __init__(self, *, margin=1.0, reduction="mean", validate=True, name=None):
        super().__init__(margin=margin, reduction=reduction, validate=validate, name=name)
