r"""Docstrings of the framework implementations, written from their spec entry.

Every public loss of :mod:`torch_impl` and :mod:`tf_impl` (functional form, ``nn.Module`` /
``keras.losses.Loss`` class, Keras regularizer) carries the same sections, rendered here from its
:class:`spec.LossSpec` when the framework module is imported (:func:`document`):

* the entry's one-line summary, then the hand-written framework note the object had, if any;
* the formula as ``.. math::``;
* ``Args:`` — the inputs in the framework's order (torch: prediction first; Keras: truth first),
  every parameter with its default and domain (the entry's :class:`spec.Param`), ``sample_weight``,
  ``reduction`` and ``validate``;
* ``Returns:`` — what the reduction gives;
* ``Gradient convention:`` and ``Stability:``;
* ``References:`` — the problems (``docs/problems.md``) and papers behind the loss, and its ``Trap:``;
* ``Example:`` — one runnable ``>>>`` example whose printed value is the spec reference's, rounded
  (``parity_tests/test_doctests.py`` runs it for every entry in both frameworks).

Only NumPy: the examples are text; the frameworks run them.

>>> import spec
>>> from spec.docstrings import render_docstring
>>> doc = render_docstring(spec.get("mean_squared_error"), "keras", "function")
>>> doc.splitlines()[0] == spec.get("mean_squared_error").summary
True
>>> "import numpy as np, tf_impl" in doc[doc.index("Example:"):]
True
"""
from __future__ import annotations

import inspect
import math
import re
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .core import REQUIRED, LossSpec

#: the framework names and, per framework, the prediction / truth argument names and order
FRAMEWORKS = {
    "torch": {"module": "torch_impl", "prediction": "input", "target": "target", "single": "input",
              "truth_first": False},
    "keras": {"module": "tf_impl", "prediction": "y_pred", "target": "y_true", "single": "x",
              "truth_first": True},
}
#: what a rendered docstring holds (the test of every public loss asks for each)
SECTIONS = (".. math::", "Args:", "Returns:", "Gradient convention:", "Stability:", "Example:", ">>> ")
KINDS = ("function", "class", "regularizer")
_WIDTH = 96


def missing_sections(doc: str | None, entry: LossSpec) -> list[str]:
    """The generated sections (and parameter lines) that ``doc`` lacks: [] for a rendered docstring."""
    doc = doc or ""
    missing = [s for s in SECTIONS if s not in doc]
    if not doc.startswith(entry.summary):
        missing.append("summary")
    missing += [f"parameter {p.name}" for p in entry.params if f"    {p.name} (default " not in doc]
    return missing


# --------------------------------------------------------------------------- the example
_EXAMPLES: dict[str, tuple] = {}


def _round_inputs(a: np.ndarray, decimals: int) -> np.ndarray:
    return a if a.dtype.kind in "iub" else np.round(a, decimals)


def example_inputs(entry: LossSpec) -> tuple[dict, np.ndarray, np.ndarray | None, float]:
    """``(params, prediction, target, value)``: two samples of the entry's first typical case,
    rounded to two decimals where the entry accepts that (else four), and the reference's value of
    the default "mean" reduction. Cached per entry."""
    hit = _EXAMPLES.get(entry.name)
    if hit is not None and hit[0] is entry:
        return hit[1]
    from .validation import NumpyOps, check_inputs

    case = next(c for c in entry.cases() if c.kind == "typical")
    params = {k: (np.asarray(v) if isinstance(v, (list, tuple)) else v) for k, v in case.params.items()}
    full, _, _ = entry.validate_config(params)
    for decimals in (2, 4, 17):
        x = _round_inputs(np.asarray(case.prediction)[:2], decimals)
        y = None if case.target is None else _round_inputs(np.asarray(case.target)[:2], decimals)
        try:
            check_inputs(entry, full, x, y, None, NumpyOps())
        except ValueError:
            continue
        break
    value = float(entry.reference_reduced(x, y, **params))
    out = (params, x, y, value)
    _EXAMPLES[entry.name] = (entry, out)
    return out


