"""Generate the documentation that comes from the registry and the committed benchmark run.

    python -m lossparity.docs          # rewrite every generated page, section and plot
    python -m lossparity.docs --check  # exit 1 when one is stale (the plots: when one is missing)

What it writes:

* ``docs/losses/<name>.md``, one page per registered loss (formula, parameters with defaults and
  domains, gradient convention, the problem it solves and its trap, torch and Keras usage, its
  errors, peers and performance), and ``docs/losses/index.md`` (the catalog);
* the sections between ``<!-- NAME:start -->`` / ``<!-- NAME:end -->`` markers: README.md's short
  catalog, the error table of ``docs/contract.md``, the port table of ``docs/porting.md`` (from
  :mod:`spec.ports`), the performance notes of
  ``docs/benchmarks.md`` and the ratio summary of ``BENCHMARKS.md`` and ``docs/benchmarks.md``;
* ``docs/benchmarks/*.png``: the plots of ``docs/benchmarks/bench_cpu.json``.

The module is also the site's MkDocs hook (``mkdocs.yml``: ``hooks``): on the benchmark page it
replaces ``<!-- lossparity:bench-tables -->`` with every table of the committed run, rendered from
the JSON when the site is built (so the tables are never committed twice).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import statistics
import sys

import spec
from spec.validation import expected_message

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
DOCS = ROOT / "docs"
LOSSES = DOCS / "losses"
CONTRACT = DOCS / "contract.md"
PORTING = DOCS / "porting.md"
BENCH_PAGE = DOCS / "benchmarks.md"
BENCH_JSON = DOCS / "benchmarks" / "bench_cpu.json"
BENCH_LOOP_JSON = DOCS / "benchmarks" / "bench_loop_cpu.json"
PLOTS = {"family": DOCS / "benchmarks" / "ratios_by_family.png",
         "percall": DOCS / "benchmarks" / "per_call_cls.png"}

#: the problems of docs/problems.md (anchor, name) each loss answers, first the main one
PROBLEMS = {
    "sparse-multilabel": "sparse multilabel",
    "count-above-a-threshold": "count above a threshold",
    "cost-sensitive": "cost-sensitive / class-weighted",
    "segmentation-overlap-losses": "segmentation overlap losses",
    "kl-sparsity": "KL sparsity for autoencoders",
    "mnist-thresholding": "MNIST thresholding and data selection",
}
LOSS_PROBLEMS = {
    "weighted_bce": ("sparse-multilabel", "cost-sensitive"),
    "binary_focal": ("segmentation-overlap-losses", "cost-sensitive"),
    "categorical_crossentropy": ("mnist-thresholding", "cost-sensitive"),
    "sparse_categorical_crossentropy": ("mnist-thresholding",),
    "cost_sensitive_cce": ("cost-sensitive",),
    "asymmetric_exponential": ("cost-sensitive",),
    "soft_dice": ("segmentation-overlap-losses",),
    "soft_jaccard": ("segmentation-overlap-losses",),
    "tversky": ("segmentation-overlap-losses",),
    "soft_fbeta": ("segmentation-overlap-losses", "cost-sensitive"),
    "mean_squared_error": ("count-above-a-threshold",),
    "count_penalty": ("count-above-a-threshold",),
    "mse_count_penalty": ("count-above-a-threshold",),
    "cce_count_penalty": ("count-above-a-threshold",),
    "kl_sparsity": ("kl-sparsity",),
}
#: peer labels of older benchmark runs named the question their code comes from by its number in
#: the project's notes ("seed", three digits, the code's name); the pages name the answer instead
#: (docs/problems.md): by the code's name, else by the question's number
PEER_ORIGIN_BY_CODE = {"F-beta": "soft F-beta answer", "custom_loss": "asymmetric-cost answer",
                       "iouloss": "segmentation answer", "w_categorical": "cost-sensitive answer"}
PEER_ORIGIN_BY_NUMBER = {"000": "count-above-a-threshold answer", "001": "sparse multilabel answer",
                         "002": "MNIST answer", "004": "KL-sparsity answer"}
_PEER_ORIGIN = re.compile(r"\(seed \d{3}\)|[Ss]eed \d{3}(?:'s)?:? ?")
_PEER_LABEL = re.compile(r"^seed (\d{3}) (.*?)( \(transcribed\)| \(tf\))?(:.*)?$")
_PEER_SUFFIX = re.compile(r"\(seed (\d{3})\)")


#: spec names Keras already defines: the string keeps Keras' meaning and ours is "lossparity>Class"
#: (tf_impl.keras_names; test_docs.py checks this set against it)
KERAS_BUILT_IN = frozenset({"categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge", "circle",
                            "cosine_similarity", "ctc", "hinge", "huber", "kl_divergence", "log_cosh",
                            "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
                            "mean_squared_logarithmic_error", "poisson", "sparse_categorical_crossentropy",
                            "squared_hinge", "tversky"})


def _keras_string(entry) -> str:
    if entry.name in KERAS_BUILT_IN:
        return (f"`\"lossparity>{entry.keras_class}\"` after `import tf_impl` (`\"{entry.name}\"` is Keras' "
                "own loss)")
    use = "`activity_regularizer=`" if entry.single_input else "`loss=`"
    return f"`\"{entry.name}\"` as {use} after `import tf_impl`"


def relabel_peer(label: str) -> str:
    """An older run's peer label as the pages name it: the numbered question's ``iouloss
    (transcribed)`` becomes ``iouloss (segmentation answer, transcribed)``."""
    m = _PEER_LABEL.match(label)
    if m is None:
        return _PEER_SUFFIX.sub(lambda n: f"({PEER_ORIGIN_BY_NUMBER.get(n.group(1), 'answer')})", label)
    number, what, suffix, rest = m.groups()
    origin = next((name for code, name in PEER_ORIGIN_BY_CODE.items() if what.startswith(code)),
                  PEER_ORIGIN_BY_NUMBER.get(number, "answer"))
    suffix = f", {suffix.strip()[1:-1]}" if suffix else ""
    return f"{what} ({origin}{suffix}){rest or ''}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _words(text: str, prefix: str = "../") -> str:
    """Benchmark peer labels name the question their code comes from by a file number; the
    pages say which problem instead (see docs/problems.md), and link that page."""
    text = text.replace("(docs/problems.md)", f"([problems]({prefix}problems.md))")
    return _PEER_ORIGIN.sub(lambda m: "(the question's answer)" if m.group(0).startswith("(") else "the question's ",
                            text)


def _default(p) -> str:
    return "required" if getattr(p, "required", False) else f"`{p.default!r}`"


def _param_text(entry) -> str:
    parts = [f"`{p.name}` (required)" if getattr(p, "required", False) else f"`{p.name}={p.default!r}`"
             for p in entry.params]
    return ", ".join(parts) or "—"


def _problem_links(entry, prefix: str) -> str:
    keys = LOSS_PROBLEMS.get(entry.name, ())
    return ", ".join(f"[{PROBLEMS[k]}]({prefix}problems.md#{k})" for k in keys) or "—"


# --------------------------------------------------------------------------- catalog tables
def readme_catalog() -> str:
    """README's short catalog: one row per family, each loss's name linking to its page (the summaries,
    parameters and problems are on ``docs/losses/index.md``)."""
    lines = ["| family | losses |", "|---|---|"]
    for family in dict.fromkeys(e.family for e in spec.all_specs()):
        names = [f"[`{e.name}`](docs/losses/{e.name}.md)" for e in spec.all_specs() if e.family == family]
        lines.append(f"| {family} | {', '.join(names)} |")
    return "\n".join(lines)


def losses_index() -> str:
    lines = ["# Losses", "",
             "Every loss of the registry, generated from its spec entry (`python -m lossparity.docs`). "
             "Each page has the formula, the parameters with their defaults and domains, the gradient "
             "convention, the problem it answers and the trap it avoids, torch and Keras usage, the "
             "errors it raises and its benchmark figures.", ""]
    for family in dict.fromkeys(e.family for e in spec.all_specs()):
        lines += [f"## {family}", "", "| loss | summary | parameters (defaults) | torch / Keras class | problem |",
                  "|---|---|---|---|---|"]
        for entry in spec.all_specs():
            if entry.family == family:
                lines.append(f"| [`{entry.name}`]({entry.name}.md) | {_cell(entry.summary)} "
                             f"| {_cell(_param_text(entry))} | `{entry.torch_class}` / `{entry.keras_class}` "
                             f"| {_problem_links(entry, '../')} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- errors
def _error_rows(entry, with_shared: bool) -> list[str]:
    own = list(entry.invalid_cases())
    rows = [(case, f"`{entry.name}`") for case in own]
    if with_shared and not entry.single_input:
        own_ids = {c.id for c in own}
        shared = [c for c in entry.all_invalid_cases() if c.id not in own_ids]
        rows = [(case, f"every loss (e.g. `{entry.name}`)") for case in shared] + rows
    out = []
    for case, label in rows:
        params = ", ".join(f"{k}={spec.messages.format_value(v)}" for k, v in case.params.items()) or "defaults"
        where = "call" if case.prediction is not None else "construction"
        out.append(f"| {label} | {case.id} ({where}) | {_cell(params)} | "
                   f"`` {_cell(expected_message(entry, case))} `` |")
    return out


def errors() -> str:
    """The rejections every loss shares, once (their text differs only by the loss name), then
    each entry's own."""
    lines = ["| loss | case | parameters | message (identical in torch and Keras) |", "|---|---|---|---|"]
    shared_shown = False
    for entry in spec.all_specs():
        show = not shared_shown and not entry.single_input
        lines += _error_rows(entry, show)
        shared_shown = shared_shown or show
    return "\n".join(lines)


