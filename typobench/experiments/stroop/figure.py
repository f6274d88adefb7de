"""The Stroop picture of one prompt: every stimulus in a grid (rows = ink, columns = word), framed by outcome."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
# Agg canvas on a bare Figure: no pyplot, no global backend switch, no display needed.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from typobench.typographic.stroop.render import render_stimuli
from typobench.typographic.stroop.scoring import PromptResult, StroopResult
from typobench.harness.pictures import plain_text

OUTCOME_COLOURS = {"ink": "#2ca02c", "word": "#d62728", "other": "#7f7f7f"}
OUTCOME_LABELS = (("ink", "named the ink"), ("word", "named the word"), ("other", "another colour (written below)"))

# Layout in inches: square cells, a gap under each for the predicted colour when it is neither.
CELL, GAP_X, GAP_Y, LABEL_W = 0.85, 0.08, 0.2, 0.75
PANEL_TITLE_H, COLUMN_TITLE_H = 0.3, 0.22
HEADER_H, FOOTER_H = 0.7, 0.4
MAX_PANEL_COLUMNS = 4


@dataclass(frozen=True)
class GridLayout:
    """Where the panels (one per font x size) and their cells lie, in inches from the figure's top left."""

    n_rows: int  # inks
    n_cols: int  # words
    panel_cols: int
    panel_rows: int

    @property
    def panel_w(self) -> float:
        return LABEL_W + self.n_cols * (CELL + GAP_X) + 0.15

    @property
    def panel_h(self) -> float:
        return PANEL_TITLE_H + COLUMN_TITLE_H + self.n_rows * (CELL + GAP_Y)

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) of the figure."""
        return self.panel_cols * self.panel_w, HEADER_H + self.panel_rows * self.panel_h + FOOTER_H

    def panel_origin(self, k: int) -> tuple[float, float]:
        """(left, top) of panel ``k``."""
        return (k % self.panel_cols) * self.panel_w, HEADER_H + (k // self.panel_cols) * self.panel_h

    def cell_rect(self, k: int, row: int, col: int) -> tuple[float, float, float, float]:
        """The cell's axes rectangle (left, bottom, width, height) as fractions of the figure."""
        fig_w, fig_h = self.size
        left, top = self.panel_origin(k)
        x = left + LABEL_W + col * (CELL + GAP_X)
        y = top + PANEL_TITLE_H + COLUMN_TITLE_H + row * (CELL + GAP_Y) + CELL  # bottom edge
        return x / fig_w, 1 - y / fig_h, CELL / fig_w, CELL / fig_h


def grid_layout(n_rows: int, n_cols: int, n_panels: int) -> GridLayout:
    """Panels in a near-square arrangement, at most ``MAX_PANEL_COLUMNS`` side by side."""
    panel_cols = min(n_panels, max(1, math.ceil(math.sqrt(n_panels))), MAX_PANEL_COLUMNS)
    return GridLayout(n_rows, n_cols, panel_cols, -(-n_panels // panel_cols))


@plain_text
def stroop_figure_png(result: StroopResult, prompt_index: int, *, dpi: int = 100) -> bytes:
    """PNG bytes: per font x size, a grid (rows = ink, columns = word) of the stimuli, each framed by outcome.

    Green frame: named the ink (correct). Red: named the word. Grey: another colour (the predicted
    colour is written under the cell).
    """
    design = result.design
    prompt = result.prompts[prompt_index]
    conditions = list(dict.fromkeys((s.font, s.size) for s in result.stimuli))
    layout = grid_layout(len(design.palette), len(design.columns), len(conditions))
    fig_w, fig_h = layout.size
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    for k, (font, size) in enumerate(conditions):
        left, top = layout.panel_origin(k)
        fig.text((left + layout.panel_w / 2) / fig_w, 1 - (top + 0.12) / fig_h,
                 f"{font}, size {size}   (rows: ink, columns: word)", ha="center", va="center", fontsize=9)
        _draw_panel(fig, layout, result, prompt, k)
    fig.text(0.5, 1 - 0.35 / fig_h, _caption(prompt), ha="center", va="center", fontsize=9)
    fig.legend(handles=[Patch(facecolor="none", edgecolor=OUTCOME_COLOURS[o], linewidth=3, label=label)
                        for o, label in OUTCOME_LABELS],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _draw_panel(fig: Figure, layout: GridLayout, result: StroopResult, prompt: PromptResult, k: int) -> None:
    """The cells of the ``k``-th font x size: its stimuli are ``result.stimuli[k * rows * cols:]`` in grid order."""
    names = result.design.classnames
    start = k * layout.n_rows * layout.n_cols
    stimuli = result.stimuli[start:start + layout.n_rows * layout.n_cols]
    images = _uint8_images(render_stimuli(stimuli, result.design, result.image_size))
    for j, stimulus in enumerate(stimuli):
        r, c = divmod(j, layout.n_cols)
        ax = fig.add_axes(layout.cell_rect(k, r, c))
        ax.imshow(images[j], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        outcome = str(prompt.outcome[start + j])
        for spine in ax.spines.values():
            spine.set_edgecolor(OUTCOME_COLOURS[outcome])
            spine.set_linewidth(3.5)
        if outcome == "other":
            ax.set_xlabel(names[int(prompt.pred[start + j])], fontsize=7, labelpad=2, color=OUTCOME_COLOURS["other"])
        if c == 0:
            ax.set_ylabel(stimulus.ink, fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
        if r == 0:
            ax.set_title(stimulus.word, fontsize=8, pad=4)


def _uint8_images(pixels: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` in [0, 1] -> ``[N, H, W, 3]`` uint8 for imshow."""
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _caption(prompt: PromptResult) -> str:
    """The prompt and its four rates, e.g. ``word named 86% of 49``."""
    m = prompt.metrics

    def pct(key: str) -> str:
        value = m[key]["value"]
        return "-" if value is None else f"{100 * value:.0f}% of {m[key]['n']}"

    return (f"prompt: \"{prompt.prompt}\"\ncongruent accuracy {pct('congruent_accuracy')}, "
            f"incongruent accuracy {pct('incongruent_accuracy')}, word named {pct('word_named')}, "
            f"neutral accuracy {pct('neutral_accuracy')}")
