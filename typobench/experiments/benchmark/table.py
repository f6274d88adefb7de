"""The benchmark's summary: one row per data set and a last ``mean`` row, as FARE's and clip_benchmark's tables.

Columns come from each data set's run record (``results.json``), so any suite works:

* ``dataset``, ``n``: the data set's name and how many images were scored (the ``mean`` row: over all sets);
* ``<stage>`` / ``<stage>_lo`` / ``<stage>_hi`` / ``<stage>_n``: the stage's accuracy, its Wilson 95% interval
  and the images it was scored on.

The ``mean`` row is the unweighted mean of the data sets' accuracies (each data set counts once, whatever its
size, as FARE and clip_benchmark report it); it has no interval, and its counts are the sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MEAN = "mean"


def stage_names(records: Sequence[dict[str, Any]]) -> list[str]:
    """The stages of every data set's run, in run order (one suite: the same stages for each)."""
    names: list[str] = []
    for record in records:
        names += [s["name"] for s in record["stages"] if s["name"] not in names]
    return names


def dataset_row(record: dict[str, Any]) -> dict[str, Any]:
    """One data set's line: its name, n and every stage's accuracy with its interval and n."""
    row: dict[str, Any] = {"dataset": record["name"], "n": record["n"]}
    for stage in record["stages"]:
        name = stage["name"]
        row[name], (row[f"{name}_lo"], row[f"{name}_hi"]), row[f"{name}_n"] = \
            stage["accuracy"], stage["ci95"], stage["n"]
    return row


def summary_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A row per data set (records: ``name``, ``n``, ``stages`` as results.json has them), then the mean row."""
    rows = pd.DataFrame([dataset_row(r) for r in records])
    mean: dict[str, Any] = {"dataset": MEAN, "n": int(rows["n"].sum())}
    for name in stage_names(records):
        # skipna=False: a stage a data set lacks leaves the mean empty rather than a mean over fewer sets
        mean[name] = float(rows[name].mean(skipna=False))
        mean[f"{name}_lo"] = mean[f"{name}_hi"] = np.nan
        mean[f"{name}_n"] = rows[f"{name}_n"].sum(skipna=False)
    return pd.concat([rows, pd.DataFrame([mean])], ignore_index=True)


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON-ready records (NaN as None)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def markdown(table: pd.DataFrame, stages: Sequence[str]) -> str:
    """The table in Markdown: accuracy per stage with its 95% interval, the mean row in bold."""
    header = ["data set", "n", *stages]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        mean = row["dataset"] == MEAN
        cells = [f"**{MEAN}**" if mean else str(row["dataset"]), str(int(row["n"]))]
        cells += [_percent(row.get(name), row.get(f"{name}_lo"), row.get(f"{name}_hi"), bold=mean) for name in stages]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _percent(value: Any, lo: Any, hi: Any, *, bold: bool = False) -> str:
    if value is None or pd.isna(value):
        return "-"
    if bold:
        return f"**{100 * value:.1f}%**"
    return f"{100 * value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


__all__ = ["MEAN", "dataset_row", "markdown", "stage_names", "summary_table", "table_records"]
