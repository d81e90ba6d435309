"""Benchmarks: scripts that print figures (run them as `python -m gome.evals.<name>`)."""
