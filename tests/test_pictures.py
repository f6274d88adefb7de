"""Pictures: every string is drawn as written (matplotlib would parse "$$$ ... $$$" as maths and fail)."""

from __future__ import annotations

import pandas as pd
import torch

from typobench.harness.pictures import save_example_grid, save_stage_accuracy

DOLLARS = "$$$ sticker $$$"


def test_stage_plot_and_example_grid_take_dollar_signs(tmp_path):
    stages = [{"name": "clean", "accuracy": 0.8, "ci95": [0.7, 0.9]},
              {"name": DOLLARS, "accuracy": 0.4, "ci95": [0.3, 0.5],
               "targeted_success": {"value": 0.5, "ci95": [0.4, 0.6], "n": 10}}]
    save_stage_accuracy(tmp_path / "stages.png", stages, title=DOLLARS)
    predictions = pd.DataFrame({"stage": ["clean", DOLLARS], "sample_id": ["a", "a"], "pred": [0, 1], "label": [0, 0]})
    examples = {"clean": torch.rand(1, 3, 16, 16), DOLLARS: torch.rand(1, 3, 16, 16)}
    save_example_grid(tmp_path / "examples.png", examples, ["a"], predictions, ["$$ bill $$", "piggy bank"])
    assert (tmp_path / "stages.png").stat().st_size > 3000 and (tmp_path / "examples.png").stat().st_size > 3000
