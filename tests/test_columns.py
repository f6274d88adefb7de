"""Prediction columns stacked without a frame per batch and stage give the table ``pd.concat`` gave."""

from __future__ import annotations

import numpy as np
import pandas as pd

from typobench.harness.columns import row_count, stack_columns


def _parts() -> list[dict]:
    clean = {"stage": ["clean"] * 2, "label": np.array([3, 1]), "p_label": np.array([0.5, 0.25], dtype=np.float32),
             "target": np.full(2, -1)}
    text = {"stage": ["text"] * 3, "label": np.array([0, 2, 2]), "p_label": np.array([0.1, 0.2, 0.3], dtype=np.float32),
            "target": np.array([4, 5, 6]), "text": ["cat", "dog", "$$$"], "size_px": [9, 12, 14]}
    return [clean, text, clean]


def test_stacked_columns_make_the_table_concatenated_frames_made():
    parts = _parts()
    stacked = pd.DataFrame(stack_columns(parts))
    concatenated = pd.concat([pd.DataFrame(part) for part in parts], ignore_index=True)
    pd.testing.assert_frame_equal(stacked, concatenated)
    assert list(stacked.columns) == ["stage", "label", "p_label", "target", "text", "size_px"]
    assert stacked["size_px"].isna().tolist() == [True, True, False, False, False, True, True]
    assert stacked.to_csv(index=False) == concatenated.to_csv(index=False)


def test_row_count_and_all_array_columns_stay_arrays():
    parts = _parts()
    assert [row_count(p) for p in parts] == [2, 3, 2] and row_count({}) == 0
    stacked = stack_columns(parts)
    assert isinstance(stacked["label"], np.ndarray) and stacked["label"].tolist() == [3, 1, 0, 2, 2, 3, 1]
    assert stacked["p_label"].dtype == np.float32
