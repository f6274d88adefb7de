"""Defense specifications: ``KIND:KEY=VALUE,KEY=VALUE`` on the command line, a ``[defense]`` table in a suite.

    --defense ablate:units=layer4:12+layer4:7,mode=zero
    --defense "prompt:prefix=not a written word"
    --defense input:jpeg=75

Lists (units, templates) are joined with ``+`` on the command line and are TOML lists in a suite. A value
with a comma in it is written in double quotes (``"prefix=\\"a, b\\""``). :class:`SpecFields` reads the fields of
either form with errors that name the field and suggest close matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from typobench.core.errors import UsageError, close_matches

_REQUIRED = object()
LIST_SEPARATOR = "+"


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"KIND:K=V,K=V"`` -> (kind, {key: value}); values keep their text (quotes removed)."""
    kind, _, rest = spec.strip().partition(":")
    fields: dict[str, str] = {}
    for item in _split_fields(rest, spec):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--defense '{spec}': '{item}' is not KEY=VALUE: write KIND:KEY=VALUE,KEY=VALUE "
                             "(see `typobench run --help`)")
        if key in fields:
            raise UsageError(f"--defense '{spec}': field '{key}' is given twice: give it once")
        value = value.strip()
        fields[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return kind.strip(), fields


def _split_fields(text: str, spec: str) -> list[str]:
    """Split on commas outside double quotes."""
    items, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise UsageError(f"--defense '{spec}': a double quote is not closed: close it")
    items.append("".join(current))
    return [item for item in items if item.strip()]


def format_spec(kind: str, fields: Mapping[str, Any]) -> str:
    """The command-line form of a defense (what results record, whichever form it was written in)."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, (list, tuple)):
            value = LIST_SEPARATOR.join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        value = str(value)
        parts.append(f'{key}="{value}"' if "," in value else f"{key}={value}")
    return f"{kind}:{','.join(parts)}" if parts else kind


class SpecFields:
    """The fields of one defense being read. Values are text (command line) or TOML values (suite);
    every key must be read, leftovers are reported with close matches."""

    def __init__(self, values: Mapping[str, Any], where: str):
        self.values = dict(values)
        self.where = where
        self._used: set[str] = set()

    def error(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.where}: field '{key}': {message}")

    def has(self, key: str) -> bool:
        return key in self.values

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        self._used.add(key)
        if key in self.values:
            return self.values[key]
        if default is _REQUIRED:
            raise UsageError(f"{self.where}: field '{key}' is required")
        return default

    def text(self, key: str, default: Any = _REQUIRED, choices: Sequence[str] | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            hint = close_matches(value, choices)
            suggestion = f" (did you mean {', '.join(hint)}?)" if hint else ""
            raise self.error(key, f"'{value}' is not one of {', '.join(choices)}{suggestion}")
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        number = _as_number(value)
        if number is None or (integer and not float(number).is_integer()):
            raise self.error(key, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        if minimum is not None and number < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        if maximum is not None and number > maximum:
            raise self.error(key, f"must be <= {maximum}, got {value}")
        return int(number) if integer else float(number)

    def names(self, key: str, default: Any = _REQUIRED) -> Any:
        """A non-empty list of strings: a TOML list, or text joined with ``+``."""
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        items = value.split(LIST_SEPARATOR) if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
            raise self.error(key, f"expected a non-empty list of names (joined with '{LIST_SEPARATOR}'), got {value!r}")
        return [v.strip() for v in items]

    def exactly_one(self, keys: Sequence[str]) -> str:
        given = [key for key in keys if key in self.values]
        if len(given) != 1:
            what = f"{', '.join(given)} are all given" if given else "none is given"
            raise UsageError(f"{self.where}: give exactly one of the fields {', '.join(keys)} ({what})")
        return given[0]

    def check_known(self, known: Sequence[str]) -> None:
        """Reject keys that are not in ``known`` before anything is read, suggesting the closest valid ones."""
        self._reject([key for key in self.values if key not in known], known)

    def finish(self, known: Sequence[str]) -> None:
        """Reject keys nobody read, suggesting the closest valid ones."""
        self._reject([key for key in self.values if key not in self._used], known)

    def _reject(self, keys: Sequence[str], known: Sequence[str]) -> None:
        for key in keys:
            hint = close_matches(key, known)
            suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
            raise UsageError(f"{self.where}: unknown field '{key}': {suggestion}valid fields: {', '.join(known)}")


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


__all__ = ["LIST_SEPARATOR", "SpecFields", "format_spec", "split_spec"]
