"""The rows of a ``typobench defend`` table, and where each defense was chosen.

A row is the model under test with some defenses (``none``: without any). ``--defense`` gives one row;
``;`` inside it composes several defenses in order (``"input:blur=1;ablate:units=layer4:3"``).

Selection honesty: a defense chosen from data -- units blamed by a neurons analysis, a learned prefix, mean
activations -- must be chosen on images disjoint from the ones it is scored on. :func:`selections_of` reads
what each defense was chosen on (the analysis' run: its data set, split and sample ids; a prefix file: the
data set, split and sample hash in its metadata), and :func:`check_disjoint` refuses a row whose choice
used the images it would be scored on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.data import ImageDataset
from typobench.defenses import Defense, create_defense
from typobench.defenses.ablate import AblateDefense
from typobench.defenses.prefix import load_prefix
from typobench.defenses.prompt import PromptDefense
from typobench.harness.results import read_predictions, read_results

NONE_LABEL = "none"
COMPOSE = ";"


@dataclass(frozen=True)
class Selection:
    """The images a defense was chosen on: ``sample_ids`` when known (else only the ``sample_hash``)."""

    what: str
    dataset: str
    split: str
    n: int
    sample_hash: str | None
    sample_ids: frozenset[str] | None = None

    def describe(self) -> dict[str, Any]:
        return {"what": self.what, "dataset": self.dataset, "split": self.split, "n": self.n,
                "sample_hash": self.sample_hash}

    def text(self) -> str:
        return f"{self.what}: {self.dataset} {self.split}, {self.n} images"


@dataclass(frozen=True)
class DefenseRow:
    """One row: ``label`` (the spec as given, or ``none``) and its defenses, in order."""

    label: str
    defenses: tuple[Defense, ...]

    @property
    def slug(self) -> str:
        keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.label)
        return keep[:80] or NONE_LABEL


def parse_rows(specs: Sequence[str]) -> list[DefenseRow]:
    """``none`` first, then one row per spec (each spec's ``;``-separated defenses composed in order)."""
    rows = [DefenseRow(NONE_LABEL, ())]
    for spec in specs:
        parts = [part.strip() for part in spec.split(COMPOSE) if part.strip()]
        if not parts:
            raise UsageError(f"--defense '{spec}' is empty: give KIND:KEY=VALUE (see `typobench list defenses`)")
        rows.append(DefenseRow(spec.strip(), tuple(create_defense(part) for part in parts)))
    labels = [row.label for row in rows]
    if len(set(labels)) != len(labels):
        raise UsageError("a --defense is given twice: give each defense row once")
    return rows


def selections_of(defense: Defense, dataset: str) -> list[Selection]:
    """What ``defense`` was chosen on (empty when nothing was chosen from data: units written out, a fixed blur).
    ``dataset``: the session's data set (the one mean activations of a split come from)."""
    out = []
    if isinstance(defense, AblateDefense) and defense.source.get("units_from") == "neurons":
        out.append(_analysis_selection(Path(defense.source["neurons_json"])))
    if isinstance(defense, AblateDefense) and defense.mean_request and defense.mean_request.source == "split":
        request = defense.mean_request
        out.append(Selection("mean activations", dataset, str(request.split), request.n, None))
    if isinstance(defense, PromptDefense) and defense.learned_prefix is not None:
        meta = load_prefix(defense.learned_prefix).metadata
        out.append(Selection("learned prefix", meta.get("dataset", "?"), meta.get("split", "?"),
                             int(meta.get("train_count", 0)), meta.get("train_sample_hash")))
    return out


def _analysis_selection(neurons_json: Path) -> Selection:
    """The images of the run a neurons analysis blamed units on (its predictions name every sample)."""
    report = json.loads(neurons_json.read_text(encoding="utf-8"))
    run_dir = Path(report.get("run", {}).get("dir") or neurons_json.parent)
    if not (run_dir / "results.json").is_file():
        run_dir = neurons_json.parent
    data = read_results(run_dir)["dataset"]
    ids = frozenset(read_predictions(run_dir)["sample_id"].astype(str))
    return Selection("blamed units", data["name"], data["split"], len(ids), data.get("sample_hash"), ids)


def check_disjoint(row: DefenseRow, selections: Sequence[Selection], scored: ImageDataset) -> None:
    """UsageError when a defense of ``row`` was chosen on images it would be scored on (``scored``)."""
    for selection in selections:
        if selection.sample_ids is not None:
            shared = selection.sample_ids & set(scored.sample_ids)
            if shared:
                raise UsageError(f"--defense '{row.label}': its {selection.what} were chosen on {len(shared)} of the "
                                 f"images it would be scored on: choose on the train split (or another half) and score "
                                 f"on the rest")
        elif selection.split == scored.split:
            raise UsageError(f"--defense '{row.label}': its {selection.what} was chosen on the {selection.split} split, "
                             f"the split it would be scored on, and its images cannot be told apart: choose it on "
                             f"another split")


__all__ = ["COMPOSE", "NONE_LABEL", "DefenseRow", "Selection", "check_disjoint", "parse_rows", "selections_of"]
