"""Reading a mapping key by key with errors that name the exact field, so a typo in a suite or a defense spec is
reported as one line that says which field, what is wrong, and (for an unknown key) which valid key was meant.

:class:`FieldReader` holds the logic every reader shares: a key is marked used when read, a required key that is
missing is reported, numbers are checked against bounds, strings against choices, and keys nobody read are
rejected with close matches. Subclasses (``typobench.suites.fields.Table`` for suite tables,
``typobench.defenses.spec.SpecFields`` for defense specs) only say how a field is named in messages and how a
number is written, because those are the only things the two input forms disagree on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from typobench.core.errors import UsageError, close_matches

REQUIRED: Any = object()  # the default of a field that must be given (``None`` is a legitimate default)


class FieldReader:
    """A mapping being read. Every key must be read (or known); leftovers are reported as unknown."""

    # Whether an empty string is a valid string value, and whether a value outside ``choices`` gets close matches.
    allow_empty_string: ClassVar[bool] = True
    suggest_choices: ClassVar[bool] = False

    def __init__(self, data: Mapping[str, Any], where: str):
        self.data = data
        self.where = where
        self._used: set[str] = set()

    # Hooks: how a field is named, how a number is written.

    def _name(self, key: str) -> str:
        """The field as written after ``unknown field`` (and, unless :meth:`_label` says otherwise, everywhere)."""
        return key

    def _label(self, key: str) -> str:
        """The field as written before ``is required`` and before an error message."""
        return self._name(key)

    def _parse_number(self, key: str, value: Any, integer: bool) -> Any:
        """The number ``value`` stands for; raises :meth:`error` when it is not one."""
        raise NotImplementedError

    def _shown_number(self, value: Any, number: Any) -> Any:
        """What a bounds or integer error shows: the parsed number by default."""
        return number

    def _kept_number(self, number: Any) -> Any:
        """What a non-integer :meth:`number` returns: the parsed number as it is by default."""
        return number

    # Shared readers.

    def error(self, key: str, message: str) -> UsageError:
        """An error about one field, for checks a caller makes on a value it has read."""
        return UsageError(f"{self.where}: {self._label(key)}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = REQUIRED) -> Any:
        """The value as given (marking the key used), ``default`` when absent, an error when required."""
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is REQUIRED:
            raise UsageError(f"{self.where}: {self._label(key)} is required")
        return default

    def string(self, key: str, default: Any = REQUIRED, choices: Sequence[str] | None = None) -> Any:
        """A string, one of ``choices`` when given; ``default`` (unchecked) when absent."""
        value = self.raw(key, default)
        if value is default and default is not REQUIRED:
            return value
        if not isinstance(value, str) or not (value or self.allow_empty_string):
            what = "a string" if self.allow_empty_string else "a non-empty string"
            raise self.error(key, f"expected {what}, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"'{value}' is not one of {', '.join(choices)}{self._choice_hint(value, choices)}")
        return value

    def _choice_hint(self, value: str, choices: Sequence[str]) -> str:
        hint = close_matches(value, choices) if self.suggest_choices else []
        return f" (did you mean {', '.join(hint)}?)" if hint else ""

    def number(self, key: str, default: Any = REQUIRED, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> Any:
        """A number within ``[minimum, maximum]``, an ``int`` when ``integer``; ``default`` (unchecked) when absent."""
        value = self.raw(key, default)
        if value is default and default is not REQUIRED:
            return value
        number = self._parse_number(key, value, integer)
        shown = self._shown_number(value, number)
        if integer and not float(number).is_integer():  # also rejects inf and nan
            raise self.error(key, f"expected an integer, got {shown!r}")
        if minimum is not None and number < minimum:
            raise self.error(key, f"must be >= {minimum}, got {shown}")
        if maximum is not None and number > maximum:
            raise self.error(key, f"must be <= {maximum}, got {shown}")
        return int(number) if integer else self._kept_number(number)

    def finish(self, known: Sequence[str] | None = None) -> None:
        """Reject keys nobody read, suggesting the closest of ``known`` (default: the keys that were read)."""
        known = list(known) if known is not None else sorted(self._used)
        self._reject([key for key in self.data if key not in self._used], known)

    def _reject(self, keys: Sequence[str], known: Sequence[str]) -> None:
        """Raise for the first of ``keys`` (unknown ones), naming the valid fields and the close matches."""
        for key in keys:
            hint = close_matches(key, known)
            suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
            raise UsageError(f"{self.where}: unknown field {self._name(key)}: {suggestion}"
                             f"valid fields: {', '.join(known)}")


__all__ = ["REQUIRED", "FieldReader"]
