"""What a Stroop test shows: the palette (the classes), the colour words, the neutral word, fonts,
sizes and background, validated once, and the stimuli they make.

With the default palette there are 8 inks (black, red, green, blue, purple, orange, pink, yellow) x
8 words (the 7 colour words other than black, plus the neutral word "example"):

* congruent: word == ink (7: black has no word),
* incongruent: word != ink (49) -- Goh et al. report that CLIP named the *word* on all 49,
* neutral: the word "example" in each ink (8).

Every font x size combination repeats the whole set.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import ImageColor

from typobench.core.errors import UsageError
from typobench.typographic import FontSpec, parse_color, resolve_font

RGB = tuple[int, int, int]

GOH_PROMPT = "my favorite word, written in the color {}"
DEFAULT_PROMPTS = (GOH_PROMPT,)
# Saturated, distinguishable inks that stay readable on white (pure yellow #ffff00 barely is).
DEFAULT_PALETTE: dict[str, RGB] = {
    "black": (0, 0, 0),
    "red": (255, 0, 0),
    "green": (0, 160, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "orange": (255, 128, 0),
    "pink": (255, 105, 180),
    "yellow": (255, 215, 0),
}
# Colours that are inks but not words by default (Goh et al.: no word "black").
NO_WORD_COLOURS = ("black",)
DEFAULT_NEUTRAL = "example"
DEFAULT_FONTS = ("sans",)
# Font size as a fraction of the image side: "example" spans ~78% of the width in DejaVu Sans.
DEFAULT_SIZES: tuple[int | float, ...] = (0.18,)
DEFAULT_BACKGROUND = "white"

KINDS = ("congruent", "incongruent", "neutral")


# -- parsing and validation -----------------------------------------------------------------


def hex_colour(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _known_colour_names() -> list[str]:
    return sorted(set(DEFAULT_PALETTE) | set(ImageColor.colormap))


def _named_colour(name: str) -> RGB:
    """A bare palette entry: the default palette's ink, else a PIL colour name."""
    key = name.lower()
    if key in DEFAULT_PALETTE:
        return DEFAULT_PALETTE[key]
    if key in ImageColor.colormap:
        return parse_color(key)
    hint = difflib.get_close_matches(key, _known_colour_names(), n=3, cutoff=0.6)
    suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
    raise UsageError(f"unknown colour '{name}' in the palette: {suggestion}give it a value, e.g. {name}=#aa5500")


def parse_palette(text: str | Mapping[str, Any] | Sequence[str] | None) -> dict[str, RGB]:
    """Palette from ``"name=#rrggbb,name=colour,name"`` (bare names use the default ink or a PIL name).

    Also accepts a mapping ``{name: colour}`` or a list of entries. The order is the class order.
    """
    if text is None:
        return dict(DEFAULT_PALETTE)
    if isinstance(text, Mapping):
        entries = [(str(k), v) for k, v in text.items()]
    else:
        items = text.split(",") if isinstance(text, str) else list(text)
        entries = []
        for raw in items:
            item = str(raw).strip()
            if not item:
                raise UsageError(f"palette '{text}' has an empty entry: use name=#rrggbb,name=#rrggbb,...")
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not name or (sep and (not value or "=" in value)):
                raise UsageError(f"palette entry '{item}' is malformed: use name=#rrggbb (e.g. red=#ff0000) or a colour name")
            entries.append((name, value if sep else None))
    palette: dict[str, RGB] = {}
    for name, value in entries:
        if not name.strip() or "{" in name or "}" in name:
            raise UsageError(f"palette colour name {name!r} is not usable: use a plain word like 'red'")
        if name.lower() in (n.lower() for n in palette):
            raise UsageError(f"palette names colour '{name}' twice: give each colour once")
        if value is None:
            palette[name] = _named_colour(name)
        else:
            try:
                palette[name] = parse_color(value, f"palette colour for '{name}'")
            except UsageError:
                raise UsageError(f"palette entry '{name}={value}': '{value}' is not a colour, use #rrggbb or a name like 'red'") from None
    if len(palette) < 2:
        raise UsageError(f"palette has {len(palette)} colour(s): give at least 2, e.g. red=#ff0000,blue=#0000ff")
    return palette


def check_prompts(prompts: Sequence[str] | str | None) -> list[str]:
    """Prompts as templates with one ``{}`` for the colour name, each given once."""
    if prompts is None:
        return list(DEFAULT_PROMPTS)
    if isinstance(prompts, str):
        prompts = [prompts]
    out: list[str] = []
    for prompt in prompts:
        if not isinstance(prompt, str) or "{}" not in prompt:
            raise UsageError(f"prompt {prompt!r} has no '{{}}' for the colour name: e.g. \"a photo of the color {{}}\"")
        try:
            prompt.format("x")
        except (IndexError, KeyError, ValueError):
            raise UsageError(f"prompt {prompt!r} has braces other than one '{{}}': write literal braces as '{{{{' and '}}}}'") from None
        if prompt in out:
            raise UsageError(f"prompt {prompt!r} is given twice: give each prompt once")
        out.append(prompt)
    if not out:
        raise UsageError("no prompt given: pass at least one --prompt with '{}' for the colour name")
    return out


