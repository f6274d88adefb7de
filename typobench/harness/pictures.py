"""Pictures next to results.json: example images through the stages (PIL), and accuracy per stage (matplotlib)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch.nn.functional import interpolate  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from torch import Tensor  # noqa: E402

from typobench.core.atomic import save_atomic  # noqa: E402
from typobench.typographic.fonts import load_pil_font, resolve_font  # noqa: E402


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


# The example grid is drawn with PIL, not matplotlib: 60 matplotlib axes (6 samples x 10 stages)
# took 1-2 s per run, a fixed cost that weighed on short runs; PIL draws the same grid in ~0.1 s.
TILE_PX = 128  # a tile is for a glance at the attack, not for measuring pixels
_GAP_PX = 6
_HEADER_PX = 22  # stage names
_CAPTION_PX = 16  # the prediction above each tile
_LABEL_PX = 118  # the true label left of each row
_RIGHT, _WRONG, _INK = (0, 128, 0), (200, 0, 0), (0, 0, 0)


def example_tiles(images: Tensor, size: int = TILE_PX) -> np.ndarray:
    """[K,3,H,W] in [0,1] -> [K,size,size,3] uint8: resized with antialiasing, for the grid."""
    # The antialiased bilinear filter has non-negative weights, so the result stays in [0,1].
    resized = interpolate(images.float().clamp(0, 1), size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    return resized.mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def save_example_grid(path: Path, examples: dict[str, Tensor], sample_ids: Sequence[str],
                      predictions: pd.DataFrame, classnames: Sequence[str]) -> None:
    """Rows = samples, columns = stages; each tile captioned with its prediction (green if right,
    red if wrong), each row with its true label.

    ``examples[stage]`` is [K,3,H,W] in [0,1] for the K samples named by ``sample_ids``; ``predictions``
    has a row (stage, sample_id, pred, label) for each tile.
    """
    stages = list(examples)
    lookup = predictions.set_index(["stage", "sample_id"])
    font = load_pil_font(resolve_font("sans").path, 11)
    bold = load_pil_font(resolve_font("sans-bold").path, 11)
    cell_w, cell_h = TILE_PX + _GAP_PX, _CAPTION_PX + TILE_PX + _GAP_PX
    canvas = Image.new("RGB", (_LABEL_PX + cell_w * len(stages), _HEADER_PX + cell_h * len(sample_ids)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, stage in enumerate(stages):
        x = _LABEL_PX + col * cell_w
        draw.text((x, 4), _fit(draw, stage, bold, TILE_PX), fill=_INK, font=bold)
        for row, (sample_id, tile) in enumerate(zip(sample_ids, example_tiles(examples[stage]))):
            y = _HEADER_PX + row * cell_h
            record = lookup.loc[(stage, sample_id)]
            pred, label = int(record["pred"]), int(record["label"])
            draw.text((x, y), _fit(draw, classnames[pred], font, TILE_PX), fill=_RIGHT if pred == label else _WRONG,
                      font=font)
            canvas.paste(Image.fromarray(tile), (x, y + _CAPTION_PX))
            if col == 0:
                true = _fit(draw, classnames[label], font, _LABEL_PX - _GAP_PX)
                draw.text((2, y + _CAPTION_PX + TILE_PX // 2 - 12), f"true:\n{true}", fill=_INK, font=font)
    save_atomic(path, lambda tmp: canvas.save(tmp, format="PNG"))


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
