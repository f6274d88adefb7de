"""Field-by-field checks of an entry's JSON values; every failure is an :class:`EntryError` naming the field.

``field`` arguments are dotted paths into the entry (``"metrics.stages[clean].ci95"``); ``""`` is the
entry itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from typobench.core.errors import UsageError
from typobench.leaderboard.entry import ENTRY_SCHEMA

HEX64 = frozenset("0123456789abcdef")


class EntryError(UsageError):
    """An invalid entry: ``field`` names what is wrong (dotted path), the message says why."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


def show_value(value: Any) -> str:
    """``value`` as it would appear in the entry, cut to 80 characters (strings quoted)."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe_type(value: Any) -> str:
    """What ``value`` is, for "got ..." messages: ``"null"``, ``"a list"``, ``"the number 3"`` ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {show_value(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return "a list" if isinstance(value, list) else "an object"


def check_object(value: Any, field: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    """An object with every ``required`` key and no key outside ``required`` and ``optional``."""
    if not isinstance(value, dict):
        raise EntryError(field, f"must be an object, got {describe_type(value)}")
    for key in required:
        if key not in value:
            raise EntryError(f"{field}.{key}" if field else key, "is missing")
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        raise EntryError(f"{field}.{unknown[0]}" if field else unknown[0], "is not a field of an entry (schema "
                         f"{ENTRY_SCHEMA}); remove it")
    return value


def check_str(value: Any, field: str, *, null: bool = False, max_len: int = 500) -> str | None:
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise EntryError(field, f"must be a string{' or null' if null else ''}, got {describe_type(value)}")
    if len(value) > max_len:
        raise EntryError(field, f"is {len(value)} characters long, at most {max_len} allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise EntryError(field, "contains control characters")
    return value


def check_int(value: Any, field: str, *, null: bool = False, minimum: int | None = None) -> int | None:
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntryError(field, f"must be an integer{' or null' if null else ''}, got {describe_type(value)}")
    if minimum is not None and value < minimum:
        raise EntryError(field, f"must be >= {minimum}, got {value}")
    return value


def check_number(value: Any, field: str, *, null: bool = False) -> float | None:
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EntryError(field, f"must be a number{' or null' if null else ''}, got {describe_type(value)}")
    return value


def check_hex64(value: Any, field: str, *, null: bool = False) -> str | None:
    """A sha256 as 64 lower-case hex digits."""
    text = check_str(value, field, null=null)
    if text is not None and (len(text) != 64 or not set(text) <= HEX64):
        raise EntryError(field, f"must be a sha256 (64 lower-case hex digits), got {show_value(text)}")
    return text


def check_equal(value: Any, expected: Any, field: str, why: str) -> None:
    """``value == expected``; ``why`` says whose value ``expected`` is (``"board X's protocol"``)."""
    if value != expected:
        raise EntryError(field, f"is {show_value(value)} but {why} is {show_value(expected)}")


def check_rate(value: Any, field: str) -> None:
    """``{value, ci95, n}`` with numbers as numbers."""
    check_object(value, field, ("value", "ci95", "n"))
    check_number(value["value"], f"{field}.value", null=True)
    check_ci(value["ci95"], f"{field}.ci95")
    check_int(value["n"], f"{field}.n", minimum=0)


def check_ci(value: Any, field: str) -> None:
    if not isinstance(value, list) or len(value) != 2:
        raise EntryError(field, f"must be a list of two numbers, got {describe_type(value)}")
    for i, bound in enumerate(value):
        check_number(bound, f"{field}[{i}]")


def check_int_list(value: Any, field: str, n: int, low: int, high: int) -> list[int]:
    """A list of ``n`` integers in ``[low, high)`` (one per sample of the data set)."""
    if not isinstance(value, list):
        raise EntryError(field, f"must be a list of integers, got {describe_type(value)}")
    if len(value) != n:
        raise EntryError(field, f"has {len(value)} values, the data set has n = {n}")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item < high:
            raise EntryError(f"{field}[{i}]", f"must be an integer in [{low}, {high - 1}], got {describe_type(item)}")
    return value
