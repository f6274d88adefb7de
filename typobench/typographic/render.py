"""Render text into an RGBA patch tensor, cached per style and resolved pixel size.

A patch is a float32 tensor ``[4, h, w]`` in ``[0, 1]``: channels 0-2 are straight (not
premultiplied) RGB, channel 3 is alpha. Anti-aliasing comes from FreeType's grey-level glyph
rendering; rotation resamples bicubically.

Cached patches are shared: ``render_patch`` returns the *same* tensor object for the same style and
size, so callers must treat it as read-only (``composite`` never modifies its inputs). Clone it
before any in-place edit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple, Union

import numpy as np
import torch

from typobench.core.errors import UsageError, quoted
from typobench.typographic.fonts import FontSpec, load_pil_font, missing_glyphs, resolve_font

RGB = tuple[int, int, int]
Color = Union[RGB, str]

RENDER_CACHE_SIZE = 4096
ALIGNMENTS = ("left", "center", "right")
# Stroke width used when a stroke colour is given without a width: thick enough to read as an
# outline at small sizes, thin enough not to swallow counters (the holes in "a", "e", "o").
AUTO_STROKE_FRACTION = 1 / 12


def parse_color(value: Any, what: str = "colour") -> RGB:
    """An ``(r, g, b)`` tuple of ints in 0..255 from a tuple/list or a PIL colour string ("red", "#f00")."""
    from PIL import ImageColor

    if isinstance(value, str):
        try:
            rgb = ImageColor.getrgb(value)
        except ValueError:
            raise UsageError(f"{what} '{value}' is not a colour: use a name like 'red', a hex code like '#ff0000' or an (r, g, b) tuple") from None
        if len(rgb) == 4:
            raise UsageError(f"{what} '{value}' has an alpha component: give an opaque colour and set opacity instead")
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    if isinstance(value, (tuple, list)) and len(value) == 3:
        channels = []
        for channel in value:
            ok = isinstance(channel, (int, float, np.integer, np.floating)) and not isinstance(channel, bool)
            if not ok or not float(channel).is_integer() or not 0 <= channel <= 255:
                raise UsageError(f"{what} {tuple(value)!r} must hold three integers in 0..255 (or use a name like 'red')")
            channels.append(int(channel))
        return (channels[0], channels[1], channels[2])
    raise UsageError(f"{what} {value!r} is not a colour: use a name like 'red', a hex code like '#ff0000' or an (r, g, b) tuple")


def _is_fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 < value < 1.0


def _check_length(value: Any, what: str, allow_zero: bool) -> int | float:
    """Validate a length given as int pixels or as a float fraction in (0, 1)."""
    if isinstance(value, bool):
        raise UsageError(f"{what} must be an int (pixels) or a float in (0, 1) (fraction), got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < (0 if allow_zero else 1):
            raise UsageError(f"{what} must be {'>= 0' if allow_zero else '>= 1'} pixels, got {value}")
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if _is_fraction(value):
            return value
        if value.is_integer() and value >= (0 if allow_zero else 1):
            return int(value)  # 12.0 means 12 pixels, same cache key as 12
    raise UsageError(f"{what} must be an int (pixels) or a float in (0, 1) (fraction), got {value!r}")


@dataclass(frozen=True)
class TextStyle:
    """How to draw a piece of text. Frozen and hashable: it is the render-cache key.

    Attributes:
        text: the text; ``"\\n"`` separates lines.
        font: a registry name from ``list_fonts()`` or a ``.ttf``/``.otf`` path; stored canonical.
        size: font size (pixels per em) as an int, or a float in (0, 1) meaning that fraction of
            the image side (see ``resolve_size``), so one style scales across 32 px and 224 px.
        fill: text colour, ``(r, g, b)`` in 0..255 or a name/hex string; stored as a tuple.
        stroke: outline colour, or None for no outline.
        stroke_width: outline width, int pixels or a float in (0, 1) = fraction of the font size;
            None means ``AUTO_STROKE_FRACTION`` of the font size (at least 1 px) when ``stroke`` is set.
        box: sticker background colour, or None for text only.
        padding: margin between text and sticker edge, int pixels or fraction of the font size.
        opacity: multiplies the patch alpha, in [0, 1].
        rotation: degrees, counter-clockwise; the patch grows to hold the rotated content.
        align: alignment of multi-line text: "left", "center" or "right".
        line_spacing: extra gap between lines, as a fraction of the font size.
    """

    text: str
    font: str = "sans"
    size: int | float = 0.25
    fill: Color = (0, 0, 0)
    stroke: Color | None = None
    stroke_width: int | float | None = None
    box: Color | None = None
    padding: int | float = 0.2
    opacity: float = 1.0
    rotation: float = 0.0
    align: str = "center"
    line_spacing: float = 0.2

    def __post_init__(self) -> None:
        # Canonicalise every field so equal-looking styles ("red" and (255, 0, 0)) share a cache entry.
        set_ = functools.partial(object.__setattr__, self)
        if not isinstance(self.text, str) or not self.text.strip():
            raise UsageError(f"text {self.text!r} is empty: give at least one visible character")
        font = resolve_font(self.font)
        set_("font", font.name)
        missing = missing_glyphs(font, self.text)
        if missing:
            raise UsageError(f"font '{font.name}' has no glyph for {missing!r} in text {quoted(self.text)}: pick another font from `typobench.typographic.list_fonts()`")
        set_("size", _check_length(self.size, "size", allow_zero=False))
        set_("fill", parse_color(self.fill, "fill"))
        set_("stroke", None if self.stroke is None else parse_color(self.stroke, "stroke"))
        if self.stroke_width is not None:
            set_("stroke_width", _check_length(self.stroke_width, "stroke_width", allow_zero=True))
            if self.stroke is None and self.stroke_width != 0:
                raise UsageError(f"stroke_width={self.stroke_width} has no stroke colour: set stroke, e.g. stroke='white'")
        set_("box", None if self.box is None else parse_color(self.box, "box"))
        set_("padding", _check_length(self.padding, "padding", allow_zero=True))
        opacity = float(self.opacity)
        if not 0.0 <= opacity <= 1.0:
            raise UsageError(f"opacity must be in [0, 1], got {self.opacity!r}")
        set_("opacity", opacity)
        rotation = float(self.rotation)
        if not math.isfinite(rotation):
            raise UsageError(f"rotation must be a finite number of degrees, got {self.rotation!r}")
        rotation = rotation % 360.0
        set_("rotation", 0.0 if rotation == 0.0 else rotation)  # -0.0 and 360 share the key of 0
        if self.align not in ALIGNMENTS:
            raise UsageError(f"align '{self.align}' is not one of {', '.join(ALIGNMENTS)}")
        spacing = float(self.line_spacing)
        if not 0.0 <= spacing <= 10.0:
            raise UsageError(f"line_spacing must be in [0, 10] (fraction of the font size), got {self.line_spacing!r}")
        set_("line_spacing", spacing)

    # -- sizes ------------------------------------------------------------------------------
    def resolve_size(self, image_side: int) -> int:
        """Font size in pixels per em for an image whose side is ``image_side`` pixels (at least 1)."""
        if isinstance(self.size, float):
            if image_side < 1:
                raise UsageError(f"image_side must be >= 1 pixel, got {image_side}")
            return max(1, round(self.size * image_side))
        return self.size

    def stroke_px(self, font_px: int) -> int:
        """Outline width in pixels for a font of ``font_px`` pixels (0 when there is no outline)."""
        if self.stroke is None:
            return 0
        if self.stroke_width is None:
            return max(1, round(AUTO_STROKE_FRACTION * font_px))
        return _length_px(self.stroke_width, font_px)

    def padding_px(self, font_px: int) -> int:
        """Sticker padding in pixels for a font of ``font_px`` pixels (0 when there is no box)."""
        return 0 if self.box is None else _length_px(self.padding, font_px)

    # -- records ----------------------------------------------------------------------------
    def font_spec(self) -> FontSpec:
        return resolve_font(self.font)

    def replace(self, **changes: Any) -> TextStyle:
        """A copy with some fields changed (validated like a new style)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self, image_side: int | None = None) -> dict[str, Any]:
        """JSON-ready record: every field, the font's file hash and, given ``image_side``, the pixel sizes."""
        record: dict[str, Any] = dataclasses.asdict(self)
        for key in ("fill", "stroke", "box"):
            if record[key] is not None:
                record[key] = list(record[key])
        record["font_spec"] = self.font_spec().to_dict()
        if image_side is not None:
            font_px = self.resolve_size(image_side)
            record["resolved"] = {
                "image_side": int(image_side),
                "font_px": font_px,
                "stroke_px": self.stroke_px(font_px),
                "padding_px": self.padding_px(font_px),
            }
        return record


