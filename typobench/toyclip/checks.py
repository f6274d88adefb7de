"""What each organism must show: its checks (a figure, a comparison, a threshold) and their verdicts.

``CHECKS`` are toyclip's (its model card), ``VIT_CHECKS`` toyclip-vit's; a figure comes from
``typobench.toyclip.figures`` under the check's ``key``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

WORD_PROMPT = "a photo of a {}."
COLOUR_PROMPT = "a photo of the color {}."

@dataclass(frozen=True)
class Check:
    """One property: ``figures[key]`` compared with ``threshold`` by ``op`` (``>=`` or ``<=`` or ``<``)."""

    key: str
    label: str
    op: str
    threshold: float
    source: str  # which run or Stroop prompt the figure comes from
    unit: str = "percent"  # how the figure is written: "percent", "points" (a difference) or "ratio"


OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "<": operator.lt}

CHECKS: tuple[Check, ...] = (
    Check("clean", "zero-shot clean accuracy", ">=", 0.65, "default"),
    Check("probe_minus_zeroshot", "linear probe minus zero-shot accuracy", ">=", 0.0, "linear-probe", "points"),
    Check("sticker_lift", "true-label sticker lift (accuracy - clean)", ">=", 0.10, "default", "points"),
    Check("written_class", "random wrong label: classified as the written class", ">=", 0.30, "default"),
    Check("control_ratio", "control-word drop / random-wrong-label drop", "<=", 0.60, "default", "ratio"),
    Check("held_out_font_written", "held-out font: classified as the written class", ">=", 0.20, "held-out-font"),
    Check("stroop_word_named", f"Stroop '{WORD_PROMPT}': incongruent named by the word", ">=", 0.50, "stroop"),
    Check("stroop_word_congruent", f"Stroop '{WORD_PROMPT}': congruent accuracy", ">=", 0.70, "stroop"),
    Check("stroop_colour_ink", f"Stroop '{COLOUR_PROMPT}': incongruent named by the ink", ">=", 0.85, "stroop"),
    Check("pgd", "L-inf PGD 2/255, 10 steps: accuracy", "<", 0.10, "default"),
)
# The ViT organism's thresholds (its issue): lower where a ViT of its size reads less; no probe or
# congruent-Stroop threshold (both are still measured and reported); and words alone, because a ViT that
# only covers pixels can pass the photo checks without reading (the recipes that did not read named 8-34%).
_VIT_THRESHOLDS = {"clean": 0.55, "written_class": 0.25, "held_out_font_written": 0.15, "stroop_colour_ink": 0.80}
VIT_CHECKS: tuple[Check, ...] = tuple(
    dataclasses.replace(c, threshold=_VIT_THRESHOLDS.get(c.key, c.threshold)) for c in CHECKS
    if c.key not in ("probe_minus_zeroshot", "stroop_word_congruent")) + (
    Check("words_alone", "words alone on white: the class name named", ">=", 0.60, "words-alone"),)
# Each organism's checks, by its built-in name.
CHECKS_BY_ORGANISM: dict[str, tuple[Check, ...]] = {"toyclip": CHECKS, "toyclip-vit": VIT_CHECKS}



def verdicts(figures: dict[str, dict], checks: Sequence[Check] = CHECKS) -> list[dict[str, Any]]:
    """Each check with its measured value and whether it holds."""
    out = []
    for check in checks:
        value = figures[check.key]["value"]
        out.append({"key": check.key, "label": check.label, "value": value, "ci95": figures[check.key]["ci95"],
                    "op": check.op, "threshold": check.threshold, "met": bool(OPS[check.op](value, check.threshold)),
                    "source": check.source, "unit": check.unit})
    return out