def _printed(value: float) -> tuple[str, int]:
    """``(text, digits)``: the value as ``round(v, digits)`` prints it, with the fewest digits from 4
    down whose rounding a float32 computation cannot flip (not within 1e-2 of a half step)."""
    for digits in (4, 3, 2, 1):
        scaled = value * 10 ** digits
        margin = 1e-2 * max(1.0, abs(value))
        if abs(scaled - math.floor(scaled) - 0.5) > margin:
            return repr(round(value, digits)), digits
    return repr(round(value, 0)), 0


def _literal(a: np.ndarray) -> str:
    if a.dtype.kind in "iub":
        return repr(a.astype(int).tolist())
    return repr([float(v) for v in a.ravel()]) if a.ndim == 1 else \
        "[" + ", ".join(_literal(row) for row in a) + "]"


def _param_literal(value) -> str:
    if isinstance(value, np.ndarray):
        return _literal(value)
    return repr(value)


_IMPORT = {"torch": ">>> import torch, torch_impl", "keras": ">>> import numpy as np, tf_impl"}


def _example_names(framework: str, single: bool) -> tuple[str, ...]:
    if framework == "torch":
        return ("input",) if single else ("input", "target")
    return ("x",) if single else ("y_true", "y_pred")


def _input_lines(framework: str, names, prediction: np.ndarray, target: np.ndarray | None) -> list[str]:
    """The ``>>>`` lines making the example's inputs: float32 tensors / arrays, integer labels as
    integers."""
    values = {"input": prediction, "x": prediction, "y_pred": prediction, "target": target, "y_true": target}
    lines = []
    for name in names:
        arr = values[name]
        if framework == "torch":
            made = "torch.tensor({})"
        else:
            made = "np.array({})" if arr.dtype.kind in "iu" else "np.array({}, dtype='float32')"
        lines.append(f">>> {name} = {made.format(_literal(arr))}")
    return lines


def _example(entry: LossSpec, framework: str, kind: str, obj_name: str) -> list[str]:
    params, x, y, value = example_inputs(entry)
    text, digits = _printed(value)
    args = ", ".join(f"{k}={_param_literal(v)}" for k, v in params.items())
    fw = FRAMEWORKS[framework]
    names = _example_names(framework, y is None)
    lines = [_IMPORT[framework]]
    lines += _input_lines(framework, names, x, y)
    if kind == "function":
        call = f"{fw['module']}.functional.{entry.name}({', '.join(names)}{', ' if args else ''}{args})"
        lines.append(f">>> round(float({call}), {digits})")
    else:
        var = "penalty" if entry.single_input else "loss_fn"
        lines.append(f">>> {var} = {fw['module']}.{obj_name}({args})")
        lines.append(f">>> round(float({var}({', '.join(names)})), {digits})")
    lines.append(text)
    return lines


# --------------------------------------------------------------------------- sections
def _fill(text: str, indent: str, hanging: bool = False) -> list[str]:
    """``text`` wrapped at ``indent``; the continuation lines of a list item (``hanging``) indented
    four more."""
    return textwrap.wrap(" ".join(text.split()), _WIDTH, initial_indent=indent,
                         subsequent_indent=indent + ("    " if hanging else ""), break_on_hyphens=False)


def _interval(domain) -> str:
    lo, hi = domain
    return f"in [{lo:g}, {hi:g}]"


def _input_args(entry: LossSpec, framework: str) -> list[tuple[str, str]]:
    fw = FRAMEWORKS[framework]
    defaults = entry.defaults()
    p_domain = entry.prediction_domain(defaults)
    if entry.single_input:
        what = "activations or predictions, shape ``(N, ...)``"
        if p_domain is not None:
            what += f", values {_interval(p_domain)}"
        return [(fw["single"], what)]
    if "from_logits" in entry.param_names:
        pred = ("logits, shape ``(N, ...)`` (probabilities in [0, 1] with ``from_logits=False``)"
                if p_domain is None else f"probabilities {_interval(p_domain)}, shape ``(N, ...)``")
    else:
        pred = "the prediction, shape ``(N, ...)``" + ("" if p_domain is None else f", values {_interval(p_domain)}")
    if entry.target_shape is not None:
        target = "integer class labels, shape ``prediction.shape[:-1]`` (classes on the last axis)"
    else:
        target = "the truth, same shape as the prediction"
        if entry.target_text:
            target += f", {entry.target_text}"
        elif entry.target_domain is not None:
            target += f", values {_interval(entry.target_domain)}"
        else:
            target += ", any real values"
    pred_arg = (fw["prediction"], pred)
    target_arg = (fw["target"], target)
    return [target_arg, pred_arg] if fw["truth_first"] else [pred_arg, target_arg]


