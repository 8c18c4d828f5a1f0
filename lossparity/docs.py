"""Regenerate the document sections that come from the registry: README.md's catalog and error
contract, BENCHMARKS.md's performance notes (why rows miss their speed target).

    python -m lossparity.docs          # rewrite the documents between the markers
    python -m lossparity.docs --check  # exit 1 when one is stale
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import spec
from spec.validation import expected_message

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _param_text(entry) -> str:
    parts = []
    for p in entry.params:
        default = "required" if getattr(p, "required", False) else repr(p.default)
        parts.append(f"`{p.name}={default}`" if default != "required" else f"`{p.name}` (required)")
    return ", ".join(parts) or "—"


def catalog() -> str:
    lines = ["| name | formula | parameters (defaults) | torch class | Keras class | seed trap avoided |",
             "|---|---|---|---|---|---|"]
    for entry in spec.all_specs():
        lines.append("| " + " | ".join([
            f"`{entry.name}`", f"${_cell(entry.formula)}$", _cell(_param_text(entry)),
            f"`torch_impl.{entry.torch_class}`", f"`tf_impl.{entry.keras_class}`", _cell(entry.trap or "—"),
        ]) + " |")
    return "\n".join(lines)


def errors() -> str:
    """The rejections every loss shares, once (their text differs only by the loss name), then
    each entry's own."""
    lines = ["| loss | case | parameters | message (identical in torch and Keras) |", "|---|---|---|---|"]
    shared_shown = False
    for entry in spec.all_specs():
        own = list(entry.invalid_cases())
        rows = [(case, f"`{entry.name}`") for case in own]
        if not shared_shown and not entry.single_input:
            own_ids = {c.id for c in own}
            shared = [c for c in entry.all_invalid_cases() if c.id not in own_ids]
            rows = [(case, "every loss (e.g. " + f"`{entry.name}`)") for case in shared] + rows
            shared_shown = True
        for case, label in rows:
            params = ", ".join(f"{k}={spec.messages.format_value(v)}" for k, v in case.params.items()) or "defaults"
            where = "call" if case.prediction is not None else "construction"
            lines.append(f"| {label} | {case.id} ({where}) | {_cell(params)} | "
                         f"`` {_cell(expected_message(entry, case))} `` |")
    return "\n".join(lines)


def performance() -> str:
    """Every entry's :class:`spec.PerformanceNote`: the rows of the benchmark over their target
    and why (checked against the committed run by ``parity_tests/test_bench.py``)."""
    lines = ["| loss | framework | impl | shapes | ratio up to | why |", "|---|---|---|---|---:|---|"]
    for entry in spec.all_specs():
        for n in entry.performance_notes:
            lines.append(f"| `{entry.name}` | {n.framework} | `{n.impl}` | {', '.join(n.shapes)} | {n.up_to:.2f} "
                         f"| {_cell(n.reason)} |")
    return "\n".join(lines)


SECTIONS = {"catalog": catalog, "errors": errors}
DOCUMENTS = {README: SECTIONS, BENCHMARKS: {"performance": performance}}


def render(text: str, sections=SECTIONS, name: str = "README.md") -> str:
    for key, fn in sections.items():
        start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"{name} lacks the markers {start} / {end}")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{fn()}\n{end}{tail}"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = 0
    for path, sections in DOCUMENTS.items():
        current = path.read_text()
        fresh = render(current, sections, path.name)
        if args.check:
            if fresh != current:
                print(f"{path.name} is stale: run python -m lossparity.docs")
                stale = 1
            else:
                print(f"{path.name} is current")
        elif fresh != current:
            path.write_text(fresh)
            print(f"updated {path}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
