"""Board columns and their kinds: what each kind of column reads from an entry's (stated or re-scored) stage
metrics, and what it needs from ``boards.toml`` (the one place a column kind is registered).

A column of ``kind = "accuracy"`` is a :class:`Column` whose :attr:`Column.measure` is :class:`Accuracy`; code
that shows or scores a column asks its measure (``column.measure.points``, ``column.measure.value(...)``), never
the kind's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from typobench.core.registry import Registry
from typobench.harness.results import targeted_eligible

STROOP_STAGE = "stroop"  # the one "stage" of a Stroop entry
STROOP_METRICS = ("congruent_accuracy", "incongruent_accuracy", "word_named", "neutral_accuracy")
CLEAN_STAGE = "clean"

Cell = dict[str, Any]
Stages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Column:
    """One number of a board: ``kind`` of ``stage`` (a name in :data:`COLUMN_KINDS`), shown as ``label``."""

    key: str
    label: str
    kind: str
    stage: str | None = None
    metric: str | None = None  # a column kind with metrics (stroop): which one
    higher_is_better: bool = True
    note: str = ""

    @property
    def measure(self) -> ColumnKind:
        """What this column's kind does: its class in :data:`COLUMN_KINDS`."""
        return COLUMN_KINDS.get(self.kind)()

    @property
    def points(self) -> bool:
        """True when the value is a difference of rates (percentage points), not a rate."""
        return self.measure.points


def _stage(stages: Stages, name: str | None) -> Mapping[str, Any] | None:
    return next((s for s in stages if s.get("name") == name), None)


def correct_by_sample(table: Mapping[str, Any], stage: str | None) -> dict[str, float]:
    """1.0 where ``stage`` predicted the label, else 0.0, per sample id ({} when the entry lacks the stage)."""
    columns = table["stages"].get(stage)
    if columns is None:
        return {}
    return {sid: float(pred == label) for sid, label, pred in zip(table["sample_ids"], table["label"], columns["pred"])}


class ColumnKind:
    """A kind of column. Subclasses declare what a column of theirs needs and compute its cell."""

    name: ClassVar[str]
    needs_stage: ClassVar[bool] = True  # reads the column's ``stage`` of the suite
    metrics: ClassVar[tuple[str, ...]] = ()  # the values its ``metric`` may take (empty: it has none)
    points: ClassVar[bool] = False  # its value is a difference of rates (percentage points), not a rate
    compares_entries: ClassVar[bool] = False  # its value needs a second entry (see ``leaderboard.clean_cost``)
    stage_column: ClassVar[str | None] = None  # the optional stage column it reads (``leaderboard.stage_columns``)

    def value(self, column: Column, stages: Stages) -> Cell:
        """``{value, ci95?, n?}`` of ``column`` from the stage metrics; value None when there is nothing to measure."""
        stage = _stage(stages, column.stage)
        return {"value": None} if stage is None else self.stage_value(stage, stages)

    def stage_value(self, stage: Mapping[str, Any], stages: Stages) -> Cell:
        """The cell from the column's stage (found among ``stages``)."""
        raise NotImplementedError

    def per_sample(self, column: Column, table: Mapping[str, Any]) -> dict[str, float] | None:
        """The column's value per sample id (its mean over the samples is the column), from an entry's compact
        predictions table ``{sample_ids, label, stages: {name: {pred, target?}}}``; samples that do not count
        (not eligible) are left out. None: the column is not a mean over samples (no paired comparison)."""
        return None


COLUMN_KINDS: Registry[type[ColumnKind]] = Registry("column kind")


def _register(cls: type[ColumnKind]) -> type[ColumnKind]:
    return COLUMN_KINDS.add(cls.name, cls)


@_register
class Accuracy(ColumnKind):
    """Top-1 accuracy of the stage, with its Wilson interval."""

    name = "accuracy"

    def stage_value(self, stage: Mapping[str, Any], stages: Stages) -> Cell:
        return {"value": stage.get("accuracy"), "ci95": stage.get("ci95"), "n": stage.get("n")}

    def per_sample(self, column: Column, table: Mapping[str, Any]) -> dict[str, float] | None:
        return correct_by_sample(table, column.stage)


