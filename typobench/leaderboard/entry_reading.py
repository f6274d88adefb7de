"""Reading an entry file: UTF-8 JSON, no NaN or Infinity, no duplicate keys, bounded size.

Nothing from a submission is executed or unpickled; a malformed file is one :class:`EntryError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typobench.leaderboard.entry_fields import EntryError

MAX_ENTRY_BYTES = 32 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise EntryError("", f"not valid JSON: {name} is not a number (numbers must be finite)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise EntryError("", f"not valid JSON for an entry: key '{key}' appears twice in one object")
        out[key] = value
    return out


def parse_entry_text(data: bytes) -> dict[str, Any]:
    """An entry's bytes as a JSON object, or an EntryError saying what is malformed and where."""
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError("", f"file is {len(data)} bytes, more than the {MAX_ENTRY_BYTES} an entry may have")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntryError("", f"not UTF-8 text (byte {exc.start}): an entry is a JSON file") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise EntryError("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise EntryError("", "not valid JSON for an entry: nested too deeply") from None
    if not isinstance(obj, dict):
        raise EntryError("", f"an entry is a JSON object, got a {type(obj).__name__}")
    return obj


def read_entry(path: str | Path) -> dict[str, Any]:
    """The entry file at ``path`` as a JSON object (checked for size before it is read)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_ENTRY_BYTES:
            raise EntryError("", f"file is {size} bytes, more than the {MAX_ENTRY_BYTES} an entry may have")
        data = path.read_bytes()
    except OSError as exc:
        raise EntryError("", f"cannot be read ({exc.strerror or exc})") from None
    return parse_entry_text(data)
