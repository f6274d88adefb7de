"""The suite schema, declared once per stage kind.

A :class:`StageSchema` says which keys a ``[[stage]]`` of its kind takes, which sub-tables it has
(``[stage.style]``) and their keys, which ``[defaults.X]`` tables it reads, how to build the stage, and
the rules an edit must follow (setting ``size`` drops ``size_range``). Parsing (``suite.parse_suite``),
the unknown-field errors that name the field, the parameter paths of sweeps and overrides
(``suites.edit``) and writing a suite back to TOML all read it from here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from typobench.core.registry import Registry
from typobench.stages.base import Stage
from typobench.suites.fields import Table

COMMON_FIELDS = ("name", "kind", "source")
# edit(stage_or_table, table_name, key, value): what else changes when a sweep sets ``key``.
EditRule = Callable[[dict, "str | None", str, Any], None]


@dataclass(frozen=True)
class StageSchema:
    """One stage kind as a suite file writes it.

    ``fields``: keys of the ``[[stage]]`` itself besides name, kind and source.
    ``tables``: sub-tables (``style``, ``placement``) and the keys each accepts.
    ``defaults``: the ``[defaults.X]`` tables this kind reads; X is a sub-table (copied into it) or the
    kind itself (copied into the stage's own fields). A stage's own value always wins.
    ``group_tables``: sub-tables whose keys the kind's own parameter group also accepts
    (``text.size`` == ``style.size``).
    """

    kind: str
    build: Callable[[Table, str, str], Stage]
    fields: tuple[str, ...] = ()
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: tuple[str, ...] = ()
    group_tables: tuple[str, ...] = ()
    edit: EditRule | None = None

    @property
    def stage_keys(self) -> tuple[str, ...]:
        """Every key a ``[[stage]]`` of this kind may hold."""
        return (*COMMON_FIELDS, *self.fields, *self.tables)

    def finish(self, table: Table) -> None:
        """Reject the keys of a ``[[stage]]`` this kind does not take (the suite reader has read name, kind
        and source; a builder reads the rest)."""
        for key in COMMON_FIELDS:
            table.raw(key, None)
        table.finish(self.stage_keys)

    def groups(self) -> dict[str, tuple[str | None, tuple[str, ...]]]:
        """Parameter groups of sweep paths: ``{group: (table or None, keys)}``; the kind's own group
        holds its fields (and the keys of ``group_tables``), each sub-table is a group of its own."""
        out: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        own = (*self.fields, *(k for t in self.group_tables for k in self.tables[t]))
        if own:
            out[self.kind] = (None, own)
        for name, keys in self.tables.items():
            out[name] = (name, keys)
        return out

    def table_of(self, group: str, key: str) -> str | None:
        """The sub-table a ``group.key`` path writes into (None: the stage's own field)."""
        table, _ = self.groups()[group]
        if table is None:
            table = next((t for t in self.group_tables if key in self.tables[t]), None)
        return table


def defaults_tables(schemas: Iterable[StageSchema]) -> tuple[str, ...]:
    """Every ``[defaults.X]`` name any kind reads, in declaration order."""
    return tuple(dict.fromkeys(name for schema in schemas for name in schema.defaults))


def expand_defaults(raw: Mapping[str, Any], schemas: Registry[StageSchema],
                    only: Iterable[str] | None = None) -> dict[str, Any]:
    """A copy of the suite with ``[defaults.X]`` copied into every stage that reads it, then removed.

    ``only`` limits this to some X (the others stay in ``[defaults]``). Values that are not tables are
    left where they are: parsing reports them, naming the field.
    """
    out = copy.deepcopy(dict(raw))
    defaults = out.get("defaults")
    stages = out.get("stage")
    if not isinstance(defaults, dict) or not isinstance(stages, list):
        return out
    names = [n for n in defaults if (only is None or n in set(only)) and isinstance(defaults[n], dict)]
    for name in names:
        shared = defaults.pop(name)
        for stage in stages:
            kind = stage.get("kind") if isinstance(stage, dict) else None
            schema = schemas.get(kind) if kind in schemas else None
            if schema is None or name not in schema.defaults:
                continue
            if name in schema.tables:
                own = stage.get(name, {})
                if isinstance(own, dict):
                    stage[name] = {**shared, **own}
            else:
                for key, value in shared.items():
                    stage.setdefault(key, value)
    if not defaults:
        out.pop("defaults")
    return out


__all__ = ["COMMON_FIELDS", "StageSchema", "defaults_tables", "expand_defaults"]
