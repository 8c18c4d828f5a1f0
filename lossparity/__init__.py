"""The ``lossparity`` tooling: golden vectors, the demo parity table, scenarios, benchmarks and the
Lightning CLI (``python -m lossparity.<module>``)."""
