"""The Lightning scenario loop against a hand-written torch loop, and our loss against the peer
loss, in the same training step of the same model, data and steps.

For each case (a scenario's training-parity case: its network, loss and data), time the same
optimizer steps several ways, in one process, alternating (every loop once per repeat), with a
warm-up and the median of the repeats:

* ``hand``: ``for x, y in loader: opt.zero_grad(); loss_fn(net(x), y).backward(); opt.step()``
  on the ``ArrayDataModule``'s own ``DataLoader`` (same sampler, same batches), with a running
  mean of the loss kept as a tensor (what ``self.log(on_epoch=True)`` keeps);
* ``hand_peer``: the same loop with the peer loss a user would otherwise call (:data:`PEERS`,
  taken from ``lossparity.bench.torch_peers``, the eager benchmark's peers: ``F.binary_cross_entropy_with_logits(pos_weight=...)``,
  ``F.cross_entropy``, ``F.mse_loss``; the sparse autoencoder's KL activity penalty becomes the
  problem's own ``kl_divergence`` code);
* ``lightning``: ``Trainer.fit(LossModule, ArrayDataModule)`` with no logger, progress bar or
  checkpointing (the loop itself);
* ``lightning_peer``: the same with the peer loss given to ``LossModule`` as a loss object;
* ``bare``: the same ``Trainer.fit`` of the smallest ``LightningModule`` there is (``training_step``
  returns the loss, ``configure_optimizers``; nothing logged, no hook): Lightning's own cost a
  step, which no ``LightningModule`` can go below. ``lightning / bare`` is what ``LossModule``
  adds (its ``self.log`` bookkeeping), ``bare / hand`` is Lightning's loop;
* ``lightning+io``: as ``lossparity.run`` trains (``CSVLogger``, ``ModelCheckpoint(save_last)`` at
  the end of each epoch, progress bar when ``--progress``);
* ``lightning_compiled`` (unless ``--no-compiled``): ``LossModule(compile_loss=True)``, the loss
  through ``torch.compile`` (inductor); its compilation, at the first step, is timed apart
  (``compile_s``: the case's first run, after ``torch._dynamo.reset()``; in the first case it
  includes importing the compiler, as in a fresh process, later cases reuse the imports and
  inductor's caches; ``compile_s_median`` over the runs) and ``break_even_steps`` is the number of
  steps after which the compiled loop has won it back (None: never, it is not faster a step).

and, apart from the runs, ``interleaved`` (:func:`interleaved_hand_steps`): the hand loop with our loss,
with the peer and with the peer again (the control), one step of each in turn, 6 x the steps, the
median step of each: ours / peer there is the loss's share of the step without the drift between
runs that moves the totals above by several percent on a shared machine, and control / peer says
what noise is left.

Timing covers the optimizer steps after 10 warm-up steps (a ``Callback`` reads the clock at the
start of the first timed batch and the end of the last; the hand loop reads it at the same
points), so the one-time ``Trainer`` setup is reported apart (``setup_ms``). After the timed
steps the loops with the same loss must hold the same weights (bit-identical: same kernels in the
same order), which is what makes the comparison one of loops and not of computations. Our loss
and the peer (and the compiled loss) compute the same math with other float32 rounding: from the
same weights the first step's losses agree within :data:`FIRST_LOSS_RTOL`, and after the timed
steps the weights within :data:`SAME_MATH_WEIGHT_RTOL` of the distance they travelled (L2).

Targets: ``lightning / hand`` ≤ 1.05. Lightning adds a fixed cost per step (about
25 hook calls, the optimizer closure, the batch transfer: ~2,500 Python calls a step); the ratio
is that cost over the step's compute, so it is met by steps of ≳ 25 ms (the U-Net's on one
thread) and not by the small MLPs' 3-5 ms steps even with the bare module. Ours / peer, in each
loop (:data:`STEP_TARGETS`): ≤ 1.03 for the MLP scenarios, ≤ 1.00 for the U-Net (``segmentation``).

    python -m lossparity.bench_loop [--quick] [--threads 1] [--no-compiled] [--json out/bench_loop.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

#: (scenario, parity case id): a small MLP, the selection MLP, the KL-penalized autoencoder, the U-Net
CASES = (("multilabel", "multilabel-auto"), ("digits", "digits-select"),
         ("sparse_autoencoder", "sparse_autoencoder-kl"), ("segmentation", "segmentation-bce"))


def _clock() -> float:
    """The loops' clock: the process's CPU time (every thread of it), so that what is timed is the
    steps' own work, not the time the machine's scheduler (or a VM's hypervisor) gives the core to
    someone else; the loops run on the CPU, each step in the calling thread (DataLoader without
    workers, torch's intra-op threads counted too)."""
    return time.process_time()


def _quiet():
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _case(scenario: str, case_id: str):
    from lossparity import scenarios

    return next(c for c in scenarios.get(scenario).parity_cases() if c.id == case_id)


#: the framework-native peer of each case's loss (a label of ``lossparity.bench.torch_peers``): what
#: a user would otherwise call; the sparse autoencoder's KL activity penalty is replaced by the
#: problem's own code for it (its peer of ``kl_sparsity``)
PEERS = {"weighted_bce": "F.binary_cross_entropy_with_logits", "sparse_categorical_crossentropy": "F.cross_entropy",
         "mean_squared_error": "F.mse_loss",
         "kl_sparsity": "kl_divergence (KL-sparsity answer, transcribed)"}

#: targets of ours / peer per step (hand loop and Lightning loop): the MLPs' steps are a few ms, where
#: a loss contract's fixed cost is a few percent; the U-Net's step is conv-bound, where the loss must
#: cost no more than the peer's
STEP_TARGETS = {"segmentation": 1.00}
STEP_TARGET_MLP = 1.03

#: our loss and the peer (or the compiled loss) compute the same math with other float32 rounding.
#: From the same initial weights, the first step's loss values agree within FIRST_LOSS_RTOL: each
#: is a mean over ≤ 8 x 32 x 32 elements, whose float32 sums round to ≲ 1e-6 relative. After the
#: timed steps, the weights differ by ‖Δw‖₂ ≤ SAME_MATH_WEIGHT_RTOL ‖w − w₀‖₂ (the distance
#: travelled): Adam's normalized steps carry rounding differences on near-zero gradients into
#: lr-sized steps and ReLU networks amplify them (measured: ~1e-6 for the MLPs, 0.035 for the
#: U-Net after 210 steps); a loss of other math (pos_weight doubled) is 0.24 apart after 6 steps
#: and its first loss 55% off
FIRST_LOSS_RTOL = 1e-5
SAME_MATH_WEIGHT_RTOL = 0.1

#: steps of :func:`interleaved_hand_steps` per step of a timed run (200 timed steps: 1,200 steps of each
#: variant, the median of each)
INTERLEAVED_STEPS_PER_RUN_STEP = 6

#: ``LossModule(compile_options=...)`` of the compiled loop (None: torch.compile's defaults, inductor)
COMPILE_OPTIONS: dict | None = None


def _peer_fn(name: str, params: dict):
    """The peer of loss ``name`` from ``lossparity.bench.torch_peers`` (the eager benchmark's own)."""
    from lossparity.bench.torch_peers import _torch_peers

    (builder,) = [b for label, b in _torch_peers()[name] if label == PEERS[name]]
    fn = builder(dict(params), None)
    if fn is None:
        raise ValueError(f"no peer {PEERS[name]!r} for {name} with {params}")
    return fn


def _penalty_module(fn):
    """An ``nn.Module`` calling a peer function of one tensor (what ``ActivityPenalty.penalty`` holds)."""
    from torch import nn

    module = nn.Module()
    module.forward = fn
    return module


def _parts(case, seed: int = 0, loss: str = "ours", compile_loss: bool = False):
    """A fresh network (same initial weights every time), LossModule and DataModule; ``loss="peer"``
    trains with the peer loss (a loss object) and the peer activity penalties."""
    import torch

    from torch_impl import lightning as tl

    torch.manual_seed(seed)
    net = case.model.torch_module()
    if loss == "peer":
        for penalty in (m for m in net.modules() if isinstance(m, tl.ActivityPenalty)):
            penalty.penalty = _penalty_module(_peer_fn(penalty.penalty_name, penalty.penalty_params))
        module = tl.LossModule(net, loss=_peer_fn(case.loss.name, case.loss.kwargs()),
                               optimizer={"name": "adam", "lr": 1e-3}, compile_loss=compile_loss,
                               compile_options=COMPILE_OPTIONS if compile_loss else None)
    else:
        module = tl.LossModule(net, loss=case.loss.name, loss_params=case.loss.kwargs(),
                               optimizer={"name": "adam", "lr": 1e-3}, compile_loss=compile_loss,
                               compile_options=COMPILE_OPTIONS if compile_loss else None)
    dm = tl.ArrayDataModule(arrays=case.arrays(), batch_size=case.batch_size, seed=seed)
    return module, dm


def _setup_outside_trainer(module, dm) -> None:
    """What ``Trainer.fit`` would do before the first step for a loop that runs ``module``'s loss
    without it: set the data up and resolve the loss's ``'auto'`` parameters from the training
    targets (as ``LossModule.setup``)."""
    dm.setup("fit")
    if module.loss_fn is None:
        from torch_impl.lightning import resolve_auto_params

        module._build_loss(resolve_auto_params(module.loss_params, dm.train_targets))


def _hand_stepper(case, loss: str = "ours"):
    """``(step, net)``: one step of the plain torch loop a call, ``for x, y in loader: loss =
    loss_fn(net(x), y) (+ activity penalties); opt.zero_grad(); loss.backward(); opt.step()`` over the
    ``ArrayDataModule``'s own ``DataLoader`` (epoch after epoch, its sampler's epoch set as Lightning
    does), the loss kept as a running tensor sum (what ``self.log(on_epoch=True)`` keeps); ``step()``
    returns the step's loss."""
    import torch

    module, dm = _parts(case, loss=loss)
    _setup_outside_trainer(module, dm)
    net = module.net
    opt = module.configure_optimizers()
    loader = dm.train_dataloader()
    net.train()
    total = torch.zeros(())

    def batches():
        epoch = 0
        while True:
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    stream = batches()

    def step():
        x, y, *w = next(stream)
        value = module._loss(net(x), y, w[0] if w else None)  # loss_fn + activity penalties
        opt.zero_grad()
        value.backward()
        opt.step()
        total.add_(value.detach())
        return value

    return step, net


def hand_loop(case, steps: int, warmup: int, loss: str = "ours") -> tuple[float, list, float]:
    """Seconds for steps ``warmup .. steps-1`` of the plain torch loop (:func:`_hand_stepper`), the final
    weights, and the first step's loss value (read in the warm-up, outside the timed steps)."""
    step, net = _hand_stepper(case, loss)
    start, first = None, None
    for i in range(steps):
        if i == warmup:
            start = _clock()
        value = step()
        if first is None:
            first = float(value.detach())
    return _clock() - start, net.numpy_weights(), first


#: the variants of :func:`interleaved_hand_steps`: our loss, the peer, and the peer again (the control:
#: what the measurement reads for two identical steps)
INTERLEAVED = ("ours", "peer", "peer_control")


def interleaved_hand_steps(case, steps: int, warmup: int) -> dict[str, float]:
    """The median seconds of one hand-loop step (:func:`_hand_stepper`) with our loss, with the peer and
    with the peer again, the three steps taken in turn (each variant its own network, optimizer and
    batch stream; the order rotated every round): a drift of the machine between runs, which moves the
    alternating runs' totals by several percent here, hits the three alike, and the control says what
    is left of the noise. Steps ``warmup .. steps-1`` of each are timed one by one."""
    steppers = {name: _hand_stepper(case, "ours" if name == "ours" else "peer")[0] for name in INTERLEAVED}
    times = {name: [] for name in INTERLEAVED}
    order, n = list(INTERLEAVED), len(INTERLEAVED)
    for i in range(steps):
        for name in order[i % n:] + order[:i % n]:
            start = _clock()
            steppers[name]()
            elapsed = _clock() - start
            if i >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}


def _bare(module, dm):
    """The smallest LightningModule training ``module``'s network with its loss and optimizer."""
    import lightning.pytorch as L

    _setup_outside_trainer(module, dm)

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = module.net

        def training_step(self, batch, batch_idx):
            x, y, *w = batch
            return module._loss(self.net(x), y, w[0] if w else None)

        def configure_optimizers(self):
            return module.configure_optimizers()

    return Bare()


def lightning_loop(case, steps: int, warmup: int, io: bool, progress: bool,
                   bare: bool = False, loss: str = "ours", compile_loss: bool = False) -> tuple[float, float, list]:
    """Seconds for the same steps under ``Trainer.fit`` (of ``LossModule``, or with ``bare`` of the
    smallest LightningModule), the setup seconds before the first step (with ``compile_loss``: the
    loss's compilation, ``LossModule.loss_compile_s``, instead), and the final weights."""
    import lightning.pytorch as L

    if compile_loss:
        import torch

        torch._dynamo.reset()  # every run compiles afresh (no recompile limit reached across runs)
    module, dm = _parts(case, loss=loss, compile_loss=compile_loss)
    fitted = _bare(module, dm) if bare else module
    marks: dict[str, float] = {}

    class Clock(L.Callback):
        def on_fit_start(self, trainer, pl_module):
            marks["fit"] = _clock()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 0 and "first" not in marks:
                marks["first"] = _clock()
            if trainer.global_step == warmup:
                marks["start"] = _clock()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == steps:
                marks["end"] = _clock()

    with tempfile.TemporaryDirectory() as tmp:
        callbacks: list = [Clock()]
        options = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False)
        if io:
            from lightning.pytorch.callbacks import ModelCheckpoint
            from lightning.pytorch.loggers import CSVLogger

            callbacks.append(ModelCheckpoint(dirpath=os.path.join(tmp, "ckpt"), save_top_k=0, save_last=True))
            options = dict(logger=CSVLogger(tmp, name="logs", version=""), enable_progress_bar=progress,
                           log_every_n_steps=50)
        trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator="cpu", devices=1, precision="32-true",
                            enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                            deterministic=True, callbacks=callbacks, default_root_dir=tmp, **options)
        trainer.fit(fitted, datamodule=dm)
    setup = module.loss_compile_s if compile_loss else marks["first"] - marks["fit"]
    return marks["end"] - marks["start"], setup, module.net.numpy_weights()


