"""Reading TOML tables with errors that name the exact field: ``suite X: stage[3].placement.copies: ...``.

The reading itself (required keys, bounds, choices, unknown keys) is :class:`typobench.core.fields.FieldReader`;
a :class:`Table` adds the dotted path of nested tables to field names and the number syntax suites use
(``"inf"``, fractions such as ``"8/255"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.fields import REQUIRED, FieldReader


class Table(FieldReader):
    """A TOML table being read. Every key must be consumed; leftovers are reported as unknown."""

    def __init__(self, data: Any, path: str, where: str):
        if not isinstance(data, dict):
            raise UsageError(f"{where}: {path} must be a table, got {type(data).__name__}")
        super().__init__(data, where)
        self.path = path

    def _name(self, key: str) -> str:
        """``path.key``; the table itself (its path) for an empty key."""
        if not key:
            return self.path or "(top level)"
        return f"{self.path}.{key}" if self.path else key

    def _parse_number(self, key: str, value: Any, integer: bool) -> Any:
        return parse_number(value, lambda msg: self.error(key, msg))

    str = FieldReader.string

    def bool(self, key: str, default: Any = REQUIRED) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def list(self, key: str, default: Any = REQUIRED) -> Any:
        value = self.raw(key, default)
        if value is default and default is not REQUIRED:
            return value
        if not isinstance(value, list) or not value:
            raise self.error(key, f"expected a non-empty list, got {value!r}")
        return value

    def table(self, key: str, default: Any = REQUIRED) -> Table:
        """The nested table ``key`` (``None`` reads as an empty one), reporting its fields as ``path.key.field``."""
        value = self.raw(key, default)
        return Table(value if value is not None else {}, self._name(key), self.where)


def parse_number(value: Any, error: Callable[[str], Exception]) -> float:
    """A TOML number (returned as it is), ``"inf"``, or a fraction string such as ``"8/255"`` (how eps is usually
    written)."""
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