def _port_entry(row) -> str:
    if row.entry is None:
        return "—"
    if row.entry in spec.names():
        return f"[`{row.entry}`](losses/{row.entry}.md)"
    return f"`{row.entry}` (not yet)"


def _port_agreement(row) -> str:
    return f"**{row.status}**" + (f": {row.note}" if row.note else "")


def port_table() -> str:
    """docs/porting.md: every Keras and torch.nn loss class → our entry, equal / differs how / no twin."""
    from spec import ports

    lines = ["### Keras", "", "| Keras | string names | our entry | parameters | agreement |", "|---|---|---|---|---|"]
    for row in ports.rows(ports.KERAS):
        names = ", ".join(f'`"{n}"`' for n in row.names) or "—"
        lines.append(f"| `{row.qualified}` | {names} | {_port_entry(row)} | {_cell(row.params_text or '—')} | "
                     f"{_cell(_port_agreement(row))} |")
    lines += ["", "### torch.nn", "", "| torch.nn | our entry | parameters | agreement |", "|---|---|---|---|"]
    for row in ports.rows(ports.TORCH):
        lines.append(f"| `{row.qualified}` | {_port_entry(row)} | {_cell(row.params_text or '—')} | "
                     f"{_cell(_port_agreement(row))} |")
    keras_reductions = ", ".join(f"`{k!r}` → `{v!r}`" for k, v in ports.KERAS_REDUCTIONS.items())
    lines += ["", "### Reductions", "",
              f"- Keras: {keras_reductions}; `'mean_with_sample_weight'` (Σ w ℓ / Σ w) raises.",
              "- torch: `'mean'`, `'sum'`, `'none'` keep their names (legacy `size_average` / `reduce` are read "
              "through the module's `reduction`).",
              f"- {ports.SUM_REDUCTION[0].upper()}{ports.SUM_REDUCTION[1:]}.",
              f"- {ports.NONE_REDUCTION[0].upper()}{ports.NONE_REDUCTION[1:]}.",
              f"- {ports.SAMPLE_WEIGHT[0].upper()}{ports.SAMPLE_WEIGHT[1:]}.",
              f"- Every Keras row: {ports.KERAS_DTYPE}."]
    return "\n".join(lines)


