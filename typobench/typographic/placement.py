"""Where to put a text patch: placement policies producing integer top-left ``(x, y)`` positions.

Coordinates are pixels, ``x`` along the width and ``y`` along the height; a patch of size
``(h, w)`` at ``(x, y)`` covers rows ``y..y+h-1`` and columns ``x..x+w-1``. Positions may lie
partly outside the image (compositing clips); the built-in policies keep patches inside whenever
the patch fits.

Random policies are reproducible per sample: they draw from ``SampleStream(seed, sample_id)``,
uniform integers made from SHA-256 of ``(seed, sample_id, counter)``. A sample therefore gets the
same position whatever batch or order it runs in, and, unlike ``torch.randint`` or numpy's
``Generator.integers`` (whose algorithms may change between releases), on any library version.
"""

from __future__ import annotations

import functools
import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from typobench.errors import UsageError, close_matches, unknown_name_error

Size = tuple[int, int]  # (height, width)
Position = tuple[int, int]  # (x, y) top-left
Coordinate = int | float  # int: pixels; float in [0, 1]: fraction of the free range

_HOW_TO_LIST = "typobench.typographic.list_placements()"


# -- per-sample randomness ------------------------------------------------------------------


def derive_seed(seed: int, sample_id: str | int, stream: str = "placement") -> int:
    """A 63-bit seed from ``(stream, seed, sample_id)`` via SHA-256.

    ``stream`` separates independent uses (placement vs. choosing the text) so they don't draw
    correlated numbers. ``sample_id`` is used as ``str(sample_id)``: ``5`` and ``"5"`` are the same.
    """
    payload = f"{stream}\x1f{int(seed)}\x1f{sample_id}".encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little") & ((1 << 63) - 1)


def sample_generator(seed: int, sample_id: str | int, stream: str = "placement") -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``derive_seed(seed, sample_id, stream)``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, sample_id, stream))
    return generator


def sample_rng(seed: int, sample_id: str | int, stream: str = "placement") -> np.random.Generator:
    """A numpy ``Generator`` seeded from ``derive_seed(seed, sample_id, stream)``."""
    return np.random.default_rng(derive_seed(seed, sample_id, stream))


class SampleStream:
    """Uniform random integers for one sample: SHA-256 of ``(stream, seed, sample_id, counter)``.

    Pure Python and version-stable (see the module docstring), and cheap enough to build one per
    sample (a few microseconds, against tens for seeding a ``torch.Generator``).
    """

    def __init__(self, seed: int, sample_id: str | int, stream: str = "placement") -> None:
        self._key = f"{stream}\x1f{int(seed)}\x1f{sample_id}\x1f".encode()
        self._counter = 0
        self._words: list[int] = []

    def _next_word(self) -> int:
        if not self._words:
            digest = hashlib.sha256(self._key + self._counter.to_bytes(8, "little")).digest()
            self._counter += 1
            self._words = [int.from_bytes(digest[i : i + 8], "little") for i in range(24, -1, -8)]
        return self._words.pop()

    def integer(self, n: int) -> int:
        """Uniform in ``[0, n)``. Multiply-shift of a 64-bit word: bias below ``n / 2**64``."""
        if n < 1:
            raise ValueError(f"need n >= 1, got {n}")
        return (self._next_word() * n) >> 64


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementRecord:
    """Where one sample's patch copies went; ``to_dict()`` is written per sample to the results."""

    policy: str
    positions: tuple[Position, ...]
    patch_size: Size
    image_size: Size
    seed: int
    sample_id: str
    params: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def clipped(self) -> bool:
        """Whether any copy extends past the image border (and so is partly cut off)."""
        (h, w), (height, width) = self.patch_size, self.image_size
        return any(x < 0 or y < 0 or x + w > width or y + h > height for x, y in self.positions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "positions": [[x, y] for x, y in self.positions],
            "patch_size": list(self.patch_size),
            "image_size": list(self.image_size),
            "seed": self.seed,
            "sample_id": self.sample_id,
            "params": dict(self.params),
            "clipped": self.clipped,
            **self.extras,
        }


# -- helpers --------------------------------------------------------------------------------


