"""The sweep table: one row per grid point x stage, with the varied parameters as columns.

Written as ``sweep.csv`` and ``sweep.parquet`` after every finished point, so an interrupted sweep
leaves the table of what it finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from typobench.core.atomic import save_atomic, write_text_atomic
from typobench.suites.edit import format_point, format_value
from typobench.suites.fields import parse_number

TABLE_CSV = "sweep.csv"
TABLE_PARQUET = "sweep.parquet"
# Metric columns that may be missing for some stages (no targets, no pixel changes): floats with NaN.
_OPTIONAL_FLOATS = ("targeted_success", "targeted_ci_lo", "targeted_ci_hi", "pixel_fraction_mean")


def stage_rows(stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per stage summary (results.json's ``stages``): accuracy and targeted success, each
    with its 95% CI and n, and the mean fraction of pixels changed."""
    rows = []
    for s in stages:
        targeted = s.get("targeted_success") or {}
        t_ci = targeted.get("ci95") or [None, None]
        rows.append({
            "stage": s["name"], "kind": s.get("kind"), "source": s.get("source"),
            "accuracy": s["accuracy"], "accuracy_ci_lo": s["ci95"][0], "accuracy_ci_hi": s["ci95"][1], "n": s["n"],
            "targeted_success": targeted.get("value"), "targeted_ci_lo": t_ci[0], "targeted_ci_hi": t_ci[1],
            "targeted_n": targeted.get("n"),
            "pixel_fraction_mean": s.get("pixel_fraction_mean"),
        })
    return rows


def _typed_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    for column in _OPTIONAL_FLOATS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["targeted_n"] = pd.array(frame["targeted_n"], dtype="Int64")
    return frame


def stages_frame(stages: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """:func:`stage_rows` as a DataFrame, missing metrics as NaN."""
    return _typed_metrics(pd.DataFrame(stage_rows(stages)))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return parse_number(value, ValueError)
    except ValueError:
        return None


def _column_values(values: list[Any]) -> list[Any]:
    """A parameter column: numbers (fractions like "8/255" evaluated) when every value is one, else text."""
    present = [v for v in values if v is not None]
    numbers = [_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
            return [None if v is None else int(v) for v in values]
        return [None if v is None else float(_number(v)) for v in values]  # type: ignore[arg-type]
    return [None if v is None else format_value(v) for v in values]


def sweep_table(points: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any] | None]) -> pd.DataFrame:
    """One row per grid point x stage: varied parameters, point label, stage metrics, suite sha256.

    ``results[i]`` is point i's results.json (None while it has not run).
    """
    params = list(dict.fromkeys(k for p in points for k in p))
    rows = []
    for index, (point, result) in enumerate(zip(points, results)):
        if result is None:
            continue
        for row in stage_rows(result["stages"]):
            rows.append({"point": format_point(point), "point_index": index, **{p: point.get(p) for p in params},
                         **row, "suite_sha256": result["suite"]["sha256"]})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for p in params:
        frame[p] = _column_values(frame[p].tolist())
    frame = _typed_metrics(frame)
    frame.attrs["params"] = params
    return frame


def table_params(table: pd.DataFrame) -> list[str]:
    """The varied-parameter columns of a sweep table (between ``point_index`` and ``stage``)."""
    if table.attrs.get("params"):
        return list(table.attrs["params"])
    columns = list(table.columns)
    return columns[columns.index("point_index") + 1:columns.index("stage")]


def write_table(out_dir: Path, table: pd.DataFrame) -> list[Path]:
    """``sweep.csv`` and ``sweep.parquet`` in ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out_dir / TABLE_CSV, out_dir / TABLE_PARQUET
    write_text_atomic(csv_path, table.to_csv(index=False))
    save_atomic(parquet_path, lambda tmp: table.to_parquet(tmp, index=False))
    return [csv_path, parquet_path]


__all__ = ["TABLE_CSV", "TABLE_PARQUET", "stage_rows", "stages_frame", "sweep_table", "table_params", "write_table"]
