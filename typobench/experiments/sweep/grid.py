"""Grids of parameter values: ``--vary PATH=V1,V2,...`` parsed, expanded into points, named as folders.

Values are parsed like TOML scalars (``8`` int, ``0.15`` float, ``true``, ``[0.1, 0.2]``); anything
else is a string, so ``8/255`` and ``sans-bold`` need no quotes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from typobench.core.errors import UsageError
from typobench.suites.edit import format_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def parse_value(text: str) -> Any:
    """A value as TOML would read it (``8``, ``0.15``, ``true``, ``[0.1, 0.2]``); otherwise the string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` at top-level commas (not inside brackets or quotes)."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_vary(option: str) -> tuple[str, list[Any]]:
    """``PATH=V1,V2,...`` -> (path, [values])."""
    path, sep, values = option.partition("=")
    path = path.strip()
    if not sep or not path:
        raise UsageError(f"--vary '{option}': expected PATH=V1,V2,... e.g. --vary text.size=8,12,16")
    parsed = [parse_value(v) for v in split_values(values)]
    if not values.strip() or any(v == "" for v in parsed):
        raise UsageError(f"--vary '{option}': empty value; give a comma-separated list such as {path}=8,12,16")
    return path, parsed


def expand_grid(vary: Mapping[str, Sequence[Any]] | Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """The product of the varied values, first parameter slowest: [{path: value, ...}, ...]."""
    items = list(vary.items()) if isinstance(vary, Mapping) else list(vary)
    seen: set[str] = set()
    for path, values in items:
        if path in seen:
            raise UsageError(f"parameter '{path}' is varied twice: give all its values in one --vary {path}=V1,V2")
        seen.add(path)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise UsageError(f"parameter '{path}': expected a non-empty list of values, got {values!r}")
        keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(keys)) != len(keys):
            raise UsageError(f"parameter '{path}' lists a value twice: {list(values)!r}")
    if not items:
        return [{}]
    paths = [p for p, _ in items]
    return [dict(zip(paths, combo)) for combo in itertools.product(*(v for _, v in items))]


def point_slug(point: Mapping[str, Any]) -> str:
    """A folder name for a grid point: readable, unique (short hash of the exact values)."""
    digest = hashlib.sha256(json.dumps(list(point.items()), default=str).encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9._=+-]+", "_", "_".join(f"{k}={format_value(v)}" for k, v in point.items()))
    return f"{readable[:80] or 'base'}-{digest}"


__all__ = ["expand_grid", "parse_value", "parse_vary", "point_slug", "split_values"]
