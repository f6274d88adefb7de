"""The ``clean_cost`` column: clean accuracy a defense costs, from two entries of the same board.

An entry alone cannot know its cost: the reference is the entry of the same weights *without* defenses
on the same board. Once every entry is validated (re-scored from its predictions), each defended entry's
cost is computed from the two per-sample prediction tables: accuracy(reference) - accuracy(entry) on the
same images, with a paired-bootstrap 95% interval. The undefended entry itself costs 0; a defended entry
whose reference is missing has no value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from typobench.core.metrics import paired_difference_by_id
from typobench.leaderboard.column_kinds import correct_by_sample
from typobench.leaderboard.validate import ValidEntry


def cost_cell(reference: ValidEntry, entry: ValidEntry, stage: str) -> dict[str, Any]:
    """``{value, ci95, n, reference}``: accuracy of ``reference`` minus ``entry`` on ``stage``, paired by sample."""
    before = correct_by_sample(reference.entry["predictions"], stage)
    after = correct_by_sample(entry.entry["predictions"], stage)
    if set(before) != set(after):
        return {"value": None}
    return {**paired_difference_by_id(before, after, sorted(before)), "reference": reference.model["label"]}


def fill_clean_costs(entries: Sequence[ValidEntry]) -> None:
    """Set every ``clean_cost`` cell of ``entries`` (in place) from its board's undefended entry."""
    bare = {(e.board.id, e.model["weights_sha256"]): e for e in entries if not e.model.get("defense_sha256")}
    for entry in entries:
        for column in entry.board.columns:
            if not column.measure.compares_entries:
                continue
            reference = bare.get((entry.board.id, entry.model["weights_sha256"]))
            entry.headline[column.key] = cost_cell(reference, entry, column.stage) if reference else {"value": None}


__all__ = ["cost_cell", "fill_clean_costs"]
