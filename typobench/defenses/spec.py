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
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.fields import REQUIRED, FieldReader

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


class SpecFields(FieldReader):
    """The fields of one defense being read. Values are text (command line) or TOML values (suite);
    every key must be read, leftovers are reported with close matches.

    The reading is :class:`typobench.core.fields.FieldReader`'s; a spec names fields ``field 'key'``, takes
    finite numbers only and records them as ``float`` (defense fingerprints hash the recorded values), rejects
    empty strings and suggests the choice a misspelled value meant."""

    allow_empty_string = False
    suggest_choices = True

    def __init__(self, values: Mapping[str, Any], where: str, base_dir: Path | None = None):
        super().__init__(dict(values), where)
        # A suite's [defense] table names files relative to the suite file, as a user reading it expects;
        # a command line's --defense relative to the working folder (base_dir None).
        self.base_dir = base_dir

    def path(self, key: str) -> Path:
        """The file or folder a field names: ``~`` expanded, relative to ``base_dir`` when one is set."""
        return self.resolve(self.text(key))

    def resolve(self, text: str) -> Path:
        """``text`` as a path: ``~`` expanded, relative to ``base_dir`` when one is set."""
        path = Path(text).expanduser()
        return self.base_dir / path if self.base_dir is not None and not path.is_absolute() else path

    def _name(self, key: str) -> str:
        return f"'{key}'"

    def _label(self, key: str) -> str:
        return f"field '{key}'"

    def _parse_number(self, key: str, value: Any, integer: bool) -> Any:
        number = _as_number(value)
        if number is None:
            raise self.error(key, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        return number

    def _shown_number(self, value: Any, number: Any) -> Any:
        return value  # as the user wrote it: "1e-3" stays "1e-3"

    def _kept_number(self, number: Any) -> Any:
        return float(number)

    text = FieldReader.string

    def names(self, key: str, default: Any = REQUIRED) -> Any:
        """A non-empty list of strings: a TOML list, or text joined with ``+``."""
        value = self.raw(key, default)
        if value is default and default is not REQUIRED:
            return value
        items = value.split(LIST_SEPARATOR) if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
            raise self.error(key, f"expected a non-empty list of names (joined with '{LIST_SEPARATOR}'), got {value!r}")
        return [v.strip() for v in items]

    def number_range(self, key: str, *, minimum: float, maximum: float, integer: bool = False) -> tuple[Any, Any]:
        """Two numbers ``LO <= HI`` within ``[minimum, maximum]``: a TOML list, or text ``LO+HI``."""
        value = self.raw(key)
        items = value.split(LIST_SEPARATOR) if isinstance(value, str) else value
        numbers = [_as_number(v) for v in items] if isinstance(items, list) and len(items) == 2 else []
        what = "integers" if integer else "numbers"
        if len(numbers) != 2 or None in numbers or (integer and not all(float(n).is_integer() for n in numbers)):
            raise self.error(key, f"expected two {what} LO{LIST_SEPARATOR}HI, got {value!r}")
        low, high = (int(n) if integer else float(n) for n in numbers)
        if not minimum <= low <= high <= maximum:
            raise self.error(key, f"expected {minimum} <= LO <= HI <= {maximum}, got {low}{LIST_SEPARATOR}{high}")
        return low, high

    def exactly_one(self, keys: Sequence[str]) -> str:
        given = [key for key in keys if key in self.data]
        if len(given) != 1:
            what = f"{', '.join(given)} are all given" if given else "none is given"
            raise UsageError(f"{self.where}: give exactly one of the fields {', '.join(keys)} ({what})")
        return given[0]

    def check_known(self, known: Sequence[str]) -> None:
        """Reject keys that are not in ``known`` before anything is read, suggesting the closest valid ones."""
        self._reject([key for key in self.data if key not in known], known)


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
