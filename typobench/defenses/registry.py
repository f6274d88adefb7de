"""Every defense kind, and the one way to make a defense from its spec (command line) or table (suite)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.registry import Registry
from typobench.defenses.ablate import AblateDefense
from typobench.defenses.base import Defense
from typobench.defenses.interpolate import InterpolateDefense
from typobench.defenses.pixels import InputDefense
from typobench.defenses.project import ProjectDefense
from typobench.defenses.prompt import PromptDefense
from typobench.defenses.spec import SpecFields, format_spec, split_spec

DEFENSES: Registry[type[Defense]] = Registry("defense kind", "typobench list defenses", declares=Defense.DECLARED)
for _kind in (AblateDefense, PromptDefense, InterpolateDefense, InputDefense, ProjectDefense):
    DEFENSES.add(_kind.kind, _kind)


def list_defenses() -> list[dict[str, Any]]:
    """Each kind with its fields and a one-line summary."""
    return [{"kind": kind, "fields": list(cls.fields), "summary": cls.summary} for kind, cls in DEFENSES.items()]


def create_defense(spec: str | Mapping[str, Any], where: str | None = None, base_dir: Path | None = None) -> Defense:
    """A defense from ``KIND:KEY=VALUE,...`` or from a table ``{"kind": KIND, KEY: VALUE, ...}``.

    Errors are one line that names the field (``where`` says where the spec was written). Relative file names
    are read from ``base_dir`` (the folder of the suite that holds the spec) when given."""
    if isinstance(spec, str):
        where = where or f"--defense '{spec}'"
        kind, values = split_spec(spec)
        text = spec.strip()
    elif isinstance(spec, Mapping):
        where = where or "defense"
        values = dict(spec)
        kind = values.pop("kind", None)
        if not isinstance(kind, str):
            raise UsageError(f"{where}: field 'kind' is required: one of {', '.join(DEFENSES.names())}")
        text = format_spec(kind, values)
    else:
        raise UsageError(f"{where or 'defense'}: expected a spec string or a table, got {type(spec).__name__}")
    if kind not in DEFENSES:
        raise UsageError(f"{where}: field 'kind': {DEFENSES.unknown(kind)}")
    cls = DEFENSES.get(kind)
    fields = SpecFields(values, where, base_dir)
    fields.check_known(cls.fields)
    return cls.from_fields(text, fields)


def parse_defenses(specs: Sequence[str | Mapping[str, Any]] | None, where: str | None = None,
                   base_dir: Path | None = None) -> list[Defense]:
    """Defenses in the order given (``where``: where a list of tables was written, e.g. ``suite X: defense``;
    ``base_dir``: the folder relative file names are read from, see :func:`create_defense`)."""
    specs = list(specs or ())
    return [create_defense(spec, f"{where}[{i}]" if where and len(specs) > 1 else where, base_dir)
            for i, spec in enumerate(specs)]


__all__ = ["DEFENSES", "create_defense", "list_defenses", "parse_defenses"]