def _default_text(p) -> str:
    if p.required or p.default is REQUIRED:
        return "required"
    return repr(p.default)


def _param_lines(params) -> list[str]:
    """The ``Args:`` lines of spec parameters: name, default, domain, doc."""
    out = []
    for p in params:
        text = f"{p.name} (default {_default_text(p)}): {p.domain}."
        if p.doc:
            text += " " + p.doc
        if p.differentiable:
            text += " May be a tensor requiring grad (the gradient flows to it)."
        out += _fill(text, "    ", hanging=True)
    return out


def _reduction_text(entry: LossSpec) -> str:
    if entry.single_input or (entry.batch_statistic is True):
        return ('"mean" only: the value is one number per batch.')
    text = ('"mean" (Σᵢ wᵢ ℓᵢ / N, Keras\' ``sum_over_batch_size``), "sum" (Σᵢ wᵢ ℓᵢ) or "none" '
            '(wᵢ ℓᵢ, one value per sample).')
    if callable(entry.batch_statistic):
        text += " Configurations whose value couples the samples (one value per batch) accept \"mean\" only."
    return text


def _returns_text(entry: LossSpec) -> str:
    if entry.single_input or entry.batch_statistic is True:
        return "A scalar tensor (float64 for float64 inputs, float32 otherwise)."
    return ("A scalar tensor for \"mean\"/\"sum\", shape ``(N,)`` for \"none\"; float64 for float64 "
            "predictions, float32 for every other dtype (also under autocast / mixed precision).")


def render_docstring(entry: LossSpec, framework: str, kind: str, *, note: str = "", obj_name: str = "") -> str:
    """The docstring of ``entry``'s ``kind`` ("function", "class", "regularizer") in ``framework``
    ("torch", "keras"); ``note`` is kept after the summary (a hand-written, framework-specific
    remark); ``obj_name`` is the class name used by the example (default the entry's class)."""
    if framework not in FRAMEWORKS or kind not in KINDS:
        raise ValueError(f"unknown framework/kind {framework!r}/{kind!r}")
    obj_name = obj_name or (entry.torch_class if framework == "torch" else entry.keras_class)
    fw = FRAMEWORKS[framework]
    out = [entry.summary, ""]
    if note.strip():
        out += [note.strip("\n"), ""]
    out += [".. math::", "", "    " + entry.formula, ""]
    # call form and argument order
    inputs = _input_args(entry, framework)
    names = [n for n, _ in inputs]
    if kind == "function":
        sig = ", ".join(names) + ", *, " + ", ".join(f"{p.name}=..." for p in entry.params)
        out += _fill(f"Called ``{entry.name}({sig}, sample_weight=None, reduction=\"mean\", validate=True)`` "
                     f"({'Keras order: truth first' if fw['truth_first'] else 'torch order: prediction first'}).", "")
    elif kind == "regularizer":
        out += _fill(f"A ``keras.regularizers.Regularizer``: ``penalty = {obj_name}(...)``, then ``penalty(x)`` "
                     "or ``activity_regularizer=penalty`` (Keras divides an activity regularizer by the batch "
                     "size).", "")
    else:
        var = "penalty" if entry.single_input else "loss_fn"
        order = "Keras order: truth first" if fw["truth_first"] else "torch order: prediction first"
        out += _fill(f"Configured once (parameters are checked at construction), then called "
                     f"``{var}({', '.join(names)}, sample_weight=None)`` ({order}).", "")
    out += ["", "Args:"]
    if kind == "function":
        for name, text in inputs:
            out += _fill(f"{name}: {text}.", "    ", hanging=True)
    out += _param_lines(entry.params)
    if kind != "regularizer":
        out += _fill("reduction (default \"mean\"): " + _reduction_text(entry), "    ", hanging=True)
    out += _fill("validate (default True): check data values (NaN/inf, domains, labels) where reading them "
                 "waits for no device; shapes are always checked. Invalid values raise ``ValueError`` with "
                 "the same message in torch and Keras.", "    ", hanging=True)
    if kind != "regularizer":
        where = "default None" if kind == "function" else "call argument, default None"
        out += _fill(f"sample_weight ({where}): ``(N,)`` non-negative weights wᵢ of the samples (1 each "
                     "when omitted).", "    ", hanging=True)
    if kind == "class" and framework == "keras":
        out += _fill("name (default None): the loss's name (Keras; default the entry's name).", "    ", hanging=True)
    if kind != "function":
        out += ["", "Call arguments:"]
        for name, text in inputs:
            out += _fill(f"{name}: {text}.", "    ", hanging=True)
    out += ["", "Returns:"] + _fill(_returns_text(entry), "    ")
    out += ["", "Gradient convention:"] + _fill(entry.grad_convention, "    ")
    out += ["", "Stability:"] + _fill(entry.stability, "    ")
    if entry.references:
        out += ["", "References:"]
        for ref in entry.references:
            out += _fill("- " + ref, "    ", hanging=True)
    if entry.trap:
        out += ["", "Trap:"] + _fill(entry.trap, "    ")
    out += ["", "Example:"] + ["    " + line for line in _example(entry, framework, kind, obj_name)]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- metrics
