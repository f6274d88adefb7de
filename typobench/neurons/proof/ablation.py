"""Proof: ablate the blamed neurons and re-score, against random and activation-matched baselines.

Ablation replaces a unit at *every* position by 0 (``zero``) or by its mean activation over the clean
reference images, averaged over positions (``mean``). The k blamed units are compared with

* ``random``: k units drawn uniformly from the layer(s), the blamed ones excluded;
* ``matched``: for each blamed unit, a unit drawn among the ``pool`` non-blamed units whose mean
  clean activation is closest to it (so the baseline removes as much "signal" as the blamed set);

each over several draws (mean and spread reported). Both baselines are deterministic from the seed
and their draws are distinct sets.

Metrics on the events (attacked images whose prediction moved from class ``a`` to ``b``):
``restored`` (prediction back to ``a``; for failures ``a`` is the true class, so this is the accuracy
recovered on the failures), ``effect_removed`` (prediction no longer ``b``; on targeted failures this
is the targeted success removed), ``targeted_removed`` (the same, only over events whose ``b`` is the
attack's target), ``margin`` (mean ``logit_b - logit_a``; ``margin_drop`` is its fall). On the clean
reference images: ``clean_acc`` and ``clean_cost`` (accuracy lost by the ablation).

A blame *beats* a baseline when its metric is larger than in every draw of that baseline (the
chance of that under "the blamed set is just another draw" is 1/(draws+1): with the default 20
draws, p < 0.05); ``p_random``/``p_matched`` give that rank p-value. A blame that does not beat the
baselines is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.suites.neurons_option import ABLATION_MODES
from typobench.models.units import NeuronSpace, ablate, as_pixels
from typobench.neurons.proof.scoring import Scorer

SELECTIONS = ("blamed", "random", "matched")
COMPARED = ("restored", "effect_removed", "targeted_removed", "margin_drop")


def _distinct_draws(draw_one, draws: int, attempts_per_draw: int = 50) -> list[list[int]]:
    sets: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for _ in range(draws * attempts_per_draw):
        if len(sets) == draws:
            break
        pick = sorted(int(i) for i in draw_one())
        if tuple(pick) not in seen:
            seen.add(tuple(pick))
            sets.append(pick)
    return sets


def random_sets(total: int, k: int, draws: int, seed: int, exclude: Sequence[int] = ()) -> list[list[int]]:
    """``draws`` distinct sets of ``k`` units from ``range(total)`` minus ``exclude``; same seed, same sets."""
    pool = np.setdiff1d(np.arange(total), np.asarray(list(exclude), dtype=int))
    if len(pool) < k:
        raise UsageError(f"cannot draw {k} random neurons from the {len(pool)} not blamed: lower --top-k")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 1])
    return _distinct_draws(lambda: rng.choice(pool, size=k, replace=False), draws)


def matched_sets(mean_act: Tensor | np.ndarray, blamed: Sequence[int], draws: int, seed: int,
                 pool: int | None = None) -> list[list[int]]:
    """``draws`` distinct sets, each with one non-blamed unit per blamed unit, drawn among the ``pool``
    units of closest mean activation (default ``max(2 * draws, 8)``)."""
    values = np.asarray(mean_act, dtype=float)
    blamed = [int(b) for b in blamed]
    others = np.setdiff1d(np.arange(len(values)), np.asarray(blamed, dtype=int))
    if len(others) < len(blamed):
        raise UsageError(f"cannot match {len(blamed)} neurons with the {len(others)} not blamed: lower --top-k")
    pool = pool or max(2 * draws, 8)
    nearest = {b: others[np.argsort(np.abs(values[others] - values[b]), kind="stable")] for b in blamed}
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 2])

    def draw_one() -> list[int]:
        chosen: list[int] = []
        for b in blamed:
            options = [int(c) for c in nearest[b] if int(c) not in chosen][:pool]
            chosen.append(options[int(rng.integers(len(options)))])
        return chosen

    return _distinct_draws(draw_one, draws)


@torch.no_grad()
def score(model: nn.Module, space: NeuronSpace, images: Tensor, units: Sequence[int] = (),
          values: Tensor | None = None, *, batch_size: int = 64) -> Tensor:
    """Logits [N, C] (fp32, CPU) with ``units`` ablated (none: the unedited model)."""
    device = next(model.parameters()).device
    out = []
    with ablate(space, units, values):
        for start in range(0, len(images), batch_size):
            out.append(model(as_pixels(images[start:start + batch_size]).to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


@dataclass
class Events:
    """Attacked images and the move each one made: from class ``from_idx`` to ``to_idx``; ``targets``
    is the attack's target per event (-1 = none)."""

    images: Tensor
    from_idx: Tensor
    to_idx: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return len(self.from_idx)

    def subset(self, rows: Sequence[int] | Tensor) -> Events:
        rows = torch.as_tensor(rows, dtype=torch.long)
        return Events(self.images[rows], self.from_idx[rows], self.to_idx[rows], self.targets[rows])


