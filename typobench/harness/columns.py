"""Prediction columns before they become a table: ``{name: list or 1-d array}``, every column one length.

The batch loop keeps its rows as columns and the store makes one pandas frame per part file: a frame per
batch and stage cost about 0.3 ms each, as much as a small model's whole forward pass on some batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Columns = Mapping[str, Any]


def row_count(columns: Columns) -> int:
    """How many rows ``columns`` holds (0 when it has no column)."""
    return len(next(iter(columns.values()))) if columns else 0


def stack_columns(parts: Sequence[Columns]) -> dict[str, Any]:
    """The rows of ``parts`` one after another, as ``pd.concat`` of their frames would give them: a column
    a part lacks is missing (None, NaN in a table) in that part's rows."""
    counts = [row_count(part) for part in parts]
    names = dict.fromkeys(name for part in parts for name in part)
    return {name: _stack([part.get(name) for part in parts], counts) for name in names}


def _stack(values: Sequence[Any], counts: Sequence[int]) -> Any:
    if all(isinstance(value, np.ndarray) for value in values):
        return np.concatenate(values)
    stacked: list[Any] = []
    for value, count in zip(values, counts):
        stacked.extend([None] * count if value is None else value.tolist() if isinstance(value, np.ndarray) else value)
    return stacked


__all__ = ["Columns", "row_count", "stack_columns"]
