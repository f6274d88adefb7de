"""Random draws from one ``np.random.Generator`` for toyclip's training images: choices and colours.

Every draw consumes the generator in a fixed order, so that a batch stays a pure function of
``(seed, step)``; changing a helper here changes every batch of every recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from typobench.toyclip.vocabulary import COLOURS

T = TypeVar("T")


def pick(options: Sequence[T], rng: np.random.Generator) -> T:
    """One of ``options``, uniformly (one ``rng.integers`` draw)."""
    return options[int(rng.integers(len(options)))]


def rgb_tensor(rgb: Sequence[int]) -> torch.Tensor:
    """``[3, 1, 1]`` float pixels in [0, 1] from 0-255 RGB (broadcasts over an image)."""
    return torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1) / 255.0


def jitter(rgb: Sequence[int], rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    """``rgb`` with each channel moved by up to ``amount`` either way (clipped to 0-255)."""
    out = np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(out[0]), int(out[1]), int(out[2]))


def luminance(rgb: Sequence[int]) -> float:
    """Perceived brightness in [0, 1] (ITU-R BT.601 weights) of a 0-255 RGB colour."""
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0


def random_rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    """Any 0-255 RGB colour, uniformly."""
    v = rng.integers(0, 256, size=3)
    return (int(v[0]), int(v[1]), int(v[2]))


def some_colour(rng: np.random.Generator, named_p: float) -> tuple[int, int, int]:
    """A named colour (``COLOURS``) with probability ``named_p``, else any RGB."""
    return COLOURS[pick(list(COLOURS), rng)] if rng.random() < named_p else random_rgb(rng)


def contrasting(rgb: Sequence[int], rng: np.random.Generator, min_diff: float = 0.35) -> tuple[int, int, int]:
    """A colour whose luminance differs from ``rgb`` by at least ``min_diff`` (a named one half the time)."""
    lum = luminance(rgb)
    for _ in range(20):
        cand = some_colour(rng, named_p=0.5)
        if abs(luminance(cand) - lum) >= min_diff:
            return cand
    return (255, 255, 255) if lum < 0.5 else (0, 0, 0)
