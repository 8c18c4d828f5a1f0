"""Regenerate the README sections that come from the registry (catalog and error contract).

    python -m scripts.docs          # rewrite README.md between the markers
    python -m scripts.docs --check  # exit 1 when README.md is stale
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import spec
from spec.validation import expected_message

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


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


SECTIONS = {"catalog": catalog, "errors": errors}


def render(text: str) -> str:
    for key, fn in SECTIONS.items():
        start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"README.md lacks the markers {start} / {end}")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{fn()}\n{end}{tail}"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    current = README.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is stale: run python -m scripts.docs")
            return 1
        print("README.md is current")
        return 0
    README.write_text(fresh)
    print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
