"""Accuracy with Wilson confidence intervals, overall and per class; bootstrap intervals of paired differences."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

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


def bootstrap_interval(n: int, statistic: Callable[[np.ndarray], np.ndarray], draws: int = 2000,
                       seed: int = 0) -> list[float]:
    """Percentile 95% interval of ``statistic`` (index draws [draws, n] -> one value per draw; NaN values are
    left out) over ``n`` items resampled with replacement."""
    idx = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    lo, hi = np.nanpercentile(statistic(idx), [2.5, 97.5])
    return [float(lo), float(hi)]


def paired_difference_interval(first: np.ndarray, second: np.ndarray, draws: int = 2000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of mean(first) - mean(second) [n] over the same items (e.g. correct/incorrect of
    two models on the same images): pairing removes the shared per-item difficulty."""
    diff = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    return bootstrap_interval(len(diff), lambda idx: diff[idx].mean(1), draws, seed)


def paired_difference_by_id(first: Mapping[str, float], second: Mapping[str, float], ids: Sequence[str]) -> dict:
    """``{value, ci95, n}``: mean(first) - mean(second) over the items ``ids`` (keys of both), with
    :func:`paired_difference_interval`."""
    a = np.array([first[i] for i in ids], dtype=float)
    b = np.array([second[i] for i in ids], dtype=float)
    return {"value": float(a.mean() - b.mean()), "ci95": paired_difference_interval(a, b), "n": len(ids)}


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, classnames: Sequence[str]) -> dict[str, dict]:
    """Accuracy per class name, only for classes present in ``labels``."""
    out = {}
    for index in np.unique(labels):
        members = labels == index
        out[classnames[int(index)]] = rate(predictions[members] == index)
    return out