def performance() -> str:
    """Every entry's :class:`spec.PerformanceNote`: the rows of the benchmark over their target
    and why (checked against the committed run by ``parity_tests/test_bench.py``)."""
    lines = ["| loss | target | framework | impl | shapes | ratio up to | why |", "|---|---|---|---|---|---:|---|"]
    for entry in spec.all_specs():
        for n in entry.performance_notes:
            lines.append(f"| [`{entry.name}`](losses/{entry.name}.md) | {n.target} | {n.framework} | `{n.impl}` "
                         f"| {', '.join(n.shapes)} | {n.up_to:.2f} | {_cell(_words(n.reason, ''))} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- benchmark figures
def bench_rows() -> list[dict]:
    with open(BENCH_JSON) as f:
        return json.load(f)


def _impl_kind(impl: str) -> str:
    if "compile" in impl or "jit" in impl:
        return "fused"
    return "eager, validate=False" if "validate=False" in impl else "eager"


def _configs(rows, mode="fwd+bwd") -> dict[tuple, float]:
    """Ratio against the fastest peer per configuration (loss, framework, impl, shape, dtype)."""
    out: dict[tuple, float] = {}
    for r in rows:
        if r.get("mode") != mode or r.get("ratio") is None:
            continue
        key = (r["loss"], r["framework"], r["impl"], r["shape"], r["dtype"])
        out[key] = max(out.get(key, 0.0), r["ratio"])
    return out


def family_ratios(rows) -> list[dict]:
    families = {e.name: e.family for e in spec.all_specs()}
    groups: dict[tuple, list[float]] = {}
    for (loss, framework, impl, _shape, _dtype), ratio in _configs(rows).items():
        groups.setdefault((families.get(loss, "?"), framework, _impl_kind(impl)), []).append(ratio)
    order = list(dict.fromkeys(e.family for e in spec.all_specs()))
    kinds = ["eager", "eager, validate=False", "fused"]
    out = []
    for key in sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1], kinds.index(k[2]))):
        vals = groups[key]
        out.append({"family": key[0], "framework": key[1], "impl": key[2], "configs": len(vals),
                    "median": statistics.median(vals), "min": min(vals), "max": max(vals),
                    "within": sum(v <= 1.1 for v in vals)})
    return out


