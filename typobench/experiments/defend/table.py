"""The defenses table: one row per defense, the suite's figures with 95% intervals, and the clean cost.

Columns come from the run's stage records (``results.json``), so any suite works:

* ``<stage>`` / ``<stage>_lo`` / ``<stage>_hi``: accuracy of every stage (Wilson interval);
* ``<stage>:written``: for a text stage whose target is the written class, the rate at which the written
  class is predicted (targeted success over eligible samples);
* ``clean_cost`` (and its paired-bootstrap interval): clean accuracy without defenses minus with this one,
  on the same images (positive: the defense costs accuracy);
* ``random_draws``, ``beats_random``: for an ablate row, whether it beats every random draw of as many units
  (``baselines``), with the draws' best accuracy and lowest written-class rate per stage;
* ``words_alone``, ``word_retrieval`` (with ``_lo``/``_hi`` and ``lexicon_words``): the reading cost
  (``reading``): accuracy on the true class name alone on white, and top-1 retrieval of a written word
  over a fixed lexicon; a defense that blinds the model to text scores low on both;
* ``backward``: how attacks differentiated through the row's defenses (``exact``, or the declared BPDA);
* ``flags``: the defense's sanity flags and the run's attack-failure flags;
* ``pgd_pairs``: each PGD stage made on the undefended model (``attack_on = "undefended"``, a transfer attack)
  beside the adaptive stage of the same attack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from typobench.core.metrics import paired_difference_interval

CLEAN = "clean"


def written_target(stage: dict[str, Any]) -> bool:
    return stage.get("kind") == "text" and stage.get("target") == "written" and "targeted_success" in stage


def stage_columns(stages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (and written-class rate) of each stage record, with their intervals."""
    out: dict[str, Any] = {}
    for stage in stages:
        name = stage["name"]
        out[name], (out[f"{name}_lo"], out[f"{name}_hi"]) = stage["accuracy"], stage["ci95"]
        if written_target(stage):
            success = stage["targeted_success"]
            out[f"{name}:written"], (out[f"{name}:written_lo"], out[f"{name}:written_hi"]) = \
                success["value"], success["ci95"]
    return out


def _correct(predictions: pd.DataFrame, stage: str) -> pd.Series:
    rows = predictions[predictions["stage"] == stage]
    return (rows["pred"] == rows["label"]).set_axis(rows["sample_id"].astype(str))