def parse_sizes(values: Sequence[str | int | float] | str | None) -> list[int | float]:
    """Font sizes: ``0.18`` (fraction of the image side) or ``14`` (pixels); comma lists allowed."""
    if values is None:
        return list(DEFAULT_SIZES)
    if isinstance(values, (str, int, float)):
        values = [values]
    out: list[int | float] = []
    for value in values:
        parts = value.split(",") if isinstance(value, str) else [value]
        for part in parts:
            if isinstance(part, str):
                part = part.strip()
                try:
                    number: int | float = int(part) if re.fullmatch(r"\d+", part) else float(part)
                except ValueError:
                    raise UsageError(f"size '{part}' is not a number: use a fraction of the image side (0.18) or pixels (14)") from None
            else:
                number = part
            if isinstance(number, float) and not 0.0 < number < 1.0:
                raise UsageError(f"size {number} must be a fraction in (0, 1) or an integer number of pixels")
            if number in out:
                raise UsageError(f"size {number} is given twice: give each size once")
            out.append(number)
    if not out:
        raise UsageError("no size given: use e.g. --sizes 0.18")
    return out


def parse_fonts(values: Sequence[str] | str | None) -> list[FontSpec]:
    """Fonts by registry name or file path (comma lists allowed), resolved with their file hash."""
    if values is None:
        values = list(DEFAULT_FONTS)
    if isinstance(values, str):
        values = [values]
    fonts: list[FontSpec] = []
    for value in values:
        for part in str(value).split(","):
            if not part.strip():
                continue
            spec = resolve_font(part.strip())
            if any(f.name == spec.name for f in fonts):
                raise UsageError(f"font '{spec.name}' is given twice: give each font once")
            fonts.append(spec)
    if not fonts:
        raise UsageError("no font given: use e.g. --fonts sans,serif (see typobench.typographic.list_fonts())")
    return fonts


# -- stimuli --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StroopStimulus:
    """One stimulus: ``word`` written in ``ink`` (a palette name) with ``font`` at ``size``.

    ``word_colour`` is the palette colour the word names (None for the neutral word).
    """

    word: str
    ink: str
    font: str
    size: int | float
    word_colour: str | None

    @property
    def kind(self) -> str:
        if self.word_colour is None:
            return "neutral"
        return "congruent" if self.word_colour == self.ink else "incongruent"


@dataclass(frozen=True)
class StroopDesign:
    """What is shown: palette (class order), words, neutral word, fonts, sizes, background."""

    palette: dict[str, RGB]
    words: tuple[str, ...]
    neutral: str
    fonts: tuple[FontSpec, ...]
    sizes: tuple[int | float, ...]
    background: RGB

    @property
    def classnames(self) -> list[str]:
        return list(self.palette)

    @property
    def columns(self) -> list[str]:
        """Grid columns: the colour words, then the neutral word."""
        return [*self.words, self.neutral]

    def to_dict(self) -> dict[str, Any]:
        return {
            "palette": {name: hex_colour(rgb) for name, rgb in self.palette.items()},
            "words": list(self.words),
            "neutral": self.neutral,
            "fonts": [f.to_dict() for f in self.fonts],
            "sizes": list(self.sizes),
            "background": hex_colour(self.background),
        }


def stroop_design(
    palette: str | Mapping[str, Any] | Sequence[str] | None = None,
    *,
    words: Sequence[str] | None = None,
    neutral: str = DEFAULT_NEUTRAL,
    fonts: Sequence[str] | str | None = None,
    sizes: Sequence[str | int | float] | str | None = None,
    background: Any = DEFAULT_BACKGROUND,
) -> StroopDesign:
    """Validate and resolve the design; every problem is a one-line ``UsageError``.

    ``words`` defaults to every palette colour except black (Goh et al.); each word must be a
    palette name. ``neutral`` must not be one.
    """
    pal = parse_palette(palette)
    lower = {name.lower(): name for name in pal}
    if words is None:
        chosen = [name for name in pal if name.lower() not in NO_WORD_COLOURS]
    else:
        chosen = []
        for word in words:
            word = word.strip()
            if word.lower() not in lower:
                raise UsageError(f"word '{word}' is not a palette colour ({', '.join(pal)}): every word must name one")
            if lower[word.lower()] in chosen:
                raise UsageError(f"word '{word}' is given twice: give each word once")
            chosen.append(lower[word.lower()])
    if not chosen:
        raise UsageError("no colour word to show: add colours other than black to the palette, or pass words")
    neutral = (neutral or "").strip()
    if not neutral:
        raise UsageError("the neutral word is empty: use e.g. 'example'")
    if neutral.lower() in lower:
        raise UsageError(f"neutral word '{neutral}' is a palette colour: pick a word that names no colour, e.g. 'example'")
    bg = parse_color(background, "background")
    for name, rgb in pal.items():
        if rgb == bg:
            raise UsageError(f"ink '{name}' ({hex_colour(rgb)}) is the background colour: change --background or the palette")
    return StroopDesign(pal, tuple(chosen), neutral, tuple(parse_fonts(fonts)), tuple(parse_sizes(sizes)), bg)


def stroop_stimuli(design: StroopDesign | None = None, **design_options: Any) -> list[StroopStimulus]:
    """Every stimulus, ordered font, size, ink (palette order), word (colour words, then neutral).

    Per font x size: ``len(palette) * (len(words) + 1)`` stimuli (64 with the default palette).
    ``design_options`` are passed to ``stroop_design`` when no design is given.
    """
    design = design if design is not None else stroop_design(**design_options)
    stimuli = []
    for font in design.fonts:
        for size in design.sizes:
            for ink in design.palette:
                for word in design.columns:
                    colour = None if word == design.neutral else word
                    stimuli.append(StroopStimulus(word, ink, font.name, size, colour))
    return stimuli
