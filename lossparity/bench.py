"""Speed and memory of every registered loss against the best peer of the same math.

    python -m lossparity.bench [--quick | --tiny] [--device cpu|cuda] [--only NAME ...]
                            [--frameworks torch keras] [--repeats N] [--threads N]
                            --json FILE [--markdown FILE]
    python -m lossparity.bench --render FILE.json        # Markdown tables of a previous run

For every loss of ``spec.names()`` (parameters: the entry's first case), every benchmark shape and
dtype, it times forward+backward (``mode="fwd+bwd"``: the gradient w.r.t. the prediction) and
forward only (``mode="fwd"``) of

* torch: ``torch_impl.get_loss(name, **params)`` (eager, default ``validate=True``) and, as a
  second ``impl``, the same module with ``validate=False``;
* Keras: ``tf_impl.get_loss(name, **params)`` eagerly (and with ``validate=False``), and under
  ``tf.function(jit_compile=True)`` (XLA, where the data checks are skipped at trace time), each
  against the peer run the same way;

against every available peer of the same math (:func:`_torch_peers`, :func:`_keras_peers`): the
framework's own op, MONAI, Keras built-ins, and the seeds' own code transcribed ("what users write
today"). A peer that is not the same math for the entry's parameters (e.g. ``pos_weight != 1`` for
``keras.losses.BinaryCrossentropy``) is left out; a peer that fails (e.g. no gradient) leaves a row
with null peer columns and a ``note``. All implementations of one configuration are timed in the
same process, interleaved repeat by repeat, after a warm-up; each repeat runs the call enough times
to last at least ``min_ms`` and the per-call median over repeats is reported.

Memory (``peak_bytes_*``), one untimed call:
* torch on CPU: peak bytes allocated during the call above the allocation before it (the returned
  gradient included), from ``torch.profiler(profile_memory=True)`` allocation events
  (:func:`profiler_peak_bytes`); deterministic. fwd+bwd rows also carry ``saved_bytes_*``: the
  bytes of the distinct storages autograd saved for backward (``saved_tensors_hooks``).
* torch on CUDA: ``torch.cuda.max_memory_allocated`` above the allocation before the call.
* Keras on GPU: ``tf.config.experimental.get_memory_info``'s ``peak`` above the current value;
  on CPU TensorFlow keeps no allocator statistics: ``null``.

Per-call cost (``--per-call``, on by default; ``--no-per-call`` skips it): every loss with a peer,
forward+backward at ``PERCALL_SHAPE`` (256×10: ``(256, C)`` where a parameter fixes the class count),
float32, default arguments (the entry's first case), torch eager and Keras eager, each against every
peer, interleaved; one row per (loss, framework, peer) with ``mode = PERCALL_MODE`` (``"per-call
fwd+bwd"``), ``ours_us``, ``peer_us``, ``diff_us = ours - peer`` and ``ratio`` (:func:`bench_percall`),
printed as its own table (:func:`render_percall`) and written to the JSON with the other rows. The
target (``PERCALL_TARGET_US``): ours within +15 µs of the fastest peer, at a size where the fixed cost
of a call (Python, dispatch, data checks, autograd nodes) is what users feel.

Output: a JSON list of rows ``{"loss", "framework", "impl", "peer", "shape", "dtype", "mode",
"ours_ms", "peer_ms", "ratio", "peak_bytes_ours", "peak_bytes_peer", ...}`` (``ratio = ours/peer``;
peer columns ``null`` where a loss has no peer; extra keys: ``saved_bytes_*``; ``value_rel_diff`` =
``|ours - peer| / |ours|`` of the loss values on the benchmark inputs, which shows where a peer's
math differs, e.g. a smoothing constant; ``device``, ``shape_kind``, ``note``), and a table on
stdout. Losses without a torch or Keras implementation are skipped with a printed note.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import spec

# --------------------------------------------------------------------------- configuration
#: shape sets per input layout. "binary": elementwise / overlap / regression losses (prediction and
#: target of one shape); "classes": class axis LAST (one-hot or integer targets), ``C`` = classes;
#: "single": one input (regularizers), an activation tensor.
SHAPES = {
    "binary": {"cls": (4096, 30), "seg": (8, 1, 256, 256), "large": (16, 1, 512, 512)},
    # NHWC with 4 classes: the same 524,288 elements as the binary segmentation case
    "classes": {"cls": (4096, 30), "seg": (8, 128, 128, 4), "large": (131072, 32)},
    "single": {"cls": (4096, 30), "seg": (8, 1, 256, 256), "large": (16, 1, 512, 512)},
}
TINY_SHAPES = {
    "binary": {"tiny": (16, 8)},
    "classes": {"tiny": (16, 5)},
    "single": {"tiny": (16, 8)},
}
LARGE_ELEMENTS = 1 << 22  # the "large" shape of a class-last loss whose class count is fixed by a param


@dataclasses.dataclass(frozen=True)
class Settings:
    shapes: tuple[str, ...]
    dtypes: tuple[str, ...]
    bf16_shapes: tuple[str, ...]
    repeats: int
    warmup: int
    min_ms: float
    keras_jit_shapes: tuple[str, ...]
    keras_jit_dtypes: tuple[str, ...] = ("float32", "bfloat16")
    tiny: bool = False
    #: torch: also time ``torch.compile`` of our module (``validate=False``) for FUSED_LOSSES
    fused: bool = False


FULL = Settings(shapes=("cls", "seg", "large"), dtypes=("float32", "bfloat16"), bf16_shapes=("cls", "seg", "large"),
                repeats=7, warmup=2, min_ms=40.0, keras_jit_shapes=("cls", "seg", "large"))
QUICK = Settings(shapes=("cls", "seg"), dtypes=("float32", "bfloat16"), bf16_shapes=("seg",),
                 repeats=5, warmup=1, min_ms=5.0, keras_jit_shapes=("seg",), keras_jit_dtypes=("float32",))
TINY = Settings(shapes=("tiny",), dtypes=("float32",), bf16_shapes=(), repeats=1, warmup=1, min_ms=0.0,
                keras_jit_shapes=("tiny",), tiny=True)

ROW_KEYS = ("loss", "framework", "impl", "peer", "shape", "dtype", "mode", "ours_ms", "peer_ms", "ratio",
            "peak_bytes_ours", "peak_bytes_peer")
MODES = ("fwd+bwd", "fwd")
#: the elementwise losses of issue 7's fused-path target: fused ours ≤ 0.6 × the fastest eager peer
FUSED_LOSSES = ("weighted_bce", "binary_focal", "asymmetric_exponential", "count_penalty", "mse_count_penalty",
                "cce_count_penalty")
FUSED_TARGET = 0.6
TORCH_COMPILED = "torch compile validate=False"
#: issue 7's eager target: fwd+bwd ≤ 1.0 × the fastest peer, ratios up to this are noise
EAGER_NOISE = 1.1
#: the committed run the spec's performance notes are checked against (parity_tests/test_bench.py)
COMMITTED_RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks",
                             "bench_cpu.json")


#: the per-call table: forward+backward at a small size, where the fixed cost of a call dominates
PERCALL_SHAPE = (256, 10)
PERCALL_MODE = "per-call fwd+bwd"
PERCALL_TARGET_US = 15.0
#: repeats of the per-call table (interleaved) and the time one repeat of a function lasts at least
PERCALL_REPEATS = 21
PERCALL_MIN_MS = 4.0


def note(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


# --------------------------------------------------------------------------- inputs
def layout(entry) -> str:
    """``binary`` | ``classes`` | ``single``, from the entry's contract and first case."""
    if entry.single_input:
        return "single"
    if entry.target_shape is not None:
        return "classes"
    if entry.family == "multiclass":
        return "classes"
    targets = [np.asarray(c.target, np.float64) for c in entry.cases()]
    one_hot = all(t.ndim >= 2 and t.shape[-1] > 1 and np.allclose(t.sum(-1), 1.0) and np.all((t == 0) | (t == 1))
                  for t in targets)
    return "classes" if one_hot else "binary"