def clean_cost(undefended: pd.DataFrame, defended: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Clean accuracy lost to the defense on the same images, with a paired-bootstrap 95% interval."""
    before, after = _correct(undefended, CLEAN), _correct(defended, CLEAN)
    if before.empty or set(before.index) != set(after.index):
        return {"clean_cost": None, "clean_cost_lo": None, "clean_cost_hi": None}
    after = after.loc[before.index]
    lo, hi = paired_difference_interval(before.to_numpy(float), after.to_numpy(float), seed=seed)
    return {"clean_cost": float(before.mean() - after.mean()), "clean_cost_lo": lo, "clean_cost_hi": hi}


def pgd_pairs(sanity: dict[str, Any] | None) -> list[dict[str, Any]]:
    """(adaptive, transfer) PGD stage pairs as results.json's ``defense_sanity`` found them."""
    return list(((sanity or {}).get("transfer_stronger") or {}).get("pairs", []))


def backward(results: dict[str, Any]) -> str:
    """How the attacks differentiated through the row's defenses: each defense's declared backward pass where it
    is not the exact gradient (``jpeg-approx``, ``identity``), else ``exact``."""
    approximated = [f"{d['spec']}: {d['backward']}" for d in results.get("defenses", [])
                    if d.get("backward", "exact") != "exact"]
    return "; ".join(approximated) or "exact"


def flags(results: dict[str, Any]) -> list[str]:
    """The defense's sanity flags and the attack-failure flags of its run (``harness.attack_checks``)."""
    return [*((results.get("defense_sanity") or {}).get("flags", [])),
            *((results.get("attack_checks") or {}).get("flags", []))]


READING = ("words_alone", "word_retrieval")


def reading_columns(reading: dict[str, Any] | None) -> dict[str, Any]:
    """``words_alone`` and ``word_retrieval`` with their intervals, and the lexicon's size (``reading``)."""
    if not reading:
        return {}
    out: dict[str, Any] = {"lexicon_words": reading["lexicon_words"]}
    for key in READING:
        out[key], (out[f"{key}_lo"], out[f"{key}_hi"]) = reading[key]["value"], reading[key]["ci95"]
    return out


def defense_table(rows: Sequence[dict[str, Any]], seed: int) -> pd.DataFrame:
    """One line per row of ``rows`` (each: ``label``, ``chosen_on``, ``results``, ``predictions``); the first
    row is the model without defenses."""
    undefended = rows[0]["predictions"]
    lines = []
    for row in rows:
        results = row["results"]
        sanity = results.get("defense_sanity")
        line = {"defense": row["label"], "chosen_on": row["chosen_on"], "backward": backward(results),
                **clean_cost(undefended, row["predictions"], seed), **stage_columns(results["stages"]),
                "flags": ",".join(flags(results)), "run_dir": str(row["run_dir"])}
        line.update(reading_columns(row.get("reading")))
        baseline = row.get("random_baseline")
        if baseline:
            line["random_draws"], line["beats_random"] = baseline["draws"], baseline["beats_every_draw"]
            same = baseline.get("like_for_like") or {}
            # the draws differ from the chosen units in the units only: the table says what they share
            line["random_draws_means"] = same.get("mean_images") or f"none (mode={same.get('mode', 'zero')})"
            line["random_draws_exhaustive"] = bool(same.get("exhaustive"))
            for name, figures in baseline["stages"].items():
                line[f"{name}:draws_accuracy_max"] = figures["draws_accuracy_max"]
                line[f"{name}:draws_written_min"] = figures["draws_written_min"]
            for name, paired in (baseline.get("paired_vs_draws_mean") or {}).items():
                line[f"{name}:vs_draws"], (line[f"{name}:vs_draws_lo"], line[f"{name}:vs_draws_hi"]) = \
                    paired["difference"], paired["ci95"]
        for pair in pgd_pairs(sanity):
            line[f"{pair['adaptive']}:transfer_gap"] = pair["adaptive_accuracy"] - pair["transfer_accuracy"]
        lines.append(line)
    return pd.DataFrame(lines)


def markdown(table: pd.DataFrame, stages: Sequence[dict[str, Any]]) -> str:
    """The table in Markdown: accuracy per stage (written-class rate after '/'), clean cost, flags."""
    names = [s["name"] for s in stages]
    written = {s["name"] for s in stages if written_target(s)}
    header = ["defense", "chosen on", "backward", *[f"{n} (written)" if n in written else n for n in names],
              *(["words alone", "word retrieval"] if "words_alone" in table.columns else []),
              "clean cost", "vs random units", "flags"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [str(row["defense"]), str(row["chosen_on"]), str(row["backward"])]
        for name in names:
            cell = _percent(row[name], row[f"{name}_lo"], row[f"{name}_hi"])
            if name in written:
                cell += " / " + _percent(row[f"{name}:written"], row[f"{name}:written_lo"], row[f"{name}:written_hi"])
            cells.append(cell)
        if "words_alone" in table.columns:
            cells += [_percent(row[k], row[f"{k}_lo"], row[f"{k}_hi"]) for k in READING]
        cells += [_points(row["clean_cost"], row["clean_cost_lo"], row["clean_cost_hi"]), _baseline(row),
                  str(row["flags"] or "-")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _baseline(row: pd.Series) -> str:
    draws = row.get("random_draws")
    if draws is None or pd.isna(draws):
        return "-"
    means = row.get("random_draws_means")
    same = f" (same k, layers chosen among and mean images: {means})" if isinstance(means, str) \
        and not means.startswith("none") else " (same k and layers chosen among)"
    paired = [f"{key[:-len(':vs_draws')]} {_points(row[key], row[key + '_lo'], row[key + '_hi'])}"
              for key in row.index if key.endswith(":vs_draws") and not pd.isna(row[key])]
    vs_mean = f"; minus the draws' mean, paired: {', '.join(paired)}" if paired else ""
    sets = f"all {int(draws)} other sets" if row["random_draws_exhaustive"] else f"all {int(draws)} draws"
    return f"{'beats' if row['beats_random'] else 'does not beat'} {sets}{same}{vs_mean}"


def _percent(value: Any, lo: Any, hi: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{100 * value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def _points(value: Any, lo: Any, hi: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{100 * value:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


__all__ = ["backward", "clean_cost", "defense_table", "flags", "markdown", "stage_columns", "written_target"]
