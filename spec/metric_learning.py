"""Metric-learning losses: ``circle`` (integer labels ``(N,)`` and embeddings ``(N, D)``; the loss of
a sample is built from its pairs with the other samples of the batch: ``couples_samples=True``)."""
from __future__ import annotations

import numpy as np

from . import validation as v
from .cases import rng_for
from .core import DEFAULT_TOLERANCES, Case, InvalidCase, LossSpec, Param, PeerNote, Tolerance, Tolerances, register
from .messages import VALIDATE_HINT, format_shape
from .numerics import mp
from .performance import TORCH_CONTRACT, note

#: rows whose norm is at most this are divided by it instead of their norm (torch F.normalize's clamp)
NORM_EPS = 1e-12


# --------------------------------------------------------------------------- shapes and labels
def _embedding_target_shape(shape):
    # (N, D) embeddings → (N,) labels; a 1-D prediction keeps its shape so that check_shapes reports it
    return tuple(shape[:-1]) if len(shape) >= 2 else tuple(shape)


def embeddings_shape(loss: str, shape) -> str:
    return f"{loss}: prediction must be embeddings of shape (N, D); got shape {format_shape(shape)}"


def labels_not_integer(loss: str) -> str:
    return (f"{loss}: target must hold integer labels, one per embedding (shape (N,)); got non-integer "
            f"values{VALIDATE_HINT}")


def _check_embedding_axis(loss, params, shape):
    if len(shape) != 2:
        raise ValueError(embeddings_shape(loss, shape))


def _size(shape) -> int:
    return int(np.prod([1 if d is None else int(d) for d in shape]))


def _check_integer_labels(loss, params, prediction, target, ops):
    if _size(ops.shape(target)) and not ops.all_integral(target):
        raise ValueError(labels_not_integer(loss))


# =========================================================================== circle
def _normalized(x, normalize):
    """``x / max(|x|, eps)`` row by row (``normalize``), else ``x``; and the divisor."""
    x = np.asarray(x, np.float64)
    if not normalize:
        return x, None
    norm = np.maximum(np.sqrt(np.sum(x * x, axis=1, keepdims=True)), NORM_EPS)
    return x / norm, norm


def _masks(labels, remove_diagonal):
    labels = np.asarray(labels, np.float64)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(labels.size, dtype=bool) if remove_diagonal else same
    return positive, ~same


def _pair_logits(distance, margin, gamma):
    """The scaled pair terms of Keras' circle: positives γ [m + d]₊ (d - m), negatives γ [1 + m - d]₊ (1 - m - d)."""
    positive = gamma * np.maximum(margin + distance, 0.0) * (distance - margin)
    negative = gamma * np.maximum(1.0 + margin - distance, 0.0) * (1.0 - margin - distance)
    return positive, negative


