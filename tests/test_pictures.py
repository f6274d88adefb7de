"""Pictures: every string is drawn as written (no maths parsing of "$$$ ... $$$"), one captioned tile per sample and stage."""

from __future__ import annotations

import numpy as np
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


def test_example_grid_has_one_tile_per_sample_and_stage_captioned_by_correctness(tmp_path):
    from PIL import Image

    from typobench.harness import pictures

    stages = ["clean", "sticker", "pgd"]
    examples = {stage: torch.full((2, 3, 40, 40), 0.5) for stage in stages}
    # Sample "a" is right in every stage; "b" is wrong only under "pgd".
    predictions = pd.DataFrame({"stage": stages * 2, "sample_id": ["a"] * 3 + ["b"] * 3,
                                "pred": [0, 0, 0, 1, 1, 0], "label": [0, 0, 0, 1, 1, 1]})
    path = tmp_path / "examples.png"
    pictures.save_example_grid(path, examples, ["a", "b"], predictions, ["cat", "dog"])
    grid = Image.open(path).convert("RGB")
    cell_w = pictures.TILE_PX + pictures._GAP_PX
    cell_h = pictures._CAPTION_PX + pictures.TILE_PX + pictures._GAP_PX
    assert grid.size == (pictures._LABEL_PX + 3 * cell_w, pictures._HEADER_PX + 2 * cell_h)
    pixels = torch.from_numpy(np.array(grid)).int()

    def caption_colours(row: int, col: int) -> set[tuple[int, int, int]]:
        x, y = pictures._LABEL_PX + col * cell_w, pictures._HEADER_PX + row * cell_h
        band = pixels[y:y + pictures._CAPTION_PX, x:x + pictures.TILE_PX].reshape(-1, 3)
        return {tuple(v) for v in band.tolist()}

    assert pictures._RIGHT in caption_colours(0, 2) and pictures._WRONG not in caption_colours(0, 2)
    assert pictures._WRONG in caption_colours(1, 2) and pictures._RIGHT not in caption_colours(1, 2)
    # The tiles hold the (resized) images: grey 0.5 -> 128.
    x, y = pictures._LABEL_PX + cell_w, pictures._HEADER_PX + pictures._CAPTION_PX
    assert (pixels[y:y + pictures.TILE_PX, x:x + pictures.TILE_PX] == 128).all()
