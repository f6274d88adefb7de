"""Experiments built on the harness: parameter sweeps, the Stroop test, and attack-text search."""