def _masked_logsumexp(z, mask):
    """Row-wise log Σ_{mask} e^z and the softmax over the mask; -inf and zeros for an empty row."""
    zm = np.where(mask, z, -np.inf)
    top = np.max(zm, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(mask, np.exp(zm - top), 0.0)
    s = e.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(s) + top[:, 0], np.where(s[:, None] > 0, e / s[:, None], 0.0)


def _circle_parts(prediction, target, gamma, margin, remove_diagonal, normalize):
    u, norm = _normalized(prediction, normalize)
    similarity = u @ u.T
    distance = np.maximum(1.0 - similarity, 0.0)
    positive, negative = _masks(target, remove_diagonal)
    zp, zn = _pair_logits(distance, margin, gamma)
    lse_p, soft_p = _masked_logsumexp(zp, positive)
    lse_n, soft_n = _masked_logsumexp(zn, negative)
    has = positive.any(axis=1) & negative.any(axis=1)
    a = np.where(has, lse_p + lse_n, 0.0)
    return dict(u=u, norm=norm, similarity=similarity, distance=distance, positive=positive, negative=negative,
                soft_p=soft_p, soft_n=soft_n, has=has, a=a)


def _circle_reference(prediction, target, *, gamma, margin, remove_diagonal, normalize):
    parts = _circle_parts(prediction, target, gamma, margin, remove_diagonal, normalize)
    return np.where(parts["has"], np.logaddexp(0.0, parts["a"]), 0.0)


def _circle_vjp(prediction, target, cotangent, *, gamma, margin, remove_diagonal, normalize):
    p = _circle_parts(prediction, target, gamma, margin, remove_diagonal, normalize)
    d = p["distance"]
    # d ℓ_i / d a_i = σ(a_i) (0 for a sample without a positive or a negative pair)
    c = np.asarray(cotangent, np.float64) * np.where(p["has"], np.exp(-np.logaddexp(0.0, -p["a"])), 0.0)
    # d z / d distance: positives 2γd where m + d >= 0 (max's identity branch at the tie), negatives
    # -2γ(1 - d) where 1 + m - d >= 0, else 0
    dzp = np.where(margin + d >= 0.0, 2.0 * gamma * d, 0.0)
    dzn = np.where(1.0 + margin - d >= 0.0, -2.0 * gamma * (1.0 - d), 0.0)
    g_distance = c[:, None] * (p["soft_p"] * dzp + p["soft_n"] * dzn)
    # distance = max(1 - s, 0): -1 where 1 - s >= 0 (identity branch at s = 1), else 0
    g_similarity = np.where(1.0 - p["similarity"] >= 0.0, -g_distance, 0.0)
    u = p["u"]
    g_u = (g_similarity + g_similarity.T) @ u
    if not normalize:
        return g_u
    norm = p["norm"]
    radial = np.sum(u * g_u, axis=1, keepdims=True)
    clamped = norm <= NORM_EPS  # x / eps: linear
    return np.where(clamped, g_u / NORM_EPS, (g_u - u * radial) / norm)


def _circle_exact(prediction, target, *, gamma, margin, remove_diagonal, normalize):
    x = np.asarray(prediction, dtype=object)
    n = x.shape[0]
    rows = [[mp.mpf(v) for v in x[i]] for i in range(n)]
    if normalize:
        out_rows = []
        for r in rows:
            norm = mp.sqrt(mp.fsum(t * t for t in r))
            norm = norm if norm > NORM_EPS else mp.mpf(NORM_EPS)
            out_rows.append([t / norm for t in r])
        rows = out_rows
    labels = np.asarray(target, np.float64)
    g, m = mp.mpf(gamma), mp.mpf(margin)
    out = []
    for i in range(n):
        zp, zn = [], []
        for j in range(n):
            same = labels[i] == labels[j]
            if same and remove_diagonal and i == j:
                continue
            s = mp.fsum(a * b for a, b in zip(rows[i], rows[j]))
            d = max(1 - s, mp.mpf(0))
            if same:
                zp.append(g * max(m + d, mp.mpf(0)) * (d - m))
            else:
                zn.append(g * max(1 + m - d, mp.mpf(0)) * (1 - m - d))
        if not zp or not zn:
            out.append(mp.mpf(0))
            continue
        top = max(zp) + max(zn)
        total = mp.fsum(mp.exp(a + b - top) for a in zp for b in zn)
        a = mp.log(total) + top
        out.append(mp.log1p(mp.exp(a)) if a < 0 else a + mp.log1p(mp.exp(-a)))
    return out


def _unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


#: how far float32's rounding of the similarities may move a pair term z (in nats) before the result
#: leaves the tolerances: e^{z ± δ} is off by δ relatively
_PAIR_TERM_ROUNDING = 2.0 ** -10


def _circle_ill_conditioned(prediction, target, params):
    """``ill_conditioned``: (normalize=True) a row at or below NORM_EPS: its gradient is g_u / 1e-12,
    g_u = Σ_j (G_ij + G_ji) x̂_j a sum of the other rows' unit vectors that may cancel, so its absolute
    rounding (ε · Σ|terms|, ~1e-6 in float32) comes out ~1e6 whatever the true value (float32 rounds
    x̂ = (-1e4, 1) / |·| to (-1, 0), and g_u = G(x̂_a - x̂_b) loses the 5e-9 that the reference keeps).
    (normalize=False) raw rows whose similarities float32 cannot hold to the pair terms' needs: s_ij =
    u_i · u_j is rounded by ε32 · M (M = max Σ_k |u_ik u_jk|), which moves z = γ(d² - m²) by
    2γ|d| ε32 M with |d| <= 1 + M: beyond 2^-10 for rows of norm past ~3 at γ = 80 (unit rows, as
    keras.losses.Circle takes them, stay below it up to γ = 320); (-1e4, 1/32, 89) · (-89, 1, -1e4) =
    890000 + 1/32 - 890000, or rows of norm 1e4 with pair terms of 3e10, are far past it."""
    x = np.asarray(prediction, np.float64)
    if x.ndim != 2:
        return ""
    if params.get("normalize", True):
        if np.any(np.sqrt(np.sum(x * x, axis=1)) <= NORM_EPS):
            return "a zero row (|x| <= 1e-12): its gradient is a sum divided by 1e-12"
        return ""
    magnitude = float(np.max(np.abs(x) @ np.abs(x).T, initial=0.0))
    if 2.0 * params.get("gamma", 80.0) * (2.0 + magnitude) * magnitude * 2.0 ** -24 > _PAIR_TERM_ROUNDING:
        return "raw rows whose similarities float32 rounds by more than the pair terms allow"
    return ""


def _circle_cases():
    rng = rng_for("circle")
    labels6 = np.array([0, 1, 0, 2, 1, 2], np.int64)
    unit = {"normalize": False}
    others = {"gamma": 16.0, "margin": 1.0, "remove_diagonal": False, "normalize": False}
    sharp = {"gamma": 320.0, "normalize": False}
    tight = _unit_rows(np.array([[1.0, 0.05, 0.0], [0.0, 1.0, 0.1], [0.98, 0.0, 0.1], [0.1, 0.0, -1.0],
                                 [0.05, 0.97, 0.0], [0.0, 0.1, -0.99]]))
    # orthogonal unit vectors: cos 0 or -1 exactly; -e₀ against e₀ has d = 2
    axes = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                     [0.0, 0.0, 0.0, -1.0]])
    same_point = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    return [
        Case("typical", "typical", {}, rng.normal(size=(6, 4)), labels6, rng.uniform(0.2, 2.0, size=6),
             note="raw embeddings, normalized inside (normalize=True)"),
        Case("typical-unit", "typical", unit, _unit_rows(rng.normal(size=(8, 3))),
             np.array([3, 1, 3, 3, 7, 1, 7, 2], np.int64),
             note="unit-norm embeddings as keras.losses.Circle takes them (normalize=False); label 2 has no positive"),
        Case("typical-params", "typical", others, _unit_rows(rng.normal(size=(5, 3))), np.array([0, 0, 1, 1, 1], np.int64),
             rng.uniform(0.2, 2.0, size=5),
             note="remove_diagonal=False: each sample is its own positive pair at d = 0 (smooth there: "
                  "d/dd of γ (m + d)(d - m) is 2γd = 0); m = 1: negatives weighted until cosine -1"),
        Case("typical-labels", "typical", unit, _unit_rows(rng.normal(size=(6, 2))),
             np.array([-5, 7, -5, 10**6, 7, 10**6], np.int64),
             note="labels are identities, any integers (negative, large): only equality matters"),
        Case("extreme-separated", "extreme", sharp, tight, labels6,
             note="positives close and negatives far: a ≈ -100, ℓ = e^a (softplus keeps it; log(1 + e^a) "
                  "rounds to 0)"),
        Case("extreme-confused", "extreme", unit, tight, np.array([0, 0, 1, 1, 2, 2], np.int64),
             note="positives far and negatives close: a ≈ 250, ℓ = a + log1p(e^-a) (no overflow of e^a)"),
        Case("extreme-gamma", "extreme", sharp, _unit_rows(rng.normal(size=(5, 3))),
             np.array([0, 1, 0, 1, 2], np.int64), note="γ = 320: pair terms up to ~1500, far beyond float32 exp"),
        Case("extreme-scale", "extreme", {}, rng.normal(0.0, 1e4, size=(4, 3)), np.array([0, 1, 0, 1], np.int64),
             note="|x| ~ 1e4 normalized inside: the same loss as x / |x|"),
        Case("extreme-weights", "extreme", {}, rng.normal(size=(3, 4)), np.array([0, 0, 1], np.int64),
             np.array([1e6, 1e-6, 0.0]), note="huge, tiny and zero sample weights"),
        Case("edge-axes", "edge", others, axes, np.array([0, 1, 2, 1, 0], np.int64),
             smooth=False, note="cosines exactly 0 and -1 (d = 1, 2); the negative pair at d = 2 = 1 + m sits on "
                                "the kink of its weight [1 + m - d]₊ (identity branch: weight 0, slope -1)"),
        Case("edge-same-point", "edge", unit, same_point, np.array([0, 1, 1, 0], np.int64), smooth=False,
             note="two different labels at the same point: cos = 1 exactly, d = max(1 - s, 0) at its kink "
                  "(identity branch: d/ds = -1 there)"),
        Case("edge-no-positive", "edge", unit, _unit_rows(rng.normal(size=(4, 3))), np.array([0, 1, 2, 3], np.int64),
             note="every label once: no positive pair, loss 0 and gradient 0 for every sample"),
        Case("edge-one-label", "edge", {}, rng.normal(size=(4, 3)), np.array([5, 5, 5, 5], np.int64),
             note="one label: no negative pair, loss 0 and gradient 0"),
        Case("edge-batch1", "edge", {}, rng.normal(size=(1, 4)), np.array([0], np.int64),
             note="a batch of one has no pair: loss 0"),
        Case("edge-zero-row", "edge", {}, np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.5], [0.5, -1.0, 2.0],
                                                    [-1.0, 0.5, 0.25]]), np.array([0, 0, 1, 1], np.int64),
             smooth=False, note="a zero embedding: normalized to 0 (x / max(|x|, 1e-12)), cosine 0 to every other"),
        Case("edge-zero-rows-negative", "edge", {}, np.vstack([[0.0, 0.0, 0.0, -1e4], np.zeros((4, 4))]),
             np.array([1, 0, 0, 0, 0], np.int64), smooth=False,
             note="zero rows whose only negative is the one non-zero row: d = 1, c = 1 - d = 0, and d z_n / d c = "
                  "2γc = 0 exactly, so the zero rows' gradient (their g_u / 1e-12) is 0; a rounding residue of "
                  "the negative term's two factors there came out ~1e6 (found by the property test)"),
    ]


