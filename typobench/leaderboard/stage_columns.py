"""The optional per-sample columns a suite entry carries per stage beyond ``pred``, declared once.

Each is a small integer list (``-1``: the stage has no value for the sample) read from a run's
``predictions.csv`` when an entry is built (``encode``) and turned back into the column the run's own
scoring reads when the entry is re-scored (``decode``), so an entry's numbers are re-derived by the very
function a run uses (``harness.results.summarise_stages``):

* ``target``: the stage's target class (targeted success);
* ``label_wins``: SCAM's two-way outcome (``harness.twoway``): 1 where the label's logit beats the written
  class's, 0 where the written class wins or ties, -1 where no other class is written. The run's margin is
  kept only as its sign, which is all the two-way rate reads;
* ``legible``: the OCR's reading of the written text (``harness.legibility``, runs made with
  ``--legibility``): 1 read back, 0 not, -1 not read (the stage wrote nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StageColumn:
    """One optional per-stage column: its name in an entry, its run column, and the two conversions."""

    name: str
    run_column: str
    encode: Callable[[pd.Series], np.ndarray]  # a stage's run column -> int64 values, -1 where none
    decode: Callable[[np.ndarray], np.ndarray]  # the entry's values -> the run column summarise_stages reads
    maximum: int | None  # the largest value (None: a class index, below the board's number of classes)
    needed_by: str = ""  # how a run gets the column, for the error when a board's column needs it


def _targets(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").fillna(-1).astype(np.int64).to_numpy()


def _label_wins(values: pd.Series) -> np.ndarray:
    margin = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return np.where(np.isnan(margin), -1, (margin > 0).astype(np.int64)).astype(np.int64)


def _margin_signs(values: np.ndarray) -> np.ndarray:
    # +1 / -1 keep the sign the two-way rate reads (a tie counts as the word winning, as 0 did)
    return np.where(values < 0, np.nan, np.where(values == 1, 1.0, -1.0))


def _legible(values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    return np.where(text.isin(("true", "1")), 1, np.where(text.isin(("false", "0")), 0, -1)).astype(np.int64)


def _legible_text(values: np.ndarray) -> np.ndarray:
    return np.where(values == 1, "True", np.where(values == 0, "False", "")).astype(object)


STAGE_COLUMNS: dict[str, StageColumn] = {column.name: column for column in (
    StageColumn("target", "target", _targets, lambda values: values, None, "a targeted stage"),
    StageColumn("label_wins", "two_way_margin", _label_wins, _margin_signs, 1,
                "a stage that writes a class name (SCAM's two-way score)"),
    StageColumn("legible", "ocr_legible", _legible, _legible_text, 1,
                "a run made with --legibility (the ocr extra: pip install 'typobench[ocr]')"),
)}


def entry_stage_columns(frame: pd.DataFrame) -> dict[str, list[int]]:
    """The optional columns of one stage's rows of ``predictions.csv`` (in sample order) that have a value."""
    out = {}
    for column in STAGE_COLUMNS.values():
        if column.run_column in frame.columns:
            values = column.encode(frame[column.run_column])
            if (values >= 0).any():
                out[column.name] = values.tolist()
    return out


def run_stage_columns(columns: dict[str, list[int]], n: int) -> dict[str, np.ndarray]:
    """The run columns of one entry stage, as ``summarise_stages`` reads them (a missing target is -1)."""
    out = {column.run_column: column.decode(np.asarray(columns[column.name], dtype=np.int64))
           for column in STAGE_COLUMNS.values() if column.name in columns}
    out.setdefault("target", np.full(n, -1, dtype=np.int64))
    return out


__all__ = ["STAGE_COLUMNS", "StageColumn", "entry_stage_columns", "run_stage_columns"]
