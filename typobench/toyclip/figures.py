"""The figures an organism is checked on, from the harness's own results: suites (clean, sticker lift, written
class, control ratio, PGD), covering, words alone, linear probe vs zero-shot, and Stroop; each ``{value, ci95, n}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from typobench.core.metrics import bootstrap_interval, paired_difference_interval
from typobench.toyclip.checks import COLOUR_PROMPT, WORD_PROMPT

def _stage(results: dict[str, Any], name: str) -> dict[str, Any]:
    for stage in results["stages"]:
        if stage["name"] == name:
            return stage
    raise KeyError(f"stage {name!r} not in the run of suite {results['suite']['name']}")


def _figure(value: float, ci: Sequence[float] | None = None, n: int | None = None) -> dict[str, Any]:
    return {"value": float(value), "ci95": [float(c) for c in ci] if ci is not None else None, "n": n}


def _drop_ratio(clean: float, attacked: float, wrong_label: float) -> float:
    """How much accuracy ``attacked`` loses, as a fraction of what the random wrong label loses."""
    wrong_drop = clean - wrong_label
    return (clean - attacked) / wrong_drop if wrong_drop > 0 else float("inf")


def suite_figures(default: dict[str, Any], held_out: dict[str, Any]) -> dict[str, dict]:
    """The attack figures from the results.json of the ``default`` and ``held-out-font`` runs."""
    clean, sticker = _stage(default, "clean"), _stage(default, "true-label-sticker")
    wrong, control = _stage(default, "random-wrong-label"), _stage(default, "control-word")
    pgd, font = _stage(default, "pgd-linf-2"), _stage(held_out, "held-out-font")
    return {
        "clean": _figure(clean["accuracy"], clean["ci95"], clean["n"]),
        "sticker": _figure(sticker["accuracy"], sticker["ci95"], sticker["n"]),
        "sticker_lift": _figure(sticker["accuracy"] - clean["accuracy"]),
        "wrong_label_accuracy": _figure(wrong["accuracy"], wrong["ci95"], wrong["n"]),
        "written_class": _figure(wrong["targeted_success"]["value"], wrong["targeted_success"]["ci95"],
                                 wrong["targeted_success"]["n"]),
        "control_accuracy": _figure(control["accuracy"], control["ci95"], control["n"]),
        "control_ratio": _figure(_drop_ratio(clean["accuracy"], control["accuracy"], wrong["accuracy"])),
        "held_out_font_written": _figure(font["targeted_success"]["value"], font["targeted_success"]["ci95"],
                                         font["targeted_success"]["n"]),
        "pgd": _figure(pgd["accuracy"], pgd["ci95"], pgd["n"]),
    }


def covering_figures(control: dict[str, Any]) -> dict[str, dict]:
    """From the ``control-word`` run: what a blank bar the size of each control word costs (covering
    pixels without letters), next to the word itself, as fractions of the wrong-label drop."""
    clean, wrong = _stage(control, "clean")["accuracy"], _stage(control, "random-wrong-label")["accuracy"]
    word, bar = _stage(control, "control-word"), _stage(control, "blank-bar")
    return {
        "blank_bar": _figure(bar["accuracy"], bar["ci95"], bar["n"]),
        "blank_bar_ratio": _figure(_drop_ratio(clean, bar["accuracy"], wrong)),
        "blank_bar_pixels": _figure(bar.get("pixel_fraction_mean", float("nan"))),
        "control_word_pixels": _figure(word.get("pixel_fraction_mean", float("nan"))),
    }


def words_alone_figure(words: dict[str, Any]) -> dict[str, dict]:
    """From the ``words-alone`` run: how often the true class name, written alone on white, is named."""
    stage = _stage(words, "words-alone")
    return {"words_alone": _figure(stage["accuracy"], stage["ci95"], stage["n"])}


def probe_figures(probe: dict[str, Any], zeroshot: dict[str, Any]) -> dict[str, dict]:
    """Linear probe vs zero-shot, from the clean runs of both heads on the same images."""
    probe_clean, zeroshot_clean = _stage(probe, "clean"), _stage(zeroshot, "clean")
    if probe_clean["n"] != zeroshot_clean["n"]:
        raise ValueError(f"the probe ({probe_clean['n']} images) and zero-shot ({zeroshot_clean['n']}) runs must "
                         "score the same images")
    return {
        "linear_probe": _figure(probe_clean["accuracy"], probe_clean["ci95"], probe_clean["n"]),
        "zeroshot_probe_images": _figure(zeroshot_clean["accuracy"], zeroshot_clean["ci95"], zeroshot_clean["n"]),
        "probe_minus_zeroshot": _figure(probe_clean["accuracy"] - zeroshot_clean["accuracy"], n=probe_clean["n"]),
    }


def correct_by_stage(predictions: pd.DataFrame) -> pd.DataFrame:
    """Bool [image, stage]: whether each image was classified correctly after each stage."""
    return (predictions.assign(ok=predictions["pred"] == predictions["label"])
            .pivot(index="sample_id", columns="stage", values="ok"))


def paired_difference_ci(first: pd.DataFrame, second: pd.DataFrame, draws: int = 2000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of accuracy(first) - accuracy(second) on the same images (clean-stage
    predictions of two heads), resampling images: pairing removes the shared per-image difficulty."""
    a, b = correct_by_stage(first)["clean"], correct_by_stage(second)["clean"]
    if set(a.index) != set(b.index):
        raise ValueError("the two runs scored different images: a paired interval needs the same ones")
    return paired_difference_interval(a.to_numpy(float), b.loc[a.index].to_numpy(float), draws, seed)


def control_ratio_ci(predictions: pd.DataFrame, draws: int = 2000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of the control-word / random-wrong-label drop ratio, resampling images
    (each image keeps its three stages: clean, random-wrong-label, control-word)."""
    correct = correct_by_stage(predictions)
    clean = correct["clean"].to_numpy(float)
    wrong = correct["random-wrong-label"].to_numpy(float)
    control = correct["control-word"].to_numpy(float)

    def ratios(idx: np.ndarray) -> np.ndarray:
        wrong_drop = clean[idx].mean(1) - wrong[idx].mean(1)
        return (clean[idx].mean(1) - control[idx].mean(1)) / np.where(wrong_drop > 0, wrong_drop, np.nan)

    return bootstrap_interval(len(clean), ratios, draws, seed)


def stroop_figures(results: Sequence[dict[str, Any]]) -> dict[str, dict]:
    """Figures from StroopResult.to_dict()["results"] (one entry per prompt)."""
    by_prompt = {r["prompt"]: r["metrics"] for r in results}

    def fig(prompt: str, metric: str) -> dict[str, Any]:
        m = by_prompt[prompt][metric]
        return _figure(m["value"], m["ci95"], m["n"])

    return {
        "stroop_word_named": fig(WORD_PROMPT, "word_named"),
        "stroop_word_congruent": fig(WORD_PROMPT, "congruent_accuracy"),
        "stroop_colour_ink": fig(COLOUR_PROMPT, "incongruent_accuracy"),
        "stroop_colour_congruent": fig(COLOUR_PROMPT, "congruent_accuracy"),
        **{f"stroop[{p}]": {k: by_prompt[p][k]["value"] for k in by_prompt[p]} for p in by_prompt},
    }

