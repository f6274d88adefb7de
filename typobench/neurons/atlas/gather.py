"""What the atlas shows, gathered from an analysis's outputs.

The source is a folder holding ``neurons.json`` (or that file's path), or the report itself (the dict
``analyze`` returns and writes as neurons.json) with the folder its files are in. Next to it, when they
exist: ``sparse_probe.json`` (the sparse probe and its weights), ``microscope.json`` (feature
visualizations: {"neurons": {name: {...}}, "summary": {...}}) and ``neuron_examples/examples.json``
(the dataset examples as image files). Image paths in these files are relative to that folder.

A *unit* is a neuron or, when neurons.json has a ``heads`` section, an attention head. Its blame is its
largest share of the summed attribution among the stage scopes (stage x event kind) that blamed it;
its ablation effect is that of the scope's top-k blamed set it belongs to, against the random and
activation-matched baselines (single units are not ablated alone).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.neurons.atlas.examples import EXAMPLES_JSON
from typobench.neurons.microscope.output import MICROSCOPE_JSON
from typobench.neurons.report import JSON_FILE as NEURONS_JSON
from typobench.neurons.probes.sparse_probe import JSON_FILE as SPARSE_PROBE_JSON

SAFE = re.compile(r"[A-Za-z0-9._-]+")


@dataclass
class Unit:
    """One neuron or head: the scopes that blamed it, its card, examples, feature visualizations and the
    sparse probe's weights on it (any of which may be missing)."""

    name: str
    head: bool  # an attention head (its own blame ranking, cards by written words), else a neuron
    scopes: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    microscope: dict[str, Any] | None = None
    probe: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """What the pages call it."""
        return "head" if self.head else "neuron"

    @property
    def blame(self) -> float | None:
        """The largest share among the scopes that blamed it (None: not blamed)."""
        shares = [s["share"] for s in self.scopes if isinstance(s.get("share"), (int, float))]
        return max(shares) if shares else None

    @property
    def page(self) -> str:
        return f"{self.kind}-{slug(self.name)}.html"


@dataclass
class Atlas:
    """Everything the site shows: the report (neurons.json), the units in index order (blamed units by
    blame, then the others by name), the sparse probe and the microscope's summary."""

    files_dir: Path
    report: dict[str, Any]
    units: list[Unit]
    probe: dict[str, Any] | None = None
    microscope: dict[str, Any] | None = None

    def unit(self, name: str) -> Unit | None:
        return next((u for u in self.units if u.name == name), None)

    def examples_text(self, unit: Unit) -> str:
        """How a unit's dataset examples were chosen."""
        heads_cards = (self.report.get("heads") or {}).get("cards") if isinstance(self.report.get("heads"), Mapping) else None
        if unit.head and isinstance(heads_cards, Mapping) and heads_cards.get("top_images_by"):
            return f"The clean reference images with the largest {heads_cards['top_images_by']}."
        return "The clean reference images that excite it most."


def slug(name: str) -> str:
    """A file-name-safe, collision-free stem for a unit name (``layer4:12`` -> ``layer4-12``)."""
    stem = name.replace(":", "-")
    if SAFE.fullmatch(stem):
        return stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_atlas(source: str | Path | Mapping[str, Any], files_dir: str | Path | None = None) -> Atlas:
    """The atlas of ``source``: a folder with neurons.json, the file itself, or the report (then
    ``files_dir``, the folder its files are in, is required)."""
    if isinstance(source, Mapping):
        if files_dir is None:
            raise UsageError("write_atlas: a report needs files_dir, the folder its cards and tables are in")
        report, base = dict(source), Path(files_dir)
    else:
        path = Path(source)
        base = path if path.is_dir() else path.parent
        report = _read_json(base / NEURONS_JSON if path.is_dir() else path)
        if report is None:
            raise UsageError(f"no {NEURONS_JSON} in {base}: run `typobench neurons --from RUN_DIR` first")
    probe = _read_json(base / SPARSE_PROBE_JSON)
    microscope = _read_json(base / MICROSCOPE_JSON) or {}
    examples = _read_json(base / EXAMPLES_JSON) or {}
    units = _units(report.get("analyses", []), _card_list(report.get("cards")), head=False)
    heads = report.get("heads")
    if isinstance(heads, Mapping):
        units += _units(heads.get("analyses", []), _card_list(heads.get("cards")), head=True)
    elif isinstance(heads, list):
        units += _units(heads, [], head=True)
    by_name = {(u.head, u.name): u for u in units}
    for name in list(microscope.get("neurons", {})) + [row["neuron"] for row in (probe or {}).get("weights", [])]:
        by_name.setdefault((False, name), Unit(name, head=False))
    for unit in by_name.values():
        unit.examples = list(examples.get(unit.name, []))
        unit.microscope = None if unit.head else microscope.get("neurons", {}).get(unit.name)
        unit.probe = [row for row in (probe or {}).get("weights", [])
                      if not unit.head and row["neuron"] == unit.name]
    ordered = sorted(by_name.values(), key=lambda u: (u.blame is None, -(u.blame or 0.0), u.kind, u.name))
    return Atlas(base, report, ordered, probe, microscope.get("summary"))


def _card_list(cards: Any) -> list[dict[str, Any]]:
    """The cards of a neurons.json section: a list, or a dict holding it under ``neurons`` or ``heads``."""
    if isinstance(cards, list):
        return cards
    if isinstance(cards, Mapping):
        return list(cards.get("neurons") or cards.get("heads") or [])
    return []


def _name(record: Mapping[str, Any]) -> str | None:
    return record.get("neuron") or record.get("head") or record.get("name")


def _units(analyses: list[dict[str, Any]], cards: list[dict[str, Any]], *, head: bool) -> list[Unit]:
    """Units blamed by a stage scope of ``analyses`` or carded in ``cards``, with the scopes that blamed them."""
    units: dict[str, Unit] = {}
    for entry in analyses:
        records = {_name(r): r for r in entry.get("blame", [])}
        for name in entry.get("blamed", []):
            unit = units.setdefault(name, Unit(name, head))
            unit.scopes.append(_scope(entry, records.get(name, {})))
    for card in cards:
        name = _name(card)
        if name:
            units.setdefault(name, Unit(name, head)).card = card
    return list(units.values())


def _scope(entry: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """One scope that blamed a unit: the unit's rank and attributions there, and the scope's ablation."""
    detail = entry.get("verdict_detail") or {}
    effect = {mode: value for mode, value in detail.items() if isinstance(value, Mapping)}
    return {"stage": entry.get("stage"), "kind": entry.get("kind"), "n_events": entry.get("n_events"),
            "rank": record.get("rank"), "share": record.get("share"),
            "attr_attacked": record.get("mean_attr_attacked"), "attr_clean": record.get("mean_attr_clean"),
            "attr_diff": record.get("mean_attr_diff"), "metric": detail.get("metric"), "effect": effect,
            "split": entry.get("verdict_split"), "verdict": entry.get("verdict")}


__all__ = ["Atlas", "MICROSCOPE_JSON", "NEURONS_JSON", "SPARSE_PROBE_JSON", "Unit", "load_atlas", "slug"]
