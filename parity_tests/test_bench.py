"""The benchmark harness (``lossparity/bench/``): its measurements and its JSON contract."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spec
from lossparity import bench
from spec.validation import NumpyOps, check_inputs

pytestmark = pytest.mark.project
ROOT = Path(__file__).resolve().parents[1]


def test_profiler_peak_bytes_counts_live_temporaries():
    torch = pytest.importorskip("torch")
    n = 1000

    def three_live():  # two temporaries (freed after the add) and the result: 3n floats at the peak
        return torch.ones(n) + torch.ones(n)

    assert bench.profiler_peak_bytes(three_live) == 3 * 4 * n
    assert bench.profiler_peak_bytes(lambda: torch.ones(n).exp()) == 2 * 4 * n
    assert bench.profiler_peak_bytes(lambda: None) == 0


def test_saved_for_backward_bytes_counts_distinct_storages():
    torch = pytest.importorskip("torch")
    x = torch.ones(1000, requires_grad=True)
    # x * x saves x twice (one storage, counted once); sum saves nothing
    assert bench.saved_for_backward_bytes(lambda: (x * x).sum()) == 4000
    # exp saves its output: one new float32 buffer
    assert bench.saved_for_backward_bytes(lambda: torch.exp(x).sum()) == 4000


@pytest.mark.parametrize("name", spec.names())
def test_bench_inputs_are_valid_inputs_of_the_loss(name):
    """The generated inputs pass the spec's own input checks (domains, shapes, labels)."""
    entry = spec.get(name)
    params = entry.validate_params(entry.cases()[0].params)
    shapes = bench.shapes_for(entry, params, bench.TINY)
    assert shapes, f"{name}: no benchmark shape"
    for shape in shapes.values():
        x, y = bench.make_inputs(entry, params, shape, np.random.default_rng(0))
        assert x.shape == shape
        check_inputs(entry, params, x, y, None, NumpyOps())


def test_layouts_of_known_entries():
    layouts = {n: bench.layout(spec.get(n)) for n in spec.names()}
    assert layouts["weighted_bce"] == "binary"
    for name in ("categorical_crossentropy", "sparse_categorical_crossentropy", "cost_sensitive_cce"):
        if name in layouts:
            assert layouts[name] == "classes", name


def _run_bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "lossparity.bench", "--tiny", "--json", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def _check_rows(rows, frameworks):
    assert rows, "no rows"
    percall = [r for r in rows if r["mode"] == bench.PERCALL_MODE]
    rows = [r for r in rows if r["mode"] != bench.PERCALL_MODE]
    _check_percall_rows(percall, [("weighted_bce", f) for f in frameworks])
    for row in rows:
        missing = [k for k in bench.ROW_KEYS if k not in row]
        assert not missing, f"missing keys {missing} in {row}"
        assert row["loss"] == "weighted_bce"
        assert row["framework"] in frameworks
        assert row["mode"] in ("fwd+bwd", "fwd")
        assert row["dtype"] == "float32"
        assert isinstance(row["ours_ms"], float) and row["ours_ms"] > 0 and math.isfinite(row["ours_ms"])
        # weighted_bce has peers on both sides: every ratio is a positive number, ours / peer
        assert row["peer"], row
        assert isinstance(row["peer_ms"], float) and row["peer_ms"] > 0
        assert isinstance(row["ratio"], float) and row["ratio"] > 0 and math.isfinite(row["ratio"])
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["peer_ms"], rel=1e-2)
        if row["framework"] == "torch":  # CPU: profiler peak (and saved bytes for fwd+bwd), real numbers
            assert isinstance(row["peak_bytes_ours"], int) and row["peak_bytes_ours"] > 0
            assert isinstance(row["peak_bytes_peer"], int) and row["peak_bytes_peer"] >= 0
            if row["mode"] == "fwd+bwd":
                assert row["saved_bytes_ours"] > 0
        else:  # TensorFlow keeps no CPU allocator statistics
            assert row["peak_bytes_ours"] is None
    seen = {(r["framework"], r["impl"], r["mode"]) for r in rows}
    impls = {"torch": ("torch eager", "torch eager validate=False"),
             "keras": ("keras eager", "keras eager validate=False", "keras jit")}
    for framework in frameworks:
        for impl in impls[framework]:
            for mode in ("fwd+bwd", "fwd"):
                assert (framework, impl, mode) in seen, (framework, impl, mode)
    peers = {r["peer"] for r in rows}
    expected = {"torch": "F.binary_cross_entropy_with_logits", "keras": "keras.losses.BinaryCrossentropy"}
    assert {expected[f] for f in frameworks} <= peers