def _same(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for wa, wb in zip(a, b)
               for u, v in zip(wa, wb))


def _flat(weights) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(u, np.float64)) for layer in weights for u in layer])


def _relative_difference(a, b, initial) -> float:
    """‖a − b‖₂ over the distance ``a`` travelled from ``initial``, ‖a − initial‖₂ (all weights)."""
    moved = float(np.linalg.norm(_flat(a) - _flat(initial)))
    return float(np.linalg.norm(_flat(a) - _flat(b))) / moved if moved > 0 else float("inf")


def step_target(scenario: str) -> float:
    return STEP_TARGETS.get(scenario, STEP_TARGET_MLP)


def bench_case(scenario: str, case_id: str, steps: int, warmup: int, repeats: int, progress: bool,
               compiled: bool = True) -> dict:
    import torch

    case = _case(scenario, case_id)
    loops = {  # name: (hand?, keyword arguments); run in this order in every repeat
        "hand": (True, {}),
        "hand_peer": (True, {"loss": "peer"}),
        "bare": (False, {"bare": True}),
        "lightning": (False, {}),
        "lightning_peer": (False, {"loss": "peer"}),
        "lightning+io": (False, {"io": True, "progress": progress}),
    }
    if compiled:
        loops["lightning_compiled"] = (False, {"compile_loss": True})
    times = {k: [] for k in loops}
    setup, compile_s, first_loss = [], [], {}
    weights = {}
    for _ in range(repeats):  # alternate, so drifts of a shared machine hit every loop alike
        torch.use_deterministic_algorithms(True)  # what Trainer(deterministic=True) sets, for all
        for name, (hand, kw) in loops.items():
            if hand:
                t, weights[name], first_loss[name] = hand_loop(case, steps, warmup, **kw)
            else:
                t, s, weights[name] = lightning_loop(case, steps, warmup, **{"io": False, "progress": False, **kw})
                if name == "lightning":
                    setup.append(s)
                elif name == "lightning_compiled":
                    compile_s.append(s)
            times[name].append(t)
    torch.use_deterministic_algorithms(False)
    interleaved_steps = INTERLEAVED_STEPS_PER_RUN_STEP * steps
    interleaved = interleaved_hand_steps(case, interleaved_steps, warmup)
    initial = _parts(case)[0].net.numpy_weights()
    timed = steps - warmup
    med = {k: statistics.median(v) for k, v in times.items()}
    row = {"scenario": scenario, "case": case_id, "batch_size": case.batch_size, "steps": timed,
           "peer": PEERS[case.loss.name],
           "hand_ms_per_step": 1e3 * med["hand"] / timed,
           "hand_peer_ms_per_step": 1e3 * med["hand_peer"] / timed,
           "bare_ms_per_step": 1e3 * med["bare"] / timed,
           "lightning_ms_per_step": 1e3 * med["lightning"] / timed,
           "lightning_peer_ms_per_step": 1e3 * med["lightning_peer"] / timed,
           "lightning_io_ms_per_step": 1e3 * med["lightning+io"] / timed,
           "ratio": med["lightning"] / med["hand"], "ratio_io": med["lightning+io"] / med["hand"],
           "ratio_bare": med["bare"] / med["hand"], "ratio_over_bare": med["lightning"] / med["bare"],
           "hand_ours_over_peer": med["hand"] / med["hand_peer"],
           "lightning_ours_over_peer": med["lightning"] / med["lightning_peer"],
           "interleaved_steps": interleaved_steps - warmup,
           "interleaved_ms_per_step": 1e3 * interleaved["ours"],
           "interleaved_peer_ms_per_step": 1e3 * interleaved["peer"],
           "interleaved_ours_over_peer": interleaved["ours"] / interleaved["peer"],
           "interleaved_control": interleaved["peer_control"] / interleaved["peer"],
           "target_ours_over_peer": step_target(scenario),
           "overhead_us_per_step": 1e6 * (med["lightning"] - med["hand"]) / timed,
           "setup_ms": 1e3 * statistics.median(setup),
           # loops with the same loss: bit-identical weights
           "max_weight_diff": max([_same(weights["hand"], weights[k]) for k in ("bare", "lightning", "lightning+io")]
                                  + [_same(weights["hand_peer"], weights["lightning_peer"])]),
           "first_loss": first_loss["hand"], "first_loss_peer": first_loss["hand_peer"],
           "ours_vs_peer_first_loss_rdiff": abs(first_loss["hand"] - first_loss["hand_peer"]) / abs(first_loss["hand"]),
           "ours_vs_peer_weight_rdiff": _relative_difference(weights["hand"], weights["hand_peer"], initial),
           "repeats": repeats}
    if compiled:
        eager_ms, compiled_ms = row["lightning_ms_per_step"], 1e3 * med["lightning_compiled"] / timed
        saved_ms = eager_ms - compiled_ms
        row.update({
            "lightning_compiled_ms_per_step": compiled_ms,
            "compiled_over_eager": med["lightning_compiled"] / med["lightning"],
            "compile_s": compile_s[0],  # the case's first run (the first case's also imports the compiler)
            "compile_s_median": statistics.median(compile_s),
            # steps after which the compiled loop has won its compilation back (None: never)
            "break_even_steps": 1e3 * compile_s[0] / saved_ms if saved_ms > 0 else None,
            "compiled_vs_eager_weight_rdiff": _relative_difference(weights["lightning"],
                                                                   weights["lightning_compiled"], initial),
        })
    return row


