"""The Keras side: the runner (eager and XLA) and the peers of the same math (Keras built-ins, the
seeds' code)."""
from __future__ import annotations

import numpy as np


class KerasRunner:
    def __init__(self, device: str):
        import tensorflow as tf

        self.tf = tf
        self.gpu = device == "cuda"
        self.device_name = "/GPU:0" if self.gpu else "/CPU:0"

    def sync(self):
        if self.gpu:
            self.tf.test.experimental.sync_devices()

    def tensors(self, x, y, dtype):
        tf = self.tf
        with tf.device(self.device_name):
            xt = tf.constant(x, dtype=getattr(tf, dtype))
            if y is None:
                yt = None
            elif np.issubdtype(y.dtype, np.integer):
                yt = tf.constant(y)
            else:
                yt = tf.constant(y, dtype=tf.float32)
        return xt, yt

    def step(self, fn, x, y, mode, jit):
        """``fn(y_true, y_pred)`` (or ``fn(x)`` for single-input entries) as one no-argument call."""
        tf = self.tf
        single = y is None

        def call(xv, yv):
            return fn(xv) if single else fn(yv, xv)

        if mode == "fwd":
            def body(xv, yv):
                return call(xv, yv)
        else:
            def body(xv, yv):  # the loss value is returned too: XLA must not drop the forward
                with tf.GradientTape() as tape:
                    tape.watch(xv)
                    loss = call(xv, yv)
                return loss, tape.gradient(loss, xv)
        if jit:
            body = tf.function(body, jit_compile=True)
        yy = tf.zeros(()) if single else y

        def run():
            with tf.device(self.device_name):
                return body(x, yy)
        return run

    def memory(self, step, mode) -> tuple[int | None, int | None]:
        if not self.gpu:
            return None, None
        tf = self.tf
        self.sync()
        tf.config.experimental.reset_memory_stats("GPU:0")
        base = tf.config.experimental.get_memory_info("GPU:0")["current"]
        out = step()
        self.sync()
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] - base
        del out
        return peak, None