def class_count(params) -> int | None:
    """The class count fixed by a square matrix parameter (``cost_matrix``), if any."""
    for value in params.values():
        a = np.asarray(value) if isinstance(value, (np.ndarray, list)) else None
        if a is not None and a.ndim == 2 and a.shape[0] == a.shape[1]:
            return int(a.shape[0])
    return None


def shapes_for(entry, params, settings: Settings) -> dict[str, tuple]:
    kind = layout(entry)
    table = (TINY_SHAPES if settings.tiny else SHAPES)[kind]
    out = {k: table[k] for k in settings.shapes if k in table}
    c = class_count(params) if kind == "classes" else None
    if c is not None:
        out = {k: (s[:-1] + (c,) if k != "large" else (math.ceil(LARGE_ELEMENTS / c), c)) for k, s in out.items()}
    for key, value in params.items():  # a per-class vector (pos_weight) fixes the last axis
        a = np.asarray(value) if isinstance(value, np.ndarray) else None
        if a is not None and a.ndim == 1 and a.size > 1:
            for k in list(out):
                if out[k][-1] != a.size:
                    note(f"{entry.name}: skip shape {k} {out[k]}: {key} has {a.size} entries")
                    del out[k]
    return out


def make_inputs(entry, params, shape, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 prediction and target (int64 labels for sparse entries) in the entry's domains."""
    kind = layout(entry)
    domain = entry.prediction_domain(params)
    if domain is None:
        x = rng.normal(0.0, 2.0, shape)
    elif kind == "classes":  # probabilities: softmax rows
        z = rng.normal(0.0, 1.0, shape)
        x = np.exp(z - z.max(-1, keepdims=True))
        x /= x.sum(-1, keepdims=True)
    else:
        lo, hi = domain
        x = rng.uniform(lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo), shape)
    if kind == "single":
        return x, None
    if entry.target_shape is not None:
        return x, rng.integers(0, shape[-1], entry.target_shape(shape)).astype(np.int64)
    if kind == "classes":
        return x, np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    if entry.target_domain is None:
        return x, rng.normal(0.0, 1.0, shape)
    lo, hi = entry.target_domain
    return x, np.where(rng.random(shape) < 0.3, hi, lo).astype(np.float64)


