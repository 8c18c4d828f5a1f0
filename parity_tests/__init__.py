"""Generic, registry-driven parity tests and the harness they share with the scripts."""