def _size(value: Any, what: str) -> Size:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be (height, width) integers, got {value!r}") from None
    if h < 1 or w < 1:
        raise UsageError(f"{what} must be at least 1x1 pixels, got {(h, w)}")
    return h, w


def _check_coordinate(value: Any, what: str) -> Coordinate:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"{what} must be an int (pixels) or a float in [0, 1] (fraction), got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= float(value) <= 1.0:
            raise UsageError(f"{what}={value} as a float must be a fraction in [0, 1]; use an int for pixels")
        return float(value)
    return int(value)


def _resolve_coordinate(value: Coordinate, patch: int, image: int) -> int:
    """Pixels stay as given; a fraction f maps to round(f * (image - patch)): 0 = start, 1 = end edge."""
    if isinstance(value, float):
        return round(value * (image - patch))
    return value


def _inside(start: int, patch: int, image: int) -> int:
    """Clamp so the patch lies inside; a patch wider than the image is centred (clipped both sides)."""
    if patch > image:
        return (image - patch) // 2
    return min(max(start, 0), image - patch)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


# -- policies -------------------------------------------------------------------------------


class Placement(ABC):
    """A placement policy. Subclasses declare ``name`` and ``defaults`` (accepted parameters)."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    randomised: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = [key for key in params if key not in self.defaults]
        if unknown:
            hint = close_matches(unknown[0], self.defaults)
            did_you_mean = f"did you mean {', '.join(hint)}? " if hint else ""
            accepted = ", ".join(self.defaults) or "none"
            raise UsageError(f"placement '{self.name}' has no parameter '{unknown[0]}': {did_you_mean}accepted parameters: {accepted}")
        self._given = frozenset(params)  # lets _validate tell "n=8 given" from "n left at default"
        merged = {**self.defaults, **params}
        self.params: dict[str, Any] = self._validate(merged)
        self._record_params = self.to_dict()["params"]  # JSON-ready, computed once, not per sample

    @abstractmethod
    def _validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise parameters; raise ``UsageError`` naming the bad one."""

    @abstractmethod
    def _positions(self, patch: Size, image: Size, stream: SampleStream | None) -> tuple[list[Position], dict[str, Any]]:
        """Positions plus extra fields for the record."""

    def place(self, patch_size: Sequence[int], image_size: Sequence[int], sample_id: str | int, seed: int = 0) -> PlacementRecord:
        """Positions for one sample's patch of ``patch_size=(h, w)`` in an image of ``image_size=(H, W)``.

        Randomised policies draw from ``SampleStream(seed, sample_id)``, so the result depends
        only on ``(policy params, sizes, seed, sample_id)``.
        """
        patch, image = _size(patch_size, "patch_size"), _size(image_size, "image_size")
        stream = SampleStream(seed, sample_id) if self.randomised else None
        positions, extras = self._positions(patch, image, stream)
        return PlacementRecord(
            policy=self.name,
            positions=tuple([(int(x), int(y)) for x, y in positions]),
            patch_size=patch,
            image_size=image,
            seed=int(seed),
            sample_id=str(sample_id),
            params=dict(self._record_params),
            extras=extras,
        )

    def to_dict(self) -> dict[str, Any]:
        params = {k: (list(map(list, v)) if k == "positions" and v is not None else v) for k, v in self.params.items()}
        return {"name": self.name, "params": params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"create_placement({self.name!r}, {args})"


class FixedPlacement(Placement):
    """One copy at a fixed position: ``x``, ``y`` are int pixels or float fractions of the free
    range (0 = left/top edge, 0.5 = centred, 1 = right/bottom edge)."""

    name = "fixed"
    defaults = {"x": 0.5, "y": 0.5}

    def _validate(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"x": _check_coordinate(params["x"], "x"), "y": _check_coordinate(params["y"], "y")}

    def _positions(self, patch: Size, image: Size, stream: SampleStream | None) -> tuple[list[Position], dict[str, Any]]:
        (h, w), (height, width) = patch, image
        x = _resolve_coordinate(self.params["x"], w, width)
        y = _resolve_coordinate(self.params["y"], h, height)
        return [(x, y)], {}


def default_grid(n: int) -> tuple[int, int]:
    """(columns, rows) for ``n`` copies: ``cols = ceil(sqrt(n / 2))``; 8 copies -> 2 columns x 4 rows.

    Words are wider than tall, so the grid has about twice as many rows as columns.
    """
    cols = max(1, math.ceil(math.sqrt(n / 2)))
    return cols, math.ceil(n / cols)


class CopiesPlacement(Placement):
    """``n`` copies at fixed positions (Goh et al. 2021 overlaid the word 8 times).

    With ``positions=None`` the copies are centred in the cells of a ``cols`` x ``rows`` grid
    (default ``default_grid(n)``), filled row by row and clamped inside the image. Otherwise
    ``positions`` is a list of ``(x, y)``, each coordinate int pixels or a float fraction as in
    ``fixed``.
    """

    name = "copies"
    defaults = {"n": 8, "cols": None, "rows": None, "positions": None}

    def _validate(self, params: dict[str, Any]) -> dict[str, Any]:
        positions = params["positions"]
        if positions is not None:
            try:
                pairs = [tuple(p) for p in positions]
            except TypeError:
                raise UsageError(f"positions must be a list of (x, y) pairs, got {positions!r}") from None
            if not pairs or any(len(p) != 2 for p in pairs):
                raise UsageError(f"positions must be a non-empty list of (x, y) pairs, got {positions!r}")
            checked = tuple((_check_coordinate(x, "positions x"), _check_coordinate(y, "positions y")) for x, y in pairs)
            if "n" in self._given and params["n"] != len(checked):
                raise UsageError(f"n={params['n']} disagrees with {len(checked)} positions: drop n or make them match")
            if params["cols"] is not None or params["rows"] is not None:
                raise UsageError("cols/rows only apply to the grid layout: drop them when giving positions")
            return {"n": len(checked), "cols": None, "rows": None, "positions": checked}
        n = _positive_int(params["n"], "n")
        cols, rows = params["cols"], params["rows"]
        if cols is None and rows is None:
            cols, rows = default_grid(n)
        elif rows is None:
            cols = _positive_int(cols, "cols")
            rows = math.ceil(n / cols)
        elif cols is None:
            rows = _positive_int(rows, "rows")
            cols = math.ceil(n / rows)
        else:
            cols, rows = _positive_int(cols, "cols"), _positive_int(rows, "rows")
            if cols * rows < n:
                raise UsageError(f"a {cols}x{rows} grid holds {cols * rows} copies, fewer than n={n}: raise cols or rows")
        return {"n": n, "cols": cols, "rows": rows, "positions": None}

    def _positions(self, patch: Size, image: Size, stream: SampleStream | None) -> tuple[list[Position], dict[str, Any]]:
        (h, w), (height, width) = patch, image
        if self.params["positions"] is not None:
            return [(_resolve_coordinate(x, w, width), _resolve_coordinate(y, h, height)) for x, y in self.params["positions"]], {}
        cols, rows = self.params["cols"], self.params["rows"]
        positions = []
        for index in range(self.params["n"]):
            row, col = divmod(index, cols)
            centre_x = (col + 0.5) * width / cols
            centre_y = (row + 0.5) * height / rows
            positions.append((_inside(round(centre_x - w / 2), w, width), _inside(round(centre_y - h / 2), h, height)))
        return positions, {}


class RandomPlacement(Placement):
    """``n`` copies, each uniform over all positions that keep the patch inside the image.

    A patch larger than the image along a side is centred along that side (and clipped).
    """

    name = "random"
    defaults = {"n": 1}
    randomised = True

    def _validate(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"n": _positive_int(params["n"], "n")}

    def _positions(self, patch: Size, image: Size, stream: SampleStream | None) -> tuple[list[Position], dict[str, Any]]:
        (h, w), (height, width) = patch, image
        n = self.params["n"]

        assert stream is not None

        def draw(patch_len: int, image_len: int) -> int:
            if patch_len >= image_len:
                return (image_len - patch_len) // 2
            return stream.integer(image_len - patch_len + 1)

        return [(draw(w, width), draw(h, height)) for _ in range(n)], {}


def center_box(image_size: Sequence[int], center_fraction: float) -> tuple[int, int, int, int]:
    """The central box ``(x0, y0, x1, y1)`` (exclusive ends) covering ``center_fraction`` of each side."""
    height, width = _size(image_size, "image_size")
    box_w, box_h = round(center_fraction * width), round(center_fraction * height)
    x0, y0 = (width - box_w) // 2, (height - box_h) // 2
    return x0, y0, x0 + box_w, y0 + box_h


class RandomOffCenterPlacement(Placement):
    """``n`` copies, each uniform over the in-image positions whose patch does not overlap the
    central box (``center_fraction`` of each side, where the object usually is).

    Sampling is exact (uniform over the allowed set, not rejection), and it raises ``UsageError``
    if no position is allowed, i.e. the patch is too large for the margin around the box.
    """

    name = "random_off_center"
    defaults = {"n": 1, "center_fraction": 0.5}
    randomised = True

    def _validate(self, params: dict[str, Any]) -> dict[str, Any]:
        fraction = params["center_fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= float(fraction) < 1.0:
            raise UsageError(f"center_fraction must be in [0, 1), got {fraction!r}")
        return {"n": _positive_int(params["n"], "n"), "center_fraction": float(fraction)}

    def _positions(self, patch: Size, image: Size, stream: SampleStream | None) -> tuple[list[Position], dict[str, Any]]:
        assert stream is not None
        (h, w), (height, width) = patch, image
        box = center_box(image, self.params["center_fraction"])
        if h > height or w > width:
            raise UsageError(f"a {h}x{w} text patch does not fit a {height}x{width} image: reduce the text size")
        empty = box[0] == box[2] or box[1] == box[3]  # a zero-area box blocks nothing
        xs = _axis_split(width - w + 1, w, box[0], box[0] if empty else box[2])
        ys = _axis_split(height - h + 1, h, box[1], box[1] if empty else box[3])
        # Allowed = clear of the box along y (any x), or not clear along y but clear along x.
        # Counting the two disjoint parts lets one uniform index pick a position exactly.
        part_y = ys.n_clear * xs.n
        total = part_y + (ys.n - ys.n_clear) * xs.n_clear
        if total == 0:
            raise UsageError(
                f"a {h}x{w} text patch cannot avoid the centre box of a {height}x{width} image "
                f"(center_fraction={self.params['center_fraction']}): reduce the text size or center_fraction"
            )
        positions = []
        for _ in range(self.params["n"]):
            k = stream.integer(total)
            if k < part_y:
                positions.append((k % xs.n, ys.clear(k // xs.n)))
            else:
                k -= part_y
                positions.append((xs.clear(k % xs.n_clear), ys.blocked(k // xs.n_clear)))
        return positions, {"center_box": list(box)}


@dataclass(frozen=True)
class _AxisSplit:
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
def _axis_split(n: int, length: int, lo: int, hi: int) -> _AxisSplit:
    """Split starts ``0..n-1`` of a patch of ``length`` against the box span ``[lo, hi)`` (cached: same sizes recur)."""
    if hi <= lo:
        return _AxisSplit(n, n, n, n)  # empty box: everything is clear
    n_before = max(0, min(n, lo - length + 1))  # starts s with s + length <= lo
    first_after = max(hi, n_before)  # first start s >= hi
    return _AxisSplit(n, n_before, first_after, n_before + max(0, n - first_after))


_PLACEMENTS: dict[str, type[Placement]] = {
    cls.name: cls for cls in (FixedPlacement, CopiesPlacement, RandomPlacement, RandomOffCenterPlacement)
}


def list_placements() -> list[str]:
    """Names of the placement policies, sorted."""
    return sorted(_PLACEMENTS)


def create_placement(name: str, **params: Any) -> Placement:
    """Build a policy by name; unknown name or bad parameter raises ``UsageError`` naming it."""
    if name not in _PLACEMENTS:
        raise unknown_name_error("placement", str(name), list_placements(), _HOW_TO_LIST)
    return _PLACEMENTS[name](**params)


def boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether boxes ``(x0, y0, x1, y1)`` with exclusive ends share any pixel (an empty box shares none)."""
    if a[0] >= a[2] or a[1] >= a[3] or b[0] >= b[2] or b[1] >= b[3]:
        return False
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
