"""What a defense was chosen on: its provenance, as each kind states it (``Defense.selections``,
``Defense.provenance_unknown``).

A defense chosen from data -- units blamed by a neurons analysis, mean activations, a learned prefix -- must be
chosen on images disjoint from the ones it is scored on. A kind names its :class:`Selection`\\ s here; where
a selection points at a run (a neurons analysis), the harness reads that run, checks it is the one the
analysis names (``config_hash``) and of the model being scored, and refuses any overlap with the scored
images (``harness.provenance``). Units written out or read from a file cannot be traced to any images: they
are labelled :data:`UNKNOWN`, never "not chosen from data".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# The three labels a row of a defend table, results.json and a board entry carry.
CHOSEN = "chosen from data"
UNKNOWN = "provenance unknown"
NO_DATA = "not chosen from data"


@dataclass(frozen=True)
class Selection:
    """The images one choice of a defense was made on.

    ``run_dir``/``config_hash``: the run a neurons analysis (``source``) names, still to be read by the harness,
    which fills ``dataset``, ``split``, ``n`` and ``sample_ids`` from it. ``sample_ids`` None: only the split
    (and its ``sample_hash``) is known, so the same split is refused whole. ``model_fingerprint``: the weights
    the choice was made for (None: any model)."""

    what: str
    source: str
    dataset: str | None = None
    split: str | None = None
    n: int | None = None
    sample_hash: str | None = None
    sample_ids: frozenset[str] | None = None
    run_dir: Path | None = None
    config_hash: str | None = None
    model_label: str | None = None
    model_fingerprint: str | None = None

    def resolved(self, **values: Any) -> Selection:
        return replace(self, **values)

    def describe(self) -> dict[str, Any]:
        """JSON-ready (results.json, defend.json, board entries): no sample ids, no fingerprints' bulk."""
        out = {"what": self.what, "source": self.source, "dataset": self.dataset, "split": self.split, "n": self.n,
               "sample_hash": self.sample_hash}
        if self.run_dir is not None:
            out.update(run_dir=str(self.run_dir), config_hash=self.config_hash)
        return out

    def text(self) -> str:
        return f"{self.what}: {self.dataset} {self.split}, {self.n} images"


def provenance_label(selections: list[Selection], unknown: bool) -> str:
    """One defense's label: unknown wins (a choice nobody can trace cannot be vouched for), then chosen."""
    if unknown:
        return UNKNOWN
    return CHOSEN if selections else NO_DATA


def provenance_text(records: list[dict[str, Any]]) -> str:
    """The "chosen on" cell of a row from its defenses' provenance records (``harness.provenance``)."""
    parts: list[str] = []
    for record in records:
        if record["provenance"] == UNKNOWN:
            parts.append(UNKNOWN)
        parts += [f"{s['what']}: {s['dataset']} {s['split']}, {s['n']} images" for s in record["selections"]]
    return "; ".join(dict.fromkeys(parts)) or NO_DATA


__all__ = ["CHOSEN", "NO_DATA", "UNKNOWN", "Selection", "provenance_label", "provenance_text"]