def _keras_peers():
    import keras
    import tensorflow as tf

    def f32(x):
        return x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)

    def flat(x):
        return tf.reshape(x, (tf.shape(x)[0], -1))

    def from_logits(p):
        return p.get("from_logits", True)

    def nonbatch_axes(shape):
        return tuple(range(1, len(shape)))

    def keras_bce(p, shape):
        if not from_logits(p) or np.any(np.asarray(p["pos_weight"]) != 1.0):
            return None
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def tf_weighted(p, shape):
        if not from_logits(p):
            return None
        pw = np.asarray(p["pos_weight"], np.float32)

        def fn(y_true, logits):  # the sparse multilabel answer: wce_logits
            return tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(
                logits=f32(logits), labels=tf.cast(y_true, tf.float32), pos_weight=pw))
        return fn

    def keras_focal(p, shape):
        if not from_logits(p):
            return None
        alpha = p["alpha"]
        return keras.losses.BinaryFocalCrossentropy(
            from_logits=True, gamma=p["gamma"], apply_class_balancing=alpha is not None,
            alpha=0.25 if alpha is None else alpha)

    def keras_cce(p, shape):
        if not from_logits(p):
            return None
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=p.get("label_smoothing", 0.0))

    def keras_scce(p, shape):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True) if from_logits(p) else None

    def keras_categorical_focal(p, shape):
        if not from_logits(p):
            return None
        return keras.losses.CategoricalFocalCrossentropy(alpha=p["alpha"], gamma=p["gamma"], from_logits=True,
                                                         label_smoothing=p.get("label_smoothing", 0.0))

    def keras_gce(p, shape):
        if not from_logits(p):
            return None
        peer = keras.losses.CategoricalGeneralizedCrossEntropy(q=p["q"])

        def fn(y_true, y_pred):  # Keras' loss takes probabilities only: the softmax of the logits
            return peer(y_true, tf.nn.softmax(y_pred, axis=-1))
        return fn

    def seed003_w_cce(p, shape):
        if not from_logits(p) or p.get("mode", "argmax") != "argmax":
            return None
        weights = np.asarray(p["cost_matrix"], np.float32)
        nb_cl = len(weights)

        def fn(y_true, logits):  # the cost-sensitive answer: w_categorical_crossentropy (Keras backend → tf)
            c = logits.shape[-1]
            logits = tf.reshape(f32(logits), (-1, c))
            y_true = tf.reshape(y_true, (-1, c))
            y_pred = tf.nn.softmax(logits)
            final_mask = tf.zeros_like(y_pred[:, 0])
            y_pred_max = tf.reshape(tf.reduce_max(y_pred, axis=1), (-1, 1))
            y_pred_max_mat = tf.cast(tf.equal(y_pred, y_pred_max), tf.float32)
            for c_p in range(nb_cl):
                for c_t in range(nb_cl):
                    final_mask += weights[c_t, c_p] * y_pred_max_mat[:, c_p] * y_true[:, c_t]
            return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y_true, logits) * final_mask)
        return fn

    def on_sigmoid(loss):
        def fn(y_true, logits):
            return loss(y_true, tf.sigmoid(f32(logits)))
        return fn

    def keras_dice(p, shape):
        if not from_logits(p):
            return None
        return on_sigmoid(keras.losses.Dice(axis=nonbatch_axes(shape)))

    def keras_tversky(alpha_key, beta_key):
        def build(p, shape):
            if not from_logits(p):
                return None
            a = 1.0 if alpha_key is None else p[alpha_key]
            b = 1.0 if beta_key is None else p[beta_key]
            # Keras' "alpha" multiplies Σ y (1 - p), i.e. the false negatives: swap to our meaning
            return on_sigmoid(keras.losses.Tversky(alpha=b, beta=a, axis=nonbatch_axes(shape)))
        return build

    def seed003_iouloss(p, shape):
        if not from_logits(p):
            return None

        def fn(y_true, logits):  # the segmentation answer: iouloss (flattened sample, sigmoid added)
            y_pred, y_true = flat(tf.sigmoid(f32(logits))), flat(y_true)
            intersection = tf.reduce_sum(y_true * y_pred, axis=-1)
            sum_ = tf.reduce_sum(y_true + y_pred, axis=-1)
            jac = intersection / (sum_ - intersection)
            return tf.reduce_mean(1 - jac)
        return fn

    def seed003_fbeta(p, shape):
        if not from_logits(p) or p.get("average", "samples") != "samples":
            return None
        beta, epsilon = p["beta"], p["epsilon"]

        def fn(y_true, logits):  # the soft F-beta answer: F-beta code in TensorFlow
            y_pred, y_true = flat(tf.sigmoid(f32(logits))), flat(y_true)
            TP = tf.reduce_sum(y_pred * y_true, axis=1)
            FP = tf.reduce_sum((1 - y_pred) * y_true, axis=1)
            FN = tf.reduce_sum(y_pred * (1 - y_true), axis=1)
            fbeta = (1 + beta**2) * TP / ((1 + beta**2) * TP + (beta**2) * FN + FP + epsilon)
            fbeta = tf.clip_by_value(fbeta, epsilon, 1 - epsilon)
            return 1 - tf.reduce_mean(fbeta)
        return fn

    def keras_mse(p, shape):
        return keras.losses.MeanSquaredError()

    def keras_mae(p, shape):
        return keras.losses.MeanAbsoluteError()

    def keras_huber(p, shape):
        return keras.losses.Huber(delta=p.get("delta", 1.0))

    def keras_log_cosh(p, shape):
        return keras.losses.LogCosh()

    def keras_mape(p, shape):
        return keras.losses.MeanAbsolutePercentageError() if p.get("epsilon", 1e-7) == 1e-7 else None

    def keras_poisson(p, shape):  # rates only, Keras' epsilon, no Stirling term
        if p.get("log_input", True) or p.get("full", False) or p.get("epsilon", 1e-7) != 1e-7:
            return None
        return keras.losses.Poisson()

    def keras_cosine(p, shape):  # Keras' epsilon is fixed (the backend epsilon)
        return keras.losses.CosineSimilarity(axis=p.get("axis", -1)) if p.get("epsilon", 1e-7) == 1e-7 else None

    def keras_msle(p, shape):
        return keras.losses.MeanSquaredLogarithmicError() if p.get("epsilon", 1e-7) == 1e-7 else None

    def keras_ctc(p, shape):  # blank and padding 0, Σ ℓ / N: ours at blank=0, divide_by_target_length=False
        if p.get("blank", 0) != 0 or p.get("divide_by_target_length", False):
            return None
        return keras.losses.CTC()

    def keras_circle(p, shape):
        return keras.losses.Circle(gamma=p.get("gamma", 80.0), margin=p.get("margin", 0.4),
                                   remove_diagonal=p.get("remove_diagonal", True))

    def keras_hinge(p, shape):
        return keras.losses.Hinge()

    def keras_squared_hinge(p, shape):
        return keras.losses.SquaredHinge()

    def keras_categorical_hinge(p, shape):
        return keras.losses.CategoricalHinge() if p.get("zero_competitor") else None  # not the same math

    def keras_kl_divergence(p, shape):
        keras_form = (p.get("epsilon") == 1e-7 and not p.get("log_prediction") and not p.get("log_target")
                      and p.get("class_reduction", "sum") == "sum")
        return keras.losses.KLDivergence() if keras_form else None  # not the same math

    def plain_kl_divergence(p, shape):
        if p.get("epsilon") or p.get("log_prediction") or p.get("log_target") or p.get("class_reduction") == "mean":
            return None

        def fn(y_true, y_pred):  # the true divergence users write: Σ xlogy(p, p) - p log q
            return tf.reduce_mean(tf.reduce_sum(tf.math.xlogy(y_true, y_true) - y_true * tf.math.log(f32(y_pred)),
                                                axis=-1))
        return fn

    def plain_categorical_hinge(p, shape):
        if p.get("zero_competitor"):
            return None

        def fn(y_true, y_pred):  # what users write: max(0, 1 + max over the wrong classes - true score)
            x = f32(y_pred)
            pos = tf.reduce_sum(y_true * x, axis=-1)
            neg = tf.reduce_max(x - y_true * 1e30, axis=-1)
            return tf.reduce_mean(tf.maximum(neg - pos + 1.0, 0.0))
        return fn

    def seed003_asym(p, shape):
        def fn(y_true, y_pred):  # the asymmetric-cost answer: custom_loss
            return tf.reduce_mean(tf.abs(1 - tf.exp(-tf.math.log(tf.exp(y_true - f32(y_pred))))))
        return fn

    def _count_args(p):
        return p.get("threshold", 0.5), p.get("weight", p.get("regularization_factor", 1.0))

    def seed000_count(p, shape):
        t, w = _count_args(p)

        def fn(x):
            above = tf.cast(tf.greater(f32(x), t), tf.float32)
            return w * tf.reduce_mean(tf.reduce_sum(flat(above), axis=-1))
        return fn

    def seed000_mse_count(p, shape):
        t, w = _count_args(p)

        def fn(y_true, y_pred):  # the count-above-a-threshold answer: CountBasedRegularizationLoss.call + Keras mean
            y_pred = f32(y_pred)
            base_loss = tf.reduce_mean(flat(tf.square(y_true - y_pred)), axis=-1)
            above_threshold = tf.cast(tf.greater(y_pred, t), tf.float32)
            count_above = tf.reduce_sum(flat(above_threshold), axis=-1)
            return tf.reduce_mean(base_loss + w * tf.reduce_mean(count_above))
        return fn

    def seed000_cce_count(p, shape):
        t, w = _count_args(p)

        def fn(y_true, logits):  # the count-above-a-threshold answer: sparse_prediction_loss (softmax head from logits)
            c = logits.shape[-1]
            logits = tf.reshape(f32(logits), (-1, c))
            y_true = tf.reshape(y_true, (-1, c))
            base_loss = tf.nn.softmax_cross_entropy_with_logits(y_true, logits)
            above_threshold = tf.cast(tf.greater(tf.nn.softmax(logits), t), tf.float32)
            count_above = tf.reduce_sum(above_threshold, axis=-1)
            return tf.reduce_mean(base_loss + w * tf.reduce_mean(count_above))
        return fn

    def seed004_kl(p, shape):
        rho = p.get("target", p.get("sparsity_target", p.get("rho", 0.1)))
        w = p.get("weight", p.get("sparsity_weight", 1.0))

        def fn(x):  # the KL-sparsity answer: (tf.log → tf.math.log)
            q = tf.reduce_mean(flat(f32(x)), axis=0)
            kl = rho * tf.math.log(rho / q) + (1 - rho) * tf.math.log((1 - rho) / (1 - q))
            return w * tf.reduce_sum(kl)
        return fn

    return {
        "weighted_bce": [("keras.losses.BinaryCrossentropy", keras_bce),
                         ("tf.nn.weighted_cross_entropy_with_logits (sparse multilabel answer)", tf_weighted)],
        "binary_focal": [("keras.losses.BinaryFocalCrossentropy", keras_focal)],
        "categorical_crossentropy": [("keras.losses.CategoricalCrossentropy", keras_cce)],
        "sparse_categorical_crossentropy": [("keras.losses.SparseCategoricalCrossentropy", keras_scce)],
        "categorical_focal_crossentropy": [("keras.losses.CategoricalFocalCrossentropy", keras_categorical_focal)],
        "categorical_generalized_crossentropy": [("keras.losses.CategoricalGeneralizedCrossEntropy (softmax)",
                                                  keras_gce)],
        "cost_sensitive_cce": [("w_categorical_crossentropy (cost-sensitive answer)", seed003_w_cce)],
        "soft_dice": [("keras.losses.Dice (on sigmoid)", keras_dice)],
        "soft_jaccard": [("keras.losses.Tversky(1, 1) (on sigmoid)", keras_tversky(None, None)),
                         ("iouloss (segmentation answer)", seed003_iouloss)],
        "tversky": [("keras.losses.Tversky (on sigmoid)", keras_tversky("alpha", "beta"))],
        "soft_fbeta": [("F-beta code (soft F-beta answer, tf)", seed003_fbeta)],
        "mean_squared_error": [("keras.losses.MeanSquaredError", keras_mse)],
        "mean_absolute_error": [("keras.losses.MeanAbsoluteError", keras_mae)],
        "huber": [("keras.losses.Huber", keras_huber)],
        "log_cosh": [("keras.losses.LogCosh", keras_log_cosh)],
        "mean_absolute_percentage_error": [("keras.losses.MeanAbsolutePercentageError", keras_mape)],
        "mean_squared_logarithmic_error": [("keras.losses.MeanSquaredLogarithmicError", keras_msle)],
        "poisson": [("keras.losses.Poisson", keras_poisson)],
        "circle": [("keras.losses.Circle", keras_circle)],
        "cosine_similarity": [("keras.losses.CosineSimilarity", keras_cosine)],
        "ctc": [("keras.losses.CTC", keras_ctc)],
        "hinge": [("keras.losses.Hinge", keras_hinge)],
        "squared_hinge": [("keras.losses.SquaredHinge", keras_squared_hinge)],
        "categorical_hinge": [("keras.losses.CategoricalHinge", keras_categorical_hinge),
                              ("plain tf max over wrong classes", plain_categorical_hinge)],
        "kl_divergence": [("keras.losses.KLDivergence", keras_kl_divergence),
                          ("plain tf xlogy(p, p) - p log q", plain_kl_divergence)],
        "asymmetric_exponential": [("custom_loss (asymmetric-cost answer)", seed003_asym)],
        "count_penalty": [("hard count (count-above-a-threshold answer)", seed000_count)],
        "mse_count_penalty": [("CountBasedRegularizationLoss (count-above-a-threshold answer)", seed000_mse_count)],
        "cce_count_penalty": [("sparse_prediction_loss (count-above-a-threshold answer)", seed000_cce_count)],
        "kl_sparsity": [("kl_divergence (KL-sparsity answer)", seed004_kl)],
    }
