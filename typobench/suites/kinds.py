"""Every stage kind a suite can name, with its schema (the one place a new kind is registered)."""

from __future__ import annotations

from typobench.core.errors import UsageError
from typobench.core.registry import Registry
from typobench.stages.base import CleanStage, Stage
from typobench.stages.blank import BlankStage
from typobench.suites import (apgd_schema, fab_schema, paste_schema, pgd_schema, square_schema, text_schema,
                             worst_case_schema)
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema
from typobench.typographic.render import parse_color


def build_clean_stage(table: Table, name: str, source: str) -> Stage:
    table.raw("name"), table.raw("kind"), table.raw("source", None)
    table.finish(["name", "kind"])
    return CleanStage(name)


CLEAN_SCHEMA = StageSchema(kind="clean", build=build_clean_stage)


def build_blank_stage(table: Table, name: str, source: str) -> Stage:
    try:
        colour = parse_color(table.raw("colour", "white"))
    except UsageError as exc:
        raise table.error("colour", str(exc)) from None
    BLANK_SCHEMA.finish(table)
    return BlankStage(name, source, colour)


BLANK_SCHEMA = StageSchema(kind="blank", build=build_blank_stage, fields=("colour",))

STAGE_SCHEMAS: Registry[StageSchema] = Registry("stage kind", "the README's suite format")
for _schema in (CLEAN_SCHEMA, BLANK_SCHEMA, text_schema.SCHEMA, pgd_schema.SCHEMA, paste_schema.SCHEMA, apgd_schema.SCHEMA,
                square_schema.SCHEMA, fab_schema.SCHEMA, worst_case_schema.SCHEMA):
    STAGE_SCHEMAS.add(_schema.kind, _schema)

__all__ = ["STAGE_SCHEMAS"]
