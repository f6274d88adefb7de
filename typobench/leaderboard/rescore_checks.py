"""An entry's per-sample predictions and stated metrics, checked against the board and re-scored.

The predictions table must cover exactly the protocol's samples and labels; the stated metrics must
have the board's shape and equal (to 1e-12) the numbers re-derived from those predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from typobench.data import sample_hash
from typobench.leaderboard.protocol import Board, label_hash
from typobench.leaderboard.stage_columns import STAGE_COLUMNS
from typobench.leaderboard.entry_fields import (
    EntryError,
    check_ci,
    check_int,
    check_int_list,
    check_number,
    check_object,
    check_str,
    describe_type,
    show_value,
)

REL_TOL = ABS_TOL = 1e-12


def check_predictions(table: Any, dataset: dict[str, Any], board: Board, names: list[str]) -> dict[str, Any]:
    """The ``predictions`` table: the protocol's sample ids and labels, and one column set per stage in ``names``."""
    extra = board.kind.sample_columns  # per-sample columns of its kind beyond the label (Stroop: the word)
    check_object(table, "predictions", ("sample_ids", "label", "stages", *extra))
    n, classes = dataset["n"], dataset["num_classes"]
    ids = table["sample_ids"]
    if not isinstance(ids, list) or len(ids) != n:
        raise EntryError("predictions.sample_ids", f"must list the n = {n} sample ids, got "
                         f"{len(ids) if isinstance(ids, list) else describe_type(ids)}")
    for i, sample_id in enumerate(ids):
        check_str(sample_id, f"predictions.sample_ids[{i}]", max_len=1000)
    if len(set(ids)) != n:
        raise EntryError("predictions.sample_ids", "repeat a sample id: each sample appears once")
    if sample_hash(ids) != dataset["sample_hash"]:
        raise EntryError("dataset.sample_hash", f"is {dataset['sample_hash'][:12]}... but the submitted sample ids "
                         f"hash to {sample_hash(ids)[:12]}...")
    check_int_list(table["label"], "predictions.label", n, 0, classes)
    for column in extra:
        check_int_list(table[column], f"predictions.{column}", n, -1, classes)
    labels = label_hash(ids, table["label"], *(table[column] for column in extra))
    if labels != board.dataset.label_hash:
        raise EntryError("predictions.label", f"the true labels{''.join(f' and {c}s' for c in extra)} hash to "
                         f"{labels[:12]}..., not to board {board.id}'s protocol ({board.dataset.label_hash[:12]}...)")
    _check_stage_columns(table["stages"], names, n, classes, board.kind.stage_columns)
    _check_needed_columns(table["stages"], board)
    return table


def _check_stage_columns(stages: Any, names: list[str], n: int, classes: int, optional: tuple[str, ...]) -> None:
    if not isinstance(stages, dict):
        raise EntryError("predictions.stages", f"must be an object (stage name -> columns), got {describe_type(stages)}")
    if list(stages) != names:
        raise EntryError("predictions.stages", f"are {', '.join(map(str, stages)) or 'none'} but the suite's stages "
                         f"are {', '.join(names)}")
    for name, columns in stages.items():
        field = f"predictions.stages[{name}]"
        check_object(columns, field, ("pred",), optional)
        check_int_list(columns["pred"], f"{field}.pred", n, 0, classes)
        for name in optional:  # -1 where a stage has no value for the sample
            if name in columns:
                maximum = STAGE_COLUMNS[name].maximum
                check_int_list(columns[name], f"{field}.{name}", n, -1, classes if maximum is None else maximum + 1)


def _check_needed_columns(stages: dict[str, Any], board: Board) -> None:
    """Every optional column that one of the board's columns reads is in its stage."""
    for column in board.columns:
        needed = column.measure.stage_column
        if needed and column.stage in stages and needed not in stages[column.stage]:
            raise EntryError(f"predictions.stages[{column.stage}].{needed}",
                             f"is missing: board {board.id}'s column '{column.label}' needs it; it comes from "
                             f"{STAGE_COLUMNS[needed].needed_by}")


def check_stated_metrics(metrics: Any, board: Board, names: list[str]) -> list[dict[str, Any]]:
    """The ``metrics`` object's shape: one stage per name in ``names``, one headline value per board column."""
    check_object(metrics, "metrics", ("stages", "headline"))
    stages = metrics["stages"]
    if not isinstance(stages, list):
        raise EntryError("metrics.stages", f"must be a list, got {describe_type(stages)}")
    stated_names = [s.get("name") if isinstance(s, dict) else None for s in stages]
    if stated_names != names:
        raise EntryError("metrics.stages", f"are {', '.join(map(str, stated_names)) or 'none'} but the suite's "
                         f"stages are {', '.join(names)}")
    for stage in stages:
        board.kind.check_stated_stage(stage, f"metrics.stages[{stage['name']}]")
    headline = metrics["headline"]
    keys = [c.key for c in board.columns]
    if not isinstance(headline, dict) or list(headline) != keys:
        got = ", ".join(headline) if isinstance(headline, dict) else describe_type(headline)
        raise EntryError("metrics.headline", f"are {got or 'none'} but board {board.id}'s columns are "
                         f"{', '.join(keys)}")
    for key, value in headline.items():
        field = f"metrics.headline.{key}"
        check_object(value, field, ("value",), ("ci95", "n", "stages"))
        check_number(value["value"], f"{field}.value", null=True)
        if "ci95" in value:
            check_ci(value["ci95"], f"{field}.ci95")
        for count in ("n", "stages"):
            if count in value:
                check_int(value[count], f"{field}.{count}", minimum=0)
    return stages


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare_rescored(stated: Any, rescored: Any, field: str) -> None:
    """Stated numbers against those re-derived from the predictions; the first difference names its field."""
    if isinstance(rescored, Mapping):
        for key in stated:
            if key not in rescored:
                raise EntryError(f"{field}.{key}", "is stated but the submitted predictions do not give it")
        for key, value in rescored.items():
            if key not in stated:
                raise EntryError(f"{field}.{key}", f"is missing; the submitted predictions give {show_value(value)}")
            compare_rescored(stated[key], value, f"{field}.{key}")
    elif isinstance(rescored, (list, tuple)):
        for i, (mine, theirs) in enumerate(zip(stated, rescored)):
            compare_rescored(mine, theirs, f"{field}[{i}]")
    elif (stated != rescored) if isinstance(rescored, str) else not _same_number(stated, rescored):
        raise EntryError(field, f"is {show_value(stated)} but the submitted predictions give {show_value(rescored)}: "
                         "stated numbers must be re-derivable from the entry's own predictions")
