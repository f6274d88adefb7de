"""Reading TOML tables with errors that name the exact field: ``suite X: stage[3].placement.copies: ...``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from typobench.core.errors import UsageError, close_matches

_REQUIRED = object()


class Table:
    """A TOML table being read. Every key must be consumed; leftovers are reported as unknown."""

    def __init__(self, data: Any, path: str, where: str):
        if not isinstance(data, dict):
            raise UsageError(f"{where}: {path} must be a table, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.where = where
        self._used: set[str] = set()

    def error(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.where}: {self._field(key)}: {message}")

    def _field(self, key: str) -> str:
        if not key:
            return self.path or "(top level)"
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise UsageError(f"{self.where}: {self._field(key)} is required")
        return default

    def str(self, key: str, default: Any = _REQUIRED, choices: Sequence[str] | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"'{value}' is not one of {', '.join(choices)}")
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        value = parse_number(value, lambda msg: self.error(key, msg))
        if integer and (not float(value).is_integer() or isinstance(value, float) and math.isinf(value)):
            raise self.error(key, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be <= {maximum}, got {value}")
        return int(value) if integer else value

    def bool(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def list(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, list) or not value:
            raise self.error(key, f"expected a non-empty list, got {value!r}")
        return value

    def table(self, key: str, default: Any = _REQUIRED) -> "Table":
        value = self.raw(key, default)
        return Table(value if value is not None else {}, self._field(key), self.where)

    def finish(self, known: Sequence[str] | None = None) -> None:
        """Reject keys nobody read, suggesting the closest valid ones."""
        known = list(known) if known is not None else sorted(self._used)
        for key in self.data:
            if key not in self._used:
                hint = close_matches(key, known)
                suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
                raise UsageError(f"{self.where}: unknown field {self._field(key)}: {suggestion}"
                                 f"valid fields: {', '.join(known)}")


def parse_number(value: Any, error) -> float:
    """A TOML number, ``"inf"``, or a fraction string such as ``"8/255"`` (how eps is usually written)."""
    if isinstance(value, bool):
        raise error(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text in ("inf", "infinity"):
            return math.inf
        numerator, _, denominator = text.partition("/")
        try:
            return float(numerator) / float(denominator) if denominator else float(numerator)
        except (ValueError, ZeroDivisionError):
            pass
    raise error(f"expected a number or a fraction like \"8/255\", got {value!r}")