#: the example of every metric: probabilities of 2 samples x 3 labels and their 0/1 targets
_METRIC_PREDICTION = np.array([[0.9, 0.2, 0.6], [0.4, 0.8, 0.1]])
_METRIC_TARGET = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
METRIC_SECTIONS = (".. math::", "Args:", "Returns:", "Example:", ">>> ")


def render_metric_docstring(metric, framework: str, kind: str, *, note: str = "") -> str:
    """The docstring of a thresholded metric (a :class:`spec.metrics.MetricSpec`): its functional
    form (``kind="function"``) or its streaming class (``"class"``: torchmetrics ``Metric`` /
    ``keras.metrics.Metric``)."""
    from .metrics import reference

    fw = FRAMEWORKS[framework]
    module = fw["module"] + ".metrics"
    names = _example_names(framework, False)
    out = [metric.summary, ""]
    if note.strip():
        out += [note.strip("\n"), ""]
    out += [".. math::", "", "    " + metric.formula + r"\qquad (0/0 \to 0)", ""]
    order = "Keras order: truth first" if fw["truth_first"] else "torch order: prediction first"
    if kind == "function":
        out += _fill(f"Called ``{metric.name}({', '.join(names)}, *, ..., sample_weight=None)`` ({order}): the "
                     "metric of one batch.", "")
    else:
        update, result = ("update", "compute") if framework == "torch" else ("update_state", "result")
        out += _fill(f"Streamed: ``{update}({', '.join(names)}, sample_weight=None)`` ({order}) adds a batch's "
                     f"float64 statistics tp, fp, fn; ``{result}()`` gives the metric of every batch so far "
                     f"(under DDP / tf.distribute, of every replica's batches).", "")
    out += ["", "Args:"]
    if kind == "function":
        out += _fill(f"{fw['prediction']}: probabilities in [0, 1] (logits with ``from_logits=True``), shape "
                     "``(N, ..., C)``: classes on the last axis, middle axes pooled with the samples.", "    ",
                     hanging=True)
        out += _fill(f"{fw['target']}: 0/1 labels, same shape.", "    ", hanging=True)
    out += _param_lines(metric.params)
    out += _fill("sample_weight (default None): ``(N,)`` non-negative weights of the samples, broadcast over "
                 "the non-batch axes.", "    ", hanging=True)
    if kind == "class":
        extra = ("torchmetrics ``Metric`` options (``sync_on_compute``, ...)" if framework == "torch"
                 else "``name`` (default the metric's name) and ``dtype`` as Keras metrics take them")
        out += _fill(f"**kwargs: {extra}.", "    ", hanging=True)
    out += ["", "Returns:"] + _fill("A float64 scalar (average 'micro' or 'macro'), or the ``(C,)`` per-class "
                                   "scores (average 'none'; a scalar when C = 1). A score whose denominator is "
                                   f"0 is 0.0 (scikit-learn's ``{metric.sklearn}(zero_division=0)``).", "    ")
    out += ["", "Gradient convention:"] + _fill("None: a metric of thresholded predictions (not differentiable; "
                                               "train with a loss).", "    ")
    value = float(reference(metric.name, [(_METRIC_PREDICTION, _METRIC_TARGET)]))
    text, digits = _printed(value)
    lines = [_IMPORT[framework], f">>> import {module}"]
    lines += _input_lines(framework, names, _METRIC_PREDICTION, _METRIC_TARGET)
    if kind == "function":
        lines.append(f">>> round(float({module}.{metric.name}({', '.join(names)})), {digits})")
    else:
        update, result = ("update", "compute") if framework == "torch" else ("update_state", "result")
        lines += [f">>> metric = {module}.{obj_name(metric, framework)}()",
                  f">>> metric.{update}({', '.join(names)})", f">>> round(float(metric.{result}()), {digits})"]
    out += ["", "Example:"] + ["    " + line for line in lines + [text]]
    return "\n".join(out) + "\n"