def _length_px(value: int | float, font_px: int) -> int:
    return round(value * font_px) if isinstance(value, float) else int(value)


# -- rendering ------------------------------------------------------------------------------


def render_patch(style: TextStyle, image_side: int) -> torch.Tensor:
    """The RGBA patch for ``style`` in an image of side ``image_side``: float32 ``[4, h, w]`` in [0, 1].

    RGB is straight (not premultiplied); alpha is channel 3 and already includes ``opacity``.
    The result is cached and shared between calls: do not modify it in place.
    """
    if not isinstance(style, TextStyle):
        raise UsageError(f"render_patch needs a TextStyle, got {type(style).__name__}")
    return _CACHE.get(style, style.resolve_size(int(image_side)))


class RenderCacheInfo(NamedTuple):
    hits: int
    misses: int  # = number of actual renders
    maxsize: int
    currsize: int


def render_cache_info() -> RenderCacheInfo:
    """Hits/misses of the render cache; ``misses`` counts actual renders."""
    return _CACHE.info()


def clear_render_cache() -> None:
    _CACHE.clear()


class _RenderCache:
    """LRU cache of rendered patches keyed by what the pixels depend on.

    The key uses resolved pixel sizes, not the style as written: styles whose fractional sizes
    round to the same font size (common when sizes are drawn per sample) share one render.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = 0

    @staticmethod
    def key(style: TextStyle, font_px: int) -> tuple:
        multiline = "\n" in style.text
        return (
            style.text, style.font, font_px, style.fill, style.stroke, style.stroke_px(font_px),
            style.box, style.padding_px(font_px), style.opacity, style.rotation,
            style.align if multiline else None,
            round(style.line_spacing * font_px) if multiline else None,
        )  # fmt: skip

    def get(self, style: TextStyle, font_px: int) -> torch.Tensor:
        key = self.key(style, font_px)
        with self._lock:
            patch = self._data.get(key)
            if patch is not None:
                self._data.move_to_end(key)
                self._hits += 1
                return patch
        rendered = torch.from_numpy(_render_numpy(style, font_px))  # outside the lock: slow
        with self._lock:
            self._misses += 1
            patch = self._data.setdefault(key, rendered)  # a racing thread's render wins if first
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return patch

    def info(self) -> RenderCacheInfo:
        with self._lock:
            return RenderCacheInfo(self._hits, self._misses, self.maxsize, len(self._data))

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0


_CACHE = _RenderCache(RENDER_CACHE_SIZE)


def _render_numpy(style: TextStyle, font_px: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    font = load_pil_font(style.font_spec().path, font_px)
    stroke = style.stroke_px(font_px)
    pad = style.padding_px(font_px)
    text_kwargs: dict[str, Any] = {
        "font": font,
        "spacing": round(style.line_spacing * font_px),
        "align": style.align,
        "stroke_width": stroke,
    }
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    bbox = probe.textbbox((0, 0), style.text, **text_kwargs)
    # Pillow may return fractional bounds; round outwards so no ink is cut off.
    left, top, right, bottom = math.floor(bbox[0]), math.floor(bbox[1]), math.ceil(bbox[2]), math.ceil(bbox[3])
    width, height = max(1, right - left + 2 * pad), max(1, bottom - top + 2 * pad)
    origin = (pad - left, pad - top)

    # Render coverage masks, not colours: rotating and resampling a mask cannot bleed the
    # (undefined) colour of transparent pixels into the glyph edges.
    def mask(stroke_fill: int | None) -> Image.Image:
        image = Image.new("L", (width, height), 0)
        # With a stroke, drawing the stroke in ink 0 then the fill in ink 255 yields the fill
        # coverage at exactly the layout the stroked call uses (same line offsets).
        ImageDraw.Draw(image).text(origin, style.text, fill=255, stroke_fill=stroke_fill, **text_kwargs)
        return image

    layers: list[tuple[RGB, Image.Image]] = []
    if style.box is not None:
        layers.append((style.box, Image.new("L", (width, height), 255)))
    if stroke:
        assert style.stroke is not None
        layers.append((style.stroke, mask(stroke_fill=255)))
        layers.append((style.fill, mask(stroke_fill=0)))
    else:
        layers.append((style.fill, mask(stroke_fill=None)))

    if style.rotation:
        from PIL.Image import Resampling

        layers = [(color, m.rotate(style.rotation, resample=Resampling.BICUBIC, expand=True, fillcolor=0)) for color, m in layers]

    # "Over" compositing of flat-colour layers, bottom to top, in premultiplied form.
    h, w = layers[0][1].size[1], layers[0][1].size[0]
    premult = np.zeros((3, h, w), dtype=np.float32)
    alpha = np.zeros((1, h, w), dtype=np.float32)
    for color, m in layers:
        cover = np.clip(np.asarray(m, dtype=np.float32) / 255.0, 0.0, 1.0)[None]  # bicubic overshoots
        rgb = (np.asarray(color, dtype=np.float32) / 255.0)[:, None, None]
        premult = rgb * cover + premult * (1.0 - cover)
        alpha = cover + alpha * (1.0 - cover)
    # Back to straight colour; fully transparent pixels take the fill colour (never read, but a
    # later resize then cannot pull dark fringes in from them).
    fill_rgb = np.broadcast_to((np.asarray(style.fill, dtype=np.float32) / 255.0)[:, None, None], premult.shape)
    safe = np.where(alpha > 0, alpha, 1.0)
    rgb = np.where(alpha > 0, np.clip(premult / safe, 0.0, 1.0), fill_rgb)
    return np.ascontiguousarray(np.concatenate([rgb, alpha * style.opacity], axis=0), dtype=np.float32)
