"""How an entry's attacks went: each defense's declared backward pass and the run's attack-failure flags.

A run that attacks pixels re-attacks its first samples with twice the budget (``--attack-checks``) and records
``attack_checks`` in results.json; a defended run records each defense's ``backward`` (``exact``, or an
approximation such as ``jpeg-approx`` or ``identity``). ``submit`` copies both into the entry's optional
``attack`` object, ``leaderboard validate`` checks its form (:mod:`.attack_record_checks`), and the tables show it in the model cell: an
entry with flags is unreliable (RobustBench's rule), its adaptive accuracy an upper bound at best. These are
stated by the run, not re-scored: the predictions cannot show how hard the attack tried.
"""

from __future__ import annotations

from typing import Any

FIELD = "attack"


def run_attack_record(results: dict[str, Any]) -> dict[str, Any] | None:
    """The entry's ``attack`` object of a run: None when the run checked no attack and has no approximated
    backward pass (a run without pixel attacks, or one run with ``--attack-checks 0``)."""
    checks = results.get("attack_checks") or {}
    backward = [f"{d['spec']}: {d['backward']}" for d in results.get("defenses") or []
                if d.get("backward", "exact") != "exact"]
    if not checks and not backward:
        return None
    flags = [*((results.get("defense_sanity") or {}).get("flags", [])), *checks.get("flags", [])]
    return {"checked_samples": int(checks.get("samples", 0)), "flags": [str(f) for f in flags], "backward": backward}


def attack_note(entry: dict[str, Any]) -> str:
    """The model cell's note: the approximated backward passes and the attack-failure flags ("" when neither)."""
    record = entry.get(FIELD)
    if not record:
        return ""
    notes = [f"backward {'; '.join(record['backward'])}"] if record["backward"] else []
    if record["flags"]:
        notes.append(f"unreliable: attack flags {', '.join(record['flags'])}")
    elif record["checked_samples"]:
        notes.append(f"no attack flags on {record['checked_samples']} re-attacked samples")
    return "; ".join(notes)


__all__ = ["FIELD", "attack_note", "run_attack_record"]
