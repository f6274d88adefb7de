"""Blame and its causal check for one scope: the events of one stage and event kind, and each group of them.

The events' logit differences are attributed to neurons (see ``blame.attribution``); the top-k blamed neurons
are ablated against random and activation-matched baselines (see ``ablation``). The stage scope's
verdict is held-out when it has enough events: blame is chosen on a random half and ablated on the
other half. Each group (attack text, target class) is blamed on its own and, with enough events,
ablated in-sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor, nn

from typobench.neurons.proof.ablation import Events, ablation_study
from typobench.neurons.blame.attribution import Attribution, blame_table, top_neurons
from typobench.models.units import NeuronSpace, parse_neuron
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.proof.reference import Reference

# The metric a verdict is judged on, per event kind: a failure is undone when the true class comes
# back; a lift or hijack when the attack's class goes away.
PRIMARY_METRIC = {"failure": "restored", "lift": "effect_removed", "hijack": "effect_removed"}
METRIC_WORDS = {"restored": "accuracy recovered on the failures", "effect_removed": "attack effect removed",
                "targeted_removed": "targeted success removed", "margin_drop": "drop of the logit margin"}


@dataclass
class Scope:
    """The events of one stage and event kind: their rows, the attributions on the attacked and on the
    clean images (``attr`` [n, U]) and the attacked images with their moves."""

    stage: str
    kind: str
    frame: pd.DataFrame
    attacked: Attribution
    clean: Attribution
    events: Events


@dataclass
class Tables:
    """The rows of neurons_blame.csv and neurons_ablation.csv, collected scope by scope."""

    blame: list[dict[str, Any]] = field(default_factory=list)
    ablation: list[dict[str, Any]] = field(default_factory=list)

    def add_blame(self, scope: Scope, records: list[dict[str, Any]], *, level: str, group: str, n_events: int) -> None:
        for record in records:
            self.blame.append({"stage": scope.stage, "kind": scope.kind, "scope": level, "group": group,
                               "n_events": n_events, **record})

    def add_ablation(self, scope: Scope, rows: list[dict[str, Any]], *, level: str, group: str, split: str) -> None:
        for row in rows:
            self.ablation.append({"stage": scope.stage, "kind": scope.kind, "scope": level, "group": group,
                                  "split": split, **row})


@dataclass
class Ablator:
    """What every blame and ablation of one analysis shares: the classifier, its neurons, the clean
    reference and the options."""

    model: nn.Module
    space: NeuronSpace
    reference: Reference
    config: NeuronsConfig
    seed: int

    def blame(self, attacked: Tensor, clean: Tensor) -> pd.DataFrame:
        """Every unit ranked by the events' attributions ``attacked`` and ``clean`` [n, U]."""
        return blame_table(attacked, clean, self.space.names, rank_by=self.config.rank_by)

    def top_units(self, table: pd.DataFrame) -> list[int]:
        return [self.space.index(n) for n in top_neurons(table, self.config.top_k)]

    def study(self, events: Events, blamed: list[int], *, clean_cost: bool) -> tuple[list[dict], dict[str, Any]]:
        """Ablation rows and summary of ``blamed`` on ``events``; ``clean_cost``: also on the reference images."""
        config, reference = self.config, self.reference
        clean = {"clean": reference.scorer, "clean_labels": reference.labels} if clean_cost else {}
        # Vector units (attention heads) are mean-ablated to vectors but matched on their mean activation.
        match_on = reference.acts.mean(0) if reference.mean_values.dim() > 1 else None
        return ablation_study(self.model, self.space, events, blamed, mean_values=reference.mean_values,
                              draws=config.draws, seed=self.seed, modes=config.modes, batch_size=config.batch_size,
                              match_on=match_on, **clean)


def blame_records(table: pd.DataFrame, k: int) -> list[dict[str, Any]]:
    """The top ``k`` rows of a blame table, each with its neuron's layer and unit."""
    out = []
    for record in table.head(k).to_dict("records"):
        layer, unit = parse_neuron(record["neuron"])
        out.append({**record, "layer": layer, "unit": unit})
    return out


def verdict(summary: dict[str, Any], kind: str) -> dict[str, Any]:
    """Per ablation mode: does the blamed set beat each baseline on the kind's primary metric?"""
    metric = PRIMARY_METRIC[kind]
    out = {"metric": metric}
    for mode, metrics in summary.items():
        entry = metrics[metric]
        beats = [name for name in ("random", "matched") if entry.get(f"beats_{name}")]
        if len(beats) == 2:
            text = "beats both baselines"
        elif beats:
            text = f"beats only the {beats[0]} baseline"
        else:
            text = "does NOT beat the baselines"
        out[mode] = {"beats_random": bool(entry.get("beats_random")), "beats_matched": bool(entry.get("beats_matched")),
                     "blamed": entry["blamed"], "random_mean": entry["random"]["mean"],
                     "matched_mean": entry["matched"]["mean"], "text": text}
    return out


