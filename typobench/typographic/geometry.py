"""Pixel geometry of text patches: sizes, positions, coordinates, and boxes.

Coordinates are pixels, ``x`` along the width and ``y`` along the height; a patch of size
``(h, w)`` at ``(x, y)`` covers rows ``y..y+h-1`` and columns ``x..x+w-1``. Boxes are
``(x0, y0, x1, y1)`` with exclusive ends.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from typobench.core.errors import UsageError

Size = tuple[int, int]  # (height, width)
Position = tuple[int, int]  # (x, y) top-left
Coordinate = int | float  # int: pixels; float in [0, 1]: fraction of the free range


def check_size(value: Any, what: str) -> Size:
    """``value`` as ``(height, width)`` integers of at least 1x1, or a UsageError naming ``what``."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be (height, width) integers, got {value!r}") from None
    if h < 1 or w < 1:
        raise UsageError(f"{what} must be at least 1x1 pixels, got {(h, w)}")
    return h, w


def check_coordinate(value: Any, what: str) -> Coordinate:
    """An int (pixels) or a float fraction in [0, 1] of the free range, or a UsageError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"{what} must be an int (pixels) or a float in [0, 1] (fraction), got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= float(value) <= 1.0:
            raise UsageError(f"{what}={value} as a float must be a fraction in [0, 1]; use an int for pixels")
        return float(value)
    return int(value)


def resolve_coordinate(value: Coordinate, patch: int, image: int) -> int:
    """Pixels stay as given; a fraction f maps to round(f * (image - patch)): 0 = start, 1 = end edge."""
    if isinstance(value, float):
        return round(value * (image - patch))
    return value


def clamp_inside(start: int, patch: int, image: int) -> int:
    """Clamp so the patch lies inside; a patch wider than the image is centred (clipped both sides)."""
    if patch > image:
        return (image - patch) // 2
    return min(max(start, 0), image - patch)


def center_box(image_size: Sequence[int], center_fraction: float) -> tuple[int, int, int, int]:
    """The central box ``(x0, y0, x1, y1)`` (exclusive ends) covering ``center_fraction`` of each side."""
    height, width = check_size(image_size, "image_size")
    box_w, box_h = round(center_fraction * width), round(center_fraction * height)
    x0, y0 = (width - box_w) // 2, (height - box_h) // 2
    return x0, y0, x0 + box_w, y0 + box_h


def boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether boxes ``(x0, y0, x1, y1)`` with exclusive ends share any pixel (an empty box shares none)."""
    if a[0] >= a[2] or a[1] >= a[3] or b[0] >= b[2] or b[1] >= b[3]:
        return False
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class AxisSplit:
    """Along one axis: the ``n`` start positions ``0..n-1`` of a patch, split into those clear of
    the box span (``n_before`` before it, then from ``first_after`` on) and a blocked run between."""

    n: int
    n_before: int
    first_after: int
    n_clear: int

    def clear(self, k: int) -> int:
        """The ``k``-th clear start, in increasing order."""
        return k if k < self.n_before else self.first_after + (k - self.n_before)

    def blocked(self, k: int) -> int:
        """The ``k``-th start whose patch overlaps the box span."""
        return self.n_before + k


@functools.lru_cache(maxsize=4096)
def axis_split(n: int, length: int, lo: int, hi: int) -> AxisSplit:
    """Split starts ``0..n-1`` of a patch of ``length`` against the box span ``[lo, hi)`` (cached: same sizes recur)."""
    if hi <= lo:
        return AxisSplit(n, n, n, n)  # empty box: everything is clear
    n_before = max(0, min(n, lo - length + 1))  # starts s with s + length <= lo
    first_after = max(hi, n_before)  # first start s >= hi
    return AxisSplit(n, n_before, first_after, n_before + max(0, n - first_after))
