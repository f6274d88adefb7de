"""``leaderboard validate``'s check of an entry's ``attack`` object (``leaderboard.attack_record``)."""

from __future__ import annotations

from typing import Any

from typobench.leaderboard.attack_record import FIELD
from typobench.leaderboard.entry_fields import EntryError, check_int, check_object, check_str


def check_attack_record(record: Any) -> None:
    """The form of an entry's ``attack`` object (one-line EntryError naming the field)."""
    check_object(record, FIELD, ("checked_samples", "flags", "backward"))
    check_int(record["checked_samples"], f"{FIELD}.checked_samples", minimum=0)
    for key in ("flags", "backward"):
        if not isinstance(record[key], list):
            raise EntryError(f"{FIELD}.{key}", "must be a list of strings")
        for i, value in enumerate(record[key]):
            check_str(value, f"{FIELD}.{key}[{i}]", max_len=300)


__all__ = ["check_attack_record"]
