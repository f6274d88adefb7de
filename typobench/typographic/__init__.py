"""Typographic attacks: render text patches, place them, and composite them onto images.

Typical use::

    style = TextStyle("iPod", font="sans-bold", size=0.2, fill="black", box="white")
    patch = render_patch(style, image_side=224)           # [4, h, w], cached, read-only
    policy = create_placement("random_off_center", center_fraction=0.5)
    records = [policy.place(patch.shape[-2:], (224, 224), sample_id=i, seed=0) for i in ids]
    attacked, canvas = apply_patches(images, [patch] * len(ids), records)
"""

from __future__ import annotations

from typobench.typographic.composite import (
    DEFAULT_CHANGE_TOL,
    alpha_coverage,
    apply_patches,
    build_canvas,
    canvas_from_records,
    canvas_mask,
    composite,
    pixel_fraction,
)
from typobench.typographic.fonts import (
    FontSpec,
    list_font_families,
    list_fonts,
    matplotlib_font_dir,
    resolve_font,
)
from typobench.typographic.geometry import center_box
from typobench.typographic.placement import (
    Placement,
    PlacementRecord,
    create_placement,
    default_grid,
    list_placements,
    placement_parameters,
)
from typobench.typographic.render import (
    RenderCacheInfo,
    TextStyle,
    clear_render_cache,
    parse_color,
    render_cache_info,
    render_patch,
)
from typobench.typographic.seeding import SampleStream, derive_seed, sample_generator, sample_rng

__all__ = [
    "DEFAULT_CHANGE_TOL",
    "FontSpec",
    "Placement",
    "PlacementRecord",
    "RenderCacheInfo",
    "SampleStream",
    "TextStyle",
    "alpha_coverage",
    "apply_patches",
    "build_canvas",
    "canvas_from_records",
    "canvas_mask",
    "center_box",
    "clear_render_cache",
    "composite",
    "create_placement",
    "default_grid",
    "derive_seed",
    "list_font_families",
    "list_fonts",
    "list_placements",
    "placement_parameters",
    "matplotlib_font_dir",
    "parse_color",
    "pixel_fraction",
    "render_cache_info",
    "render_patch",
    "resolve_font",
    "sample_generator",
    "sample_rng",
]
