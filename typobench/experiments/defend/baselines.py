"""Random-unit baselines of an ``ablate`` row: is ablating the *blamed* units a defense, or would any k units do?

For an ablate row, ``draws`` rows ablate k units drawn at random (seeded, without the row's own units) from
the layers the units were chosen among (a greedy selection's file records them: every block's heads; else
the chosen units' own layers), in the same mode, with the same mean values' images as the row (like for like:
the neurons run's reference images when the chosen units average over those, the same split otherwise), so
only the choice of units differs. The sets are distinct, and where there are no more than ``draws`` of them
(one head of sixteen) every one is scored instead: a repeated set would count twice in the test below. They
are scored on the suite's stages without PGD (the typographic question; PGD would cost ``draws`` times more).
The blamed set *beats* the draws when its accuracy under every written-target stage is above every draw's
and its written-class rate below every draw's: a one-sided test with p = 1 / (sets + 1).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from typobench.core.cache import content_key
from typobench.core.metrics import paired_difference_interval
from typobench.defenses.ablate import AblateDefense, tower_layers
from typobench.experiments.defend.rows import DefenseRow
from typobench.experiments.defend.table import written_target
from typobench.models.units import neuron_name, parse_neuron
from typobench.suites import Suite
from typobench.typographic import derive_seed

def ablation_of(row: DefenseRow) -> AblateDefense | None:
    """The row's ablation when it is its only defense (a baseline of a composed row would not isolate it)."""
    if len(row.defenses) == 1 and isinstance(row.defenses[0], AblateDefense):
        return row.defenses[0]
    return None


def random_rows(row: DefenseRow, model: nn.Module, draws: int, seed: int) -> list[DefenseRow]:
    """``draws`` rows (or one per set, when there are no more), each ablating as many units of ``draw_pool``
    as ``row`` does, in its mode and with its mean images (``like_for_like``)."""
    ablation = ablation_of(row)
    if ablation is None or draws < 1:
        return []
    request = ablation.mean_request
    mean = "" if request is None else f",mean_images={'neurons' if request.source == 'neurons' else request.split}"
    where = "" if ablation.positions == "all" else f",positions={ablation.positions}"
    rows = []
    for draw, chosen in enumerate(unit_sets(draw_pool(ablation, model), len(ablation.units), draws, seed, row.label)):
        spec = f"ablate:units={'+'.join(chosen)},mode={ablation.mode}{mean}{where}"
        # Built directly, not parsed: the chosen row's mean request (a neurons run's images need from=) is shared
        # as it is, so a draw's means come from exactly the chosen units' images.
        defense = AblateDefense(spec, chosen, ablation.mode, {"units_from": "random", "drawn_for": row.label},
                                ablation.mean_request, f"{row.label} [random draw {draw + 1}]", ablation.positions)
        rows.append(DefenseRow(f"{row.label} [random draw {draw + 1}]", (defense,)))
    return rows


def draw_pool(ablation: AblateDefense, model: nn.Module) -> list[str]:
    """Every unit of ``drawn_layers`` but the chosen ones."""
    sizes = {layer.name: layer.units for layer in tower_layers(model)}
    own = set(ablation.units)
    return [neuron_name(layer, i) for layer in drawn_layers(ablation) for i in range(sizes[layer])
            if neuron_name(layer, i) not in own]


def unit_sets(pool: Sequence[str], k: int, draws: int, seed: int, label: str) -> list[list[str]]:
    """``draws`` distinct sets of ``k`` units of ``pool``, each a pure function of (seed, label, draw); every set
    (in order) when there are no more than ``draws``."""
    if math.comb(len(pool), k) <= draws:
        return [list(c) for c in itertools.combinations(pool, k)]
    sets: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for draw in range(draws):
        for attempt in itertools.count():  # a set drawn before is drawn again (the first try keeps older draws)
            key = f"random-units:{draw}" + (f":{attempt}" if attempt else "")
            generator = torch.Generator().manual_seed(derive_seed(seed, label, key))
            chosen = [pool[i] for i in torch.randperm(len(pool), generator=generator)[:k].tolist()]
            if frozenset(chosen) not in seen:
                break
        seen.add(frozenset(chosen))
        sets.append(chosen)
    return sets


