"""Events: the samples an attack stage moved from one class to another, found in the run's predictions.

For each attack stage, every sample is compared with its clean prediction p0 (the ``clean`` stage of
predictions.csv); with y the label, p1 the attacked prediction and t the stage's target:

* ``failure``: p0 = y and p1 != y -- the prediction moved from y to p1;
* ``lift``: p0 != y and p1 = y -- the attack fixed a wrong prediction (Fort's true-label sticker);
* ``hijack``: p0 != y, p1 != y, p1 != p0 and p1 = t -- a targeted attack took an already-wrong image
  to its target.

Each event is a move from a class ``a`` (y, p0, p0) to a class ``b`` (p1, y, t). Events are grouped by
the attack text (``text`` column), else the target class, else the stage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.models.units import as_pixels
from typobench.suites.neurons_option import EVENT_KINDS
from typobench.neurons.blame.replay import RunReplay

EVENT_COLUMNS = ["sample_id", "index", "label", "clean_pred", "pred", "target", "kind", "from", "to", "group"]


def _group_of(row: pd.Series, stage: str, classnames: Sequence[str]) -> str:
    """The attack text, else ``target=<class>``, else the stage. A run's own predictions hold NaN where a
    stage has no text; the same predictions read back from predictions.csv hold ''."""
    text = row.get("text", "")
    text = "" if pd.isna(text) else str(text).strip()
    if text:
        return text
    target = int(row["target"]) if str(row.get("target", "")).lstrip("-").isdigit() else -1
    if target >= 0:
        return f"target={classnames[target]}"
    return stage


def find_events(predictions: pd.DataFrame, stage: str, clean_pred: dict[str, int], classnames: Sequence[str],
                kinds: Sequence[str] = EVENT_KINDS) -> pd.DataFrame:
    """One row per event of ``stage``: sample_id, index, label, clean_pred, pred, target, kind, from, to, group."""
    rows = predictions[predictions["stage"] == stage].copy()
    if rows.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    rows["clean_pred"] = rows["sample_id"].map(clean_pred)
    rows = rows[rows["clean_pred"].notna()]
    y = rows["label"].astype(int)
    p0 = rows["clean_pred"].astype(int)
    p1 = rows["pred"].astype(int)
    t = pd.to_numeric(rows["target"], errors="coerce").fillna(-1).astype(int)
    rows["target"] = t
    rows["clean_pred"] = p0
    kind = pd.Series("", index=rows.index)
    kind[(p0 == y) & (p1 != y)] = "failure"
    kind[(p0 != y) & (p1 == y)] = "lift"
    kind[(p0 != y) & (p1 != y) & (p1 != p0) & (p1 == t)] = "hijack"
    rows["kind"] = kind
    rows = rows[rows["kind"].isin(list(kinds))].copy()
    rows["from"] = np.where(rows["kind"] == "failure", rows["label"].astype(int), rows["clean_pred"])
    rows["to"] = rows["pred"].astype(int)
    rows["group"] = [_group_of(r, stage, classnames) for _, r in rows.iterrows()]
    return rows[EVENT_COLUMNS].reset_index(drop=True)


def cap_events(events: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` events, a seeded random subset kept in their original order."""
    if len(events) <= limit:
        return events
    keep = np.sort(np.random.default_rng([int(seed) & 0xFFFFFFFF, 3]).choice(len(events), size=limit, replace=False))
    return events.iloc[keep].reset_index(drop=True)


def clean_predictions(replay: RunReplay, batch_size: int) -> dict[str, int]:
    """The clean prediction of every sample by id: the run's ``clean`` stage, else scored now."""
    predictions = replay.predictions
    clean_rows = predictions[predictions["stage"] == "clean"]
    if len(clean_rows):
        return dict(zip(clean_rows["sample_id"], clean_rows["pred"].astype(int)))
    dataset = replay.dataset
    preds = replay.predict(as_pixels(replay.clean_images(list(range(len(dataset))), batch_size)))
    return dict(zip(dataset.sample_ids, preds.tolist()))


@dataclass
class StageEvents:
    """The reproduced events of one stage: their rows, attacked images [n, 3, H, W] float, targets [n]
    (-1 = none) and clean images [n, 3, H, W] (uint8 when lossless), with how the regeneration went."""

    frame: pd.DataFrame
    attacked: Tensor
    targets: Tensor
    clean: Tensor
    regeneration: dict[str, Any]


def regenerate_events(replay: RunReplay, stage: str, events: pd.DataFrame, batch_size: int) -> StageEvents:
    """The attacked images of ``events`` regenerated; events whose prediction is not reproduced are left out."""
    positions = events["index"].astype(int).tolist()
    for position, sample_id in zip(positions, events["sample_id"]):
        if replay.dataset.sample_ids[position] != sample_id:
            raise UsageError(f"predictions.csv names sample {sample_id} at index {position}, which the reloaded data "
                             "set holds elsewhere: the run's data changed")
    started = time.perf_counter()
    attacked, targets = replay.regenerate(stage, positions, batch_size)
    agree = replay.predict(attacked, batch_size).numpy() == events["pred"].astype(int).to_numpy()
    regeneration = {"regenerated": len(positions), "agree": int(agree.sum()), "mismatches": int((~agree).sum()),
                    "seconds": round(time.perf_counter() - started, 2)}
    keep = np.nonzero(agree)[0]
    events = events.iloc[keep].reset_index(drop=True)
    clean = replay.clean_images(events["index"].astype(int).tolist(), batch_size)
    return StageEvents(events, attacked[keep], targets[keep], clean, regeneration)


__all__ = ["EVENT_COLUMNS", "StageEvents", "cap_events", "clean_predictions", "find_events", "regenerate_events"]
