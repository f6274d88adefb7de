"""Pictures next to results.json: example images through the stages, and accuracy per stage."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from torch import Tensor  # noqa: E402

from typobench.core.atomic import save_atomic  # noqa: E402


F = TypeVar("F", bound=Callable)


def plain_text(draw: F) -> F:
    """Draw every string as written: class names and attack texts (Goh et al.'s "$$$") are not maths.

    matplotlib parses text between two "$" as a formula, and raises on "$$$ ... $$$". The setting is
    read when a text is created, so the whole drawing function runs inside it.
    """

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as a PNG atomically, and close it."""
    save_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


@plain_text
def save_example_grid(path: Path, examples: dict[str, Tensor], sample_ids: Sequence[str],
                      predictions: pd.DataFrame, classnames: Sequence[str]) -> None:
    """Rows = samples, columns = stages; each tile titled with prediction (and label in the first column).

    ``examples[stage]`` is [K,3,H,W] in [0,1] for the K samples named by ``sample_ids``.
    """
    stages = list(examples)
    k = len(sample_ids)
    fig, axes = plt.subplots(k, len(stages), figsize=(1.9 * len(stages), 2.0 * k), squeeze=False)
    lookup = predictions.set_index(["stage", "sample_id"])
    for col, stage in enumerate(stages):
        for row, sample_id in enumerate(sample_ids):
            ax = axes[row][col]
            ax.imshow(examples[stage][row].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            record = lookup.loc[(stage, sample_id)]
            pred, label = int(record["pred"]), int(record["label"])
            ok = pred == label
            title = f"{classnames[pred]}"[:18]
            if col == 0:
                ax.set_ylabel(f"true: {classnames[label]}"[:22], fontsize=7)
            ax.set_title(title, fontsize=7, color="green" if ok else "red")
            if row == 0:
                ax.text(0.5, 1.35, stage[:22], transform=ax.transAxes, ha="center", fontsize=8, weight="bold")
    save_figure(fig, path)


@plain_text
def save_stage_accuracy(path: Path, stages: Sequence[dict], title: str = "") -> None:
    """Accuracy per stage (run order) with Wilson 95% intervals; targeted success where measured."""
    names = [s["name"] for s in stages]
    x = range(len(stages))
    acc = [100 * s["accuracy"] for s in stages]
    # max(0, .): the Wilson bounds can miss the point estimate by a rounding error at 0% or 100%.
    lo = [max(0.0, a - 100 * s["ci95"][0]) for a, s in zip(acc, stages)]
    hi = [max(0.0, 100 * s["ci95"][1] - a) for a, s in zip(acc, stages)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(stages) + 2), 3.6))
    ax.errorbar(x, acc, yerr=[lo, hi], fmt="o-", capsize=3, label="accuracy")
    targeted = [(i, s["targeted_success"]) for i, s in enumerate(stages)
                if s.get("targeted_success") and s["targeted_success"]["value"] is not None]
    if targeted:
        ax.plot([i for i, _ in targeted], [100 * t["value"] for _, t in targeted], "s--", color="tab:red",
                label="targeted success")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