# --------------------------------------------------------------------------- timing
def time_group(fns: dict[str, Callable[[], Any]], sync: Callable[[], None], settings: Settings) -> dict[str, float]:
    """Median milliseconds per call of each function, the functions interleaved repeat by repeat."""
    number = {}
    for key, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(settings.warmup):
            fn()
        sync()
        per_call = (time.perf_counter() - t0) / max(settings.warmup, 1) * 1e3
        number[key] = max(1, math.ceil(settings.min_ms / max(per_call, 1e-3))) if settings.min_ms else 1
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(settings.repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(number[key]):
                fn()
            sync()
            times[key].append((time.perf_counter() - t0) * 1e3 / number[key])
    return {k: statistics.median(v) for k, v in times.items()}


# --------------------------------------------------------------------------- torch side
def profiler_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by ``fn()`` above the allocation when it starts, CPU allocator level.

    ``torch.profiler`` with ``profile_memory=True`` records every allocation with the allocator's
    running total (``total_allocated``), temporaries inside fused kernels included; the peak is
    the largest total seen minus the total before the first allocation. Deterministic for a given
    build. The profiler's own chatter on stderr is silenced for the call.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    sys.stderr.flush()
    saved_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = fn()
            del out
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        os.close(devnull)
    allocs, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation and event.extra_fields.alloc_size > 0:
            allocs.append((event.start_time_ns, event.extra_fields.alloc_size, event.extra_fields.total_allocated))
    if not allocs:
        return 0
    allocs.sort()
    base = allocs[0][2] - allocs[0][1]
    return max(total for _, _, total in allocs) - base


def saved_for_backward_bytes(fn: Callable[[], Any]) -> int:
    """Bytes of the distinct storages that autograd saves for backward during ``fn()``."""
    import torch

    seen: dict[int, int] = {}
    keep = []

    def pack(t):
        st = t.untyped_storage()
        seen.setdefault(st._cdata, st.nbytes())
        keep.append(st)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out, keep
    return sum(seen.values())


class TorchRunner:
    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def tensors(self, x, y, dtype):
        torch = self.torch
        tdtype = getattr(torch, dtype)
        xt = torch.as_tensor(x, dtype=tdtype, device=self.device)
        if y is None:
            yt = None
        elif np.issubdtype(y.dtype, np.integer):
            yt = torch.as_tensor(y, device=self.device)
        else:
            yt = torch.as_tensor(y, dtype=torch.float32, device=self.device)
        return xt, yt

    def step(self, fn, x, y, mode):
        """A no-argument callable: one forward (+ backward w.r.t. ``x``) of ``fn``."""
        torch = self.torch
        if mode == "fwd":
            xd = x.detach()
            a = (xd,) if y is None else (xd, y)

            def fwd():
                with torch.no_grad():
                    return fn(*a)
            return fwd
        xg = x.detach().requires_grad_(True)
        a = (xg,) if y is None else (xg, y)

        def fwd_bwd():  # the loss value is returned too (training logs it)
            loss = fn(*a)
            return loss.detach(), torch.autograd.grad(loss, xg)[0]
        return fwd_bwd

    def memory(self, step, mode) -> tuple[int | None, int | None]:
        torch = self.torch
        if self.cuda:
            self.sync()
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            out = step()
            self.sync()
            peak = torch.cuda.max_memory_allocated(self.device) - base
            del out
            saved = saved_for_backward_bytes(step) if mode == "fwd+bwd" else None
            return peak, saved
        peak = profiler_peak_bytes(step)
        saved = saved_for_backward_bytes(step) if mode == "fwd+bwd" else None
        return peak, saved


# ---- torch peers: builder(params, shape) -> fn(input, target) -> scalar, or None (not the same math)
def _torch_peers():
    import torch
    import torch.nn.functional as F

    def f32(x):
        return x if x.dtype in (torch.float32, torch.float64) else x.float()

    def flat(x):
        return x.reshape(x.shape[0], -1)

    def from_logits(p):
        return p.get("from_logits", True)

    def bce_with_logits(p, shape):
        if not from_logits(p):
            return None
        pw = torch.as_tensor(np.asarray(p["pos_weight"], np.float32))

        def fn(x, y):
            x = f32(x)
            return F.binary_cross_entropy_with_logits(x, y.to(x.dtype), pos_weight=pw.to(x.device, x.dtype))
        return fn

    def torchvision_focal(p, shape):
        if not from_logits(p):
            return None
        gamma, alpha = p["gamma"], p["alpha"]

        def fn(x, y):  # torchvision.ops.sigmoid_focal_loss, verbatim but for the import
            x = f32(x)
            prob = torch.sigmoid(x)
            ce_loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
            p_t = prob * y + (1 - prob) * (1 - y)
            loss = ce_loss * ((1 - p_t) ** gamma)
            if alpha is not None and alpha >= 0:
                alpha_t = alpha * y + (1 - alpha) * (1 - y)
                loss = alpha_t * loss
            return loss.mean()
        return fn

    def monai(cls_name, **kw):
        def build(p, shape):
            try:
                from monai import losses as ml
            except Exception:  # noqa: BLE001  (monai absent or broken: no peer row)
                return None
            if not from_logits(p):
                return None
            loss = getattr(ml, cls_name)(**{k: v(p) if callable(v) else v for k, v in kw.items()})

            def fn(x, y):  # (N, ...) → (N, 1, M): one channel, the non-batch axes as spatial axes
                x = f32(x)
                return loss(x.reshape(x.shape[0], 1, -1), y.reshape(y.shape[0], 1, -1))
            return fn
        return build

    def cross_entropy(p, shape):
        if not from_logits(p):
            return None
        ls = p.get("label_smoothing", 0.0)

        def fn(x, y):  # classes last: rows of (-1, C), contiguous
            c = x.shape[-1]
            return F.cross_entropy(f32(x).reshape(-1, c), y.reshape(-1, c), label_smoothing=ls)
        return fn

    def sparse_cross_entropy(p, shape):
        if not from_logits(p):
            return None

        def fn(x, y):
            return F.cross_entropy(f32(x).reshape(-1, x.shape[-1]), y.reshape(-1))
        return fn

    def seed003_w_cce(p, shape):
        """Seed 003 ``w_categorical_crossentropy`` in torch (softmax head from logits)."""
        if not from_logits(p) or p.get("mode", "argmax") != "argmax":
            return None
        weights = np.asarray(p["cost_matrix"], np.float64)
        nb_cl = len(weights)

        def fn(x, y):
            x = f32(x)
            c = x.shape[-1]
            x2, y2 = x.reshape(-1, c), y.reshape(-1, c)
            y_pred = torch.softmax(x2, dim=-1)
            final_mask = torch.zeros_like(y_pred[:, 0])
            y_pred_max = torch.max(y_pred, dim=1).values.reshape(-1, 1)
            y_pred_max_mat = (y_pred == y_pred_max).to(y_pred.dtype)
            for c_p in range(nb_cl):
                for c_t in range(nb_cl):
                    final_mask = final_mask + (float(weights[c_t, c_p]) * y_pred_max_mat[:, c_p] * y2[:, c_t])
            return (F.cross_entropy(x2, y2, reduction="none") * final_mask).mean()
        return fn

    def plain_dice(p, shape):
        if not from_logits(p):
            return None
        s = p["smooth"]

        def fn(x, y):  # what users write: sigmoid, sums, 1 - ratio
            prob, y = flat(torch.sigmoid(f32(x))), flat(y)
            inter = (prob * y).sum(1)
            return (1 - (2 * inter + s) / (prob.sum(1) + y.sum(1) + s)).mean()
        return fn

    def seed003_iouloss(p, shape):
        if not from_logits(p):
            return None

        def fn(x, y):  # seed 003 iouloss (sums over the flattened sample, sigmoid added)
            prob, y = flat(torch.sigmoid(f32(x))), flat(y)
            intersection = (y * prob).sum(-1)
            sum_ = (y + prob).sum(-1)
            jac = intersection / (sum_ - intersection)
            return (1 - jac).mean()
        return fn

    def seed003_fbeta(p, shape):
        if not from_logits(p) or p.get("average", "samples") != "samples":
            return None
        beta, epsilon = p["beta"], p["epsilon"]

        def fn(x, y):  # seed 003 F-beta torch code, as posted (clamp included)
            y_pred, y_true = flat(torch.sigmoid(f32(x))), flat(y)
            TP = (y_pred * y_true).sum(dim=1)
            FP = ((1 - y_pred) * y_true).sum(dim=1)
            FN = (y_pred * (1 - y_true)).sum(dim=1)
            fbeta = (1 + beta**2) * TP / ((1 + beta**2) * TP + (beta**2) * FN + FP + epsilon)
            fbeta = fbeta.clamp(min=epsilon, max=1 - epsilon)
            return 1 - fbeta.mean()
        return fn

    def mse(p, shape):
        return lambda x, y: F.mse_loss(f32(x), y)

    def seed003_asym(p, shape):
        def fn(x, y):  # seed 003: K.mean(abs(1 - exp(-log(exp(y_true - y_pred)))))
            return torch.mean(torch.abs(1 - torch.exp(-torch.log(torch.exp(y - f32(x))))))
        return fn

    def _count_args(p):
        return p.get("threshold", 0.5), p.get("weight", p.get("regularization_factor", 1.0))

    def seed000_count(p, shape):
        t, w = _count_args(p)

        def fn(x):  # seed 000: hard count of elements above the threshold (no gradient)
            above = (f32(x) > t).to(torch.float32)
            return w * flat(above).sum(-1).mean()
        return fn

    def seed000_mse_count(p, shape):
        t, w = _count_args(p)

        def fn(x, y):  # seed 000 CountBasedRegularizationLoss: MSE + factor * mean(count above)
            x = f32(x)
            base = flat((x - y) ** 2).mean(-1)
            count_above = flat((x > t).to(torch.float32)).sum(-1)
            return (base + w * count_above.mean()).mean()
        return fn

    def seed000_cce_count(p, shape):
        t, w = _count_args(p)

        def fn(x, y):  # seed 000 sparse_prediction_loss: CCE + factor * mean(count of probs > t)
            x = f32(x)
            c = x.shape[-1]
            x2, y2 = x.reshape(-1, c), y.reshape(-1, c)
            base = F.cross_entropy(x2, y2, reduction="none")
            count_above = (torch.softmax(x2, -1) > t).to(torch.float32).sum(-1)
            return (base + w * count_above.mean()).mean()
        return fn

    def seed004_kl(p, shape):
        rho = p.get("target", p.get("sparsity_target", p.get("rho", 0.1)))
        w = p.get("weight", p.get("sparsity_weight", 1.0))

        def fn(x):  # seed 004: sum_j KL(rho || mean activation q_j), q = batch mean
            q = flat(f32(x)).mean(0)
            kl = rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))
            return w * kl.sum()
        return fn

    return {
        "weighted_bce": [("F.binary_cross_entropy_with_logits", bce_with_logits)],
        "binary_focal": [("torchvision sigmoid_focal_loss (transcribed)", torchvision_focal),
                         ("monai.losses.FocalLoss", monai("FocalLoss", gamma=lambda p: p["gamma"],
                                                          alpha=lambda p: p["alpha"], reduction="mean"))],
        "categorical_crossentropy": [("F.cross_entropy (prob. targets)", cross_entropy)],
        "sparse_categorical_crossentropy": [("F.cross_entropy", sparse_cross_entropy)],
        "cost_sensitive_cce": [("seed 003 w_categorical_crossentropy (transcribed)", seed003_w_cce)],
        "soft_dice": [("monai.losses.DiceLoss", monai("DiceLoss", sigmoid=True, smooth_nr=lambda p: p["smooth"],
                                                       smooth_dr=lambda p: p["smooth"])),
                      ("plain torch Dice (sigmoid + sums)", plain_dice)],
        "soft_jaccard": [("monai.losses.DiceLoss(jaccard=True)",
                          monai("DiceLoss", sigmoid=True, jaccard=True, smooth_nr=lambda p: 2 * p["smooth"],
                                smooth_dr=lambda p: 2 * p["smooth"])),
                         ("seed 003 iouloss (transcribed)", seed003_iouloss)],
        "tversky": [("monai.losses.TverskyLoss", monai("TverskyLoss", sigmoid=True, alpha=lambda p: p["alpha"],
                                                        beta=lambda p: p["beta"], smooth_nr=lambda p: p["smooth"],
                                                        smooth_dr=lambda p: p["smooth"]))],
        "soft_fbeta": [("seed 003 F-beta torch code", seed003_fbeta)],
        "mean_squared_error": [("F.mse_loss", mse)],
        "asymmetric_exponential": [("seed 003 custom_loss (transcribed)", seed003_asym)],
        "count_penalty": [("seed 000 hard count (transcribed)", seed000_count)],
        "mse_count_penalty": [("seed 000 CountBasedRegularizationLoss (transcribed)", seed000_mse_count)],
        "cce_count_penalty": [("seed 000 sparse_prediction_loss (transcribed)", seed000_cce_count)],
        "kl_sparsity": [("seed 004 kl_divergence (transcribed)", seed004_kl)],
    }


