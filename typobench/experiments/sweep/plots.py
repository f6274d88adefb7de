"""Plots of a sweep table: a metric against each varied parameter, and a heat map over two."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from typobench.core.atomic import save_atomic  # noqa: E402
from typobench.experiments.sweep.table import table_params  # noqa: E402
from typobench.harness.pictures import plain_text  # noqa: E402
from typobench.suites.edit import format_value  # noqa: E402

METRIC_LABELS = {"accuracy": "accuracy (%)", "targeted_success": "targeted success (%)"}
_CI = {"accuracy": ("accuracy_ci_lo", "accuracy_ci_hi"), "targeted_success": ("targeted_ci_lo", "targeted_ci_hi")}


def is_product(table: pd.DataFrame, params: Sequence[str]) -> bool:
    """Whether the points of ``table`` are every combination of the values of ``params`` (a full grid)."""
    if not params:
        return False
    points = table.drop_duplicates("point_index")
    if points[list(params)].isna().any().any():
        return False
    sizes = [points[p].astype(str).nunique() for p in params]
    combos = len(points[list(params)].astype(str).drop_duplicates())
    return combos == len(points) == int(np.prod(sizes))


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


def _x_positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numeric values as they are; anything else as categories in order of appearance."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float), None
    categories = list(dict.fromkeys(values.astype(str)))
    return np.array([categories.index(v) for v in values.astype(str)], dtype=float), categories


def _save_figure(fig, path: Path) -> Path:
    save_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _set_x_ticks(ax, x_all: np.ndarray, categories: list[str] | None) -> None:
    """Ticks at the measured values (up to 12 of them), or at the category names, slanted when long."""
    if categories is None:
        if len(set(x_all)) <= 12:
            ticks = sorted(set(x_all))
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:.4g}" for t in ticks], fontsize=8)
        return
    long = max(map(len, categories)) > 6
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=30 if long else 0, ha="right" if long else "center", fontsize=8)


def _draw_metric(ax, table: pd.DataFrame, metric: str, keys: Sequence[str], others: Sequence[str]) -> None:
    """One line with 95% error bars per group of ``keys`` (stage, then ``others``); clean stages grey, dashed."""
    lo_col, hi_col = _CI[metric]
    for group, frame in table.groupby(list(keys), sort=False, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        frame = frame.dropna(subset=[metric]).sort_values("_x")
        if frame.empty:
            continue
        y = 100 * frame[metric].to_numpy(dtype=float)
        lo = np.maximum(0.0, y - 100 * frame[lo_col].to_numpy(dtype=float))
        hi = np.maximum(0.0, 100 * frame[hi_col].to_numpy(dtype=float) - y)
        label = ", ".join([str(group[0])] + [f"{q}={format_value(v)}" for q, v in zip(others, group[1:])])
        clean = frame["kind"].iloc[0] == "clean"
        ax.errorbar(frame["_x"], y, yerr=[lo, hi], fmt="o--" if clean else "o-", capsize=3, label=label,
                    color="0.5" if clean else None, alpha=0.8 if clean else 1.0)


@plain_text
def plot_metric(table: pd.DataFrame, param: str, path: str | Path, *, others: Sequence[str] = (),
                title: str = "") -> Path:
    """Accuracy (and targeted success, where measured) against ``param``: one line per stage (and per
    combination of ``others``), with 95% intervals."""
    metrics = ["accuracy"] + (["targeted_success"] if table["targeted_success"].notna().any() else [])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.4 * len(metrics), 3.9), squeeze=False)
    x_all, categories = _x_positions(table[param])
    table = table.assign(_x=x_all)
    for ax, metric in zip(axes[0], metrics):
        _draw_metric(ax, table, metric, ["stage", *others], others)
        _set_x_ticks(ax, x_all, categories)
        ax.set_xlabel(param)
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save_figure(fig, Path(path))


def _axis_values(column: pd.Series) -> list:
    values = list(dict.fromkeys(column.tolist()))
    return sorted(values) if pd.api.types.is_numeric_dtype(column) else values


def _draw_heatmap(fig, ax, frame: pd.DataFrame, rows: str, columns: str, row_values: list, col_values: list) -> str:
    """Percent of targeted success (accuracy when the stage has no targets) per cell; the metric drawn."""
    metric = "targeted_success" if frame["targeted_success"].notna().any() else "accuracy"
    grid = np.full((len(row_values), len(col_values)), np.nan)
    for _, record in frame.iterrows():
        grid[row_values.index(record[rows]), col_values.index(record[columns])] = 100 * float(record[metric])
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto", origin="lower")
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            if not np.isnan(grid[r, c]):
                ax.text(c, r, f"{grid[r, c]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[r, c] < 60 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return metric


@plain_text
def plot_heatmap(table: pd.DataFrame, rows: str, columns: str, path: str | Path, *, title: str = "") -> Path:
    """One heat map per attack stage (up to 6): targeted success (accuracy for stages without targets)
    over two parameters."""
    stages = list(dict.fromkeys(table.loc[table["kind"] != "clean", "stage"])) or list(dict.fromkeys(table["stage"]))
    stages = stages[:6]
    fig, axes = plt.subplots(1, len(stages), figsize=(4.6 * len(stages), 3.9), squeeze=False)
    row_values, col_values = _axis_values(table[rows]), _axis_values(table[columns])
    for ax, stage in zip(axes[0], stages):
        metric = _draw_heatmap(fig, ax, table[table["stage"] == stage], rows, columns, row_values, col_values)
        ax.set_xticks(range(len(col_values)))
        ax.set_xticklabels([format_value(v) for v in col_values], fontsize=8)
        ax.set_yticks(range(len(row_values)))
        ax.set_yticklabels([format_value(v) for v in row_values], fontsize=8)
        ax.set_xlabel(columns)
        ax.set_ylabel(rows)
        ax.set_title(f"{stage}: {METRIC_LABELS[metric]}", fontsize=9)
    fig.suptitle(title, fontsize=9)
    return _save_figure(fig, Path(path))


def plot_sweep(table: pd.DataFrame, out_dir: str | Path, *, params: Sequence[str] | None = None,
               title: str = "") -> list[Path]:
    """``plot-<param>.png`` for each varied parameter and, for two, ``heatmap.png``; for a list of
    points that is not a full grid, ``plot-point.png`` (metric per point)."""
    if table.empty:
        return []
    out_dir = Path(out_dir)
    params = list(params) if params is not None else table_params(table)
    if not is_product(table, params):
        return [plot_metric(table, "point", out_dir / "plot-point.png", title=title)]
    files = [plot_metric(table, p, out_dir / f"plot-{_safe_name(p)}.png", others=[q for q in params if q != p],
                         title=title) for p in params]
    if len(params) == 2:
        files.append(plot_heatmap(table, params[0], params[1], out_dir / "heatmap.png", title=title))
    return files


__all__ = ["METRIC_LABELS", "is_product", "plot_heatmap", "plot_metric", "plot_sweep"]
