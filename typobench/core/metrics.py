"""Accuracy with Wilson confidence intervals, overall and per class."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(hits: Sequence[bool] | np.ndarray) -> dict:
    """``{value, ci95, n}`` for a vector of booleans (value is None when empty)."""
    hits = np.asarray(hits, dtype=bool)
    n = int(hits.size)
    k = int(hits.sum())
    lo, hi = wilson_interval(k, n)
    return {"value": k / n if n else None, "ci95": [lo, hi], "n": n}


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, classnames: Sequence[str]) -> dict[str, dict]:
    """Accuracy per class name, only for classes present in ``labels``."""
    out = {}
    for index in np.unique(labels):
        members = labels == index
        out[classnames[int(index)]] = rate(predictions[members] == index)
    return out
