"""The ``blank`` stage: every image replaced by one plain colour.

With a text stage reading from it, a suite shows words *alone* (Materzyńska et al. 2022's text-only
images; Goh et al.'s rendered-text probes): how often the model names the written word with no picture
behind it, the ceiling of what a sticker can do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.typographic.render import RGB


class BlankStage(Stage):
    """Images [N,3,H,W] of the source's shape, device and dtype, filled with ``colour``."""

    kind = "blank"

    def __init__(self, name: str, source: str = "clean", colour: RGB = (255, 255, 255)):
        super().__init__(name, source)
        self.colour = colour

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        fill = torch.tensor(self.colour, dtype=images.dtype, device=images.device).div_(255).view(1, 3, 1, 1)
        return StageOutput(images=fill.expand_as(images).contiguous())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "colour": "#%02x%02x%02x" % self.colour}


__all__ = ["BlankStage"]