def _circle_invalid():
    p = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]])
    return [
        InvalidCase("gamma-zero", {"gamma": 0.0}),
        InvalidCase("gamma-negative", {"gamma": -80.0}),
        InvalidCase("gamma-inf", {"gamma": float("inf")}),
        InvalidCase("margin-nan", {"margin": float("nan")}),
        InvalidCase("margin-string", {"margin": "0.4"}),
        InvalidCase("remove-diagonal-not-bool", {"remove_diagonal": 1}),
        InvalidCase("normalize-not-bool", {"normalize": "yes"}),
        InvalidCase("label-not-integer", {}, p, np.array([0.5, 1.0, 0.0])),
        InvalidCase("one-hot-target", {}, p, np.eye(3)[:, :2]),
        InvalidCase("prediction-1d", {}, np.array([0.6, 0.8, 1.0]), np.array([0, 1, 0], np.int64)),
        InvalidCase("prediction-3d", {}, np.ones((3, 2, 2)), np.ones((3, 2), np.int64)),
    ]


GAMMA = Param("gamma", 80.0, "a finite float > 0", v.real(lo=0.0, lo_open=True),
              doc="Scale of every pair term (Keras' gamma): the larger, the closer the loss is to the hardest pair's "
                  "hinge; 80 is the paper's and Keras' default.")