# --------------------------------------------------------------------------- Keras side
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

        def fn(y_true, logits):  # seed 001 wce_logits
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

    def seed003_w_cce(p, shape):
        if not from_logits(p) or p.get("mode", "argmax") != "argmax":
            return None
        weights = np.asarray(p["cost_matrix"], np.float32)
        nb_cl = len(weights)

        def fn(y_true, logits):  # seed 003 w_categorical_crossentropy (Keras backend → tf)
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

        def fn(y_true, logits):  # seed 003 iouloss (flattened sample, sigmoid added)
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

        def fn(y_true, logits):  # seed 003 F-beta code in TensorFlow
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

    def seed003_asym(p, shape):
        def fn(y_true, y_pred):  # seed 003 custom_loss
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

        def fn(y_true, y_pred):  # seed 000 CountBasedRegularizationLoss.call + Keras mean
            y_pred = f32(y_pred)
            base_loss = tf.reduce_mean(flat(tf.square(y_true - y_pred)), axis=-1)
            above_threshold = tf.cast(tf.greater(y_pred, t), tf.float32)
            count_above = tf.reduce_sum(flat(above_threshold), axis=-1)
            return tf.reduce_mean(base_loss + w * tf.reduce_mean(count_above))
        return fn

    def seed000_cce_count(p, shape):
        t, w = _count_args(p)

        def fn(y_true, logits):  # seed 000 sparse_prediction_loss (softmax head from logits)
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

        def fn(x):  # seed 004 (tf.log → tf.math.log)
            q = tf.reduce_mean(flat(f32(x)), axis=0)
            kl = rho * tf.math.log(rho / q) + (1 - rho) * tf.math.log((1 - rho) / (1 - q))
            return w * tf.reduce_sum(kl)
        return fn

    return {
        "weighted_bce": [("keras.losses.BinaryCrossentropy", keras_bce),
                         ("tf.nn.weighted_cross_entropy_with_logits (seed 001)", tf_weighted)],
        "binary_focal": [("keras.losses.BinaryFocalCrossentropy", keras_focal)],
        "categorical_crossentropy": [("keras.losses.CategoricalCrossentropy", keras_cce)],
        "sparse_categorical_crossentropy": [("keras.losses.SparseCategoricalCrossentropy", keras_scce)],
        "cost_sensitive_cce": [("seed 003 w_categorical_crossentropy", seed003_w_cce)],
        "soft_dice": [("keras.losses.Dice (on sigmoid)", keras_dice)],
        "soft_jaccard": [("keras.losses.Tversky(1, 1) (on sigmoid)", keras_tversky(None, None)),
                         ("seed 003 iouloss", seed003_iouloss)],
        "tversky": [("keras.losses.Tversky (on sigmoid)", keras_tversky("alpha", "beta"))],
        "soft_fbeta": [("seed 003 F-beta code (tf)", seed003_fbeta)],
        "mean_squared_error": [("keras.losses.MeanSquaredError", keras_mse)],
        "asymmetric_exponential": [("seed 003 custom_loss", seed003_asym)],
        "count_penalty": [("seed 000 hard count", seed000_count)],
        "mse_count_penalty": [("seed 000 CountBasedRegularizationLoss", seed000_mse_count)],
        "cce_count_penalty": [("seed 000 sparse_prediction_loss", seed000_cce_count)],
        "kl_sparsity": [("seed 004 kl_divergence", seed004_kl)],
    }


