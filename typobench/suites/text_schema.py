"""The ``text`` stage as a suite writes it: ``words``/``text``/``word_list``/``target`` and the
``[stage.style]`` and ``[stage.placement]`` tables (``[defaults.style]``/``[defaults.placement]`` apply)."""

from __future__ import annotations

from typing import Any

from typobench.stages.text import StyleSampler, TextStage, WordChoice, WORD_MODES
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema
from typobench.typographic import Placement, TextStyle, create_placement, list_placements, placement_parameters


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


def build_text_stage(table: Table, name: str, source: str) -> TextStage:
    words, word_info = parse_words(table)
    style, style_info = parse_style(table.table("style", {}))
    placement, placement_info = parse_placement(table.table("placement", {}))
    target = table.str("target", "none")
    SCHEMA.finish(table)
    description = {**word_info, "target": target, "style": style_info, "placement": placement_info}
    return TextStage(name, source, words, style, placement, target=target, description=description)


# Setting the key removes these from the same table (a per-sample list or range would override it).
STYLE_CONFLICTS = {"size": "size_range", "size_range": "size", "rotation": "rotation_range",
                   "rotation_range": "rotation", "font": "fonts", "fonts": "font", "fill": "fills",
                   "fills": "fill", "stroke": "strokes", "strokes": "stroke"}


def edit_text_stage(table: dict, table_name: str | None, key: str, value: Any) -> None:
    """What else an edit of ``key`` changes, so the edited stage means what the edit says."""
    if table_name == "style" and key in STYLE_CONFLICTS:
        table.pop(STYLE_CONFLICTS[key], None)
    elif table_name == "placement" and key == "policy":
        accepted = placement_parameters(str(value))
        if accepted or str(value) in list_placements():  # an unknown policy is named by parsing
            for extra in [k for k in table if k not in accepted and k != "policy"]:
                del table[extra]
    elif table_name is None and key == "text":
        table["words"] = "fixed"
        table.pop("word_list", None)
    elif table_name is None and key == "word_list":
        table["words"] = "word-list"
        table.pop("text", None)
    elif table_name is None and key == "words":
        if value != "fixed":
            table.pop("text", None)
        if value != "word-list":
            table.pop("word_list", None)


SCHEMA = StageSchema(
    kind="text",
    build=build_text_stage,
    fields=("words", "text", "word_list", "target"),
    tables={"style": STYLE_FIELDS, "placement": ("policy", *placement_parameters())},
    defaults=("style", "placement"),
    group_tables=("style",),
    edit=edit_text_stage,
)
