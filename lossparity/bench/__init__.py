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

Layout: :mod:`~lossparity.bench.settings` (shapes, settings, constants), :mod:`~lossparity.bench.inputs`,
:mod:`~lossparity.bench.timing`, :mod:`~lossparity.bench.torch_peers`, :mod:`~lossparity.bench.keras_peers`,
:mod:`~lossparity.bench.runners` (the drivers), :mod:`~lossparity.bench.render`,
:mod:`~lossparity.bench.targets`, :mod:`~lossparity.bench.command` (``main``); every name is importable
from ``lossparity.bench``. torch's compiler is imported before TensorFlow when both run (``main``).
"""
from __future__ import annotations

from .settings import (  # noqa: F401
    SHAPES, TINY_SHAPES, LARGE_ELEMENTS, Settings, FULL, QUICK, TINY, ROW_KEYS, MODES, FUSED_LOSSES, FUSED_TARGET,
    TORCH_COMPILED, EAGER_NOISE, COMMITTED_RUN, PERCALL_SHAPE, PERCALL_MODE, PERCALL_TARGET_US, PERCALL_REPEATS,
    PERCALL_MIN_MS, NATIVE_PEER_PREFIXES, is_native_peer, note
)
from .inputs import (  # noqa: F401
    layout, class_count, shapes_for, make_inputs, percall_shape
)
from .timing import (  # noqa: F401
    time_group, _rel_diff, _run_group, _time_percall
)
from .torch_peers import (  # noqa: F401
    profiler_peak_bytes, saved_for_backward_bytes, TorchRunner, _torch_peers
)
from .keras_peers import (  # noqa: F401
    KerasRunner, _keras_peers
)
from .runners import (  # noqa: F401
    _shape_text, _build_peers, bench_torch, bench_keras, bench_percall
)
from .render import (  # noqa: F401
    percall_summary, render_percall, _print, _fmt, _mb, HEADER, format_row, _config_label, render_markdown,
    machine, render_fused, render_memory
)
from .targets import (  # noqa: F401
    fused_summary, target_misses, covering_note, memory_summary
)
from .command import (  # noqa: F401
    main
)

