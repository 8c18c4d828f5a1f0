"""``python -m lossparity.bench`` / ``lossparity bench``: the command line."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import spec

from .render import HEADER, machine, render_fused, render_markdown, render_percall
from .runners import bench_keras, bench_percall, bench_torch
from .settings import (EAGER_NOISE, FULL, FUSED_LOSSES, PERCALL_MIN_MS, PERCALL_MODE, PERCALL_REPEATS, PERCALL_SHAPE,
                       QUICK, TINY, note)
from .targets import fused_summary


def main(argv=None, prog=None) -> int:
    description = sys.modules[__package__].__doc__.split("\n\n")[0]  # the package's docstring
    ap = argparse.ArgumentParser(prog=prog or "python -m lossparity.bench", description=description)
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