def verdict_text(detail: dict[str, Any]) -> str:
    parts = [f"{mode}: {value['text']}" for mode, value in detail.items() if isinstance(value, dict)]
    return f"{METRIC_WORDS[detail['metric']]} -- " + "; ".join(parts)


def analyse_scope(ablator: Ablator, scope: Scope, tables: Tables) -> dict[str, Any]:
    """Blame, ablation, held-out check and groups of one stage and event kind (neurons.json's analysis entry)."""
    config = ablator.config
    n_events = len(scope.frame)
    table = ablator.blame(scope.attacked.attr, scope.clean.attr)
    blamed = ablator.top_units(table)
    tables.add_blame(scope, blame_records(table, config.table_k), level="stage", group="", n_events=n_events)
    rows, summary = ablator.study(scope.events, blamed, clean_cost=True)
    tables.add_ablation(scope, rows, level="stage", group="", split="in-sample")
    held_out = _held_out(ablator, scope, blamed, tables) if n_events >= config.heldout_min else None
    detail = held_out["verdict_detail"] if held_out else verdict(summary, scope.kind)
    split = (f" (held-out: blame from {held_out['n_fit']} events, ablation on the other {held_out['n_test']})"
             if held_out else f" (in-sample: fewer than {config.heldout_min} events for a held-out split)")
    groups = [_group(ablator, scope, str(group), np.asarray(sorted(members)), tables)
              for group, members in scope.frame.groupby("group", sort=True).groups.items()]
    return {
        "mean_margin_attacked": float(scope.attacked.margin.mean()),
        "mean_margin_clean": float(scope.clean.margin.mean()),
        "attribution_sum_attacked": float(scope.attacked.attr.sum(1).mean()),
        "attribution_sum_clean": float(scope.clean.attr.sum(1).mean()),
        "blame": blame_records(table, config.table_k),
        "blamed": [ablator.space.names[u] for u in blamed],
        "ablation": summary,
        "held_out": held_out,
        "verdict": verdict_text(detail) + split,
        "verdict_detail": detail,
        "verdict_split": "held-out" if held_out else "in-sample",
        "groups": groups,
    }


def _held_out(ablator: Ablator, scope: Scope, blamed: list[int], tables: Tables) -> dict[str, Any]:
    """Blame chosen on one half of the events, ablation scored on the other: no selection on the test events."""
    n = len(scope.frame)
    order = np.random.default_rng([int(ablator.seed) & 0xFFFFFFFF, 4]).permutation(n)
    fit, test = np.sort(order[: n // 2]), np.sort(order[n // 2:])
    fit_blamed = ablator.top_units(ablator.blame(scope.attacked.attr[fit], scope.clean.attr[fit]))
    rows, summary = ablator.study(scope.events.subset(test), fit_blamed, clean_cost=True)
    tables.add_ablation(scope, rows, level="stage", group="", split="held-out")
    return {"n_fit": len(fit), "n_test": len(test), "blamed": [ablator.space.names[u] for u in fit_blamed],
            "overlap_with_blamed": len(set(fit_blamed) & set(blamed)), "ablation": summary,
            "verdict_detail": verdict(summary, scope.kind)}


def _group(ablator: Ablator, scope: Scope, group: str, rows: np.ndarray, tables: Tables) -> dict[str, Any]:
    """One group's own blame (``rows`` of the scope's events), ablated in-sample when it has enough events."""
    config = ablator.config
    table = ablator.blame(scope.attacked.attr[rows], scope.clean.attr[rows])
    entry: dict[str, Any] = {"group": group, "n_events": len(rows),
                             "top": blame_records(table, min(config.table_k, 10))}
    tables.add_blame(scope, blame_records(table, config.table_k), level="group", group=group, n_events=len(rows))
    if len(rows) >= config.min_group:
        blamed = ablator.top_units(table)
        ablation_rows, summary = ablator.study(scope.events.subset(rows), blamed, clean_cost=False)
        tables.add_ablation(scope, ablation_rows, level="group", group=group, split="in-sample")
        entry["blamed"] = [ablator.space.names[u] for u in blamed]
        entry["ablation"] = summary
        entry["verdict"] = verdict(summary, scope.kind)
    return entry


__all__ = ["Ablator", "METRIC_WORDS", "PRIMARY_METRIC", "Scope", "Tables", "analyse_scope", "blame_records",
           "verdict", "verdict_text"]
