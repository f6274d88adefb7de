"""Randomised pixel transforms for the ``input`` defense, whose draws are a pure function of the image.

Random resize-and-pad (Xie et al. 2018) and a random JPEG quality per image. A randomised defense is attacked
with Expectation over Transformation; for runs to stay byte-identical under resume and under sharding, the
randomness must not come from a generator whose state depends on what ran before. So each image's draw is
seeded by a hash of its own bytes and the EOT draw index (:func:`typobench.core.draws.current_draw`): the
same image at the same draw index gets the same transform in any batch, on any rank.

Shapes: ``N`` images, ``H`` x ``W`` pixels, in [0,1].
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from typobench.core.draws import current_draw


def image_rngs(pixels: Tensor, salt: str) -> list[random.Random]:
    """One generator per image of ``pixels`` [N,3,H,W], seeded by BLAKE2b of the image's float32 bytes, its
    shape, ``salt`` (the transform and its parameters) and the current EOT draw index."""
    draw = current_draw()
    images = np.ascontiguousarray(pixels.detach().to("cpu", torch.float32).numpy())
    rngs = []
    for image in images:
        digest = hashlib.blake2b(f"{salt}|draw {draw}|{image.shape}|".encode(), digest_size=16)
        digest.update(image.tobytes())
        rngs.append(random.Random(digest.digest()))
    return rngs


def resize_and_pad(pixels: Tensor, low: float, high: float) -> Tensor:
    """[N,3,H,W] -> [N,3,H,W]: each image shrunk by a scale drawn uniformly from [low, high] (antialiased
    bilinear) and placed at a random position on a black H x W canvas (Xie et al. 2018). Differentiable."""
    height, width = pixels.shape[-2:]
    out = []
    for image, rng in zip(pixels, image_rngs(pixels, f"resize_range:{low}:{high}")):
        scale = rng.uniform(low, high)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        top, left = rng.randint(0, height - size[0]), rng.randint(0, width - size[1])
        small = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(F.pad(small, (left, width - size[1] - left, top, height - size[0] - top)))
    return torch.cat(out).clamp(0, 1) if out else pixels


def random_qualities(pixels: Tensor, low: int, high: int) -> list[int]:
    """One JPEG quality per image of ``pixels`` [N,3,H,W], uniform over the integers in [low, high]."""
    return [rng.randint(low, high) for rng in image_rngs(pixels, f"jpeg_range:{low}:{high}")]


__all__ = ["image_rngs", "random_qualities", "resize_and_pad"]
