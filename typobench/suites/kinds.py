"""Every stage kind a suite can name, with its schema (the one place a new kind is registered)."""

from __future__ import annotations

from typobench.stages.base import CleanStage, Stage
from typobench.suites import paste_schema, pgd_schema, text_schema
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema


def build_clean_stage(table: Table, name: str, source: str) -> Stage:
    table.raw("name"), table.raw("kind"), table.raw("source", None)
    table.finish(["name", "kind"])
    return CleanStage(name)


CLEAN_SCHEMA = StageSchema(kind="clean", build=build_clean_stage)

STAGE_SCHEMAS: dict[str, StageSchema] = {
    schema.kind: schema for schema in (CLEAN_SCHEMA, text_schema.SCHEMA, pgd_schema.SCHEMA, paste_schema.SCHEMA)
}

__all__ = ["STAGE_SCHEMAS"]