def ratio_summary() -> str:
    """Median ratio ours / fastest peer (forward+backward) per loss family and implementation."""
    lines = ["| family | framework | ours | configurations | median ratio | range | ≤ 1.1 |",
             "|---|---|---|---:|---:|---:|---:|"]
    for g in family_ratios(bench_rows()):
        lines.append(f"| {g['family']} | {g['framework']} | {g['impl']} | {g['configs']} | {g['median']:.2f} "
                     f"| {g['min']:.2f}–{g['max']:.2f} | {g['within']} of {g['configs']} |")
    return "\n".join(lines)


def percall_table() -> str:
    """The per-call table (target 1) of the committed run."""
    from lossparity.bench import render_percall

    return render_percall(bench_rows()).rstrip() or "The committed run has no per-call rows."


def fused_table() -> str:
    """The fused paths against the fastest eager peer (target 4) in the committed run."""
    from lossparity.bench import fused_summary, render_fused

    summary = fused_summary(bench_rows())
    return render_fused(summary).split("\n", 2)[2].rstrip() if summary else "The committed run has no fused rows."


def memory_table() -> str:
    """Peak memory of forward+backward against the leanest peer plus one input-sized buffer
    (target 6) in the committed run."""
    from lossparity.bench import memory_summary, render_memory

    return render_memory(memory_summary(bench_rows())).rstrip()


def step_tables() -> str:
    """The training-step tables (target 2, the Lightning loop, the compiled loss) of the committed
    ``lossparity.bench_loop`` run."""
    from lossparity.bench_loop import render_markdown

    if not BENCH_LOOP_JSON.exists():
        return render_markdown([])
    with open(BENCH_LOOP_JSON) as f:
        return render_markdown(json.load(f))


