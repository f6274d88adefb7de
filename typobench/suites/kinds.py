"""Every stage kind a suite can name, with its schema.

A stage kind is one module ``typobench/suites/<kind>_schema.py`` whose ``SCHEMA`` (a :class:`StageSchema`) says how
a suite writes it and builds its stage; it is found here by its file name, with no line to add anywhere else. Its
stage class may live in the same module (it may import ``typobench.stages.base``) or, as the shipped kinds do, in
``typobench.stages`` beside the attack it runs, which never imports the suite reader.
"""

from __future__ import annotations

import importlib
import pkgutil

from typobench.core.errors import UsageError
from typobench.core.registry import Registry
from typobench.stages.base import CleanStage, Stage
from typobench.stages.blank import BlankStage
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

SCHEMA_SUFFIX = "_schema"


def schema_modules() -> list[str]:
    """The names of the ``typobench.suites.*_schema`` modules, sorted: one per stage kind besides clean and blank."""
    package = importlib.import_module(__package__)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.endswith(SCHEMA_SUFFIX))


STAGE_SCHEMAS: Registry[StageSchema] = Registry("stage kind", "the README's suite format")
for _schema in (CLEAN_SCHEMA, BLANK_SCHEMA,
                *(importlib.import_module(f"{__package__}.{name}").SCHEMA for name in schema_modules())):
    STAGE_SCHEMAS.add(_schema.kind, _schema)

__all__ = ["STAGE_SCHEMAS"]
