"""Options declared once: a dataclass field with :func:`option` metadata is the one place an option is written.

From that declaration follow its command-line flag (:func:`add_arguments`, with the help's ``(default: ...)``
written from the default itself), its suite-TOML key (:func:`read_table`), its validation (:func:`check`: one
line naming the option as the user wrote it, ``--top-k`` on the command line or ``neurons.top_k`` in a suite)
and its Python keyword argument (the dataclass field). The kind of value (bool, int, float, str, a list of
strings) comes from the field's annotation, so a new option is one field::

    @dataclass
    class Config:
        top_k: int = option(10, "blamed neurons to ablate", minimum=1)
        modes: tuple[str, ...] = option(("zero", "mean"), "ablation modes", choices=("zero", "mean"))
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from typobench.core.errors import UsageError

META = "typobench.option"
REQUIRED: Any = dataclasses.MISSING  # a command's ``defaults=`` value: this command requires the flag
NO_DEFAULT_SHOWN = object()  # ``shown=`` value: the help states no default (a default decided elsewhere)


@dataclass(frozen=True)
class Option:
    """How one option is written and checked. ``shown`` replaces the default in the help (``None``: the value);
    ``check`` returns a complaint about a value or None; ``const`` is the value of the flag given alone."""

    help: str | Callable[[], str]
    flag: str | None = None
    metavar: str | None = None
    group: str | None = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    check: Callable[[Any], str | None] | None = None
    shown: Any = None
    const: Any = None
    repeat: bool = False  # a list given as a repeated flag (``--stage A --stage B``), not comma-separated
    spaced: bool = False  # a list given as space-separated values after one flag (``--fonts a b``)
    separator: str = ","  # what joins a list given as one value (``--modes zero,mean``, ``--candidates a+b``)
    cli: bool = True
    toml: bool = True


def option(default: Any = dataclasses.MISSING, help: str | Callable[[], str] = "", *, factory: Any = None,
           **how: Any) -> Any:
    """A dataclass field declaring an option (see :class:`Option` for ``how``)."""
    meta = {META: Option(help=help, **how)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """One declared option of a dataclass: its name, value kind, default and :class:`Option`."""

    name: str
    kind: type  # bool, int, float, str or list (of strings)
    optional: bool  # None is a valid value
    default: Any
    how: Option

    @property
    def flag(self) -> str:
        if self.how.flag:
            return self.how.flag
        prefix = "--no-" if self.kind is bool and self.default is True else "--"
        return prefix + self.name.replace("_", "-")

    def default_text(self) -> str | None:
        if self.how.shown is NO_DEFAULT_SHOWN or self.default is dataclasses.MISSING:
            return None
        value = self.how.shown if self.how.shown is not None else self.default
        if value is None or self.kind is bool or value in ((), []):
            return None
        return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def declared(cls: type) -> Iterator[Declared]:
    """The options of dataclass ``cls`` in declaration order (fields without :func:`option` are skipped)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        how = field.metadata.get(META)
        if how is None:
            continue
        kind, optional = _kind(hints[field.name])
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        # (dataclasses.MISSING: a required option)
        yield Declared(field.name, kind, optional, default, how)


def _kind(annotation: Any) -> tuple[type, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _kind(inner[0])[0], True
    if typing.get_origin(annotation) in (list, tuple):
        return list, False
    return annotation, False


# -- the command line ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, cls: type, names: Sequence[str], *,
                  defaults: dict[str, Any] | None = None, helps: dict[str, str] | None = None,
                  groups: dict[str | None, Any] | None = None,
                  described: dict[str, str] | None = None) -> dict[str | None, Any]:
    """Flags for the options ``names`` of ``cls``, in their declared groups (``groups``: groups made already, by
    title; ``described``: the description of a group made here). ``defaults`` and ``helps`` are what this command does differently (its own default suite, say): the
    help states the default it runs with. Returns the groups by title, for flags that are no option of ``cls``."""
    defaults, helps = defaults or {}, helps or {}
    groups = groups if groups is not None else {}
    by_name = {d.name: d for d in declared(cls)}
    for name in names:
        item = by_name[name]
        if name in defaults:
            item = dataclasses.replace(item, default=defaults[name])
        group = item.how.group
        if group not in groups:
            groups[group] = parser.add_argument_group(group, (described or {}).get(group)) if group else parser
        groups[group].add_argument(item.flag, **_argparse_keywords(item, helps.get(name)))
    return groups


