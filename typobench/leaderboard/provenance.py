"""Defense provenance on the boards: ``submit`` re-checks a defended run's choices against its images, the
entry records them (``model.provenance``), ``leaderboard validate`` refuses a choice made on the scored
split, and the tables say what each defended entry was chosen on.

An entry cannot carry the ids of every image a defense was chosen on, so validation holds it to the split:
a defense chosen on the split the board scores is refused (choose on train, as the defenses board asks).
An entry that records no provenance (submitted before it was recorded) is shown as "provenance unknown",
unless its spec alone shows that nothing was chosen from data (a fixed blur).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.defenses import create_defense
from typobench.defenses.provenance import CHOSEN, NO_DATA, UNKNOWN
from typobench.harness.provenance import recheck_recorded

LABELS = (CHOSEN, UNKNOWN, NO_DATA)
SELECTION_FIELDS = ("what", "dataset", "split", "n", "sample_hash")


def run_provenance(results: dict[str, Any], run_dir: Path, sample_ids: list[str]) -> list[dict[str, Any]] | None:
    """The entry's ``model.provenance`` of a defended run, after checking its choices again against the run's
    images (``submit``); None for a run without defenses."""
    if not results.get("defenses"):
        return None
    records = results.get("defense_provenance")
    if not isinstance(records, list) or len(records) != len(results["defenses"]):
        raise UsageError(f"{run_dir}: the run records no provenance for its defenses (made before typobench recorded "
                         "it): run it again with this version, then submit")
    recheck_recorded(records, sample_ids, results["dataset"], str(run_dir))
    return [{"spec": r["spec"], "provenance": r["provenance"],
             "selections": [{key: s.get(key) for key in SELECTION_FIELDS} for s in r["selections"]]} for r in records]


def provenance_note(model: dict[str, Any]) -> str:
    """What a defended entry's defenses were chosen on, for the tables ("" for a model without defenses)."""
    if not model.get("defenses"):
        return ""
    records = model.get("provenance") or [_unrecorded(spec) for spec in model["defenses"]]
    if any(r["provenance"] == UNKNOWN for r in records):
        return UNKNOWN
    chosen = sorted({f"{s['dataset']} {s['split']}" for r in records for s in r["selections"]})
    return f"chosen on {', '.join(chosen)}" if chosen else NO_DATA


def _unrecorded(spec: str) -> dict[str, Any]:
    """The label of a defense an entry records no provenance for: "not chosen from data" only when its spec
    alone shows it chose nothing from data (a fixed blur); any choice from data went unchecked: unknown."""
    try:
        defense = create_defense(spec)
    except UsageError:  # a spec naming a file that is not here (a neurons.json, a prefix): nothing can be traced
        return {"provenance": UNKNOWN, "selections": []}
    unchecked = defense.provenance_unknown() or bool(defense.selections())
    return {"provenance": UNKNOWN if unchecked else NO_DATA, "selections": []}


__all__ = ["LABELS", "SELECTION_FIELDS", "provenance_note", "run_provenance"]
