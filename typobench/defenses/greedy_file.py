"""The file a greedy selection writes (``defenses.greedy``) as the ``ablate`` defense reads it: its units,
the positions they are ablated at, and what they were chosen on (a :class:`Selection` with sample ids)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.defenses.provenance import Selection

GREEDY_FORMAT = "typobench-greedy-units"
POSITIONS = ("all", "cls")


def read_greedy(path: Path) -> dict[str, Any] | None:
    """The greedy file at ``path``, or None when it is not one (a plain list of units)."""
    if path.suffix != ".json":
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"field 'file': '{path}' cannot be read as JSON ({exc}): pass the file "
                         "`typobench defense select-greedy` wrote") from None
    if not isinstance(record, dict) or record.get("format") != GREEDY_FORMAT or not record.get("units"):
        raise UsageError(f"field 'file': '{path}' is not a greedy selection (format {GREEDY_FORMAT}, non-empty "
                         "units): pass the file `typobench defense select-greedy` wrote")
    return record


def greedy_selection(path: Path, record: dict[str, Any]) -> Selection:
    """What the units in ``record`` were chosen on, as the harness checks it."""
    chosen = record.get("selection") or {}
    ids = chosen.get("sample_ids")
    return Selection("greedy units", str(path), dataset=chosen.get("dataset"), split=chosen.get("split"),
                     n=chosen.get("n"), sample_hash=chosen.get("sample_hash"),
                     sample_ids=frozenset(map(str, ids)) if ids is not None else None,
                     model_label=chosen.get("model_label"), model_fingerprint=chosen.get("model_fingerprint"))


__all__ = ["GREEDY_FORMAT", "POSITIONS", "greedy_selection", "read_greedy"]