def obj_name(metric, framework: str) -> str:
    return metric.torch_class if framework == "torch" else metric.keras_class


def document_metrics(framework: str, namespace: Mapping[str, Any]) -> None:
    """Give the metric classes and functions of ``namespace`` (a framework's metrics module) their
    docstrings rendered from :data:`spec.metrics.METRICS`, keeping their hand-written notes."""
    from .metrics import METRICS

    for metric in METRICS.values():
        for kind, obj in (("class", namespace.get(obj_name(metric, framework))),
                          ("function", namespace.get(metric.name))):
            doc = obj.__doc__ or ""
            if doc.startswith(metric.summary) and "Example:" in doc:
                continue
            obj.__doc__ = render_metric_docstring(metric, framework, kind, note=hand_written_note(doc, "function"))


# --------------------------------------------------------------------------- applying it
_FORM_OF = re.compile(r"^(Module|Keras|Keras regularizer) form of :func:`[^`]+`\s*(\(see its docstring\))?[;,.]?\s*",
                      re.S)


def hand_written_note(doc: str | None, kind: str) -> str:
    """What a hand-written docstring adds to the generated one: for a loss class, the text after its
    "Module form of :func:`…`" opening (a parenthesis is unwrapped); otherwise (functions, metrics)
    its text without the summary line, the math and the ``Args:`` section (the generated ones
    replace them)."""
    if not doc:
        return ""
    doc = inspect.cleandoc(doc)
    if kind != "function":
        rest = " ".join(_FORM_OF.sub("", doc).split())
        if rest.startswith("("):  # "(remark); more" → "remark; more"
            depth = 0
            for i, ch in enumerate(rest):
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth == 0:
                    break
            after = rest[i + 1:].strip()
            sep = ". " if after.startswith(".") else "; "
            after = after.lstrip(";,. ")
            rest = rest[1:i] + (sep + after if after else "")
        if not rest:
            return ""
        return "\n".join(textwrap.wrap(rest[0].upper() + rest[1:] + ("" if rest.endswith(".") else "."), _WIDTH))
    paragraphs = doc.split("\n\n")[1:]
    kept = [p for p in paragraphs if not p.lstrip().startswith(("Args:", ".. math::"))]
    return "\n\n".join(kept).strip()


def document(obj: Any, entry: LossSpec, framework: str, kind: str) -> Any:
    """Give ``obj`` (a functional form or class) its docstring rendered from ``entry``, keeping its
    hand-written note. Idempotent: a rendered docstring is left as it is."""
    doc = obj.__doc__
    if doc and doc.startswith(entry.summary) and "Example:" in doc:
        return obj
    note = hand_written_note(doc, kind)
    obj.__doc__ = render_docstring(entry, framework, kind, note=note,
                                   obj_name="" if kind == "function" else obj.__name__)
    return obj


def document_all(framework: str, classes: Mapping[str, type], functional: Any,
                 entries: Iterable[LossSpec], *, kind_of=lambda cls: "class") -> None:
    """:func:`document` the class and the functional form of each of ``entries`` (ours: the ones
    registered by :mod:`spec`'s own modules)."""
    for entry in entries:
        cls = classes.get(entry.name)
        if cls is not None:
            document(cls, entry, framework, kind_of(cls))
        fn = getattr(functional, entry.name, None)
        if fn is not None:
            document(fn, entry, framework, "function")


def builtin_entries() -> list[LossSpec]:
    """The catalog's entries (registered by ``spec``'s own modules), without loading plugins."""
    from . import core

    return [e for n, e in sorted(core._REGISTRY.items()) if core.origin(n).startswith("spec.")]