def _argparse_keywords(item: Declared, help_text: str | None) -> dict[str, Any]:
    text = help_text or (item.how.help() if callable(item.how.help) else item.how.help)
    shown = item.default_text()
    if shown is not None and "(default:" not in text:
        text += f" (default: {shown})"
    keywords: dict[str, Any] = {"dest": item.name, "help": text, "default": item.default}
    if item.default is dataclasses.MISSING:
        keywords = {"dest": item.name, "help": text, "required": True}
    if item.kind is bool:
        return {**keywords, "action": "store_false" if item.default is True else "store_true"}
    if item.how.metavar:
        keywords["metavar"] = item.how.metavar
    if item.how.const is not None:
        keywords.update(nargs="?", const=item.how.const)
    if item.kind is list:
        if item.how.repeat:
            return {**keywords, "action": "append", "default": None if item.default is None else list(item.default)}
        if item.how.spaced:
            return {**keywords, "nargs": "+"}
        return {**keywords, "type": _joined_list(item.how.choices, item.how.separator)}
    keywords["type"] = _checked(item)
    if item.how.choices:
        keywords["choices"] = item.how.choices
    return keywords


def _checked(item: Declared) -> Callable[[str], Any]:
    """The flag's value parsed as the option's kind and checked as it is declared, so that every command that
    has the flag (whether or not it builds the dataclass) refuses a bad value with argparse's one line."""
    parse = {int: int, float: float}.get(item.kind, str)

    def checked(text: str) -> Any:
        value = parse(text)
        complaint = None if item.how.choices else complaint_about(item, value)
        if complaint:
            raise argparse.ArgumentTypeError(complaint)
        return value

    checked.__name__ = parse.__name__  # argparse names the kind in "invalid int value: 'x'"
    return checked


def _joined_list(choices: tuple[Any, ...] | None, separator: str) -> Callable[[str], tuple[str, ...]]:
    joined = "comma-separated" if separator == "," else f"'{separator}'-joined"

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(separator) if v.strip())
        if not values or (choices and any(v not in choices for v in values)):
            allowed = f"a {joined} subset of {', '.join(choices)}" if choices else f"a {joined} list"
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return values
    return parse


def from_namespace(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """``cls`` built from the parsed flags (those the command has) and ``given`` values; a list given for a field
    whose default is a tuple becomes a tuple."""
    values = {}
    for item in declared(cls):
        if hasattr(args, item.name):
            value = getattr(args, item.name)
            values[item.name] = tuple(value) if isinstance(value, list) and isinstance(item.default, tuple) else value
    return cls(**{**values, **given})


# -- validation ------------------------------------------------------------------------------------------


def check(obj: Any) -> None:
    """Every declared option of ``obj`` within its bounds and choices; else one :class:`UsageError` naming the
    option as the command line spells it (``--top-k``; a suite's table is checked by :func:`read_table`)."""
    for item in declared(type(obj)):
        complaint = complaint_about(item, getattr(obj, item.name))
        if complaint:
            raise UsageError(f"{item.flag} {complaint}")


def complaint_about(item: Declared, value: Any) -> str | None:
    """What is wrong with ``value`` for ``item`` (None: nothing)."""
    if value is None:
        return None if item.optional or item.default is None else "is required"
    values = value if item.kind is list else [value]
    if item.how.choices:
        bad = [v for v in values if v not in item.how.choices]
        if bad:
            return f"'{bad[0]}' is unknown: use {', '.join(map(str, item.how.choices))}"
    if item.how.minimum is not None and item.kind in (int, float):
        if not value >= item.how.minimum:  # also rejects NaN
            if item.kind is int and item.how.minimum == 1:
                return f"must be a positive integer, got {value}"
            return f"must be >= {_plain(item.how.minimum)}, got {value}"
        if item.kind is float and math.isinf(value) and item.how.check is None:
            return f"must be finite, got {value}"
    return item.how.check(value) if item.how.check else None


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


# -- suite TOML ------------------------------------------------------------------------------------------


def read_table(table: Any, cls: type) -> dict[str, Any]:
    """The TOML-settable options of ``cls`` that ``table`` (a suite table: ``typobench.suites.fields.Table``)
    sets, as keyword arguments, each checked and reported as ``path.key``; unknown keys get close matches."""
    options: dict[str, Any] = {}
    settable = [d for d in declared(cls) if d.how.toml]
    for item in settable:
        if table.has(item.name):
            options[item.name] = _read_value(table, item)
            complaint = complaint_about(item, options[item.name])
            if complaint:
                raise UsageError(f"{table.where}: {table.path}.{item.name} {complaint}")
    table.finish([d.name for d in settable])
    return options


def _read_value(table: Any, item: Declared) -> Any:
    if item.kind is bool:
        return table.bool(item.name)
    if item.kind in (int, float):
        number = table.number(item.name, integer=item.kind is int)
        return float(number) if item.kind is float else number
    if item.kind is list:
        values = table.list(item.name)
        if not all(isinstance(v, str) for v in values):
            raise table.error(item.name, "must be a non-empty list of strings")
        return tuple(values) if isinstance(item.default, tuple) else list(values)
    return table.str(item.name)


__all__ = ["Declared", "NO_DEFAULT_SHOWN", "REQUIRED", "Option", "add_arguments", "check", "complaint_about", "declared",
           "from_namespace", "option", "read_table"]
