"""SCAM's two-way score: does the model prefer the object's label over the written word, scored between just
those two classes? Reported beside the usual accuracy, per sticker-area bucket.

SCAM (Westerhoff et al., 2025, "SCAM: A Real-World Typographic Robustness Evaluation for Multimodal
Foundation Models") photographs real objects with a handwritten sticky note carrying an attack word and
scores CLIP-style models two-way: the image embedding against the prompts of the object label and of the
attack word only, counting the image as correct when the object label wins. What we could confirm (from
what we know of the paper; nothing was downloaded here): the two-way object-vs-word scoring, real photos
with one attack word each, and that smaller and larger notes are compared. What we could NOT confirm: their
exact prompt template set (we score with the run's own head: the data set's zero-shot templates, or the
defended head), their exact area buckets (ours: ``AREA_EDGES`` below, computed from the stage's mask of
written pixels), and how they break ties (here a tie counts as the word winning).

Columns (predictions.csv), for every sample whose written word is a class other than its label -- the word of
a ``text`` stage, or a real-world data set's ``text_targets``:

* ``written_class``: the class index of the written word (-1: none, or not a class);
* ``two_way_margin``: logit of the label minus logit of the written word (> 0: the label wins; the
  same sign as the cosine difference, as both logits share the head's scale);
* ``text_area``: the fraction of the image the stage's mask covers (empty where the stage has no mask).

A word that is not a class (a control word) has no logit: it gets no two-way score (``written_class`` -1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor

from typobench.core.metrics import rate
from typobench.data.union_labels import normalize_label

# Bucket edges, fractions of the image's pixels the text covers: [0, 1%), [1, 2%), ..., [20%, 100%].
AREA_EDGES = (0.0, 0.01, 0.02, 0.05, 0.10, 0.20, 1.0)
UNKNOWN_AREA = "unknown"


def bucket_names() -> list[str]:
    pairs = zip(AREA_EDGES[:-1], AREA_EDGES[1:])
    return [f"{100 * lo:g}-{100 * hi:g}%" for lo, hi in pairs]


def written_classes(texts: Sequence[str] | None, text_targets: Tensor | None,
                    classnames: Sequence[str]) -> np.ndarray | None:
    """The class index of the word written on each sample (-1: none or not a class), or None when the stage
    writes nothing and the data set carries no written words."""
    if texts is not None:
        exact = {name: i for i, name in enumerate(classnames)}
        loose = {normalize_label(name): i for i, name in enumerate(classnames)}
        return np.array([exact.get(t, loose.get(normalize_label(str(t)), -1)) for t in texts], dtype=np.int64)
    if text_targets is not None:
        return text_targets.detach().cpu().numpy().astype(np.int64)
    return None


def two_way_columns(logits: Tensor, labels: Tensor, written: np.ndarray, mask: Tensor | None) -> dict[str, Any]:
    """``written_class``, ``two_way_margin`` (NaN where no other class is written) and ``text_area``."""
    scores = logits.detach().float().cpu().numpy()
    label = labels.detach().cpu().numpy()
    rows = np.arange(len(label))
    margin = scores[rows, label] - scores[rows, np.clip(written, 0, None)]
    margin = np.where((written >= 0) & (written != label), margin, np.nan)
    area = np.full(len(label), np.nan) if mask is None else \
        (mask.detach().flatten(1).sum(1).double() / mask[0].numel()).cpu().numpy()  # exact counts: 1% is 1%
    return {"written_class": written, "two_way_margin": margin, "text_area": area}


def area_buckets(area: pd.Series) -> pd.Series:
    """The bucket name of each text area (``unknown`` where the area is missing)."""
    values = pd.to_numeric(area, errors="coerce").to_numpy(dtype=float)
    index = np.clip(np.searchsorted(AREA_EDGES, values, side="right") - 1, 0, len(AREA_EDGES) - 2)
    names = np.array(bucket_names(), dtype=object)[index]
    return pd.Series(np.where(np.isnan(values), UNKNOWN_AREA, names), index=area.index)


def two_way_summary(frame: pd.DataFrame) -> dict[str, Any] | None:
    """The stage's two-way rate and, per area bucket (the buckets partition the stage's samples), its usual
    accuracy and two-way rate; None when no sample has a written word that is another class."""
    if "two_way_margin" not in frame.columns:
        return None
    margin = pd.to_numeric(frame["two_way_margin"], errors="coerce")
    if not margin.notna().any():
        return None
    scored = margin.notna()
    area = frame["text_area"] if "text_area" in frame.columns else pd.Series(np.nan, index=frame.index)
    buckets = area_buckets(area)
    correct = (frame["pred"] == frame["label"]).to_numpy()
    out: dict[str, Any] = {"label_over_word": rate((margin[scored] > 0).to_numpy()), "buckets": []}
    for name in [*bucket_names(), UNKNOWN_AREA]:
        members = (buckets == name).to_numpy()
        if not members.any():
            continue
        inside = members & scored.to_numpy()
        out["buckets"].append({"bucket": name, "n": int(members.sum()), "accuracy": rate(correct[members]),
                               "label_over_word": rate((margin.to_numpy()[inside] > 0))})
    return out


__all__ = ["AREA_EDGES", "UNKNOWN_AREA", "area_buckets", "bucket_names", "two_way_columns", "two_way_summary",
           "written_classes"]
