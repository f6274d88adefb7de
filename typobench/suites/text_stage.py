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

from ..errors import UsageError
from ..stages import Batch, RunContext, Stage, StageOutput
from ..typographic import (
    Placement,
    TextStyle,
    apply_patches,
    canvas_mask,
    create_placement,
    derive_seed,
    pixel_fraction,
    render_patch,
    sample_rng,
)
from .fields import Table

WORD_MODES = ("fixed", "true-label", "wrong-label", "word-list")
TARGET_MODES = ("none", "written")


@dataclass(frozen=True)
class WordChoice:
    """What to write: ``fixed`` text, the ``true-label``, a random ``wrong-label``, or a ``word-list`` word."""

    mode: str
    text: str | None = None
    words: tuple[str, ...] = ()

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
        patches, records, texts, styles = [], [], [], []
        for sample_id, label in zip(batch.sample_ids, batch.labels.tolist()):
            rng = sample_rng(ctx.seed, sample_id, stream=f"text:{self.name}")
            text = self.words.choose(label, ctx.classnames, rng)
            style = self.style.sample(text, rng)
            patch = render_patch(style, side)
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
            "fill": ["#%02x%02x%02x" % s.fill for s in styles],
            "placement": [json.dumps(r.to_dict()["positions"]) for r in records],
            "pixel_fraction": pixel_fraction(images, attacked).tolist(),
        }
        return StageOutput(attacked.detach(), targets=None if self.target == "none" else targets,
                           mask=canvas_mask(canvas), columns=columns)


STYLE_FIELDS = ("font", "fonts", "size", "size_range", "fill", "fills", "stroke", "strokes", "stroke_width",
                "box", "padding", "opacity", "rotation", "rotation_range", "align", "line_spacing")


def parse_style(table: Table) -> tuple[StyleSampler, dict[str, Any]]:
    """``[stage.style]``: TextStyle fields, plus per-sample ``fonts``/``fills``/``strokes`` lists and
    ``size_range``/``rotation_range`` pairs."""
    fixed: dict[str, Any] = {}
    for key in ("font", "fill", "stroke", "box", "align"):
        if table.has(key):
            fixed[key] = table.str(key)
    for key in ("size", "stroke_width", "padding", "opacity", "rotation", "line_spacing"):
        if table.has(key):
            fixed[key] = table.number(key)
    lists = {key: tuple(table.list(key)) if table.has(key) else () for key in ("fonts", "fills", "strokes")}
    for key, values in lists.items():
        if any(not isinstance(v, str) for v in values):
            raise table.error(key, f"expected a list of strings, got {list(values)!r}")
    ranges = {}
    for key in ("size_range", "rotation_range"):
        if table.has(key):
            pair = table.list(key)
            if len(pair) != 2 or not all(isinstance(v, (int, float)) for v in pair) or pair[0] > pair[1]:
                raise table.error(key, f"expected [low, high] numbers with low <= high, got {pair!r}")
            ranges[key] = (pair[0], pair[1])
    table.finish(STYLE_FIELDS)
    if lists["strokes"] and "stroke" not in fixed:
        fixed["stroke"] = lists["strokes"][0]  # replaced per sample; lets stroke_width validate
    try:
        base = TextStyle("x", **fixed)
        for font in lists["fonts"]:
            TextStyle("x", font=font)
        for colour in lists["fills"] + lists["strokes"]:
            TextStyle("x", fill=colour)
    except Exception as exc:  # the renderer's own UsageError names the bad value
        raise table.error("", str(exc)) from exc
    sampler = StyleSampler(base, lists["fonts"], lists["fills"], lists["strokes"],
                           ranges.get("size_range"), ranges.get("rotation_range"))
    description = {**fixed, **{k: list(v) for k, v in lists.items() if v},
                   **{k: list(v) for k, v in ranges.items()}}
    return sampler, description


def parse_words(table: Table) -> tuple[WordChoice, dict[str, Any]]:
    mode = table.str("words", "fixed", choices=WORD_MODES)
    if mode == "fixed":
        text = table.str("text")
        return WordChoice("fixed", text=text), {"words": mode, "text": text}
    if mode == "word-list":
        words = table.list("word_list")
        if any(not isinstance(w, str) or not w for w in words):
            raise table.error("word_list", "expected a list of non-empty strings")
        return WordChoice("word-list", words=tuple(words)), {"words": mode, "word_list": words}
    return WordChoice(mode), {"words": mode}


def parse_placement(table: Table) -> tuple[Placement, dict[str, Any]]:
    params = dict(table.data)
    policy = params.pop("policy", "random")
    for key in table.data:
        table.raw(key)
    try:
        placement = create_placement(policy, **params)
    except Exception as exc:
        raise table.error("policy" if "policy" in str(exc) else "", str(exc)) from exc
    return placement, placement.to_dict()


def build_text_stage(table: Table, name: str, source: str, defaults: dict[str, dict]) -> TextStage:
    words, word_info = parse_words(table)
    style_table = Table({**defaults.get("style", {}), **table.raw("style", {})}, f"{table.path}.style", table.where)
    style, style_info = parse_style(style_table)
    placement_table = Table({**defaults.get("placement", {}), **table.raw("placement", {})},
                            f"{table.path}.placement", table.where)
    placement, placement_info = parse_placement(placement_table)
    target = table.str("target", "none")
    table.raw("name"), table.raw("kind"), table.raw("source", None)
    table.finish(["name", "kind", "source", "words", "text", "word_list", "target", "style", "placement"])
    description = {**word_info, "target": target, "style": style_info, "placement": placement_info}
    return TextStage(name, source, words, style, placement, target=target, description=description)
