"""Editing a suite by parameter path: what sweeps (``typobench sweep --vary``) and :func:`override` use.

Parameter paths::

    GROUP.KEY              every stage the group reaches
    STAGE.GROUP.KEY        one stage; STAGE is its name, ``stage.NAME`` or ``stage[i]`` (its index)

The groups come from the stage schemas (``suites.schema``): each kind's own fields (``text.words``,
``pgd.eps``, ``paste.shift``; ``text.KEY`` also takes the style keys) and each sub-table
(``style.size``, ``placement.policy``; ``placement.copies`` is an alias of ``placement.n``).

An override edits the parsed TOML of the suite, then the edited suite goes through ``parse_suite``
again, so every value is checked by the same field checks as a suite file, and each edited suite
records the sha256 of its own text. Before an edit the ``[defaults.*]`` table it touches is copied
into every stage that reads it (``schema.expand_defaults``, exactly what parsing does), so a value set
on a stage is never undone by a default. The schema's edit rule keeps the stage meaningful: setting
``size`` drops ``size_range``, ``placement.policy`` drops the parameters the new policy does not
accept, ``text`` sets ``words = "fixed"``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typobench.core.errors import UsageError, close_matches
from typobench.suites.files import resolve_suite_path
from typobench.suites.kinds import STAGE_SCHEMAS
from typobench.suites.schema import StageSchema, expand_defaults
from typobench.suites.suite import Suite, parse_suite
from typobench.suites.toml_writer import to_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEY_ALIASES = {("placement", "copies"): "n"}


def _group_schemas() -> dict[str, StageSchema]:
    """Every parameter group and the stage kind it belongs to."""
    return {group: schema for schema in STAGE_SCHEMAS.values() for group in schema.groups()}


GROUPS = _group_schemas()


@dataclass(frozen=True)
class ParamTarget:
    """Where a parameter path writes: stage indices, the table inside each stage, and the key."""

    path: str
    stages: tuple[int, ...]
    table: str | None  # a sub-table ("style", "placement"), or None for a field of the stage itself
    key: str


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


def format_point(point: Mapping[str, Any]) -> str:
    """``path=value, ...`` of a set of edits (a sweep's grid point)."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in point.items()) or "(suite as written)"


@dataclass(frozen=True)
class SuiteSpec:
    """A suite as TOML data that can be edited (:func:`override`) and then built into a :class:`Suite`.

    ``text`` is the exact TOML the suite is built from: the file's bytes when nothing was overridden,
    so an unmodified suite keeps the sha256 of its published file.
    """

    raw: dict[str, Any]
    text: bytes
    source: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return str(self.raw.get("name", "suite"))

    def build(self) -> Suite:
        try:
            return parse_suite(self.text, where=f"suite {self.name}", path=self.source)
        except UsageError as exc:
            if not self.overrides:
                raise
            raise UsageError(f"{exc} (with {format_point(dict(self.overrides))})") from exc

    def stage_kinds(self) -> list[tuple[str, str]]:
        return [(str(s.get("name", f"stage[{i}]")), str(s.get("kind", "?"))) for i, s in enumerate(_stages(self.raw))]


def spec_from_bytes(data: bytes, source: str = "suite") -> SuiteSpec:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{source}: not valid TOML ({exc}); fix the file") from exc
    spec = SuiteSpec(raw, data, source)
    spec.build()  # every field checked now, not at the first grid point
    return spec


def load_spec(name_or_path: str) -> SuiteSpec:
    """A suite by name (``typobench list suites``) or path, as an editable :class:`SuiteSpec`."""
    path = resolve_suite_path(name_or_path)
    return spec_from_bytes(path.read_bytes(), str(path))


def spec_from_dict(data: Mapping[str, Any], source: str = "suite") -> SuiteSpec:
    return spec_from_bytes(to_toml(data).encode("utf-8"), source)


def _stages(raw: Mapping[str, Any]) -> list[dict]:
    stages = raw.get("stage", [])
    return [s for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []


def parameter_paths(spec: SuiteSpec) -> dict[str, list[str]]:
    """The groups this suite has (``GROUP.KEY`` paths), each with the names of the stages it reaches."""
    kinds = spec.stage_kinds()
    out: dict[str, list[str]] = {}
    for group, schema in GROUPS.items():
        names = [name for name, kind in kinds if kind == schema.kind]
        if names:
            out[group] = names
    return out


def group_keys(group: str) -> tuple[str, ...]:
    """The keys ``group.KEY`` accepts."""
    return GROUPS[group].groups()[group][1]


def _valid_paths_text(spec: SuiteSpec) -> str:
    groups = parameter_paths(spec)
    if not groups:
        return f"suite {spec.name} has no stage with parameters to vary"
    aliases = {(g, k): f"{k} (or {alias})" for (g, alias), k in KEY_ALIASES.items()}
    parts = [f"{group}.KEY with KEY " + ", ".join(aliases.get((group, k), k) for k in group_keys(group))
             for group in groups]
    stages = ", ".join(f"{name} ({kind})" for name, kind in spec.stage_kinds() if kind in STAGE_SCHEMAS
                       and STAGE_SCHEMAS.get(kind).groups())
    return (f"valid paths for suite {spec.name}: " + "; ".join(parts)
            + f"; or STAGE.GROUP.KEY for one stage, STAGE one of: {stages}")


def _unknown_path(spec: SuiteSpec, path: str, why: str, hint: Sequence[str] = ()) -> UsageError:
    suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
    return UsageError(f"unknown parameter path '{path}' ({why}): {suggestion}{_valid_paths_text(spec)}")


def resolve_path(spec: SuiteSpec, path: str) -> ParamTarget:
    """Which stages and field ``path`` changes in ``spec``; ``UsageError`` naming it (and the valid ones) if none."""
    parts = path.strip().split(".")
    if len(parts) < 2 or not all(parts[-2:]):
        raise _unknown_path(spec, path, "expected GROUP.KEY or STAGE.GROUP.KEY")
    group, key = parts[-2], parts[-1]
    stage_ref = ".".join(parts[:-2]) or None
    kinds = spec.stage_kinds()
    if group not in GROUPS:
        every = [f"{g}.{k}" for g in parameter_paths(spec) for k in group_keys(g)]
        raise _unknown_path(spec, path, f"no group '{group}'", close_matches(f"{group}.{key}", every, n=3))
    schema = GROUPS[group]
    key = KEY_ALIASES.get((group, key), key)
    keys = group_keys(group)
    if key not in keys:
        raise _unknown_path(spec, path, f"group {group} has no key '{key}'",
                            [f"{group}.{k}" for k in close_matches(key, keys, n=3)])
    if stage_ref is None:
        indices = tuple(i for i, (_, kind) in enumerate(kinds) if kind == schema.kind)
        if not indices:
            raise _unknown_path(spec, path, f"suite {spec.name} has no {schema.kind} stage")
    else:
        index = _stage_index(kinds, stage_ref)
        if index is None:
            names = [name for name, _ in kinds]
            raise _unknown_path(spec, path, f"no stage '{stage_ref}' in suite {spec.name}",
                                [f"{n}.{group}.{key}" for n in close_matches(stage_ref, names, n=3)])
        if kinds[index][1] != schema.kind:
            raise _unknown_path(spec, path, f"stage '{kinds[index][0]}' is a {kinds[index][1]} stage and "
                                            f"{group}.* applies to {schema.kind} stages")
        indices = (index,)
    return ParamTarget(path, indices, schema.table_of(group, key), key)


def _stage_index(kinds: list[tuple[str, str]], ref: str) -> int | None:
    names = [name for name, _ in kinds]
    if ref in names:
        return names.index(ref)
    if ref.startswith("stage.") and ref[6:] in names:
        return names.index(ref[6:])
    match = re.fullmatch(r"stage\[(\d+)\]", ref)
    if match and int(match.group(1)) < len(kinds):
        return int(match.group(1))
    return None


def override(spec: SuiteSpec, params: Mapping[str, Any]) -> SuiteSpec:
    """A copy of ``spec`` with every ``path: value`` of ``params`` applied (see the module doc), validated."""
    if not params:
        return spec
    raw = spec.raw
    for path, value in params.items():
        raw = _apply(raw, resolve_path(spec, path), value)
    new = SuiteSpec(raw, to_toml(raw).encode("utf-8"), spec.source, spec.overrides + tuple(params.items()))
    new.build()
    return new


def _apply(raw: Mapping[str, Any], target: ParamTarget, value: Any) -> dict[str, Any]:
    """A copy of ``raw`` with ``target`` set to ``value`` in each of its stages."""
    schema = STAGE_SCHEMAS.get(raw["stage"][target.stages[0]]["kind"])
    reads = target.table if target.table is not None else schema.kind
    edited = expand_defaults(raw, STAGE_SCHEMAS, only=[reads] if reads in schema.defaults else [])
    for index in target.stages:
        stage = edited["stage"][index]
        table = stage.setdefault(target.table, {}) if target.table else stage
        if not isinstance(table, dict):  # parse_suite reports it, naming the field
            continue
        table[target.key] = value
        if schema.edit is not None:
            schema.edit(table, target.table, target.key, value)
    return edited


__all__ = ["GROUPS", "KEY_ALIASES", "ParamTarget", "SuiteSpec", "format_point", "format_value", "group_keys",
           "load_spec", "override", "parameter_paths", "resolve_path", "spec_from_bytes", "spec_from_dict"]
