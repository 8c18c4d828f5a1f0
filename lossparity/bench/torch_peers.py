"""The torch side: memory measurement (profiler peak, bytes saved for backward), the runner, and the
peers of the same math (the framework's own ops, MONAI, the seeds' code transcribed)."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np


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

    def focal_softmax(p, shape):
        if not from_logits(p):
            return None
        alpha, gamma, ls = p["alpha"], p["gamma"], p.get("label_smoothing", 0.0)

        def fn(x, y):  # the textbook softmax focal loss: -α Σ y' (1 - softmax)^γ log_softmax
            log_q = F.log_softmax(f32(x), dim=-1)
            if ls:
                y = y * (1.0 - ls) + ls / x.shape[-1]
            return (-alpha * (y * (1.0 - log_q.exp()) ** gamma * log_q).sum(dim=-1)).mean()
        return fn

    def generalized_ce(p, shape):
        if not from_logits(p):
            return None
        q = p["q"]

        def fn(x, y):  # (1 - p_y^q) / q of the softmax, as keras' function writes it
            p_y = F.softmax(f32(x), dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
            return ((1.0 - p_y ** q) / q).mean()
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

        def fn(x, y):  # the segmentation answer: iouloss (sums over the flattened sample, sigmoid added)
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

        def fn(x, y):  # the soft F-beta answer: F-beta torch code, as posted (clamp included)
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

    def l1(p, shape):
        return lambda x, y: F.l1_loss(f32(x), y)

    def huber(p, shape):
        return lambda x, y: F.huber_loss(f32(x), y, delta=p.get("delta", 1.0))

    def ctc(p, shape):
        blank, divide = p.get("blank", 0), p.get("divide_by_target_length", False)

        def fn(x, y):  # torch's layout: log-probabilities (T, N, C) and explicit lengths (padding at the end)
            log_probs = F.log_softmax(f32(x), dim=-1).transpose(0, 1)
            lengths = (y != blank).sum(dim=1)
            steps = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
            loss = F.ctc_loss(log_probs, y, steps, lengths, blank=blank, reduction="mean" if divide else "none",
                              zero_infinity=p.get("zero_infinity", False))
            return loss if divide else loss.mean()
        return fn

    def keras_circle_transcribed(p, shape):
        gamma, margin = p.get("gamma", 80.0), p.get("margin", 0.4)

        def fn(x, y):  # keras.losses.circle written in torch (rows taken as given, -inf masks, logsumexp)
            d = torch.clamp(1 - f32(x) @ f32(x).T, min=0.0)
            same = y[:, None] == y[None, :]
            pos = same & ~torch.eye(y.shape[0], dtype=torch.bool) if p.get("remove_diagonal", True) else same
            zp = -gamma * torch.clamp((margin + d) * pos, min=0.0) * (margin - d)
            zn = gamma * torch.clamp((1 + margin - d) * ~same, min=0.0) * (1 - margin - d)
            minus_inf = torch.tensor(float("-inf"))
            a = torch.logsumexp(torch.where(pos, zp, minus_inf), 1) + torch.logsumexp(torch.where(~same, zn, minus_inf), 1)
            return F.softplus(a).mean()
        return fn

    def plain_log_cosh(p, shape):
        return lambda x, y: torch.mean(torch.log(torch.cosh(f32(x) - y)))  # what users write (overflows past 89)

    def plain_mape(p, shape):  # torch.nn has none: what users write (Keras' formula)
        eps = p.get("epsilon", 1e-7)
        return lambda x, y: torch.mean(torch.abs(y - f32(x)) / torch.clamp_min(torch.abs(y), eps)) * 100.0

    def poisson_nll(p, shape):
        return lambda x, y: F.poisson_nll_loss(f32(x), y, log_input=p.get("log_input", True),
                                               full=p.get("full", False), eps=p.get("epsilon", 1e-7))

    def cosine(p, shape):  # a similarity: negated, averaged
        return lambda x, y: -F.cosine_similarity(f32(x), y, dim=p.get("axis", -1), eps=p.get("epsilon", 1e-7)).mean()

    def plain_msle(p, shape):  # torch.nn has none: the two logs users write
        eps = p.get("epsilon", 1e-7)
        return lambda x, y: torch.mean(torch.square(torch.log1p(torch.clamp_min(f32(x), eps))
                                                    - torch.log1p(torch.clamp_min(y, eps))))

    def plain_hinge(p, shape):
        return lambda x, y: torch.mean(torch.clamp(1.0 - y * f32(x), min=0.0))  # labels -1/1 (torch.nn has none)

    def plain_squared_hinge(p, shape):
        return lambda x, y: torch.mean(torch.clamp(1.0 - y * f32(x), min=0.0) ** 2)

    def plain_categorical_hinge(p, shape):
        def fn(x, y):  # what users write: max(0, 1 + max over the wrong classes - true score)
            x = f32(x)
            pos = (y * x).sum(-1)
            neg = (x - y * 1e30).amax(-1) if not p.get("zero_competitor") else ((1 - y) * x).amax(-1)
            return torch.mean(torch.clamp(neg - pos + 1.0, min=0.0))
        return fn

    def kl_div(p, shape):
        if p.get("epsilon") or p.get("class_reduction") == "mean" or len(shape) != 2:
            return None  # batchmean equals ours on (N, C) only
        log_target = p.get("log_target", False)
        if p.get("log_prediction"):
            return lambda x, y: F.kl_div(f32(x), y, reduction="batchmean", log_target=log_target)
        return lambda x, y: F.kl_div(torch.log(f32(x)), y, reduction="batchmean", log_target=log_target)

    def seed003_asym(p, shape):
        def fn(x, y):  # the asymmetric-cost answer: K.mean(abs(1 - exp(-log(exp(y_true - y_pred)))))
            return torch.mean(torch.abs(1 - torch.exp(-torch.log(torch.exp(y - f32(x))))))
        return fn

    def _count_args(p):
        return p.get("threshold", 0.5), p.get("weight", p.get("regularization_factor", 1.0))

    def seed000_count(p, shape):
        t, w = _count_args(p)

        def fn(x):  # the count-above-a-threshold answer: hard count of elements above the threshold (no gradient)
            above = (f32(x) > t).to(torch.float32)
            return w * flat(above).sum(-1).mean()
        return fn

    def seed000_mse_count(p, shape):
        t, w = _count_args(p)

        def fn(x, y):  # the count-above-a-threshold answer: CountBasedRegularizationLoss: MSE + factor * mean(count above)
            x = f32(x)
            base = flat((x - y) ** 2).mean(-1)
            count_above = flat((x > t).to(torch.float32)).sum(-1)
            return (base + w * count_above.mean()).mean()
        return fn

    def seed000_cce_count(p, shape):
        t, w = _count_args(p)

        def fn(x, y):  # the count-above-a-threshold answer: sparse_prediction_loss: CCE + factor * mean(count of probs > t)
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

        def fn(x):  # the KL-sparsity answer: sum_j KL(rho || mean activation q_j), q = batch mean
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
        "categorical_focal_crossentropy": [("softmax focal loss (transcribed)", focal_softmax)],
        "categorical_generalized_crossentropy": [("(1 - softmax_y^q) / q (transcribed)", generalized_ce)],
        "cost_sensitive_cce": [("w_categorical_crossentropy (cost-sensitive answer, transcribed)", seed003_w_cce)],
        "soft_dice": [("monai.losses.DiceLoss", monai("DiceLoss", sigmoid=True, smooth_nr=lambda p: p["smooth"],
                                                       smooth_dr=lambda p: p["smooth"])),
                      ("plain torch Dice (sigmoid + sums)", plain_dice)],
        "soft_jaccard": [("monai.losses.DiceLoss(jaccard=True)",
                          monai("DiceLoss", sigmoid=True, jaccard=True, smooth_nr=lambda p: 2 * p["smooth"],
                                smooth_dr=lambda p: 2 * p["smooth"])),
                         ("iouloss (segmentation answer, transcribed)", seed003_iouloss)],
        "tversky": [("monai.losses.TverskyLoss", monai("TverskyLoss", sigmoid=True, alpha=lambda p: p["alpha"],
                                                        beta=lambda p: p["beta"], smooth_nr=lambda p: p["smooth"],
                                                        smooth_dr=lambda p: p["smooth"]))],
        "soft_fbeta": [("F-beta torch code (soft F-beta answer)", seed003_fbeta)],
        "mean_squared_error": [("F.mse_loss", mse)],
        "mean_absolute_error": [("F.l1_loss", l1)],
        "huber": [("F.huber_loss", huber)],
        "log_cosh": [("plain torch log(cosh(d))", plain_log_cosh)],
        "mean_absolute_percentage_error": [("plain torch MAPE", plain_mape)],
        "mean_squared_logarithmic_error": [("plain torch MSLE (log1p)", plain_msle)],
        "poisson": [("F.poisson_nll_loss", poisson_nll)],
        "circle": [("keras.losses.circle (transcribed)", keras_circle_transcribed)],
        "cosine_similarity": [("-F.cosine_similarity", cosine)],
        "ctc": [("F.ctc_loss", ctc)],
        "hinge": [("plain torch clamp(1 - t ŷ, min=0)", plain_hinge)],
        "squared_hinge": [("plain torch clamp(1 - t ŷ, min=0)²", plain_squared_hinge)],
        "categorical_hinge": [("plain torch max over wrong classes", plain_categorical_hinge)],
        "kl_divergence": [("F.kl_div (batchmean)", kl_div)],
        "asymmetric_exponential": [("custom_loss (asymmetric-cost answer, transcribed)", seed003_asym)],
        "count_penalty": [("hard count (count-above-a-threshold answer, transcribed)", seed000_count)],
        "mse_count_penalty": [("CountBasedRegularizationLoss (count-above-a-threshold answer, transcribed)", seed000_mse_count)],
        "cce_count_penalty": [("sparse_prediction_loss (count-above-a-threshold answer, transcribed)", seed000_cce_count)],
        "kl_sparsity": [("kl_divergence (KL-sparsity answer, transcribed)", seed004_kl)],
    }
