"""Prediction columns stacked without a frame per batch and stage give the table ``pd.concat`` gave; example
images are saved once per flush and read back in batch order."""

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


def test_example_images_of_a_flush_are_one_file_and_read_back_in_batch_order_whoever_wrote_them(tmp_path, caplog):
    import torch

    from typobench.harness.resume import BatchStore

    store = BatchStore(tmp_path, "key")
    store.open()

    def examples(batch: int, k: int) -> tuple[dict, list[str]]:
        images = {stage: torch.full((k, 3, 4, 4), batch + offset) for stage, offset in (("clean", 0.0), ("text", 0.5))}
        return images, [f"b{batch}-{i}" for i in range(k)]

    # Two ranks, each flushing its own batches: rank 1 holds batches 1 and 3, rank 0 batches 0 and 2.
    store.save_examples({1: examples(1, 1), 3: examples(3, 2)})
    store.save_examples({0: examples(0, 2), 2: examples(2, 1)})
    assert len(list(store.dir.glob("examples-*.safetensors"))) == 2
    images, ids = store.load_examples()
    assert ids == ["b0-0", "b0-1", "b1-0", "b2-0", "b3-0", "b3-1"]
    assert images["clean"][:, 0, 0, 0].tolist() == [0, 0, 1, 2, 3, 3]
    assert images["text"][:, 0, 0, 0].tolist() == [0.5, 0.5, 1.5, 2.5, 3.5, 3.5]
    damaged = next(store.dir.glob("examples-000000-*.safetensors"))
    damaged.write_bytes(damaged.read_bytes()[:-3])
    images, ids = store.load_examples()
    assert ids == ["b1-0", "b3-0", "b3-1"] and "damaged" in caplog.text
