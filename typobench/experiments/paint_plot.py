"""The PAINT curve's picture: clean vs typographic accuracy per alpha, selection and held-out images."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from typobench.harness.pictures import plain_text, save_figure  # noqa: E402


@plain_text
def save_paint_picture(path: Path, table: pd.DataFrame, chosen: float) -> None:
    fig, ax = plt.subplots(figsize=(4.8, 4.0))
    for name, style in (("selection", "--"), ("held_out", "-")):
        x, y = 100 * table[f"{name}_clean"], 100 * table[f"{name}_typographic"]
        ax.plot(x, y, style, marker="o", label=name.replace("_", "-"))
        if name == "held_out":
            for alpha, xi, yi in zip(table["alpha"], x, y):
                ax.annotate(f"α={alpha:g}" + (" (chosen)" if alpha == chosen else ""), (xi, yi), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel("typographic accuracy (%)")
    ax.set_title("PAINT: (1-α)·model + α·checkpoint")
    ax.legend(fontsize=8)
    save_figure(fig, path)