HEADER = (f"{'case':<26} {'bs':>4} {'steps':>5} {'hand ms':>8} {'bare ms':>8} {'L ms':>8} {'L+io ms':>8} "
          f"{'L/hand':>7} {'L+io/hand':>9} {'bare/hand':>9} {'L/bare':>7} {'+µs/step':>9} {'setup ms':>9} {'Δw':>8}")


def format_row(r: dict) -> str:
    return (f"{r['case']:<26} {r['batch_size']:>4} {r['steps']:>5} {r['hand_ms_per_step']:>8.3f} "
            f"{r['bare_ms_per_step']:>8.3f} {r['lightning_ms_per_step']:>8.3f} {r['lightning_io_ms_per_step']:>8.3f} "
            f"{r['ratio']:>7.3f} {r['ratio_io']:>9.3f} {r['ratio_bare']:>9.3f} {r['ratio_over_bare']:>7.3f} "
            f"{r['overhead_us_per_step']:>9.0f} {r['setup_ms']:>9.0f} {r['max_weight_diff']:>8.1e}")


PEER_HEADER = (f"{'case':<26} {'peer':<34} {'hand ms':>8} {'hand peer':>9} {'L ms':>8} {'L peer':>8} "
               f"{'hand ours/peer':>14} {'lightning ours/peer':>19} {'interleaved':>11} {'control':>7} {'target':>6} "
               f"{'Δloss₀':>8} {'Δw/moved':>8}")


