"""Drawing the Stroop stimuli: each word centred on the plain background, in its ink."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.typographic.stroop.design import StroopDesign, StroopStimulus
from typobench.typographic import TextStyle, build_canvas, composite, render_patch


def _style(stimulus: StroopStimulus, design: StroopDesign) -> TextStyle:
    return TextStyle(stimulus.word, font=stimulus.font, size=stimulus.size, fill=design.palette[stimulus.ink])


def render_stimuli(
    stimuli: Sequence[StroopStimulus], design: StroopDesign, image_size: Sequence[int] | int
) -> Tensor:
    """Pixels ``[N, 3, H, W]`` in [0, 1]: each word centred on the plain background, in its ink.

    Uses the project's renderer (``render_patch``) and compositor. A word that does not fit the
    image is a ``UsageError`` (a clipped word would be a different stimulus).
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    side = min(height, width)
    placements = []
    for stimulus in stimuli:
        patch = render_patch(_style(stimulus, design), side)
        h, w = int(patch.shape[1]), int(patch.shape[2])
        if h > height or w > width:
            raise UsageError(f"word '{stimulus.word}' in font '{stimulus.font}' at size {stimulus.size} is {w}x{h} px "
                             f"and does not fit the {width}x{height} image: use a smaller --sizes")
        placements.append([(patch, ((width - w) // 2, (height - h) // 2))])
    background = torch.tensor(design.background, dtype=torch.float32).div(255).view(1, 3, 1, 1)
    images = background.expand(len(stimuli), 3, height, width)
    if not stimuli:
        return images.clone()
    return composite(images, build_canvas(placements, (height, width)))
