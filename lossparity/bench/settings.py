"""The benchmark's configuration: shape sets, the quick/full/tiny settings, row keys, modes and the
targets' constants."""
from __future__ import annotations

import dataclasses
import os


#: shape sets per input layout. "binary": elementwise / overlap / regression losses (prediction and
#: target of one shape); "classes": class axis LAST (one-hot or integer targets), ``C`` = classes;
#: "single": one input (regularizers), an activation tensor.
SHAPES = {
    "binary": {"cls": (4096, 30), "seg": (8, 1, 256, 256), "large": (16, 1, 512, 512)},
    # NHWC with 4 classes: the same 524,288 elements as the binary segmentation case
    "classes": {"cls": (4096, 30), "seg": (8, 128, 128, 4), "large": (131072, 32)},
    "single": {"cls": (4096, 30), "seg": (8, 1, 256, 256), "large": (16, 1, 512, 512)},
    # (N, T, C) logits of a sequence loss (ctc): labels up to T // 2 per row
    "sequence": {"cls": (64, 50, 20), "seg": (32, 200, 30), "large": (64, 400, 64)},
}


TINY_SHAPES = {
    "binary": {"tiny": (16, 8)},
    "classes": {"tiny": (16, 5)},
    "single": {"tiny": (16, 8)},
    "sequence": {"tiny": (4, 8, 5)},
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


#: the elementwise losses of the fused-path speed target: fused ours ≤ 0.6 × the fastest eager peer
FUSED_LOSSES = ("weighted_bce", "binary_focal", "asymmetric_exponential", "count_penalty", "mse_count_penalty",
                "cce_count_penalty")


FUSED_TARGET = 0.6


TORCH_COMPILED = "torch compile validate=False"


#: the eager speed target: fwd+bwd ≤ 1.0 × the fastest peer, ratios up to this are noise
EAGER_NOISE = 1.1


#: the committed run the spec's performance notes are checked against (parity_tests/test_bench.py)
COMMITTED_RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "docs", "benchmarks", "bench_cpu.json")


#: the per-call table: forward+backward at a small size, where the fixed cost of a call dominates
PERCALL_SHAPE = (256, 10)


#: the per-call shape of a sequence loss: (N, T, C)
PERCALL_SEQUENCE_SHAPE = (16, 20, 10)


PERCALL_MODE = "per-call fwd+bwd"


PERCALL_TARGET_US = 15.0


#: the prefixes of a framework-native peer's label (the framework's own loss or op, not code transcribed
#: from a user or another library): the per-call target is ours - the fastest native peer
NATIVE_PEER_PREFIXES = ("F.", "torch.nn.", "keras.losses.", "tf.nn.")


def is_native_peer(label: str) -> bool:
    """Whether a peer label names the framework's own loss (``F.cross_entropy``, ``keras.losses.Huber``,
    ``tf.nn.weighted_cross_entropy_with_logits``, ``-F.cosine_similarity``: a similarity negated into
    a loss), the peer of the per-call target."""
    return label.lstrip("-").startswith(NATIVE_PEER_PREFIXES) and "transcribed" not in label


#: repeats of the per-call table (interleaved) and the time one repeat of a function lasts at least
PERCALL_REPEATS = 21


PERCALL_MIN_MS = 4.0


def note(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)
