"""The defenses picture: accuracy per stage (grouped bars, 95% intervals), one bar per defense."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from typobench.harness.pictures import plain_text, save_figure  # noqa: E402


@plain_text
def save_defense_picture(path: Path, table: pd.DataFrame, stages: Sequence[dict[str, Any]]) -> None:
    """Groups = the suite's stages, bars = the defenses (the table's rows, in order)."""
    names = [s["name"] for s in stages]
    width = 0.8 / max(1, len(table))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 3.8))
    x = np.arange(len(names))
    for i, (_, row) in enumerate(table.iterrows()):
        acc = np.array([100 * row[n] for n in names])
        lo = np.maximum(0.0, acc - np.array([100 * row[f"{n}_lo"] for n in names]))
        hi = np.maximum(0.0, np.array([100 * row[f"{n}_hi"] for n in names]) - acc)
        ax.bar(x + (i - (len(table) - 1) / 2) * width, acc, width, yerr=[lo, hi], capsize=2, label=str(row["defense"]))
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 102)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("accuracy per stage, by defense (95% intervals)", fontsize=9)
    save_figure(fig, path)


__all__ = ["save_defense_picture"]
