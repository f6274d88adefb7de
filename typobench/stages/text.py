"""The ``text`` stage: write a word onto every image (a typographic attack or a sticker).

What is written is chosen per sample (a fixed text, the true label, a random wrong label, or a
random word from a list); the style (font, size, colours, box, rotation) can be fixed or drawn
per sample from ranges and palettes; the placement comes from a placement policy. Every random
choice comes from a generator seeded by (run seed, sample id, stage name), so a sample gets the
same attack whatever its batch, and a resumed run repeats it exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from typobench.core.errors import UsageError, quoted
from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.typographic import (
    Placement,
    TextStyle,
    apply_patches,
    canvas_mask,
    derive_seed,
    pixel_fraction,
    render_patch,
    sample_rng,
)

WORD_MODES = ("fixed", "true-label", "wrong-label", "word-list")
TARGET_MODES = ("none", "written")


@dataclass(frozen=True)
class WordChoice:
    """What to write: ``fixed`` text, the ``true-label``, a random ``wrong-label``, or a ``word-list`` word."""

    mode: str
    text: str | None = None
    words: tuple[str, ...] = ()

    def candidates(self, classnames: list[str]) -> list[str]:
        """Every text this choice can write on a data set with these classes."""
        if self.mode == "fixed":
            return [self.text]  # type: ignore[list-item]
        return list(self.words) if self.mode == "word-list" else list(classnames)

    def choose(self, label: int, classnames: list[str], rng: np.random.Generator) -> str:
        if self.mode == "fixed":
            return self.text  # type: ignore[return-value]
        if self.mode == "true-label":
            return classnames[label]
        if self.mode == "wrong-label":
            wrong = int(rng.integers(len(classnames) - 1))
            return classnames[wrong + (wrong >= label)]
        return self.words[int(rng.integers(len(self.words)))]


@dataclass(frozen=True)
class StyleSampler:
    """A base ``TextStyle`` plus the fields drawn per sample (palettes, fonts, size/rotation ranges)."""

    base: TextStyle
    fonts: tuple[str, ...] = ()
    fills: tuple[str, ...] = ()
    strokes: tuple[str, ...] = ()
    size_range: tuple[float, float] | None = None
    rotation_range: tuple[float, float] | None = None

    def sample(self, text: str, rng: np.random.Generator) -> TextStyle:
        changes: dict[str, Any] = {"text": text}
        if self.fonts:
            changes["font"] = self.fonts[int(rng.integers(len(self.fonts)))]
        if self.fills:
            changes["fill"] = self.fills[int(rng.integers(len(self.fills)))]
        if self.strokes:
            # The outline never takes the fill's colour: it would be invisible.
            fill = changes.get("fill", self.base.fill)
            options = [c for c in self.strokes if TextStyle("x", fill=c).fill != TextStyle("x", fill=fill).fill]
            options = options or list(self.strokes)
            changes["stroke"] = options[int(rng.integers(len(options)))]
        if self.size_range is not None:
            lo, hi = self.size_range
            # Below 1 a size is a fraction of the image side; from 1 up it is whole pixels.
            changes["size"] = float(rng.uniform(lo, hi)) if hi < 1 else int(rng.integers(int(lo), int(hi) + 1))
        if self.rotation_range is not None:
            changes["rotation"] = float(rng.uniform(*self.rotation_range))
        return replace(self.base, **changes)


def fit_patch(style: TextStyle, side: int, size: tuple[int, int], stage: str) -> tuple[Tensor, TextStyle]:
    """The RGBA patch [4,h,w] of ``style`` and the style it was drawn with. A patch larger than the image
    (``size`` = (H, W)) is drawn again at the largest whole-pixel font size whose patch fits: text is
    shrunk, never cut. A text that fits at no size is a UsageError naming the stage and the text."""
    patch = render_patch(style, side)
    if patch.shape[-2] <= size[0] and patch.shape[-1] <= size[1]:
        return patch, style
    best, low, high = None, 1, style.resolve_size(side) - 1
    while low <= high:  # patch size grows with font size: binary search the largest that fits
        middle = (low + high) // 2
        candidate = replace(style, size=middle)
        drawn = render_patch(candidate, side)
        if drawn.shape[-2] <= size[0] and drawn.shape[-1] <= size[1]:
            best, low = (drawn, candidate), middle + 1
        else:
            high = middle - 1
    if best is None:
        raise UsageError(f"stage '{stage}': text {quoted(style.text)} ({len(style.text)} characters) does not fit a {size[1]}x{size[0]} image at any "
                         "font size: write a shorter text")
    return best


class TextStage(Stage):
    """Composite a rendered word onto each image; targets are the attack's aim (if any)."""

    kind = "text"

    def __init__(self, name: str, source: str, words: WordChoice, style: StyleSampler, placement: Placement,
                 target: str = "none", description: dict[str, Any] | None = None):
        super().__init__(name, source)
        self.words = words
        self.style = style
        self.placement = placement
        self.target = target
        self._description = description or {}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self._description}

    def check(self, classnames: list[str], where: str) -> None:
        fixed_target = self.target not in TARGET_MODES
        if fixed_target and self.target not in classnames:
            raise UsageError(f"{where}: stage '{self.name}' targets class '{self.target}', which this data set "
                             "does not have: run the suite on the data set it was written for")
        if self.words.mode == "wrong-label" and len(classnames) < 2:
            raise UsageError(f"{where}: stage '{self.name}' writes a wrong label, which needs at least 2 classes")
        for text in self.words.candidates(classnames):
            for font in self.style.fonts or (self.style.base.font,):
                try:  # an empty text or a glyph the font lacks is found now, before any work starts
                    replace(self.style.base, text=text, font=font)
                except UsageError as exc:
                    raise UsageError(f"{where}: stage '{self.name}': {exc}") from None

    def target_index(self, text: str, classnames: list[str]) -> int:
        """Class index the attack aims for: the written class (if it is one), a named class, or -1."""
        if self.target == "none":
            return -1
        wanted = text if self.target == "written" else self.target
        return classnames.index(wanted) if wanted in classnames else -1

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        side = int(images.shape[-1])
        size = (int(images.shape[-2]), side)
        placement_seed = derive_seed(ctx.seed, self.name, "placement-seed")
        patches, records, texts, styles, requested = [], [], [], [], []
        for sample_id, label in zip(batch.sample_ids, batch.labels.tolist()):
            rng = sample_rng(ctx.seed, sample_id, stream=f"text:{self.name}")
            text = self.words.choose(label, ctx.classnames, rng)
            requested.append(self.style.sample(text, rng))
            patch, style = fit_patch(requested[-1], side, size, self.name)
            patches.append(patch)
            records.append(self.placement.place(patch.shape[-2:], size, sample_id, seed=placement_seed))
            texts.append(text)
            styles.append(style)
        attacked, canvas = apply_patches(images, patches, records)
        targets = torch.tensor([self.target_index(t, ctx.classnames) for t in texts], device=images.device)
        columns = {
            "text": texts,
            "font": [s.font for s in styles],
            "size_px": [s.resolve_size(side) for s in styles],
            # Differs from size_px only where the text was shrunk to fit the image (never cut).
            "size_requested_px": [s.resolve_size(side) for s in requested],
            "fill": ["#%02x%02x%02x" % s.fill for s in styles],
            "placement": [json.dumps(r.to_dict()["positions"]) for r in records],
            "pixel_fraction": pixel_fraction(images, attacked).tolist(),
        }
        return StageOutput(attacked.detach(), targets=None if self.target == "none" else targets,
                           mask=canvas_mask(canvas), columns=columns)
