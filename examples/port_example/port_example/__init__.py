"""A team's own Keras loss, its hand-written PyTorch port, and two broken ports.

Checked with ``python -m parity_tests.port`` (see ``../README.md``); no NumPy reference needed.
"""
