"""``leaderboard validate``'s provenance check of an entry's ``model.provenance`` (``leaderboard.provenance``)."""

from __future__ import annotations

from typing import Any

from typobench.defenses.provenance import CHOSEN, UNKNOWN
from typobench.leaderboard.entry_fields import EntryError, check_object, check_str
from typobench.leaderboard.provenance import LABELS, SELECTION_FIELDS


def check_entry_provenance(model: dict[str, Any], dataset: dict[str, Any]) -> None:
    """EntryError when ``model.provenance`` is malformed, disagrees with ``model.defenses``, or names a choice
    made on the split the entry is scored on."""
    records = model.get("provenance")
    if records is None:
        return
    if not isinstance(records, list) or [r.get("spec") if isinstance(r, dict) else None for r in records] \
            != model.get("defenses"):
        raise EntryError("model.provenance", "must hold one record per defense of model.defenses, in order")
    for i, record in enumerate(records):
        where = f"model.provenance[{i}]"
        check_object(record, where, ("spec", "provenance", "selections"))
        if record["provenance"] not in LABELS:
            raise EntryError(f"{where}.provenance", f"must be one of {', '.join(LABELS)}")
        if not isinstance(record["selections"], list):
            raise EntryError(f"{where}.selections", "must be a list")
        if (record["provenance"] == CHOSEN) != bool(record["selections"]) and record["provenance"] != UNKNOWN:
            raise EntryError(f"{where}.provenance", f"'{CHOSEN}' names the images it was chosen on, and only it does")
        for j, selection in enumerate(record["selections"]):
            check_object(selection, f"{where}.selections[{j}]", SELECTION_FIELDS)
            split = check_str(selection["split"], f"{where}.selections[{j}].split")
            if split == dataset.get("split"):
                raise EntryError(f"{where}.selections[{j}].split", f"{record['spec']}: its {selection['what']} were "
                                 f"chosen on the {split} split the board scores: choose on another split and resubmit")


__all__ = ["check_entry_provenance"]