def event_metrics(logits: Tensor, events: Events) -> dict[str, Any]:
    pred = logits.argmax(1)
    rows = torch.arange(len(events))
    margin = logits[rows, events.to_idx] - logits[rows, events.from_idx]
    targeted = events.targets == events.to_idx
    return {
        "n_events": len(events),
        "restored": float((pred == events.from_idx).float().mean()) if len(events) else None,
        "effect_removed": float((pred != events.to_idx).float().mean()) if len(events) else None,
        "n_targeted": int(targeted.sum()),
        "targeted_removed": float((pred[targeted] != events.to_idx[targeted]).float().mean()) if targeted.any() else None,
        "margin": float(margin.mean()) if len(events) else None,
    }


def ablation_study(model: nn.Module, space: NeuronSpace, events: Events, blamed: Sequence[int], *,
                   mean_values: Tensor, draws: int, seed: int, modes: Sequence[str] = ABLATION_MODES,
                   clean: Scorer | None = None, clean_labels: Tensor | None = None,
                   batch_size: int = 64, match_on: Tensor | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (one per mode x selection x draw, plus the unedited model) and a summary per mode.

    ``clean`` scores the clean reference images (``clean_labels``) for the clean accuracy cost.
    ``match_on`` [total]: what the matched baseline matches (default ``mean_values``; needed when those
    are vectors, e.g. attention heads' mean outputs [total, d_head]).
    """
    blamed = [int(b) for b in blamed]
    k = len(blamed)
    baselines = {
        "random": random_sets(space.total, k, draws, seed, exclude=blamed),
        "matched": matched_sets(mean_values if match_on is None else match_on, blamed, draws, seed),
    }
    scorer = Scorer(model, space, events.images, batch_size)
    base = event_metrics(scorer.base_logits, events)
    clean_base = None
    if clean is not None and len(clean.images):
        clean_base = float((clean.base_logits.argmax(1) == clean_labels).float().mean())
    rows = [{"mode": "none", "selection": "none", "draw": 0, "k": 0, "neurons": "", **base,
             "margin_drop": 0.0, "clean_acc": clean_base, "clean_cost": 0.0 if clean_base is not None else None}]
    for mode in modes:
        if mode not in ABLATION_MODES:
            raise UsageError(f"ablation mode '{mode}' is unknown: use {', '.join(ABLATION_MODES)}")
        values = None if mode == "zero" else mean_values
        plan = [("blamed", 0, blamed)] + [(name, d, s) for name, sets in baselines.items() for d, s in enumerate(sets)]
        for selection, draw, units in plan:
            metrics = event_metrics(scorer.logits(units, values), events)
            row = {"mode": mode, "selection": selection, "draw": draw, "k": len(units),
                   "neurons": " ".join(space.names[u] for u in units), **metrics,
                   "margin_drop": None if metrics["margin"] is None else base["margin"] - metrics["margin"],
                   "clean_acc": None, "clean_cost": None}
            if clean_base is not None:
                acc = float((clean.logits(units, values).argmax(1) == clean_labels).float().mean())
                row["clean_acc"], row["clean_cost"] = acc, clean_base - acc
            rows.append(row)
    return rows, summarise(rows, modes)


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "sd": None, "min": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max())}


def summarise(rows: list[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    """Per mode and metric: the blamed value, each baseline's mean/sd/min/max over draws, and whether
    the blamed value exceeds every draw of the baseline."""
    out: dict[str, Any] = {}
    for mode in modes:
        mode_rows = [r for r in rows if r["mode"] == mode]
        blamed = next((r for r in mode_rows if r["selection"] == "blamed"), None)
        if blamed is None:
            continue
        metrics: dict[str, Any] = {}
        for metric in COMPARED + ("clean_cost",):
            entry: dict[str, Any] = {"blamed": blamed.get(metric)}
            for selection in ("random", "matched"):
                draws = [r[metric] for r in mode_rows if r["selection"] == selection and r.get(metric) is not None]
                entry[selection] = _stats(draws)
                if metric != "clean_cost":
                    entry[f"beats_{selection}"] = (entry["blamed"] is not None and bool(draws)
                                                   and entry["blamed"] > max(draws))
                    # One-sided rank p-value of "the blamed set is one more draw": (1 + draws >= it) / (D + 1).
                    entry[f"p_{selection}"] = (None if entry["blamed"] is None or not draws else
                                               (1 + sum(d >= entry["blamed"] for d in draws)) / (len(draws) + 1))
            metrics[metric] = entry
        out[mode] = metrics
    return out


__all__ = ["ABLATION_MODES", "COMPARED", "Events", "ablation_study", "event_metrics", "matched_sets",
           "random_sets", "score", "summarise"]