def _loss_bench(entry) -> str:
    configs = {k: v for k, v in _configs(bench_rows()).items() if k[0] == entry.name}
    if not configs:
        return "No row of the committed benchmark run has a peer for this loss."
    cols = list(dict.fromkeys(f"{k[3]} {k[4]}" for k in configs))
    impls = list(dict.fromkeys((k[1], k[2]) for k in configs))
    lines = ["| framework | ours | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for framework, impl in impls:
        cells = [configs.get((entry.name, framework, impl, *c.split(" "))) for c in cols]
        lines.append(f"| {framework} | {impl} | " + " | ".join("" if v is None else f"{v:.2f}" for v in cells) + " |")
    return "\n".join(lines)


def write_plots() -> list[pathlib.Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = bench_rows()
    groups = family_ratios(rows)
    kinds = ["eager", "eager, validate=False", "fused"]
    labels = list(dict.fromkeys(f"{g['family']}\n{g['framework']}" for g in groups))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.27
    for i, kind in enumerate(kinds):
        xs, ys, lo, hi = [], [], [], []
        for g in groups:
            if g["impl"] == kind:
                x = labels.index(f"{g['family']}\n{g['framework']}") + (i - 1) * width
                xs.append(x), ys.append(g["median"]), lo.append(g["median"] - g["min"]), hi.append(g["max"] - g["median"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=kind)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    ticks = [0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("ours / fastest peer (fwd+bwd)")
    ax.set_title("Median ratio per loss family (bars: min–max over shapes and dtypes); below 1: ours is faster")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOTS["family"], dpi=110, metadata={"Software": None})
    plt.close(fig)

    cls = {}
    for r in rows:
        if r.get("mode") == "fwd+bwd" and r.get("shape_kind") == "cls" and r["dtype"] == "float32" \
                and r["impl"] in ("torch eager", "keras eager") and r.get("peer_ms") is not None:
            key = (r["loss"], r["framework"])
            ours, peer = cls.get(key, (r["ours_ms"], r["peer_ms"]))
            cls[key] = (r["ours_ms"], min(peer, r["peer_ms"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    losses = sorted({k[0] for k in cls})
    for ax, framework in zip(axes, ("torch", "keras")):
        ys = range(len(losses))
        ours = [cls.get((n, framework), (float("nan"),) * 2)[0] for n in losses]
        peer = [cls.get((n, framework), (float("nan"),) * 2)[1] for n in losses]
        ax.barh([y + 0.2 for y in ys], ours, 0.4, label="ours (validate=True)")
        ax.barh([y - 0.2 for y in ys], peer, 0.4, label="fastest peer")
        ax.set_yticks(list(ys), losses, fontsize=8)
        ax.set_xlabel("ms per call, fwd+bwd, 4096 x 30 float32")
        ax.set_title(f"{framework} eager")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOTS["percall"], dpi=110, metadata={"Software": None})
    plt.close(fig)
    return list(PLOTS.values())


# --------------------------------------------------------------------------- one page per loss
def _example_params(entry) -> str:
    required = [p.name for p in entry.params if getattr(p, "required", False)]
    if not required:
        return ""
    params = entry.cases()[0].params
    parts = []
    for name in required:
        value = params[name]
        text = repr(value.tolist()) if hasattr(value, "tolist") else repr(value)
        parts.append(f"{name}={text}")
    return ", ".join(parts)


def _probability_rows(a) -> bool:
    """Rows (last axis) of values in [0, 1] that sum to 1 (a softmax output or a distribution)."""
    import numpy as np

    a = np.asarray(a, np.float64)
    return bool(((a >= 0) & (a <= 1)).all() and np.allclose(a.sum(-1), 1.0))


def _example_inputs(entry) -> tuple[list[str], list[str]]:
    """Lines that make example inputs of the shapes and domains of the entry's first case:
    ``(torch lines, NumPy lines)`` defining ``prediction``/``target`` and ``y_pred``/``y_true``."""
    import numpy as np

    case = entry.cases()[0]
    shape = tuple(case.prediction.shape)
    bounded = entry.prediction_domain(entry.validate_params(dict(case.params))) is not None
    grad = '' if entry.single_input else '.requires_grad_()'
    if bounded and len(shape) >= 2 and _probability_rows(case.prediction):
        torch_lines = [f"prediction = torch.softmax(torch.randn{shape}, dim=-1){grad}   # probability rows"]
        np_lines = [f"y_pred = rng.dirichlet(np.ones({shape[-1]}), size={shape[:-1]}).astype(\"float32\")"]
    else:
        torch_lines = [f"prediction = torch.{'rand' if bounded else 'randn'}{shape}{grad}   # "
                       f"{'activations in [0, 1]' if bounded else 'logits' if 'from_logits' in entry.param_names else 'real values'}"]
        np_lines = [f"y_pred = rng.{'random' if bounded else 'normal'}(size={shape}).astype(\"float32\")"]
    target = case.target
    if target is not None:
        classes = shape[-1]
        if np.issubdtype(target.dtype, np.integer) or target.shape != case.prediction.shape:
            torch_lines.append(f"target = torch.randint(0, {classes}, {tuple(target.shape)})   # class labels")
            np_lines.append(f"y_true = rng.integers(0, {classes}, size={tuple(target.shape)})")
        elif np.isin(target, [0, 1]).all() and np.allclose(target.sum(-1), 1):
            torch_lines.append(f"target = torch.nn.functional.one_hot(torch.randint(0, {classes}, {shape[:-1]}), "
                               f"{classes}).float()   # one-hot rows")
            np_lines.append(f"y_true = np.eye({classes}, dtype=\"float32\")[rng.integers(0, {classes}, size={shape[:-1]})]")
        elif np.isin(target, [0, 1]).all():
            torch_lines.append(f"target = (torch.rand{shape} < 0.3).float()   # binary labels")
            np_lines.append(f"y_true = (rng.random(size={shape}) < 0.3).astype(\"float32\")")
        elif np.isin(target, [-1, 1]).all():
            torch_lines.append(f"target = torch.randint(0, 2, {shape}).float() * 2 - 1   # labels -1 / 1")
            np_lines.append(f"y_true = rng.choice([-1.0, 1.0], size={shape}).astype(\"float32\")")
        elif len(shape) >= 2 and _probability_rows(target):
            torch_lines.append(f"target = torch.softmax(torch.randn{shape}, dim=-1)   # probability rows")
            np_lines.append(f"y_true = rng.dirichlet(np.ones({shape[-1]}), size={shape[:-1]}).astype(\"float32\")")
        elif entry.target_domain is not None and entry.target_domain[0] == 0 and np.all(target == np.round(target)):
            torch_lines.append(f"target = torch.randint(0, 6, {shape}).float()   # counts")
            np_lines.append(f"y_true = rng.integers(0, 6, size={shape}).astype(\"float32\")")
        else:
            torch_lines.append(f"target = torch.randn{shape}   # real targets")
            np_lines.append(f"y_true = rng.normal(size={shape}).astype(\"float32\")")
    return torch_lines, np_lines


def _tab(title: str, lines: list[str]) -> list[str]:
    return [f"=== \"{title}\"", "", "    ```python"] + [f"    {line}".rstrip() for line in lines] + ["    ```", ""]


def _usage(entry) -> str:
    """Runnable examples in both frameworks (``test_docs.py`` runs them)."""
    args = _example_params(entry)
    sep = ", " if args else ""
    torch_inputs, np_inputs = _example_inputs(entry)
    if entry.single_input:
        torch_inputs = [line.replace("prediction =", "activations =") for line in torch_inputs]
        np_inputs = [line.replace("y_pred =", "activations =") for line in np_inputs]
        torch_code = ["import torch", "import torch_impl", "", *torch_inputs, "",
                      f"penalty = torch_impl.get_loss(\"{entry.name}\"{sep}{args})   # torch_impl.{entry.torch_class}",
                      "value = penalty(activations)   # add it to the task loss of the model that made them"]
        keras_code = ["import keras", "import numpy as np", "import tf_impl", "", "rng = np.random.default_rng(0)",
                      *np_inputs, "",
                      f"value = tf_impl.get_loss(\"{entry.name}\"{sep}{args})(activations)",
                      f"layer = keras.layers.Dense(16, activation=\"sigmoid\",",
                      f"                           activity_regularizer=tf_impl.{entry.keras_class}({args}))"]
        return "\n".join(_tab("PyTorch", torch_code) + _tab("Keras", keras_code))
    torch_code = ["import torch", "import torch_impl", "", *torch_inputs, "",
                  f"loss_fn = torch_impl.get_loss(\"{entry.name}\"{sep}{args})   # torch_impl.{entry.torch_class}",
                  "loss = loss_fn(prediction, target)   # torch order: prediction first",
                  "loss.backward()",
                  f"same = torch_impl.functional.{entry.name}(prediction, target{sep}{args})"]
    keras_code = ["import numpy as np", "import tf_impl", "", "rng = np.random.default_rng(0)", *np_inputs, "",
                  f"loss_fn = tf_impl.get_loss(\"{entry.name}\"{sep}{args})   # tf_impl.{entry.keras_class}",
                  "loss = loss_fn(y_true, y_pred)   # Keras order: truth first",
                  f"same = tf_impl.functional.{entry.name}(y_true, y_pred{sep}{args})",
                  f"# model.compile(optimizer=\"adam\", loss=tf_impl.{entry.keras_class}({args}))"]
    return "\n".join(_tab("PyTorch", torch_code) + _tab("Keras", keras_code))


def _prediction_text(entry) -> str:
    if "from_logits" in entry.param_names:
        return "logits (`from_logits=True`, the default) or probabilities in [0, 1] (`from_logits=False`)"
    interval = entry.prediction_domain(entry.validate_params(dict(entry.cases()[0].params)))
    return "values in " + _domain(interval) if interval is not None else "any real values"


def _target_text(entry) -> str:
    if entry.single_input:
        return "— (one input)"
    if entry.target_shape is not None and None in entry.target_shape(entry.cases()[0].prediction.shape):
        return ("integer label rows (N, L) of any length L, values in [0, C), padded with the blank (a row's labels: "
                "its non-blank entries, in order)")
    if entry.target_shape is not None and not entry.target_labels_bounded:
        return "integer labels (any integers: only equality matters), one per row"
    if entry.target_shape is not None:
        return "integer class labels in [0, C), one per row (C: the size of the prediction's last axis)"
    if entry.target_text:
        return entry.target_text
    return "values in " + _domain(entry.target_domain) if entry.target_domain is not None else "any real values"


def _domain(interval) -> str:
    if interval is None:
        return "any real"
    lo, hi = interval
    return f"[{lo:g}, {hi:g}]"


def loss_page(entry) -> str:
    reductions = ", ".join(f'`"{r}"`' for r in entry.reductions(entry.defaults() if not any(
        getattr(p, "required", False) for p in entry.params) else dict(entry.cases()[0].params)))
    lines = [f"# `{entry.name}`", "", "<!-- generated by python -m lossparity.docs from spec.get("
             f"\"{entry.name}\"): edit the spec entry, not this page -->", "",
             entry.summary, "",
             "| | |", "|---|---|",
             f"| family | {entry.family} |",
             f"| torch | `torch_impl.{entry.torch_class}`, `torch_impl.functional.{entry.name}` |",
             f"| Keras | `tf_impl.{entry.keras_class}`, `tf_impl.functional.{entry.name}`, {_keras_string(entry)} |",
             f"| reductions | {reductions} |",
             f"| inputs | {'one tensor (a penalty of activations)' if entry.single_input else 'prediction, target, optional sample_weight of shape (N,)'} |",
             f"| prediction | {_prediction_text(entry)} |",
             f"| target | {_target_text(entry)} |",
             f"| problem | {_problem_links(entry, '../')} |",
             "", "## Formula", "", "$$", entry.formula, "$$", "",
             "## Parameters", ""]
    if entry.params:
        lines += ["| name | default | domain | meaning |", "|---|---|---|---|"]
        for p in entry.params:
            diff = " Differentiable: a tensor or variable receives a gradient." if p.differentiable else ""
            lines.append(f"| `{p.name}` | {_default(p)} | {_cell(p.domain)} | {_cell(p.doc)}{diff} |")
    else:
        lines.append("None besides `reduction` and `validate`.")
    lines += ["", "Every loss also takes `reduction` (the values in the table above; see "
              "[the contract](../contract.md)) and `validate=True` (the data checks).", "",
              "## Gradient convention", "", entry.grad_convention, "",
              "## Numerical stability", "", entry.stability, "",
              "## The problem and its trap", "",
              f"Answers {_problem_links(entry, '../')}.", ""]
    if entry.trap:
        lines += [f"!!! warning \"The trap\"", "    " + _words(entry.trap), ""]
    lines += ["## Usage", "", _usage(entry)]
    if entry.identities:
        lines += ["## Identities", "", "Checked on the reference, torch and Keras by `test_identities.py`:", ""]
        for ident in entry.identities:
            own = ", ".join(f"{k}={v!r}" for k, v in ident.params.items()) or "defaults"
            other = ", ".join(f"{k}={v!r}" for k, v in ident.other_params.items()) or "defaults"
            doc = f" — {_words(ident.doc)}" if ident.doc else ""
            lines.append(f"- `{entry.name}({own})` = `{ident.other}({other})`{doc}")
        lines.append("")
    if entry.peer_notes:
        lines += ["## Peers", "", "| peer | where | what the spec says |", "|---|---|---|"]
        lines += [f"| `{_cell(n.peer)}` | {_cell(n.where)} | {_cell(_words(n.spec_says))} |" for n in entry.peer_notes]
        lines.append("")
    lines += ["## Errors", "", "Its own rejections (the ones every loss shares are on [the contract page]"
              "(../contract.md#error-messages)):", ""]
    own = _error_rows(entry, with_shared=False)
    lines += (["| loss | case | parameters | message (identical in torch and Keras) |", "|---|---|---|---|"] + own
              if own else ["None beyond the shared ones."])
    lines += ["", "## Performance", "",
              "Ratio ours / fastest peer, forward+backward, in the committed CPU run "
              "([benchmarks](../benchmarks.md)); 1.00 is parity, below is faster:", "", _loss_bench(entry), ""]
    if entry.performance_notes:
        lines += ["Rows above their target, and why (memory: ours / (peer + one input buffer)):", "",
                  "| target | framework | impl | shapes | ratio up to | why |", "|---|---|---|---|---:|---|"]
        lines += [f"| {n.target} | {n.framework} | `{n.impl}` | {', '.join(n.shapes)} | {n.up_to:.2f} "
                  f"| {_cell(_words(n.reason))} |" for n in entry.performance_notes]
        lines.append("")
    if entry.references:
        lines += ["## References", ""] + [f"- {_words(r)}" for r in entry.references] + [""]
    return "\n".join(lines).rstrip() + "\n"


def pages() -> dict[pathlib.Path, str]:
    out = {LOSSES / "index.md": losses_index() + "\n"}
    for entry in spec.all_specs():
        out[LOSSES / f"{entry.name}.md"] = loss_page(entry)
    return out


# --------------------------------------------------------------------------- marked sections
DOCUMENTS = {
    README: {"catalog": readme_catalog},
    BENCHMARKS: {"summary": ratio_summary, "percall": percall_table, "steps": step_tables},
    CONTRACT: {"errors": errors},
    PORTING: {"port-table": port_table},
    BENCH_PAGE: {"summary": ratio_summary, "percall": percall_table, "steps": step_tables,
                 "fused": fused_table, "memory": memory_table, "performance": performance},
}


def render(text: str, sections, name: str = "README.md") -> str:
    for key, fn in sections.items():
        start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"{name} lacks the markers {start} / {end}")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{fn()}\n{end}{tail}"
    return text


def stale() -> list[str]:
    """Generated files and sections that differ from what the registry and the JSON give."""
    out = []
    for path, sections in DOCUMENTS.items():
        current = path.read_text()
        if render(current, sections, path.name) != current:
            out.append(str(path.relative_to(ROOT)))
    for path, text in pages().items():
        if not path.exists() or path.read_text() != text:
            out.append(str(path.relative_to(ROOT)))
    expected = {f"{e.name}.md" for e in spec.all_specs()} | {"index.md"}
    out += [str(p.relative_to(ROOT)) + " (no such loss)" for p in sorted(LOSSES.glob("*.md")) if p.name not in expected]
    out += [str(p.relative_to(ROOT)) + " (missing)" for p in PLOTS.values() if not p.exists()]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lossparity.docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for path in found:
            print(f"{path} is stale: run python -m lossparity.docs")
        if not found:
            print("generated documentation is current")
        return 1 if found else 0
    LOSSES.mkdir(parents=True, exist_ok=True)
    for path, sections in DOCUMENTS.items():
        current = path.read_text()
        fresh = render(current, sections, path.name)
        if fresh != current:
            path.write_text(fresh)
            print(f"updated {path.relative_to(ROOT)}")
    for path, text in pages().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"updated {path.relative_to(ROOT)}")
    for path in write_plots():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


# --------------------------------------------------------------------------- MkDocs hook
BENCH_TABLES = "<!-- lossparity:bench-tables -->"


def on_page_markdown(markdown, page=None, config=None, files=None, **kwargs):
    """MkDocs hook: the benchmark page's full tables, rendered from the committed JSON."""
    if BENCH_TABLES not in markdown:
        return markdown
    from lossparity import bench

    rows = [dict(r, peer=relabel_peer(r["peer"]) if r.get("peer") else r.get("peer")) for r in bench_rows()]
    return markdown.replace(BENCH_TABLES, _words(bench.render_markdown(rows), ""))


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------- griffe extension
def fence_doctests(text: str) -> str:
    """Docstrings' ``>>>`` examples outside a Google "Examples:" section as ``pycon`` code blocks
    (Markdown would read ``[:3]`` and the list after it as a reference link)."""
    out, block, indent = [], [], ""
    for line in text.split("\n") + [""]:
        stripped = line.strip()
        if block and stripped and line.startswith(indent):
            block.append(line[len(indent):])
            continue
        if block:
            out += [f"{indent}```pycon"] + [indent + b for b in block] + [f"{indent}```"]
            block = []
        if stripped.startswith(">>>"):
            indent = line[:len(line) - len(line.lstrip())]
            block = [line[len(indent):]]
        else:
            out.append(line)
    return "\n".join(out[:-1])


try:  # only the site build (mkdocstrings) has griffe
    import griffe
except ImportError:  # pragma: no cover
    griffe = None

if griffe is not None:
    class DoctestFences(griffe.Extension):
        """mkdocstrings-python extension (``mkdocs.yml``): :func:`fence_doctests` on every
        docstring read from the sources."""

        def on_instance(self, *, obj, **kwargs) -> None:
            doc = obj.docstring
            if doc is not None and ">>>" in doc.value and "```" not in doc.value and "Examples:" not in doc.value:
                doc.value = fence_doctests(doc.value)