def _mark(ratio: float, target: float) -> str:
    return " " if ratio <= target else "*"


def format_peer_row(r: dict) -> str:
    t = r["target_ours_over_peer"]
    return (f"{r['case']:<26} {r['peer']:<34} {r['hand_ms_per_step']:>8.3f} {r['hand_peer_ms_per_step']:>9.3f} "
            f"{r['lightning_ms_per_step']:>8.3f} {r['lightning_peer_ms_per_step']:>8.3f} "
            f"{r['hand_ours_over_peer']:>13.3f}{_mark(r['hand_ours_over_peer'], t)} "
            f"{r['lightning_ours_over_peer']:>18.3f}{_mark(r['lightning_ours_over_peer'], t)} "
            f"{r['interleaved_ours_over_peer']:>10.3f}{_mark(r['interleaved_ours_over_peer'], t)} "
            f"{r['interleaved_control']:>7.3f} "
            f"{'≤' + format(t, '.2f'):>6} {r['ours_vs_peer_first_loss_rdiff']:>8.1e} "
            f"{r['ours_vs_peer_weight_rdiff']:>8.1e}")


COMPILED_HEADER = (f"{'case':<26} {'L ms':>8} {'L compiled ms':>13} {'compiled/eager':>14} {'compile s':>9} "
                   f"{'(median)':>8} {'break-even steps':>16} {'Δw/moved':>8}")


