"""Fonts and text-patch rendering."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib
import pytest
import torch

from typobench.core.errors import UsageError
from typobench.typographic import (
    TextStyle,
    clear_render_cache,
    list_font_families,
    list_fonts,
    render_cache_info,
    render_patch,
    resolve_font,
)

# -- fonts ----------------------------------------------------------------------------------


def test_builtin_fonts_resolve_inside_matplotlib_without_system_fonts():
    data_dir = Path(matplotlib.get_data_path()).resolve()
    names = list_fonts()
    for required in ("sans", "serif", "mono", "sans-bold", "serif-bold", "mono-bold", "stix", "cm-serif", "sans-oblique"):
        assert required in names
    for name in names:
        spec = resolve_font(name)
        path = Path(spec.path).resolve()
        assert path.is_file()
        assert data_dir in path.parents, f"{name} resolved outside matplotlib: {path}"
        assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_font_families_group_variants_and_offer_several_distinct_faces():
    families = list_font_families()
    assert len(families) >= 5  # a training step holds one whole family out and still needs several
    assert {"sans", "sans-bold", "sans-oblique"} <= set(families["dejavu-sans"])
    assert sorted(n for names in families.values() for n in names) == list_fonts()
    # distinct faces really are distinct files
    assert len({resolve_font(names[0]).sha256 for names in families.values()}) == len(families)


def test_font_to_dict_records_name_and_hash():
    record = resolve_font("serif").to_dict()
    assert record["name"] == "serif"
    assert len(record["sha256"]) == 64
    json.dumps(record)


def test_font_names_are_case_insensitive_and_aliases_resolve():
    assert resolve_font("SANS").name == "sans"
    assert resolve_font("cmr10").name == "cm-serif"


def test_unknown_font_raises_usage_error_with_close_match():
    with pytest.raises(UsageError, match="sans") as info:
        resolve_font("sanz")
    assert "sanz" in str(info.value)
    with pytest.raises(UsageError, match="serif"):
        TextStyle("cat", font="serf")


def test_font_file_path_is_accepted_and_hashed(tmp_path):
    builtin = resolve_font("mono")
    spec = resolve_font(builtin.path)
    assert spec.sha256 == builtin.sha256
    assert spec.family == Path(builtin.path).stem
    assert render_patch(TextStyle("cat", font=builtin.path, size=12), 64).shape[0] == 4
    with pytest.raises(UsageError, match="does not exist"):
        resolve_font(tmp_path / "missing.ttf")
    not_font = tmp_path / "notes.txt"
    not_font.write_text("x")
    with pytest.raises(UsageError, match=r"\.ttf"):
        resolve_font(str(not_font))


# -- style ----------------------------------------------------------------------------------


def test_size_fraction_resolves_against_image_side():
    style = TextStyle("cat", size=0.25)
    assert style.resolve_size(64) == 16
    assert style.resolve_size(224) == 56
    assert style.resolve_size(2) == 1  # never zero
    assert TextStyle("cat", size=12).resolve_size(224) == 12
    small, large = render_patch(style, 32), render_patch(style, 128)
    assert large.shape[1] > 3 * small.shape[1]


def test_style_canonicalises_colours_and_equal_styles_are_equal():
    a = TextStyle("cat", fill="red", box="#ffffff")
    b = TextStyle("cat", fill=(255, 0, 0), box=(255, 255, 255))
    assert a == b and hash(a) == hash(b)
    assert a.fill == (255, 0, 0)
    assert TextStyle("cat", rotation=360) == TextStyle("cat", rotation=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"text": "  "}, "empty"),
        ({"text": "cat", "fill": "not-a-colour"}, "fill"),
        ({"text": "cat", "fill": (300, 0, 0)}, "fill"),
        ({"text": "cat", "box": "#ff000080"}, "opacity"),
        ({"text": "cat", "opacity": 1.5}, "opacity"),
        ({"text": "cat", "size": 0}, "size"),
        ({"text": "cat", "size": 1.5}, "size"),
        ({"text": "cat", "stroke_width": 2}, "stroke"),
        ({"text": "cat", "align": "middle"}, "align"),
        ({"text": "猫", "font": "sans"}, "glyph"),
    ],
)
def test_bad_style_raises_usage_error(kwargs, match):
    with pytest.raises(UsageError, match=match):
        TextStyle(**kwargs)


def test_style_to_dict_is_json_ready_with_resolved_sizes():
    record = TextStyle("cat", size=0.25, stroke="white", box="black").to_dict(image_side=64)
    json.dumps(record)
    assert record["resolved"]["font_px"] == 16
    assert record["resolved"]["stroke_px"] >= 1
    assert record["font_spec"]["sha256"] == resolve_font("sans").sha256


# -- rendering ------------------------------------------------------------------------------


def test_patch_is_rgba_float32_in_unit_range_with_antialiasing():
    patch = render_patch(TextStyle("Typographic", size=20, fill="blue"), 224)
    assert patch.dtype == torch.float32 and patch.dim() == 3 and patch.shape[0] == 4
    assert patch.min() >= 0 and patch.max() <= 1
    alpha = patch[3]
    assert alpha.max() == 1.0 and alpha.min() == 0.0
    assert ((alpha > 0) & (alpha < 1)).any(), "anti-aliased edges have partial alpha"
    # straight (not premultiplied) colour: every inked pixel is pure blue, even at the edges
    inked = alpha > 0
    assert torch.allclose(patch[:3, inked], torch.tensor([0.0, 0.0, 1.0])[:, None])


def test_multiline_text_is_taller_than_single_line():
    one = render_patch(TextStyle("cat", size=16), 224)
    two = render_patch(TextStyle("cat\ncat", size=16), 224)
    assert two.shape[1] > 1.8 * one.shape[1]
    assert abs(two.shape[2] - one.shape[2]) <= 1


def test_stroke_changes_the_patch():
    plain = render_patch(TextStyle("cat", size=24, fill="black"), 224)
    stroked = render_patch(TextStyle("cat", size=24, fill="black", stroke="white", stroke_width=2), 224)
    assert stroked.shape[1] >= plain.shape[1] + 4 and stroked.shape[2] >= plain.shape[2] + 4
    assert (stroked[3] > 0).sum() > (plain[3] > 0).sum()
    # the outline is white, the fill black: both colours present among opaque pixels
    opaque = stroked[:3, stroked[3] == 1]
    assert (opaque.sum(0) == 3).any() and (opaque.sum(0) == 0).any()


def test_sticker_box_is_opaque_and_padded():
    plain = render_patch(TextStyle("cat", size=24), 224)
    boxed = render_patch(TextStyle("cat", size=24, box="yellow", padding=5), 224)
    assert boxed.shape[1:] == (plain.shape[1] + 10, plain.shape[2] + 10)
    assert torch.all(boxed[3] == 1)
    assert torch.allclose(boxed[:3, 0, 0], torch.tensor([1.0, 1.0, 0.0]))  # corner is box colour
    assert (plain[3] < 1).any()


def test_opacity_scales_alpha():
    full = render_patch(TextStyle("cat", size=24, box="white"), 224)
    half = render_patch(TextStyle("cat", size=24, box="white", opacity=0.5), 224)
    assert torch.allclose(half[3], full[3] * 0.5)
    assert torch.equal(half[:3], full[:3])


def test_rotation_changes_shape():
    flat = render_patch(TextStyle("typographic", size=20), 224)
    quarter = render_patch(TextStyle("typographic", size=20, rotation=90), 224)
    tilted = render_patch(TextStyle("typographic", size=20, rotation=30), 224)
    assert quarter.shape[1:] == (flat.shape[2], flat.shape[1])
    assert tilted.shape[1] > flat.shape[1] and tilted.shape[2] < flat.shape[2]
    assert tilted.min() >= 0 and tilted.max() <= 1


def test_different_fonts_render_differently():
    sans = render_patch(TextStyle("Typographic", font="sans", size=20), 224)
    serif = render_patch(TextStyle("Typographic", font="serif", size=20), 224)
    assert sans.shape != serif.shape or not torch.equal(sans, serif)


def test_render_cache_returns_same_object_without_rerendering():
    style = TextStyle("cache me", font="mono", size=0.2, fill="green")
    first = render_patch(style, 64)
    misses = render_cache_info().misses
    second = render_patch(style, 64)
    assert second is first
    assert render_cache_info().misses == misses
    # an equal style built separately (colour spelled differently) is the same cache entry
    assert render_patch(TextStyle("cache me", font="mono", size=0.2, fill=(0, 128, 0)), 64) is first
    # a different image side that resolves to a different font size renders anew
    assert render_patch(style, 128) is not first
    assert render_cache_info().misses == misses + 1


def test_render_cache_keys_on_resolved_pixels():
    # Sizes drawn per sample as fractions: those rounding to one font size share one render.
    a = render_patch(TextStyle("shared", size=0.25), 64)
    misses = render_cache_info().misses
    assert render_patch(TextStyle("shared", size=0.2501), 64) is a
    assert render_patch(TextStyle("shared", size=16), 64) is a
    assert render_cache_info().misses == misses
    assert render_patch(TextStyle("shared", size=17), 64) is not a


def test_clear_render_cache_forces_a_fresh_render():
    style = TextStyle("fresh", size=10)
    first = render_patch(style, 64)
    clear_render_cache()
    assert render_cache_info().currsize == 0
    second = render_patch(style, 64)
    assert second is not first and torch.equal(second, first)
