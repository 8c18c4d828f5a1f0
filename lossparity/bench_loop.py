"""The Lightning scenario loop against a hand-written torch loop of the same model, data and steps.

For each case (a scenario's training-parity case: its network, loss and data), time the same
optimizer steps four ways, in one process, alternating, with a warm-up and the median of
several repeats:

* ``hand``: ``for x, y in loader: opt.zero_grad(); loss_fn(net(x), y).backward(); opt.step()``
  on the ``ArrayDataModule``'s own ``DataLoader`` (same sampler, same batches), with a running
  mean of the loss kept as a tensor (what ``self.log(on_epoch=True)`` keeps);
* ``lightning``: ``Trainer.fit(LossModule, ArrayDataModule)`` with no logger, progress bar or
  checkpointing (the loop itself);
* ``bare``: the same ``Trainer.fit`` of the smallest ``LightningModule`` there is (``training_step``
  returns the loss, ``configure_optimizers``; nothing logged, no hook): Lightning's own cost a
  step, which no ``LightningModule`` can go below. ``lightning / bare`` is what ``LossModule``
  adds (its ``self.log`` bookkeeping), ``bare / hand`` is Lightning's loop;
* ``lightning+io``: as ``lossparity.run`` trains (``CSVLogger``, ``ModelCheckpoint(save_last)`` at
  the end of each epoch, progress bar when ``--progress``).

Timing covers the optimizer steps after 10 warm-up steps (a ``Callback`` reads the clock at the
start of the first timed batch and the end of the last; the hand loop reads it at the same
points), so the one-time ``Trainer`` setup is reported apart (``setup_ms``). After the timed
steps the four networks must hold the same weights (bit-identical: same kernels in the same
order), which is what makes the comparison one of loops and not of computations.

Target: ``lightning / hand`` ≤ 1.05. Lightning adds a fixed cost per step (about
25 hook calls, the optimizer closure, the batch transfer: ~2,500 Python calls a step); the ratio
is that cost over the step's compute, so it is met by steps of ≳ 25 ms (the U-Net's on one
thread) and not by the small MLPs' 3-5 ms steps even with the bare module.

    python -m lossparity.bench_loop [--quick] [--threads 1] [--json out/bench_loop.json]
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


def _quiet():
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _case(scenario: str, case_id: str):
    from lossparity import scenarios

    return next(c for c in scenarios.get(scenario).parity_cases() if c.id == case_id)


def _parts(case, seed: int = 0):
    """A fresh network (same initial weights every time), LossModule and DataModule."""
    import torch

    from torch_impl import lightning as tl

    torch.manual_seed(seed)
    net = case.model.torch_module()
    module = tl.LossModule(net, loss=case.loss.name, loss_params=case.loss.kwargs(),
                           optimizer={"name": "adam", "lr": 1e-3})
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


def hand_loop(case, steps: int, warmup: int) -> tuple[float, list]:
    """Seconds for steps ``warmup .. steps-1`` of a plain torch loop, and the final weights."""
    import torch

    module, dm = _parts(case)
    _setup_outside_trainer(module, dm)
    net = module.net
    opt = module.configure_optimizers()
    loader = dm.train_dataloader()
    net.train()
    step, start, total = 0, None, torch.zeros(())
    epoch = 0
    while step < steps:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for batch in loader:
            if step == warmup:
                start = time.perf_counter()
            x, y, *w = batch
            loss = module._loss(net(x), y, w[0] if w else None)  # loss_fn + activity penalties
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach()  # the running sum behind the epoch mean self.log(on_epoch=True) keeps
            step += 1
            if step == steps:
                break
        epoch += 1
    return time.perf_counter() - start, net.numpy_weights()


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
                   bare: bool = False) -> tuple[float, float, list]:
    """Seconds for the same steps under ``Trainer.fit`` (of ``LossModule``, or with ``bare`` of the
    smallest LightningModule), the setup seconds before the first step, and the final weights."""
    import lightning.pytorch as L

    module, dm = _parts(case)
    fitted = _bare(module, dm) if bare else module
    marks: dict[str, float] = {}

    class Clock(L.Callback):
        def on_fit_start(self, trainer, pl_module):
            marks["fit"] = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 0 and "first" not in marks:
                marks["first"] = time.perf_counter()
            if trainer.global_step == warmup:
                marks["start"] = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == steps:
                marks["end"] = time.perf_counter()

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
    return marks["end"] - marks["start"], marks["first"] - marks["fit"], module.net.numpy_weights()


def _same(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for wa, wb in zip(a, b)
               for u, v in zip(wa, wb))


def bench_case(scenario: str, case_id: str, steps: int, warmup: int, repeats: int, progress: bool) -> dict:
    import torch

    case = _case(scenario, case_id)
    times = {"hand": [], "bare": [], "lightning": [], "lightning+io": []}
    setup = []
    weights = {}
    for _ in range(repeats):  # alternate, so drifts of a shared machine hit all four alike
        torch.use_deterministic_algorithms(True)  # what Trainer(deterministic=True) sets, for both
        t, weights["hand"] = hand_loop(case, steps, warmup)
        times["hand"].append(t)
        t, _, weights["bare"] = lightning_loop(case, steps, warmup, io=False, progress=False, bare=True)
        times["bare"].append(t)
        t, s, weights["lightning"] = lightning_loop(case, steps, warmup, io=False, progress=False)
        times["lightning"].append(t)
        setup.append(s)
        t, _, weights["lightning+io"] = lightning_loop(case, steps, warmup, io=True, progress=progress)
        times["lightning+io"].append(t)
    torch.use_deterministic_algorithms(False)
    timed = steps - warmup
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"scenario": scenario, "case": case_id, "batch_size": case.batch_size, "steps": timed,
            "hand_ms_per_step": 1e3 * med["hand"] / timed,
            "bare_ms_per_step": 1e3 * med["bare"] / timed,
            "lightning_ms_per_step": 1e3 * med["lightning"] / timed,
            "lightning_io_ms_per_step": 1e3 * med["lightning+io"] / timed,
            "ratio": med["lightning"] / med["hand"], "ratio_io": med["lightning+io"] / med["hand"],
            "ratio_bare": med["bare"] / med["hand"], "ratio_over_bare": med["lightning"] / med["bare"],
            "overhead_us_per_step": 1e6 * (med["lightning"] - med["hand"]) / timed,
            "setup_ms": 1e3 * statistics.median(setup),
            "max_weight_diff": max(_same(weights["hand"], weights[k]) for k in ("bare", "lightning", "lightning+io")),
            "repeats": repeats}


HEADER = (f"{'case':<26} {'bs':>4} {'steps':>5} {'hand ms':>8} {'bare ms':>8} {'L ms':>8} {'L+io ms':>8} "
          f"{'L/hand':>7} {'L+io/hand':>9} {'bare/hand':>9} {'L/bare':>7} {'+µs/step':>9} {'setup ms':>9} {'Δw':>8}")


def format_row(r: dict) -> str:
    return (f"{r['case']:<26} {r['batch_size']:>4} {r['steps']:>5} {r['hand_ms_per_step']:>8.3f} "
            f"{r['bare_ms_per_step']:>8.3f} {r['lightning_ms_per_step']:>8.3f} {r['lightning_io_ms_per_step']:>8.3f} "
            f"{r['ratio']:>7.3f} {r['ratio_io']:>9.3f} {r['ratio_bare']:>9.3f} {r['ratio_over_bare']:>7.3f} "
            f"{r['overhead_us_per_step']:>9.0f} {r['setup_ms']:>9.0f} {r['max_weight_diff']:>8.1e}")


def main(argv=None, prog=None) -> int:
    ap = argparse.ArgumentParser(prog=prog or "python -m lossparity.bench_loop", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats (~1 min on 2 cores)")
    ap.add_argument("--steps", type=int, help="timed steps per run (default 200; --quick 60)")
    ap.add_argument("--repeats", type=int, help="runs of each loop, median taken (default 5; --quick 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: stable on a shared machine)")
    ap.add_argument("--only", nargs="+", metavar="CASE", help="parity case ids to run (default: all of CASES)")
    ap.add_argument("--progress", action="store_true", help="progress bar on in the lightning+io loop")
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
                row = bench_case(scenario, case_id, steps + warmup, warmup, repeats, args.progress)
            rows.append(row)
            print(format_row(row), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    bad = [r["case"] for r in rows if r["max_weight_diff"] != 0.0]
    if bad:
        print(f"the loops did not compute the same steps for {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