def format_compiled_row(r: dict) -> str:
    return (f"{r['case']:<26} {r['lightning_ms_per_step']:>8.3f} {r['lightning_compiled_ms_per_step']:>13.3f} "
            f"{r['compiled_over_eager']:>14.3f} {r['compile_s']:>9.2f} {r['compile_s_median']:>8.2f} "
            f"{'never' if r['break_even_steps'] is None else format(r['break_even_steps'], '.0f'):>16} "
            f"{r['compiled_vs_eager_weight_rdiff']:>8.1e}")


def render_markdown(rows: list[dict]) -> str:
    """The Markdown tables of a run (``--json``): the step with our loss against the step with the
    peer loss (target 2: ✗ over its target), the Lightning loop against the hand loop, and the
    compiled loss where the run has it."""
    if not rows:
        return "No run of the step benchmark is committed."
    lines = ["| case | peer | hand ms | hand peer ms | L ms | L peer ms | hand ours/peer | lightning ours/peer "
             "| interleaved ours/peer | control | target | Δloss₀ | Δw/moved |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r["target_ours_over_peer"]
        keys = ("hand_ours_over_peer", "lightning_ours_over_peer", "interleaved_ours_over_peer")
        cells = [f"{r[k]:.3f}{'' if r[k] <= t else ' ✗'}" if k in r else "-" for k in keys]
        control = f"{r['interleaved_control']:.3f}" if "interleaved_control" in r else "-"
        lines.append(f"| {r['case']} | `{r['peer']}` | {r['hand_ms_per_step']:.2f} | {r['hand_peer_ms_per_step']:.2f} "
                     f"| {r['lightning_ms_per_step']:.2f} | {r['lightning_peer_ms_per_step']:.2f} | {cells[0]} "
                     f"| {cells[1]} | {cells[2]} | {control} | ≤ {t:.2f} | {r['ours_vs_peer_first_loss_rdiff']:.1e} "
                     f"| {r['ours_vs_peer_weight_rdiff']:.1e} |")
    lines += ["", "| case | batch | hand ms | bare ms | L ms | L+io ms | L / hand | L+io / hand | bare / hand "
              "| L / bare | Δw |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['batch_size']} | {r['hand_ms_per_step']:.2f} | {r['bare_ms_per_step']:.2f} "
                     f"| {r['lightning_ms_per_step']:.2f} | {r['lightning_io_ms_per_step']:.2f} | {r['ratio']:.2f} "
                     f"| {r['ratio_io']:.2f} | {r['ratio_bare']:.2f} | {r['ratio_over_bare']:.2f} "
                     f"| {r['max_weight_diff']:.0e} |")
    compiled = [r for r in rows if "compiled_over_eager" in r]
    if compiled:
        lines += ["", "| case | L ms | L compiled ms | compiled / eager | compile s | break-even steps | Δw/moved |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in compiled:
            even = "never" if r["break_even_steps"] is None else f"{r['break_even_steps']:.0f}"
            lines.append(f"| {r['case']} | {r['lightning_ms_per_step']:.2f} | {r['lightning_compiled_ms_per_step']:.2f} "
                         f"| {r['compiled_over_eager']:.3f} | {r['compile_s']:.2f} | {even} "
                         f"| {r['compiled_vs_eager_weight_rdiff']:.1e} |")
    return "\n".join(lines)


def failures(rows: list[dict]) -> list[str]:
    """What the checks found: loops with the same loss must end bit-identical; our loss and the peer
    must give the same first-step loss (``FIRST_LOSS_RTOL``), and they (and the compiled loss) end
    within ``SAME_MATH_WEIGHT_RTOL`` of the distance the weights travelled."""
    bad = []
    for r in rows:
        if r["max_weight_diff"] != 0.0:
            bad.append(f"{r['case']}: the loops with the same loss did not compute the same steps "
                       f"(Δw {r['max_weight_diff']:.1e})")
        if "ours_vs_peer_first_loss_rdiff" in r and not r["ours_vs_peer_first_loss_rdiff"] <= FIRST_LOSS_RTOL:
            bad.append(f"{r['case']}: the first step's loss of ours and of the peer differ by "
                       f"{r['ours_vs_peer_first_loss_rdiff']:.1e} relative (> {FIRST_LOSS_RTOL})")
        for key, what in (("ours_vs_peer_weight_rdiff", "our loss and the peer"),
                          ("compiled_vs_eager_weight_rdiff", "the compiled and the eager loss")):
            if key in r and not r[key] <= SAME_MATH_WEIGHT_RTOL:
                bad.append(f"{r['case']}: {what} ended {r[key]:.1e} of the distance travelled apart "
                           f"(> {SAME_MATH_WEIGHT_RTOL})")
    return bad


def main(argv=None, prog=None) -> int:
    ap = argparse.ArgumentParser(prog=prog or "python -m lossparity.bench_loop", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats (~2 min on 2 cores; ~1 min more for the compiled loop's compilations)")
    ap.add_argument("--steps", type=int, help="timed steps per run (default 200; --quick 60)")
    ap.add_argument("--repeats", type=int, help="runs of each loop, median taken (default 5; --quick 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: stable on a shared machine)")
    ap.add_argument("--only", nargs="+", metavar="CASE", help="parity case ids to run (default: all of CASES)")
    ap.add_argument("--progress", action="store_true", help="progress bar on in the lightning+io loop")
    ap.add_argument("--no-compiled", dest="compiled", action="store_false",
                    help="skip the Lightning loop with compile_loss=True (its compilation: seconds a run)")
    ap.add_argument("--json", metavar="FILE", help="write the rows here")
    args = ap.parse_args(argv)
    _quiet()
    import torch

    torch.set_num_threads(args.threads)
    steps = args.steps or (60 if args.quick else 200)
    repeats = args.repeats or (3 if args.quick else 5)
    warmup = 10
    cases = [c for c in CASES if not args.only or c[1] in args.only]
    if args.only and len(cases) != len(args.only):
        ap.error(f"unknown case(s); choose from {', '.join(c for _, c in CASES)}")
    print(f"torch {torch.__version__}, {args.threads} thread(s); {steps} timed steps after {warmup} warm-up, "
          f"median of {repeats}", flush=True)
    print(HEADER, flush=True)
    rows = []
    with open(os.devnull, "w") as devnull:
        for scenario, case_id in cases:
            # Lightning's own stderr notes (and the progress bar, unless asked for) stay out of the table
            with contextlib.nullcontext() if args.progress else contextlib.redirect_stderr(devnull):
                row = bench_case(scenario, case_id, steps + warmup, warmup, repeats, args.progress,
                                 compiled=args.compiled)
            rows.append(row)
            print(format_row(row), flush=True)
    print(f"\nThe step with our loss and with the peer a user would otherwise call (same run, alternating; "
          f"* over target):\n{PEER_HEADER}")
    for row in rows:
        print(format_peer_row(row))
    if args.compiled:
        print(f"\nLossModule(compile_loss=True) against the eager loss (compile s: the case's first compilation, "
              f"after torch._dynamo.reset(); the first case's also imports the compiler, as a fresh process does; "
              f"break-even: steps to win it back):\n{COMPILED_HEADER}")
        for row in rows:
            print(format_compiled_row(row))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    bad = failures(rows)
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