MARGIN = Param("margin", 0.4, "a finite float", v.real(),
               doc="Relaxation m (Keras' margin): positives are pushed to cosine distance below m and "
                   "negatives beyond 1 - m; the weights are [m + d]₊ and [1 + m - d]₊.")
REMOVE_DIAGONAL = Param("remove_diagonal", True, "a bool", v.boolean(),
                        doc="Leave each sample's pair with itself out of its positives (Keras' remove_diagonal).")
NORMALIZE = Param("normalize", True, "a bool", v.boolean(),
                  doc="Divide each embedding by its norm (max(|x|, 1e-12)) first, so the similarities are cosines. "
                      "False takes the rows as they are, as keras.losses.Circle does (it expects unit-norm "
                      "embeddings, e.g. from keras.layers.UnitNormalization).")

_CIRCLE_PERFORMANCE = (
)

CIRCLE = register(LossSpec(
    name="circle",
    family="metric_learning",
    summary=("Circle loss of each sample against the other samples of the batch: softplus of the log-sum-exp of its "
             "weighted positive-pair and negative-pair cosine distances (integer labels, (N, D) embeddings)."),
    formula=(r"\ell_i = \log\Big(1 + \sum_{j \in P_i}\sum_{k \in N_i} e^{z^p_{ij} + z^n_{ik}}\Big),\quad "
             r"z^p_{ij} = \gamma\,[m + d_{ij}]_+ (d_{ij} - m),\ z^n_{ik} = \gamma\,[1 + m - d_{ik}]_+ (1 - m - d_{ik}),"
             r"\ d_{ij} = \max(1 - \hat x_i \cdot \hat x_j, 0)"),
    params=(GAMMA, MARGIN, REMOVE_DIAGONAL, NORMALIZE),
    reference=_circle_reference,
    reference_vjp=_circle_vjp,
    exact=_circle_exact,
    cases=_circle_cases,
    invalid_cases=_circle_invalid,
    target_domain=None,  # labels: any integers (checked by _check_integer_labels)
    target_shape=_embedding_target_shape,
    target_labels_bounded=False,
    couples_samples=True,
    ill_conditioned=_circle_ill_conditioned,
    check_shapes=_check_embedding_axis,
    check_values=_check_integer_labels,
    grad_convention=(
        "dℓ_i/dz = σ(a_i) × the softmax of the pair terms over P_i (resp. N_i), a_i = LSE_P + LSE_N; dz/dd = 2γd "
        "(positives, where m + d >= 0) and -2γ(1 - d) (negatives, where 1 + m - d >= 0), else 0; d = max(1 - s, 0) "
        "passes -1 for 1 - s >= 0 (identity branch at s = 1, as tf.maximum's gradient), 0 beyond. A sample without "
        "a positive or without a negative pair has loss 0 and sends no gradient (its rows still get the gradient "
        "of the other samples' pairs). normalize: the gradient is projected, (g - x̂ (x̂·g)) / |x|; a row with "
        "|x| <= 1e-12 gets g / 1e-12 (exact where g has no cancellation, as in the edge cases; elsewhere its "
        "absolute rounding times 1e12: outside the property tests' domain, see ill_conditioned, as are raw rows "
        "(normalize=False) of norm past ~3, whose rounded similarities move the pair terms beyond the "
        "tolerances). No gradient w.r.t. the labels."),
    stability=(
        "The pair terms reach ±γ(2 + m)·2 (±384 at the defaults; ±1500 at γ = 320): never e^z itself. Each "
        "log-sum-exp is shifted by its own masked maximum (0 for an empty row, whose sum is replaced by 1 under a "
        "where, so no log 0 or inf · 0 reaches the gradient), and ℓ = softplus(LSE_P + LSE_N) (a ≈ -100: ℓ = e^a "
        "with every digit; a ≈ 250: a + log1p(e^-a)). A zero row is divided by 1e-12 under a where that keeps "
        "√0 out of the gradient. The normalization's backward removes the radial part of g_u, a sum of pair "
        "gradients up to 2γ(2 + m) each (~800 at the defaults): a row whose gradient is nearly radial keeps "
        "ε32 · |g_u| of it (4e-6 where the true value is 0, found by the property test; 5e-5 at most at γ = "
        "80, 2e-4 at γ = 320): the float32 gradient tolerance is atol 2e-4 · scale; the rest are the "
        "defaults."),
    tolerances=Tolerances(value=DEFAULT_TOLERANCES.value,
                          grad={"float64": DEFAULT_TOLERANCES.grad["float64"],
                                "float32": Tolerance(rtol=1e-4, atol=2e-4)}),
    performance_notes=_CIRCLE_PERFORMANCE,
    peer_notes=(
        PeerNote("keras.losses.Circle(gamma, margin, remove_diagonal)", "reduction 'sum_over_batch_size' / 'mean'",
                 "Keras marks samples with loss 0 (no positive or no negative pair) as masked and divides the sum "
                 "by the number of samples with loss > 0; ours divides by N (the contract's Σ w ℓ / N). "
                 "Keras' mean = ours with reduction='sum' / #{ℓ_i > 0}; 'sum' and 'none' are equal"),
        PeerNote("keras.losses.Circle", "embeddings that are not unit vectors",
                 "Keras uses the dot products as given (it expects UnitNormalization in the model); ours "
                 "normalizes by default (normalize=True). normalize=False is Keras' exact formula; with "
                 "unit-norm rows both agree in value, and the gradients differ by the radial component "
                 "x̂ (x̂·g), which a UnitNormalization layer removes anyway"),
        PeerNote("keras.losses.Circle", "float64 inputs",
                 "Keras computes in floatx (float32) unless built with dtype='float64', and casts the labels "
                 "through floatx to int32 (labels above 2**24 merge in float32); ours keeps float64 and "
                 "compares the labels as given"),
        PeerNote("torch.nn (no peer)", "every input",
                 "torch.nn has no circle loss; the torch twin is checked against the spec and the Keras twin"),
    ),
    references=("Y. Sun et al., Circle Loss: A Unified Perspective of Pair Similarity Optimization (CVPR 2020); "
                "keras.losses.Circle",),
    trap=("keras.losses.Circle does not normalize: raw Dense outputs give dot products, not cosines (ours "
          "normalizes unless normalize=False). Its mean divides by the samples that have both a positive and a "
          "negative pair, not by the batch size."),
    torch_class="CircleLoss",
    keras_class="Circle",
))

__all__ = ["CIRCLE"]
