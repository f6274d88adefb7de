"""Transformation robustness: optimise an image that excites the neuron under small random changes.

Each step, every image of the batch is padded, then resampled back to its own size with a random scale,
rotation and translation (jitter), in one bilinear resampling; the random draws come from the loop's
seeded generator, so the whole optimisation is reproducible. Without this, the optimiser finds
high-frequency patterns that excite the unit only at one exact pixel alignment (Olah et al. 2017).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Robustness:
    """``pad``: pixels of reflected border added first; ``jitter``: the largest translation in pixels;
    ``scales``, ``angles`` (degrees): the values drawn from, uniformly, per image and step."""

    pad: int = 4
    jitter: int = 4
    scales: Sequence[float] = (0.9, 0.95, 1.0, 1.05, 1.1)
    angles: Sequence[float] = (-5.0, -2.5, 0.0, 2.5, 5.0)

    def describe(self) -> dict:
        return {"pad": self.pad, "jitter": self.jitter, "scales": list(self.scales), "angles": list(self.angles)}


NO_ROBUSTNESS = Robustness(pad=0, jitter=0, scales=(1.0,), angles=(0.0,))


def _pick(values: Sequence[float], count: int, generator: torch.Generator) -> Tensor:
    index = torch.randint(len(values), (count,), generator=generator)
    return torch.tensor([float(v) for v in values])[index]


def affine_thetas(robustness: Robustness, batch: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    """[B, 2, 3]: per image, the sampling grid (normalised coordinates of the *padded* image) that reads
    an H x W window from it, scaled by 1/scale, rotated and shifted by up to ``jitter`` pixels."""
    padded_h, padded_w = height + 2 * robustness.pad, width + 2 * robustness.pad
    scale = _pick(robustness.scales, batch, generator)
    angle = _pick(robustness.angles, batch, generator) * (math.pi / 180.0)
    shift = torch.randint(-robustness.jitter, robustness.jitter + 1, (batch, 2), generator=generator).float()
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    kx, ky = width / padded_w, height / padded_h  # the window's share of the padded image
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * kx, -sin * kx
    theta[:, 1, 0], theta[:, 1, 1] = sin * ky, cos * ky
    theta[:, 0, 2] = 2.0 * shift[:, 0] / padded_w
    theta[:, 1, 2] = 2.0 * shift[:, 1] / padded_h
    return theta


def transform(images: Tensor, robustness: Robustness, generator: torch.Generator) -> Tensor:
    """[B, 3, H, W] -> [B, 3, H, W]: each image padded, then scaled, rotated and jittered at random."""
    if robustness == NO_ROBUSTNESS:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, [robustness.pad] * 4, mode="reflect") if robustness.pad else images
    theta = affine_thetas(robustness, batch, height, width, generator).to(images.device, images.dtype)
    grid = F.affine_grid(theta, [batch, 3, height, width], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