def _check_percall_rows(rows, expected):
    """Per-call rows: one per (loss, framework) of ``expected`` at least, ours timed in µs, and ours -
    peer and the ratio wherever the peer ran forward+backward."""
    assert {(r["loss"], r["framework"]) for r in rows} == set(expected)
    for r in rows:
        missing = [k for k in bench.ROW_KEYS + ("ours_us", "peer_us", "diff_us") if k not in r]
        assert not missing, f"missing keys {missing} in {r}"
        assert r["mode"] == bench.PERCALL_MODE and r["dtype"] == "float32" and r["peer"]
        assert r["impl"] == {"torch": "torch eager", "keras": "keras eager"}[r["framework"]]
        entry = spec.get(r["loss"])
        shape = bench.percall_shape(entry, entry.validate_params(entry.cases()[0].params))
        assert r["shape"] == "x".join(map(str, shape))  # 256×10, or the entry's own layout (ctc: 16×20×10)
        assert isinstance(r["ours_us"], float) and r["ours_us"] > 0 and math.isfinite(r["ours_us"])
        if r["peer_us"] is None:
            assert r["note"] and r["diff_us"] is None and r["ratio"] is None
            # a peer is left untimed only for having no gradient (a hard count), never for failing to run
            assert "grad" in r["note"], f"{r['loss']} [{r['framework']}]: peer {r['peer']} failed: {r['note']}"
        else:
            assert r["diff_us"] == pytest.approx(r["ours_us"] - r["peer_us"], abs=0.02)
            assert r["ratio"] == pytest.approx(r["ours_us"] / r["peer_us"], rel=1e-2)
    summary = bench.percall_summary(rows)
    assert {(c["loss"], c["framework"]) for c in summary} == set(expected)
    assert "ours - peer" in bench.render_percall(rows)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_percall_table_has_rows_for_every_loss_with_a_peer(framework):
    """The per-call table (fwd+bwd at 256×10, default arguments; timings are not asserted): a row for
    every loss that has a peer in the framework, for every peer, with ours - peer where the peer
    has a gradient; and the rows stay out of the eager targets and the main Markdown pivot."""
    pytest.importorskip("torch" if framework == "torch" else "tensorflow")
    table = bench._torch_peers() if framework == "torch" else bench._keras_peers()
    expected = []
    for name in spec.names():
        entry = spec.get(name)
        params = entry.validate_params(entry.cases()[0].params)
        if bench._build_peers(table, name, params, bench.percall_shape(entry, params), framework):
            expected.append((name, framework))
    assert len(expected) >= 10
    rows = bench.bench_percall(spec.names(), (framework,), repeats=1, min_ms=0.0)
    _check_percall_rows(rows, expected)
    for loss, fw in expected:  # every peer of the loss has its row
        entry = spec.get(loss)
        params = entry.validate_params(entry.cases()[0].params)
        peers = bench._build_peers(table, loss, params, bench.percall_shape(entry, params), fw)
        assert {r["peer"] for r in rows if r["loss"] == loss} == set(peers)
    assert bench.target_misses(rows) == [] and bench.fused_summary(rows) == []
    markdown = bench.render_markdown(rows)
    assert "per-call" not in markdown.split("Per-call cost")[0]


def test_tiny_torch_bench_writes_the_contract(tmp_path):
    pytest.importorskip("torch")
    rows, stdout = _run_bench(tmp_path, "--only", "weighted_bce", "--frameworks", "torch", "--threads", "1")
    assert "ours ms" in stdout  # the table is printed
    _check_rows(rows, ("torch",))


