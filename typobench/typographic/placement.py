"""Where to put a text patch: placement policies producing integer top-left ``(x, y)`` positions.

Positions may lie partly outside the image (compositing clips); the built-in policies keep patches
inside whenever the patch fits. Coordinates and boxes are defined in :mod:`.geometry`.

Random policies are reproducible per sample: they draw from ``SampleStream(seed, sample_id)``
(:mod:`.seeding`), so a sample gets the same position whatever batch or order it runs in, on any
library version.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from typobench.core.errors import UsageError, close_matches
from typobench.core.registry import Registry
from typobench.typographic.geometry import (
    Position,
    Size,
    axis_split,
    center_box,
    check_coordinate,
    check_size,
    clamp_inside,
    resolve_coordinate,
)
from typobench.typographic.seeding import SampleStream

_HOW_TO_LIST = "typobench.typographic.list_placements()"


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


# -- parameter checks --------------------------------------------------------------------------


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
        patch, image = check_size(patch_size, "patch_size"), check_size(image_size, "image_size")
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
        return {"x": check_coordinate(params["x"], "x"), "y": check_coordinate(params["y"], "y")}

    def _positions(self, patch: Size, image: Size, stream: SampleStream | None) -> tuple[list[Position], dict[str, Any]]:
        (h, w), (height, width) = patch, image
        x = resolve_coordinate(self.params["x"], w, width)
        y = resolve_coordinate(self.params["y"], h, height)
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
            checked = tuple((check_coordinate(x, "positions x"), check_coordinate(y, "positions y")) for x, y in pairs)
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
            return [(resolve_coordinate(x, w, width), resolve_coordinate(y, h, height)) for x, y in self.params["positions"]], {}
        cols, rows = self.params["cols"], self.params["rows"]
        positions = []
        for index in range(self.params["n"]):
            row, col = divmod(index, cols)
            centre_x = (col + 0.5) * width / cols
            centre_y = (row + 0.5) * height / rows
            positions.append((clamp_inside(round(centre_x - w / 2), w, width), clamp_inside(round(centre_y - h / 2), h, height)))
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
        xs = axis_split(width - w + 1, w, box[0], box[0] if empty else box[2])
        ys = axis_split(height - h + 1, h, box[1], box[1] if empty else box[3])
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


PLACEMENTS: Registry[type[Placement]] = Registry("placement", _HOW_TO_LIST)
for _policy in (FixedPlacement, CopiesPlacement, RandomPlacement, RandomOffCenterPlacement):
    PLACEMENTS.add(_policy.name, _policy)


def list_placements() -> list[str]:
    """Names of the placement policies, sorted."""
    return sorted(PLACEMENTS.names())


def placement_parameters(name: str | None = None) -> tuple[str, ...]:
    """The parameters policy ``name`` accepts; with no name, those of every policy (first seen first)."""
    if name is not None:
        return tuple(PLACEMENTS.get(name).defaults) if name in PLACEMENTS else ()
    return tuple(dict.fromkeys(key for cls in PLACEMENTS.values() for key in cls.defaults))


def create_placement(name: str, **params: Any) -> Placement:
    """Build a policy by name; unknown name or bad parameter raises ``UsageError`` naming it."""
    return PLACEMENTS.get(name)(**params)