@_register
class TargetedSuccess(ColumnKind):
    """The stage's targeted success rate (among images whose clean prediction was not the target)."""

    name = "targeted_success"

    def stage_value(self, stage: Mapping[str, Any], stages: Stages) -> Cell:
        rate = stage.get("targeted_success")
        return dict(rate) if isinstance(rate, Mapping) else {"value": None}

    def per_sample(self, column: Column, table: Mapping[str, Any]) -> dict[str, float] | None:
        stage, clean = table["stages"].get(column.stage), table["stages"].get(CLEAN_STAGE)
        if stage is None or stage.get("target") is None:
            return {}
        targets, preds = np.asarray(stage["target"]), np.asarray(stage["pred"])
        eligible = targeted_eligible(targets, np.asarray(table["label"]), None if clean is None else np.asarray(clean["pred"]))
        return {sid: float(p == t) for sid, p, t, ok in zip(table["sample_ids"], preds, targets, eligible) if ok}


@_register
class Lift(ColumnKind):
    """Accuracy of the stage minus clean accuracy on the same samples (percentage points / 100)."""

    name = "lift"
    points = True

    def stage_value(self, stage: Mapping[str, Any], stages: Stages) -> Cell:
        clean = _stage(stages, CLEAN_STAGE)
        if clean is None or stage.get("accuracy") is None or clean.get("accuracy") is None:
            return {"value": None}
        return {"value": stage["accuracy"] - clean["accuracy"], "n": stage.get("n")}

    def per_sample(self, column: Column, table: Mapping[str, Any]) -> dict[str, float] | None:
        after, before = correct_by_sample(table, column.stage), correct_by_sample(table, CLEAN_STAGE)
        return {sid: after[sid] - before[sid] for sid in after if sid in before}


@_register
class MeanTargetedSuccess(ColumnKind):
    """The mean targeted success over every stage that has one."""

    name = "mean_targeted_success"
    needs_stage = False

    def value(self, column: Column, stages: Stages) -> Cell:
        rates = [s["targeted_success"] for s in stages if isinstance(s.get("targeted_success"), Mapping)]
        values = [r["value"] for r in rates if r.get("value") is not None]
        return {"value": float(np.mean(values)) if values else None, "stages": len(values)}


@_register
class StroopRate(ColumnKind):
    """One rate of the Stroop test (``metric``)."""

    name = "stroop"
    needs_stage = False
    metrics = STROOP_METRICS

    def value(self, column: Column, stages: Stages) -> Cell:
        metric = (_stage(stages, STROOP_STAGE) or {}).get(column.metric or "")
        return dict(metric) if isinstance(metric, Mapping) else {"value": None}


@_register
class TwoWay(ColumnKind):
    """SCAM's two-way rate (``harness.twoway``): how often the label's logit beats the written class's, among
    the samples whose written word is another class."""

    name = "two_way"
    stage_column = "label_wins"

    def stage_value(self, stage: Mapping[str, Any], stages: Stages) -> Cell:
        rate = stage.get("label_over_word")
        return dict(rate) if isinstance(rate, Mapping) else {"value": None}

    def per_sample(self, column: Column, table: Mapping[str, Any]) -> dict[str, float] | None:
        wins = (table["stages"].get(column.stage) or {}).get(self.stage_column)
        if wins is None:
            return {}
        return {sid: float(w == 1) for sid, w in zip(table["sample_ids"], wins) if w >= 0}


@_register
class Legibility(ColumnKind):
    """The OCR's reading of the stage's written text (``harness.legibility``): ``legible`` (the share it read
    back) or ``accuracy_legible`` (the accuracy on the samples it read back)."""

    name = "legibility"
    metrics = ("legible", "accuracy_legible")
    stage_column = "legible"

    def value(self, column: Column, stages: Stages) -> Cell:
        rate = (_stage(stages, column.stage) or {}).get(column.metric or "")
        return dict(rate) if isinstance(rate, Mapping) else {"value": None}

    def per_sample(self, column: Column, table: Mapping[str, Any]) -> dict[str, float] | None:
        legible = (table["stages"].get(column.stage) or {}).get(self.stage_column)
        if legible is None:
            return {}
        if column.metric == "accuracy_legible":
            correct = correct_by_sample(table, column.stage)
            return {sid: correct[sid] for sid, read in zip(table["sample_ids"], legible) if read == 1}
        return {sid: float(read == 1) for sid, read in zip(table["sample_ids"], legible) if read >= 0}


@_register
class Cost(ColumnKind):
    """Accuracy on the column's stage that a defense costs: that of the entry of the same weights without defenses
    minus the entry's (on ``clean``: the clean cost; on ``words-alone``: the reading cost). An entry alone has no
    value; ``leaderboard.clean_cost`` fills it once every entry is validated."""

    name = "cost"
    points = True
    compares_entries = True

    def stage_value(self, stage: Mapping[str, Any], stages: Stages) -> Cell:
        return {"value": None}


__all__ = ["COLUMN_KINDS", "STROOP_METRICS", "STROOP_STAGE", "Column", "ColumnKind", "correct_by_sample"]