@pytest.mark.slow
def test_tiny_bench_both_frameworks_writes_the_contract(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    rows, _ = _run_bench(tmp_path, "--only", "weighted_bce", "--threads", "1")
    _check_rows(rows, ("torch", "keras"))


@pytest.mark.slow
def test_tiny_fused_bench_times_the_compiled_loss_against_the_eager_peer(tmp_path):
    """--fused adds a torch.compile row for the elementwise losses (only those), and the fused
    summary divides it by the fastest eager peer of the same configuration (count_penalty: the
    smallest compilation; soft_dice is not an elementwise loss)."""
    pytest.importorskip("torch")
    rows, stdout = _run_bench(tmp_path, "--only", "count_penalty", "soft_dice", "--frameworks", "torch",
                              "--threads", "1", "--fused")
    compiled = [r for r in rows if r["impl"] == bench.TORCH_COMPILED]
    assert {r["loss"] for r in compiled} == {"count_penalty"} and {r["mode"] for r in compiled} == set(bench.MODES)
    summary = bench.fused_summary(rows)  # the hard count has no gradient: its peer has fwd rows only
    assert [s["mode"] for s in summary] == ["fwd"] and "Fused path vs fastest eager peer" in stdout
    (s,) = summary
    eager = [r["peer_ms"] for r in rows if r["loss"] == "count_penalty" and r["mode"] == "fwd"]
    assert s["eager_peer_ms"] == min(eager)
    assert s["ratio"] == pytest.approx(s["fused_ms"] / s["eager_peer_ms"], rel=1e-3)


def test_percall_target_is_against_the_fastest_framework_native_peer():
    """The per-call target (+15 µs) is ours - the fastest framework-native peer (the framework's own
    loss); a faster transcribed or hand-written peer is shown but not the target's peer, and a loss
    with no native peer has no target verdict."""
    def row(loss, peer, ours, peer_us):
        return {"loss": loss, "framework": "torch", "shape": "256x10", "mode": bench.PERCALL_MODE, "peer": peer,
                "ours_us": ours, "peer_us": peer_us, "diff_us": ours - peer_us, "ratio": ours / peer_us}

    rows = [row("a", "F.mse_loss", 50.0, 40.0), row("a", "plain torch MSE", 50.0, 20.0),
            row("b", "iouloss (segmentation answer, transcribed)", 80.0, 40.0),
            row("c", "keras.losses.Huber", 90.0, 70.0)]
    cells = {c["loss"]: c for c in bench.percall_summary(rows)}
    assert (cells["a"]["native_peer"], cells["a"]["native_diff_us"], cells["a"]["meets_target"]) == \
        ("F.mse_loss", 10.0, True)
    assert (cells["a"]["peer"], cells["a"]["diff_us"]) == ("plain torch MSE", 30.0)
    assert cells["b"]["native_peer"] is None and cells["b"]["meets_target"] is None
    assert cells["c"]["meets_target"] is False
    assert bench.is_native_peer("tf.nn.weighted_cross_entropy_with_logits (sparse multilabel answer)")
    assert not bench.is_native_peer("torchvision sigmoid_focal_loss (transcribed)")
    assert bench.is_native_peer("-F.cosine_similarity") and not bench.is_native_peer("plain torch MAPE")
    table = bench.render_percall(rows)
    assert "+20.0 ✗" in table and "+10.0 |" in table


def test_fused_summary_uses_the_fastest_eager_peer_not_the_jit_peer():
    def row(impl, ours, peer, name="weighted_bce", mode="fwd"):
        return {"loss": name, "framework": "keras", "impl": impl, "peer": "p", "shape": "8x8", "shape_kind": "seg",
                "dtype": "float32", "mode": mode, "ours_ms": ours, "peer_ms": peer}

    rows = [row("keras eager", 2.0, 4.0), row("keras eager validate=False", 1.8, 3.0), row("keras jit", 1.5, 1.0),
            row("keras jit", 1.0, 1.0, name="soft_dice"), row("keras eager", 1.0, 2.0, name="soft_dice")]
    (only,) = bench.fused_summary(rows)  # soft_dice is not an elementwise loss of the target
    assert (only["eager_peer_ms"], only["ratio"], only["meets_target"]) == (3.0, 0.5, True)
    rows[2]["ours_ms"] = 2.4
    assert bench.fused_summary(rows)[0]["meets_target"] is False
    assert "0.80 ✗" in bench.render_fused(bench.fused_summary(rows))


def _row(**kw):
    base = {"loss": "weighted_bce", "framework": "torch", "impl": "torch eager", "peer": "p", "shape": "4096x30",
            "shape_kind": "cls", "dtype": "float32", "mode": "fwd+bwd", "ours_ms": 1.0, "peer_ms": 1.0, "ratio": 1.0}
    return {**base, **kw}


def test_target_misses_are_eager_fwd_bwd_over_the_noise_and_fused_over_the_target():
    rows = [_row(ratio=1.05, peer="a"), _row(ratio=1.3, peer="b"),  # the fastest peer decides: a miss
            _row(impl="torch eager validate=False", ratio=1.08),  # noise
            _row(mode="fwd", ratio=3.0),  # forward-only rows have no eager target
            _row(impl="keras jit", framework="keras", ratio=3.0, loss="soft_dice"),  # no fused target
            _row(impl=bench.TORCH_COMPILED, ours_ms=0.7, peer_ms=0.6, ratio=0.7 / 0.6)]
    misses = bench.target_misses(rows)
    assert [(m["impl"], m["ratio"], m["target"]) for m in misses] == [
        ("torch eager", 1.3, 1.0), (bench.TORCH_COMPILED, 0.7, bench.FUSED_TARGET)]
    note = spec.PerformanceNote("torch", "torch eager*", ("cls",), 1.4, "why")
    entry = spec.get("weighted_bce")
    import dataclasses

    noted = dataclasses.replace(entry, performance_notes=(note,))
    assert bench.covering_note(misses[0], noted) is note
    assert bench.covering_note({**misses[0], "ratio": 1.5}, noted) is None  # beyond what it explains
    assert bench.covering_note({**misses[0], "shape_kind": "seg"}, noted) is None
    assert bench.covering_note(misses[1], noted) is None  # "torch compile…" does not match "torch eager*"


def test_memory_misses_are_targets_that_only_a_memory_note_covers():
    """Target 6 joins the misses: a peak above the leanest peer's plus one input buffer is a miss of
    kind "memory" (ratio ours / (peer + input)); a speed note of the same rows does not cover it, a
    memory note does, up to its ratio."""
    row = _row(shape="512x1024", shape_kind="seg", peak_bytes_ours=10 * 2**20, peak_bytes_peer=6 * 2**20)
    within = _row(shape="512x1024", peak_bytes_ours=8 * 2**20, peak_bytes_peer=6 * 2**20)
    (miss,) = bench.target_misses([row, within])
    assert (miss["kind"], miss["impl"], miss["shape_kind"], miss["ratio"], miss["target"]) == (
        "memory", "torch eager", "seg", 1.25, 1.0)
    import dataclasses

    speed = spec.PerformanceNote("torch", "torch eager*", ("seg",), 2.0, "why")
    memory = spec.PerformanceNote("torch", "torch eager*", ("seg",), 1.3, "why", target="memory")
    entry = spec.get("weighted_bce")
    assert bench.covering_note(miss, dataclasses.replace(entry, performance_notes=(speed,))) is None
    assert bench.covering_note(miss, dataclasses.replace(entry, performance_notes=(speed, memory))) is memory
    assert bench.covering_note({**miss, "ratio": 1.4}, dataclasses.replace(entry, performance_notes=(memory,))) is None


def _committed_run():
    path = Path(bench.COMMITTED_RUN)
    assert path.exists(), f"{path} missing: python -m lossparity.bench --quick --fused --threads 1 --json {path}"
    return json.loads(path.read_text())


def test_committed_run_covers_every_registered_loss_in_both_frameworks():
    rows = _committed_run()
    for framework in ("torch", "keras"):
        ran = {r["loss"] for r in rows if r["framework"] == framework}
        assert ran == set(spec.names()), f"{framework}: re-run the bench; missing {set(spec.names()) - ran}"
    compiled = {r["loss"] for r in rows if r["impl"] == bench.TORCH_COMPILED}
    assert compiled == set(bench.FUSED_LOSSES) & set(spec.names()), "the committed run lacks --fused"


def test_every_missed_target_of_the_committed_run_is_explained_by_its_spec_entry():
    """The speed targets: every row meets its target, or the spec entry explains why it cannot
    (``spec.PerformanceNote``: framework, impl pattern, shapes, the ratio it covers, the reason)."""
    rows = _committed_run()
    unexplained = [m for m in bench.target_misses(rows) if bench.covering_note(m, spec.get(m["loss"])) is None]
    assert not unexplained, "rows over their target without a PerformanceNote:\n" + "\n".join(
        f"  {m['loss']} {m['framework']} {m['impl']} {m['shape_kind']} {m['dtype']} {m['mode']}: "
        f"{m['ratio']:.2f} (target {m['target']})" for m in unexplained)


def test_every_performance_note_explains_a_row_of_the_committed_run():
    """A note whose rows now meet their target is stale: remove it (or re-measure)."""
    misses = bench.target_misses(_committed_run())
    for entry in spec.all_specs():
        for note in entry.performance_notes:
            assert note.reason and note.up_to > 0
            assert any(bench.covering_note(m, entry) is note for m in misses if m["loss"] == entry.name), (
                f"{entry.name}: stale performance note {note.framework} {note.impl} {note.shapes}")


def test_unknown_loss_is_rejected(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lossparity.bench", "--tiny", "--only", "no_such_loss",
                           "--json", str(tmp_path / "x.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "no_such_loss" in proc.stderr


def test_loop_bench_runs_the_same_steps_in_both_loops(tmp_path, monkeypatch):
    """``lossparity.bench_loop``: the loops with the same loss end at bit-identical weights (the
    comparison is one of loops, not of computations), ours and the peer (and the compiled loss)
    within the same-math tolerance, and the JSON holds every column. The compiled loop uses the
    aot_eager backend here (the LossModule switch without inductor's seconds of code generation)."""
    pytest.importorskip("lightning")
    from lossparity import bench_loop

    monkeypatch.setattr(bench_loop, "COMPILE_OPTIONS", {"backend": "aot_eager"})
    out = tmp_path / "loop.json"
    assert bench_loop.main(["--steps", "3", "--repeats", "1", "--only", "multilabel-auto", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["case"] == "multilabel-auto" and row["steps"] == 3
    assert row["peer"] == "F.binary_cross_entropy_with_logits" and row["target_ours_over_peer"] == 1.03
    assert row["max_weight_diff"] == 0.0
    assert 0 < row["ours_vs_peer_weight_rdiff"] <= bench_loop.SAME_MATH_WEIGHT_RTOL  # other rounding, same math
    assert row["ours_vs_peer_first_loss_rdiff"] <= bench_loop.FIRST_LOSS_RTOL
    assert row["compiled_vs_eager_weight_rdiff"] <= bench_loop.SAME_MATH_WEIGHT_RTOL
    assert row["compile_s"] > 0
    assert row["interleaved_steps"] == bench_loop.INTERLEAVED_STEPS_PER_RUN_STEP * (3 + 10) - 10
    assert 0.5 < row["interleaved_control"] < 2.0 and row["interleaved_ours_over_peer"] > 0
    for key in ("hand_ms_per_step", "hand_peer_ms_per_step", "bare_ms_per_step", "lightning_ms_per_step",
                "lightning_peer_ms_per_step", "lightning_io_ms_per_step", "lightning_compiled_ms_per_step", "ratio",
                "ratio_io", "ratio_bare", "ratio_over_bare", "hand_ours_over_peer", "lightning_ours_over_peer",
                "compiled_over_eager"):
        assert math.isfinite(row[key]) and row[key] > 0, key


def test_loop_bench_interleaved_measurement_sees_a_slower_loss(monkeypatch):
    """``interleaved_hand_steps`` can fail: a loss that does its work four times over reads well above
    the peer, while the control (the same peer twice) stays near 1."""
    pytest.importorskip("lightning")
    import torch

    from lossparity import bench_loop

    case = bench_loop._case("multilabel", "multilabel-auto")
    original = bench_loop._parts

    def heavier_ours(case, seed=0, loss="ours", **kw):
        module, dm = original(case, seed, loss=loss, **kw)
        if loss == "ours":
            fn = module.loss_fn

            class FourTimes(torch.nn.Module):
                def forward(self, x, y, *args, **kwargs):
                    for _ in range(3):
                        fn(x.detach(), y)
                    return fn(x, y, *args, **kwargs)

            module.loss_fn = FourTimes()
        return module, dm

    monkeypatch.setattr(bench_loop, "_parts", heavier_ours)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as bench_loop runs it (--threads 1): the CPU time of one thread a step
    try:
        med = bench_loop.interleaved_hand_steps(case, 80, 10)
    finally:
        torch.set_num_threads(threads)
    assert med["ours"] / med["peer"] > 1.1
    assert 0.8 < med["peer_control"] / med["peer"] < 1.25


def test_loop_bench_weights_differ_when_the_loops_differ(monkeypatch):
    """The equality check can fail: a hand loop with another learning rate ends elsewhere."""
    pytest.importorskip("lightning")
    from lossparity import bench_loop

    case = bench_loop._case("multilabel", "multilabel-auto")
    _, reference, _ = bench_loop.hand_loop(case, 5, 1)
    original = bench_loop._parts

    def other_lr(case, seed=0, **kw):
        module, dm = original(case, seed, **kw)
        module.optimizer_config = {"name": "adam", "lr": 2e-3}
        return module, dm

    monkeypatch.setattr(bench_loop, "_parts", other_lr)
    _, other, _ = bench_loop.hand_loop(case, 5, 1)
    assert bench_loop._same(reference, other) > 0


@pytest.mark.parametrize("scenario,case_id", [("multilabel", "multilabel-auto"),
                                              ("sparse_autoencoder", "sparse_autoencoder-kl")])
def test_loop_bench_peer_agrees_with_ours(scenario, case_id):
    """The peer loop (F.binary_cross_entropy_with_logits; F.mse_loss with the problem's KL penalty)
    ends within the same-math tolerance of ours, and not bit-identical (other kernels)."""
    pytest.importorskip("lightning")
    from lossparity import bench_loop

    case = bench_loop._case(scenario, case_id)
    initial = bench_loop._parts(case)[0].net.numpy_weights()
    _, ours, ours_first = bench_loop.hand_loop(case, 6, 1)
    _, peer, peer_first = bench_loop.hand_loop(case, 6, 1, loss="peer")
    assert 0 < bench_loop._relative_difference(ours, peer, initial) <= bench_loop.SAME_MATH_WEIGHT_RTOL
    assert peer_first == pytest.approx(ours_first, rel=bench_loop.FIRST_LOSS_RTOL)


def test_loop_bench_peer_check_can_fail(monkeypatch):
    """A peer of other math (pos_weight doubled) starts and ends far outside the tolerances, and
    failures() reports it."""
    pytest.importorskip("lightning")
    from lossparity import bench_loop

    case = bench_loop._case("multilabel", "multilabel-auto")
    initial = bench_loop._parts(case)[0].net.numpy_weights()
    _, ours, ours_first = bench_loop.hand_loop(case, 6, 1)
    original = bench_loop._peer_fn

    def doubled_pos_weight(name, params):
        return original(name, {**params, "pos_weight": 2 * np.asarray(params["pos_weight"])})

    monkeypatch.setattr(bench_loop, "_peer_fn", doubled_pos_weight)
    _, other, other_first = bench_loop.hand_loop(case, 6, 1, loss="peer")
    rdiff = bench_loop._relative_difference(ours, other, initial)
    first_rdiff = abs(other_first - ours_first) / ours_first
    assert rdiff > 2 * bench_loop.SAME_MATH_WEIGHT_RTOL and first_rdiff > 1e3 * bench_loop.FIRST_LOSS_RTOL
    row = {"case": case.id, "max_weight_diff": 0.0, "ours_vs_peer_weight_rdiff": rdiff,
           "ours_vs_peer_first_loss_rdiff": first_rdiff}
    assert len(bench_loop.failures([row])) == 2
    assert not bench_loop.failures([{**row, "ours_vs_peer_weight_rdiff": 1e-6, "ours_vs_peer_first_loss_rdiff": 1e-7}])


def test_ratios_keep_four_significant_digits():
    """A per-call ratio far below 1 (a peer that is the seed's slow code) keeps its digits: four
    decimals would turn 0.001974 into 0.002, 1.3% off."""
    from lossparity.bench.timing import ratio

    assert ratio(1.97414328762974, 1000.0) == 0.001974
    assert ratio(123.456, 100.0) == 1.235 and ratio(3.0, 3.0) == 1.0


def test_memory_summary_is_against_the_leanest_peer_plus_one_input_buffer():
    """Target 6: our peak against the leanest peer's plus the prediction's bytes, per eager
    validate=True fwd+bwd configuration (fused, validate=False, forward-only and Keras rows without
    peak columns stay out)."""
    def row(impl="torch eager", mode="fwd+bwd", ours=10 * 2**20, peer=6 * 2**20, peer_name="p", shape="512x1024"):
        return {"loss": "a", "framework": "torch", "impl": impl, "mode": mode, "shape": shape, "shape_kind": "seg",
                "dtype": "float32", "peak_bytes_ours": ours, "peak_bytes_peer": peer, "peer": peer_name}

    rows = [row(), row(peer=5 * 2**20, peer_name="leaner"), row(impl="torch eager validate=False", ours=1),
            row(impl="torch compile validate=False", ours=1), row(mode="fwd", ours=1), row(peer=None)]
    (cell,) = bench.memory_summary(rows)
    assert cell["peer"] == "leaner" and cell["input_bytes"] == 512 * 1024 * 4 == 2 * 2**20
    assert cell["excess_bytes"] == 10 * 2**20 - (5 + 2) * 2**20 and not cell["meets_target"]
    (ok,) = bench.memory_summary([row(ours=8 * 2**20)])
    assert ok["excess_bytes"] == 0 and ok["meets_target"]
    table = bench.render_memory([cell, ok])
    assert "+3.00 ✗" in table and "+0.00 |" in table
    # a bfloat16 prediction is computed in float32: its input-sized buffer is a float32 one
    (bf16,) = bench.memory_summary([dict(row(), dtype="bfloat16")])
    assert bf16["input_bytes"] == 512 * 1024 * 4


def test_step_tables_mark_the_cells_over_their_target():
    from lossparity.bench_loop import render_markdown

    r = {"case": "c", "peer": "F.x", "hand_ms_per_step": 2.0, "hand_peer_ms_per_step": 1.9, "lightning_ms_per_step": 3.0,
         "lightning_peer_ms_per_step": 3.0, "hand_ours_over_peer": 1.053, "lightning_ours_over_peer": 1.0,
         "target_ours_over_peer": 1.03, "ours_vs_peer_first_loss_rdiff": 0.0, "ours_vs_peer_weight_rdiff": 1e-7,
         "batch_size": 32, "bare_ms_per_step": 2.5, "lightning_io_ms_per_step": 3.1, "ratio": 1.5, "ratio_io": 1.55,
         "ratio_bare": 1.25, "ratio_over_bare": 1.2, "max_weight_diff": 0.0}
    text = render_markdown([r])
    assert "| 1.053 ✗ | 1.000 |" in text and "compiled / eager" not in text
    assert "No run" in render_markdown([])
