"""Command-line scripts: golden vectors, the demo parity table, scenarios, benchmarks."""