# --------------------------------------------------------------------------- driver
def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def _build_peers(table, name, params, shape, framework):
    out = {}
    for label, builder in table.get(name, []):
        try:
            fn = builder(params, shape)
        except Exception as exc:  # noqa: BLE001  (a peer that cannot be built is reported, not fatal)
            note(f"{name} [{framework}]: peer {label!r} unavailable: {type(exc).__name__}: {exc}")
            continue
        if fn is not None:
            out[label] = fn
    return out


def _rel_diff(ours: float, peer: float) -> float:
    """``|ours - peer| / |ours|``: 0 up to rounding where the peer computes the same math."""
    if ours == peer:
        return 0.0
    return float(f"{abs(ours - peer) / max(abs(ours), 1e-30):.3g}")


def _run_group(name, framework, impls: dict, peers: dict, make_step, memory, sync, settings, meta) -> list[dict]:
    """Time ``impls`` (our variants) and ``peers`` in one interleaved group; one row per (impl, peer)."""
    steps, failed, values = {}, {}, {}
    for key, fn in {**{("ours", k): v for k, v in impls.items()}, **{("peer", k): v for k, v in peers.items()}}.items():
        try:
            step = make_step(fn)
            out = step()
            sync()
            if isinstance(out, (tuple, list)) and out[1] is None:  # Keras: tape.gradient gives None
                raise ValueError("no gradient w.r.t. the prediction (not differentiable)")
            values[key] = float(out[0] if isinstance(out, (tuple, list)) else out)
            steps[key] = step
        except Exception as exc:  # noqa: BLE001
            failed[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            note(f"{name} [{framework} {meta['mode']} {meta['shape']}]: {key[0]} {key[1]!r} failed: {failed[key]}")
    ms = time_group(steps, sync, settings)
    mem = {key: memory(step, meta["mode"]) for key, step in steps.items()}
    rows = []
    for impl in impls:
        ours = ("ours", impl)
        if ours not in steps:
            continue
        peer_keys = [k for k in steps if k[0] == "peer"] or [None]
        for pk in peer_keys:
            peer_ms = None if pk is None else ms[pk]
            row = dict(meta, loss=name, framework=framework, impl=impl, peer=None if pk is None else pk[1],
                       ours_ms=round(ms[ours], 4), peer_ms=None if peer_ms is None else round(peer_ms, 4),
                       ratio=None if peer_ms is None else round(ms[ours] / peer_ms, 4),
                       peak_bytes_ours=mem[ours][0], peak_bytes_peer=None if pk is None else mem[pk][0],
                       saved_bytes_ours=mem[ours][1], saved_bytes_peer=None if pk is None else mem[pk][1],
                       value_rel_diff=None if pk is None else _rel_diff(values[ours], values[pk]))
            if pk is None:
                row["note"] = "no peer of the same math" if not failed else "; ".join(
                    f"{k[1]}: {v}" for k, v in failed.items() if k[0] == "peer")
            rows.append(row)
    return rows


def bench_torch(names, settings, device) -> list[dict]:
    import torch

    import torch_impl

    runner = TorchRunner(device)
    peers_table = _torch_peers()
    rows = []
    for name in names:
        t0 = time.perf_counter()
        entry = spec.get(name)
        params = entry.validate_params(entry.cases()[0].params)
        try:
            impls = {"torch eager": torch_impl.get_loss(name, **params),
                     "torch eager validate=False": torch_impl.get_loss(name, validate=False, **params)}
            impls = {k: m.to(runner.device) for k, m in impls.items()}
        except NotImplementedError as exc:
            note(f"skip {name} [torch]: {exc}")
            continue
        rng = np.random.default_rng(0)
        for skey, shape in shapes_for(entry, params, settings).items():
            peers = _build_peers(peers_table, name, params, shape, "torch")
            if not peers:
                note(f"{name} [torch]: no peer")
            x, y = make_inputs(entry, params, shape, rng)
            for dtype in settings.dtypes:
                if dtype != "float32" and skey not in settings.bf16_shapes:
                    continue
                xt, yt = runner.tensors(x, y, dtype)
                for mode in MODES:
                    meta = {"shape": _shape_text(shape), "shape_kind": skey, "dtype": dtype, "mode": mode,
                            "device": str(runner.device)}
                    group = dict(impls)
                    if settings.fused and name in FUSED_LOSSES:
                        # a fresh compilation per configuration: no recompile limit, no dynamic shapes
                        torch._dynamo.reset()
                        group[TORCH_COMPILED] = torch.compile(impls["torch eager validate=False"])
                    rows += _print(_run_group(name, "torch", group, peers, lambda fn: runner.step(fn, xt, yt, mode),
                                              runner.memory, runner.sync, settings, meta))
        note(f"{name} [torch]: {time.perf_counter() - t0:.1f} s")
    return rows


def bench_keras(names, settings, device) -> list[dict]:
    import tensorflow as tf

    runner = KerasRunner(device)
    if runner.gpu and not tf.config.list_physical_devices("GPU"):
        note("skip Keras: TensorFlow sees no GPU (tensorflow-cpu); run with --device cpu for the Keras rows")
        return []
    import tf_impl

    peers_table = _keras_peers()
    rows = []
    for name in names:
        t0 = time.perf_counter()
        entry = spec.get(name)
        params = entry.validate_params(entry.cases()[0].params)
        try:
            ours = tf_impl.get_loss(name, **params)
            ours_unchecked = tf_impl.get_loss(name, validate=False, **params)
        except NotImplementedError as exc:
            note(f"skip {name} [Keras]: {exc}")
            continue
        rng = np.random.default_rng(0)
        for skey, shape in shapes_for(entry, params, settings).items():
            peers = _build_peers(peers_table, name, params, shape, "Keras")
            if not peers:
                note(f"{name} [Keras]: no peer")
            x, y = make_inputs(entry, params, shape, rng)
            for dtype in settings.dtypes:
                if dtype != "float32" and skey not in settings.bf16_shapes:
                    continue
                xt, yt = runner.tensors(x, y, dtype)
                for mode in MODES:
                    for jit in (False, True):
                        if jit and (skey not in settings.keras_jit_shapes or dtype not in settings.keras_jit_dtypes):
                            continue
                        # under XLA the data checks are skipped (values unknown at trace time)
                        impls = {"keras jit": ours} if jit else {"keras eager": ours,
                                                                 "keras eager validate=False": ours_unchecked}
                        meta = {"shape": _shape_text(shape), "shape_kind": skey, "dtype": dtype, "mode": mode,
                                "device": runner.device_name}
                        rows += _print(_run_group(name, "keras", impls, peers,
                                                  lambda fn: runner.step(fn, xt, yt, mode, jit),
                                                  runner.memory, runner.sync, settings, meta))
        note(f"{name} [Keras]: {time.perf_counter() - t0:.1f} s")
    return rows


def percall_shape(entry, params) -> tuple:
    """:data:`PERCALL_SHAPE`, with the class count a parameter fixes (``cost_matrix``) or the length
    of a per-class vector parameter as the last axis."""
    shape = PERCALL_SHAPE
    c = class_count(params) if layout(entry) == "classes" else None
    if c is not None:
        shape = shape[:-1] + (c,)
    for value in params.values():
        a = np.asarray(value) if isinstance(value, np.ndarray) else None
        if a is not None and a.ndim == 1 and a.size > 1:
            shape = shape[:-1] + (a.size,)
    return shape


def _time_percall(fns: dict, sync, repeats: int, min_ms: float) -> dict[str, float]:
    """Median µs per call of each function, interleaved repeat by repeat (after a warm-up sizing
    each repeat to last ``min_ms``)."""
    number = {}
    for key, fn in fns.items():
        for _ in range(3):
            fn()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        number[key] = max(1, math.ceil(min_ms / max((time.perf_counter() - t0) * 1e3, 1e-3)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(number[key]):
                fn()
            sync()
            times[key].append((time.perf_counter() - t0) * 1e6 / number[key])
    return {k: statistics.median(v) for k, v in times.items()}


def bench_percall(names, frameworks=("torch", "keras"), device="cpu", repeats: int = PERCALL_REPEATS,
                  min_ms: float = PERCALL_MIN_MS) -> list[dict]:
    """The per-call table: for every loss with a peer in a framework, our loss (``get_loss`` with the
    entry's first case's parameters: the defaults, plus required ones) and each peer, forward +
    backward at :func:`percall_shape`, float32, eager, timed interleaved. One row per (loss,
    framework, peer): ``ours_us``, ``peer_us``, ``diff_us`` (ours - peer), ``ratio``; a peer that
    cannot run forward+backward (no gradient) leaves ``peer_us`` null and a ``note``."""
    rows = []
    for framework in frameworks:
        if framework == "torch":
            import torch_impl

            runner, table, get_loss = TorchRunner(device), _torch_peers(), torch_impl.get_loss
            impl = "torch eager"

            def make_step(fn, xt, yt, runner=runner):
                return runner.step(fn, xt, yt, "fwd+bwd")
        else:
            runner = KerasRunner(device)
            if runner.gpu and not runner.tf.config.list_physical_devices("GPU"):
                note("per-call: skip Keras (TensorFlow sees no GPU)")
                continue
            import tf_impl

            table, get_loss, impl = _keras_peers(), tf_impl.get_loss, "keras eager"

            def make_step(fn, xt, yt, runner=runner):
                return runner.step(fn, xt, yt, "fwd+bwd", False)
        for name in names:
            entry = spec.get(name)
            params = entry.validate_params(entry.cases()[0].params)
            shape = percall_shape(entry, params)
            peers = _build_peers(table, name, params, shape, framework)
            if not peers:
                continue
            try:
                ours = get_loss(name, **params)
            except NotImplementedError as exc:
                note(f"per-call: skip {name} [{framework}]: {exc}")
                continue
            if framework == "torch":
                ours = ours.to(runner.device)
            x, y = make_inputs(entry, params, shape, np.random.default_rng(0))
            xt, yt = runner.tensors(x, y, "float32")
            steps, failed = {}, {}
            for key, fn in {"ours": ours, **peers}.items():
                try:
                    step = make_step(fn, xt, yt)
                    out = step()
                    runner.sync()
                    if out[1] is None:  # Keras: tape.gradient gives None
                        raise ValueError("no gradient w.r.t. the prediction")
                    steps[key] = step
                except Exception as exc:  # noqa: BLE001  (a peer without a gradient is reported)
                    failed[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            if "ours" not in steps:
                note(f"per-call: {name} [{framework}]: ours failed: {failed['ours']}")
                continue
            us = _time_percall(steps, runner.sync, repeats, min_ms)
            meta = {"loss": name, "framework": framework, "impl": impl, "shape": _shape_text(shape),
                    "shape_kind": "per-call", "dtype": "float32", "mode": PERCALL_MODE,
                    "device": str(device), "peak_bytes_ours": None, "peak_bytes_peer": None}
            for peer in peers:
                peer_us = us.get(peer)
                row = dict(meta, peer=peer, ours_us=round(us["ours"], 2),
                           peer_us=None if peer_us is None else round(peer_us, 2),
                           diff_us=None if peer_us is None else round(us["ours"] - peer_us, 2),
                           ratio=None if peer_us is None else round(us["ours"] / peer_us, 4),
                           ours_ms=round(us["ours"] / 1e3, 6),
                           peer_ms=None if peer_us is None else round(peer_us / 1e3, 6))
                if peer_us is None:
                    row["note"] = failed.get(peer, "not timed")
                rows.append(row)
    return rows


def percall_summary(rows: list[dict]) -> list[dict]:
    """Per (loss, framework) of the per-call rows: ours, the fastest peer that ran, ours - it and
    the ratio, and whether it meets :data:`PERCALL_TARGET_US` (None where no peer ran)."""
    out: dict[tuple, dict] = {}
    for r in rows:
        if r["mode"] != PERCALL_MODE:
            continue
        key = (r["loss"], r["framework"])
        cell = out.setdefault(key, {"loss": r["loss"], "framework": r["framework"], "shape": r["shape"],
                                    "ours_us": r["ours_us"], "peer": None, "peer_us": None, "diff_us": None,
                                    "ratio": None, "meets_target": None})
        if r["peer_us"] is not None and (cell["peer_us"] is None or r["peer_us"] < cell["peer_us"]):
            cell.update(peer=r["peer"], peer_us=r["peer_us"], diff_us=r["diff_us"], ratio=r["ratio"],
                        meets_target=r["diff_us"] <= PERCALL_TARGET_US)
    for cell in out.values():
        if cell["peer"] is None:
            cell["peer"] = next(r.get("note", "") for r in rows
                                if r["mode"] == PERCALL_MODE and (r["loss"], r["framework"]) ==
                                (cell["loss"], cell["framework"]))
    return list(out.values())


def render_percall(rows: list[dict]) -> str:
    """Markdown table of :func:`percall_summary`: per loss and framework, ours and the fastest peer
    in µs per forward+backward call, ours - peer and the ratio (✗: over the +15 µs target)."""
    summary = percall_summary(rows)
    if not summary:
        return ""
    lines = [f"Per-call cost, forward+backward at {PERCALL_SHAPE[0]}×{PERCALL_SHAPE[1]} (float32, default "
             f"arguments, eager), µs per call; target: ours - fastest peer ≤ +{PERCALL_TARGET_US:g} µs:", "",
             "| loss | framework | shape | ours µs | peer µs | ours - peer µs | ratio | peer |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for c in summary:
        if c["peer_us"] is None:
            lines.append(f"| {c['loss']} | {c['framework']} | {c['shape']} | {c['ours_us']:.1f} | - | - | - "
                         f"| {c['peer'] or '-'} |")
            continue
        flag = "" if c["meets_target"] else " ✗"
        lines.append(f"| {c['loss']} | {c['framework']} | {c['shape']} | {c['ours_us']:.1f} | {c['peer_us']:.1f} "
                     f"| {c['diff_us']:+.1f}{flag} | {c['ratio']:.2f} | {c['peer']} |")
    return "\n".join(lines) + "\n"


def _print(rows: list[dict]) -> list[dict]:
    for row in rows:
        print(format_row(row), flush=True)
    return rows


def _fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def _mb(v):
    return "-" if v is None else f"{v / 2**20:.2f}"


HEADER = (f"{'loss':<26} {'framework':<6} {'impl':<27} {'mode':<7} {'shape':<14} {'dtype':<8} "
          f"{'ours ms':>9} {'peer ms':>9} {'ratio':>6}  {'MB ours':>8} {'MB peer':>8}  peer")


def format_row(r) -> str:
    return (f"{r['loss']:<26} {r['framework']:<6} {r['impl']:<27} {r['mode']:<7} {r['shape']:<14} {r['dtype']:<8} "
            f"{_fmt(r['ours_ms']):>9} {_fmt(r['peer_ms']):>9} {_fmt(r['ratio']):>6}  "
            f"{_mb(r['peak_bytes_ours']):>8} {_mb(r['peak_bytes_peer']):>8}  {r['peer'] or '-'}")


def _config_label(r) -> str:
    dtype = "" if r["dtype"] == "float32" else " bf16" if r["dtype"] == "bfloat16" else f" {r['dtype']}"
    return f"{r.get('shape_kind', r['shape'])}{dtype} {r['mode']}"


def render_markdown(rows: list[dict]) -> str:
    """Markdown: a pivot of ``ours / fastest peer`` per implementation and configuration, then
    every row; the per-call table (:func:`render_percall`) last."""
    percall = render_percall(rows)
    rows = [r for r in rows if r["mode"] != PERCALL_MODE]
    configs = list(dict.fromkeys(_config_label(r) for r in rows))
    groups: dict[tuple, dict[str, float | None]] = {}
    for r in rows:
        cell = groups.setdefault((r["loss"], r["framework"], r["impl"]), {})
        label = _config_label(r)
        best = cell.get(label)
        if r["ratio"] is not None and (best is None or r["ratio"] > best):  # max ratio = vs the fastest peer
            cell[label] = r["ratio"]
        else:
            cell.setdefault(label, None)
    out = ["Ratio = ours / fastest peer of the same configuration (> 1: ours is slower; - : no peer).", "",
           "| loss | framework | impl | " + " | ".join(configs) + " |",
           "|---|---|---|" + "---:|" * len(configs)]
    for (loss, framework, impl), cell in groups.items():
        vals = [("-" if cell.get(c) is None else f"{cell[c]:.2f}") if c in cell else "" for c in configs]
        out.append(f"| {loss} | {framework} | {impl} | " + " | ".join(vals) + " |")
    mem_rows = [r for r in rows if r["peak_bytes_ours"] is not None and r["mode"] == "fwd+bwd"]
    if mem_rows:
        mconfigs = list(dict.fromkeys(_config_label(r) for r in mem_rows))
        mem: dict[tuple, dict[str, list]] = {}
        for r in mem_rows:
            group = mem.setdefault((r["loss"], r["framework"], r["impl"]), {})
            cell = group.setdefault(_config_label(r), [None, None, None, None])
            cell[0], cell[2] = r["peak_bytes_ours"], r.get("saved_bytes_ours")
            for i, key in ((1, "peak_bytes_peer"), (3, "saved_bytes_peer")):  # the leanest peer
                if r.get(key) is not None and (cell[i] is None or r[key] < cell[i]):
                    cell[i] = r[key]
        header = " | ".join(f"{c} peak | {c} saved" for c in mconfigs)
        out += ["", "Memory of fwd+bwd, MiB: peak allocated ours / leanest peer; saved for backward ours / "
                "leanest peer.", "", f"| loss | framework | impl | {header} |",
                "|---|---|---|" + "---:|---:|" * len(mconfigs)]
        for (loss, framework, impl), cell in mem.items():
            vals = []
            for c in mconfigs:
                a, b, sa, sb = cell.get(c, [None] * 4)
                vals += [f"{_mb(a)} / {_mb(b)}", f"{_mb(sa)} / {_mb(sb)}"]
            out.append(f"| {loss} | {framework} | {impl} | " + " | ".join(vals) + " |")
    out += ["", "<details><summary>Every row</summary>", "",
            "| loss | framework | impl | mode | shape | dtype | ours ms | peer ms | ratio | MB ours | MB peer "
            "| saved MB ours | saved MB peer | value Δ | peer |",
            "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        diff = r.get("value_rel_diff")
        out.append(f"| {r['loss']} | {r['framework']} | {r['impl']} | {r['mode']} | {r['shape']} | {r['dtype']} "
                   f"| {_fmt(r['ours_ms'])} | {_fmt(r['peer_ms'])} | {_fmt(r['ratio'])} "
                   f"| {_mb(r['peak_bytes_ours'])} | {_mb(r['peak_bytes_peer'])} "
                   f"| {_mb(r.get('saved_bytes_ours'))} | {_mb(r.get('saved_bytes_peer'))} "
                   f"| {'-' if diff is None else f'{diff:.1e}'} | {r['peer'] or r.get('note', '-')} |")
    out += ["", "</details>", ""]
    if percall:
        out += [percall]
    return "\n".join(out)


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    from importlib import metadata

    for key, dists in (("torch", ("torch",)), ("tensorflow", ("tensorflow-cpu", "tensorflow")),
                       ("keras", ("keras",)), ("monai", ("monai",))):
        info[key] = None
        for dist in dists:  # metadata only: importing TensorFlow for a torch-only run costs seconds
            try:
                info[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return info


def fused_summary(rows: list[dict]) -> list[dict]:
    """Issue 7's fused-path target: for each elementwise loss and configuration, our fused
    implementations (``torch compile``, ``keras jit``) against the fastest *eager* peer of the same
    framework, shape, dtype and mode (``ratio`` ≤ FUSED_TARGET is the target)."""
    eager_peer: dict[tuple, float] = {}
    for r in rows:
        if r["peer_ms"] is not None and "eager" in r["impl"]:
            key = (r["loss"], r["framework"], r["shape"], r["dtype"], r["mode"])
            eager_peer[key] = min(eager_peer.get(key, math.inf), r["peer_ms"])
    out, seen = [], set()
    for r in rows:
        key = (r["loss"], r["framework"], r["shape"], r["dtype"], r["mode"])
        if r["loss"] not in FUSED_LOSSES or r["impl"] not in (TORCH_COMPILED, "keras jit") or key not in eager_peer:
            continue
        if (key, r["impl"]) in seen:
            continue
        seen.add((key, r["impl"]))
        out.append({"loss": r["loss"], "framework": r["framework"], "impl": r["impl"], "shape": r["shape"],
                    "shape_kind": r.get("shape_kind"), "dtype": r["dtype"], "mode": r["mode"],
                    "fused_ms": r["ours_ms"], "eager_peer_ms": eager_peer[key],
                    "ratio": round(r["ours_ms"] / eager_peer[key], 4),
                    "meets_target": r["ours_ms"] / eager_peer[key] <= FUSED_TARGET})
    return out


def target_misses(rows: list[dict]) -> list[dict]:
    """The configurations that miss issue 7's targets: eager ``fwd+bwd`` more than
    :data:`EAGER_NOISE` × the fastest peer (``target`` 1.0), and the fused paths of
    :data:`FUSED_LOSSES` above :data:`FUSED_TARGET` × the fastest eager peer (:func:`fused_summary`).
    One dict per configuration: loss, framework, impl, shape_kind, dtype, mode, ratio, target."""
    worst: dict[tuple, float] = {}  # per configuration, the ratio to the fastest peer
    for r in rows:
        if r["ratio"] is None or "eager" not in r["impl"] or r["mode"] != "fwd+bwd":
            continue
        key = (r["loss"], r["framework"], r["impl"], r.get("shape_kind") or r["shape"], r["dtype"], r["mode"])
        worst[key] = max(worst.get(key, 0.0), r["ratio"])
    keys = ("loss", "framework", "impl", "shape_kind", "dtype", "mode")
    out = [dict(zip(keys, key), ratio=ratio, target=1.0) for key, ratio in worst.items() if ratio > EAGER_NOISE]
    out += [{**{k: r[k] for k in keys if k != "shape_kind"}, "shape_kind": r.get("shape_kind") or r["shape"],
             "ratio": r["ratio"], "target": FUSED_TARGET} for r in fused_summary(rows) if not r["meets_target"]]
    return out


def covering_note(miss: dict, entry) -> Any:
    """The entry's :class:`spec.PerformanceNote` that explains ``miss`` (a :func:`target_misses`
    dict), or None."""
    import fnmatch

    for n in entry.performance_notes:
        if (n.framework == miss["framework"] and fnmatch.fnmatchcase(miss["impl"], n.impl)
                and miss["shape_kind"] in n.shapes and miss["ratio"] <= n.up_to):
            return n
    return None


def render_fused(summary: list[dict]) -> str:
    lines = [f"Fused path vs fastest eager peer (target ≤ {FUSED_TARGET}):", "",
             "| loss | framework | impl | shape | dtype | mode | fused ms | eager peer ms | ratio |",
             "|---|---|---|---|---|---|---:|---:|---:|"]
    for r in summary:
        flag = "" if r["meets_target"] else " ✗"
        lines.append(f"| {r['loss']} | {r['framework']} | {r['impl']} | {r['shape']} | {r['dtype']} | {r['mode']} | "
                     f"{r['fused_ms']:.3f} | {r['eager_peer_ms']:.3f} | {r['ratio']:.2f}{flag} |")
    return "\n".join(lines) + "\n"


def main(argv=None, prog=None) -> int:
    ap = argparse.ArgumentParser(prog=prog or "python -m lossparity.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats, no 'large' shape, bf16 and XLA on 'seg' only (XLA float32 only)")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes, one repeat (smoke test of the harness)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--fused", action="store_true",
                    help=f"torch: also time torch.compile of our loss for {', '.join(FUSED_LOSSES)} (compiles "
                         "once per shape, dtype and mode: minutes on CPU)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="losses to run (default: spec.names())")
    ap.add_argument("--frameworks", nargs="+", choices=("torch", "keras"), default=["torch", "keras"])
    ap.add_argument("--repeats", type=int, help="override the number of timed repeats")
    ap.add_argument("--threads", type=int, help="intra-op threads of torch and TensorFlow (default: theirs); "
                    "1 gives stable numbers on a machine shared with other jobs")
    ap.add_argument("--json", metavar="FILE", help="where to write the rows (required unless --render)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the rows as Markdown tables")
    ap.add_argument("--per-call", action=argparse.BooleanOptionalAction, default=True,
                    help=f"the per-call table: fwd+bwd at {PERCALL_SHAPE[0]}x{PERCALL_SHAPE[1]}, ours - peer in µs "
                         "(default: on)")
    ap.add_argument("--render", metavar="JSON", help="no run: print the Markdown tables of a previous --json")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as f:
            print(render_markdown(json.load(f)))
        return 0
    if not args.json:
        ap.error("--json FILE is required")
    settings = TINY if args.tiny else QUICK if args.quick else FULL
    if args.repeats:
        settings = dataclasses.replace(settings, repeats=args.repeats)
    if args.fused:
        settings = dataclasses.replace(settings, fused=True)
    names = spec.names()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            ap.error(f"unknown loss(es) {unknown}; registered: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    if "torch" in args.frameworks:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        if "keras" in args.frameworks:
            # torch's compiler and profiler import triton where it is installed (torch's CUDA
            # builds); triton loaded after TensorFlow crashes the process (segmentation fault:
            # their bundled LLVMs clash; torch 2.14.1 + TensorFlow 2.21), loaded before it works
            import torch._inductor.config  # noqa: F401
    if args.threads and "keras" in args.frameworks:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    t0 = time.perf_counter()
    info = machine()
    note(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, tensorflow {info['tensorflow']}, "
         f"keras {info['keras']}, monai {info['monai']}; device {args.device}, threads {args.threads or 'default'}")
    print(HEADER, flush=True)
    rows = []
    if "torch" in args.frameworks:
        rows += bench_torch(names, settings, args.device)
    if "keras" in args.frameworks:
        rows += bench_keras(names, settings, args.device)
    if args.per_call:
        repeats = 1 if settings.tiny else args.repeats or PERCALL_REPEATS
        rows += bench_percall(names, args.frameworks, args.device, repeats=repeats,
                              min_ms=0.0 if settings.tiny else PERCALL_MIN_MS)
        print("\n" + render_percall(rows), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)
    summary = fused_summary(rows)
    if summary:
        print("\n" + render_fused(summary), flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(render_markdown(rows) + ("\n" + render_fused(summary) if summary else ""))
    slow = [r for r in rows if r["ratio"] is not None and r["ratio"] > EAGER_NOISE and "eager" in r["impl"]
            and r["mode"] != PERCALL_MODE]
    note(f"{len(rows)} rows in {time.perf_counter() - t0:.1f} s → {args.json}; "
         f"{len(slow)} eager rows with ratio > {EAGER_NOISE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