def drawn_layers(ablation: AblateDefense) -> list[str]:
    """The layers the units were chosen among: a greedy selection's pool, else the chosen units' own layers."""
    return list(ablation.source.get("pool_layers") or sorted({parse_neuron(name)[0] for name in ablation.units}))


def like_for_like(ablation: AblateDefense, draws_made: int | None = None, model: nn.Module | None = None) -> dict[str, Any]:
    """What the draws share with the chosen units (defend.json, and the table's note); ``exhaustive`` when the
    ``draws_made`` were every set of ``model``'s pool."""
    request = ablation.mean_request
    means = None if request is None else (f"neurons reference of {request.neurons_json}" if request.source == "neurons"
                                          else f"{request.n} images of the {request.split} split")
    exhaustive = (model is not None and draws_made is not None
                  and math.comb(len(draw_pool(ablation, model)), len(ablation.units)) == draws_made)
    return {"k": len(ablation.units), "layers": drawn_layers(ablation), "mode": ablation.mode, "mean_images": means,
            "positions": ablation.positions, "exhaustive": exhaustive}


def typographic_suite(suite: Suite) -> Suite:
    """``suite`` without its pixel-attack stages (and without stages that read their images)."""
    kept, dropped = [], set()
    for stage in suite.stages:
        if stage.strengthened() is not None or any(name in dropped for name in stage.requires()):
            dropped.add(stage.name)
        else:
            kept.append(stage)
    sha256 = content_key(suite=suite.sha256, stages=[s.name for s in kept])
    return replace(suite, name=f"{suite.name}-without-pgd", stages=kept, path=None, sha256=sha256)


def verdict(blamed: dict[str, Any], draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Whether ``blamed`` (a results.json) beats every one of ``draws`` on each written-target stage."""
    out: dict[str, Any] = {"draws": len(draws), "p": 1 / (len(draws) + 1), "stages": {}}
    by_name = [{s["name"]: s for s in d["stages"]} for d in draws]
    for stage in blamed["stages"]:
        if not written_target(stage):
            continue
        name = stage["name"]
        accuracies = [d[name]["accuracy"] for d in by_name]
        written = [d[name]["targeted_success"]["value"] for d in by_name]
        out["stages"][name] = {
            "accuracy": stage["accuracy"], "draws_accuracy_max": max(accuracies),
            "written": stage["targeted_success"]["value"], "draws_written_min": min(written),
            "beats_every_draw": stage["accuracy"] > max(accuracies) and stage["targeted_success"]["value"] < min(written),
        }
    out["beats_every_draw"] = bool(out["stages"]) and all(s["beats_every_draw"] for s in out["stages"].values())
    return out


def paired_vs_draws(chosen: pd.DataFrame, draws: Sequence[pd.DataFrame], stages: Sequence[str],
                    seed: int = 0) -> dict[str, Any]:
    """Per stage: accuracy of the chosen units minus the draws' mean accuracy, paired on the same images (each
    image's correct 0/1 minus the fraction of draws right on it), with a paired-bootstrap 95% interval."""
    def correct(predictions: pd.DataFrame, stage: str) -> pd.Series:
        rows = predictions[predictions["stage"] == stage]
        return (rows["pred"] == rows["label"]).astype(float).set_axis(rows["sample_id"].astype(str))

    out = {}
    for stage in stages:
        own = correct(chosen, stage)
        others = [correct(d, stage) for d in draws]
        if own.empty or not others or any(set(o.index) != set(own.index) for o in others):
            continue
        mean = np.mean([o.loc[own.index].to_numpy() for o in others], axis=0)
        lo, hi = paired_difference_interval(own.to_numpy(), mean, seed=seed)
        out[stage] = {"difference": float(own.mean() - mean.mean()), "ci95": [lo, hi]}
    return out


__all__ = ["ablation_of", "draw_pool", "drawn_layers", "like_for_like", "paired_vs_draws", "random_rows", "typographic_suite",
           "unit_sets", "verdict"]
