"""Re-scoring: every number of an entry, recomputed from its own per-sample predictions.

The metrics are computed by the very functions a run uses -- ``typobench.harness.results.summarise_stages``
(accuracy, Wilson CI, targeted success with the clean-prediction eligibility rule) and
``typobench.typographic.stroop.stroop_metrics`` -- on a frame rebuilt from the entry's compact table. Headline
columns (lift, mean targeted success, ...) are then read off those stage metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from typobench.harness.results import summarise_stages
from typobench.typographic.stroop import stroop_metrics
from typobench.leaderboard.column_kinds import Column
from typobench.leaderboard.protocol import Board
from typobench.leaderboard.stage_columns import run_stage_columns

STAGE_METRIC_FIELDS = ("accuracy", "ci95", "n", "targeted_success")
# Rates an entry states from a stage's nested metrics: SCAM's two-way rate, and the OCR's legibility.
NESTED_STAGE_RATES = {"label_over_word": ("two_way", "label_over_word"), "legible": ("legibility", "legible"),
                      "accuracy_legible": ("legibility", "accuracy_legible")}


def entry_stage_metrics(stage: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of a stage's metrics (a run's, or re-scored) that an entry states."""
    out = {key: stage[key] for key in STAGE_METRIC_FIELDS if key in stage}
    for key, (group, rate) in NESTED_STAGE_RATES.items():
        if isinstance(stage.get(group), Mapping) and rate in stage[group]:
            out[key] = stage[group][rate]
    return out


def predictions_frame(table: Mapping[str, Any]) -> pd.DataFrame:
    """The long frame (one row per sample and stage: stage, sample_id, label, pred, and the run columns of the
    stage's optional columns, :mod:`.stage_columns`) of a compact predictions table
    ``{sample_ids, label, stages: {name: {pred, target?, label_wins?, legible?}}}``."""
    sample_ids = list(table["sample_ids"])
    labels = np.asarray(table["label"], dtype=np.int64)
    frames = []
    for name, columns in table["stages"].items():
        frames.append(pd.DataFrame({
            "stage": name,
            "sample_id": sample_ids,
            "label": labels,
            "pred": np.asarray(columns["pred"], dtype=np.int64),
            **run_stage_columns(columns, len(sample_ids)),
        }))
    return pd.concat(frames, ignore_index=True)


def placeholder_classnames(num_classes: int) -> list[str]:
    """Class names only feed ``per_class``, which entries do not carry: indices stand in for them."""
    return [str(i) for i in range(num_classes)]


def rescore_suite(table: Mapping[str, Any], num_classes: int) -> list[dict[str, Any]]:
    """Stage metrics of a suite entry, re-derived with ``summarise_stages``."""
    frame = predictions_frame(table)
    stage_info = [{"name": name} for name in table["stages"]]
    summary = summarise_stages(frame, stage_info, placeholder_classnames(num_classes))
    return [{"name": s["name"], **entry_stage_metrics(s)} for s in summary]


def stroop_kinds(labels: np.ndarray, words: np.ndarray) -> np.ndarray:
    """congruent (word names the ink), incongruent (word names another colour), neutral (word -1)."""
    return np.where(words < 0, "neutral", np.where(words == labels, "congruent", "incongruent"))


def rescore_stroop(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Stroop rates of a Stroop entry, re-derived with ``stroop_metrics``."""
    labels = np.asarray(table["label"], dtype=np.int64)
    words = np.asarray(table["word"], dtype=np.int64)
    out = []
    for name, columns in table["stages"].items():
        pred = np.asarray(columns["pred"], dtype=np.int64)
        named_word = (pred == words) & (words >= 0)
        out.append({"name": name, **stroop_metrics(stroop_kinds(labels, words), pred == labels, named_word)})
    return out


def column_value(column: Column, stages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{value, ci95?, n?}`` of one column from (stated or re-scored) stage metrics, as its kind reads it
    (:mod:`.column_kinds`).

    value is None when the column has nothing to measure (e.g. no eligible targeted sample).
    """
    return column.measure.value(column, stages)


def headline_values(board: Board, stages: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every column of the board, keyed by column key."""
    return {column.key: column_value(column, stages) for column in board.columns}
