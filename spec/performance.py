"""Why benchmark rows miss their speed targets (``BENCHMARKS.md``): the causes several entries share.

Each entry's ``performance_notes`` (:class:`spec.PerformanceNote`) names the rows of the committed
benchmark run (``docs/benchmarks/bench_cpu.json``) that miss their target and the ratio its
reason covers; ``parity_tests/test_bench.py`` checks that no miss is left unexplained and that no
note is stale, and ``python -m lossparity.docs`` renders them into ``BENCHMARKS.md``. The texts
below are the causes that recur; an entry's note adds its own.
"""
from __future__ import annotations

from .core import PerformanceNote

__all__ = ["TORCH_CONTRACT", "TORCH_VALIDATION", "KERAS_EAGER", "COMPILED_CALL", "SECOND_SIGMOID",
           "COUNT_ON_GRAPH", "note"]

#: torch: the fixed cost of one call under the contract
TORCH_CONTRACT = (
    "the contract's fixed cost per call: at 256 x 10 ours is within 10-15 µs of the framework's own loss "
    "where the math is one kernel (the per-call table: the module call, the shape checks, with validate=True one "
    "reduction per bounded array and one read of the result), and where it is not the per-sample mean and the "
    "reduction are separate small ops: a visible share only where the peer's whole call is short (the "
    "4096 x 30 `cls` batch)")
#: torch: what ``validate=True`` (the default) adds
TORCH_VALIDATION = (
    "validate=True (the default) reads each floating array once (one detached aminmax and one host sync: "
    "~0.1 ms at `seg`) to reject NaN/inf and out-of-domain values with the shared message; the validate=False "
    "rows of the same loss meet the target")
#: Keras eager: per-op dispatch and the validation passes
KERAS_EAGER = (
    "Keras eager dispatches each TensorFlow op (~20-40 µs an op on this CPU); a loss of many small ops runs "
    "its loss, reduction and gradient as one traced graph per call (tf_impl._core.traced_when_eager), the "
    "others op by op, and with validate=True a min and a max pass per array (TensorFlow has no one-pass "
    "aminmax) run eagerly before it; under tf.function(jit_compile=True) the same loss fuses and the data "
    "checks do not run")
#: torch.compile: the part of a call that stays outside the fused loop
COMPILED_CALL = (
    "the compiled call keeps a fixed cost outside inductor's fused loop (dynamo's guard checks, the "
    "autograd.Function boundary of the closed-form gradient, the per-sample mean and the reduction), a large "
    "share where the eager peer's call is short (`cls`, forward only); bf16 input is converted to float32 "
    "before the loop (the library's dtype rule)")
#: the overlap family: the second transcendental that keeps near-perfect masks exact
SECOND_SIGMOID = (
    "two transcendentals an element where the fastest peers take one: FN = Σ y σ(-x) and the gradient's "
    "σ(x)σ(-x) need σ(-x) itself, because 1 - σ(x) rounds to 0 for x > 17 in float32 (the loss of a "
    "near-perfect mask and the gradient of confident pixels would be lost); the peers (plain torch, MONAI, "
    "Keras' Dice/Tversky on sigmoid, the segmentation problem's code) take one sigmoid and form 1 - (2TP + s)/(Σy + Σp + s), "
    "which cancels for near-perfect masks (see the peer notes). One sigmoid pass is about a third of the "
    "peer's whole fwd+bwd call at `seg` on this CPU. Since the closed-form overlap pass the counts, the ratio and the "
    "gradient are one closed-form pass (one saved buffer)")
#: the count penalties: a hard count that stays on the autograd graph
COUNT_ON_GRAPH = (
    "the count-above-a-threshold problem's hard count is a cast that is not on the autograd graph (its backward skips it, and a NaN "
    "prediction counts as 0); ours keeps the count on the graph with an exact zero gradient and NaN "
    "propagation (+ 0·sign(x)), so that backward() works on a penalty made of counts only and a NaN is "
    "never hidden: three input-sized ops more forward and one backward")


def note(framework: str, impl: str, shapes: tuple[str, ...], up_to: float, *reasons: str,
         target: str = "speed") -> PerformanceNote:
    """A :class:`PerformanceNote` whose reason joins ``reasons`` (an entry's own, then shared ones);
    ``target="memory"`` for a peak-memory miss."""
    return PerformanceNote(framework, impl, shapes, up_to, "; ".join(reasons) + ".", target)
