"""Measure what toyclip must show, with the harness itself: ``python -m typobench.toyclip.measure``.

Every figure comes from the same code a user runs: ``typobench run`` (suites ``default``,
``held-out-font``, ``control-word`` and ``words-alone``, a linear probe and zero-shot on the same images) and ``typobench stroop``, on
CIFAR-10 test images of the ``cifar10-jpeg`` folder (``--limit`` of them for the attacks; all 10,000
for linear probe vs zero-shot, a paired difference of two close accuracies). Each property is compared
with its threshold (``CHECKS``); the verdicts, the values with 95% intervals (Wilson; bootstrap over
images for the control ratio and the paired probe difference) and the commands that reproduce them are
written to
``OUT/measure.json`` and ``OUT/measure.md`` (the tables of the model card). Runs resume: measuring again
in the same folder re-reads finished runs instead of recomputing them.

    python -m typobench.toyclip.measure --data-root ../shared/data/cifar10-jpeg --limit 2000 --out runs/toyclip-measure
    python -m typobench.toyclip.measure ... --model typobench-toyclip --pretrained OUT/toyclip.safetensors  # a candidate
    python -m typobench.toyclip.measure ... --model toyclip-vit --holdout 2000 --limit 8000  # the ViT, by its thresholds

Choose recipes on the images ``--limit 2000`` draws and report with ``--holdout 2000``: the report then
holds none of the images a choice was made on.
"""

from __future__ import annotations

import argparse
import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.core.metrics import bootstrap_interval, paired_difference_interval
from typobench.core.options import REQUIRED, add_arguments, check, from_namespace, option
from typobench.experiments.stroop import run_stroop
from typobench.harness.config import DATA, MODEL, RUNTIME, Quiet, RunConfig
from typobench.harness.results import read_predictions
from typobench.harness.run import execute
from typobench.harness.session import Session
from typobench.toyclip.model import ORGANISMS
from typobench.typographic.stroop import GOH_PROMPT

WORD_PROMPT = "a photo of a {}."
COLOUR_PROMPT = "a photo of the color {}."
# Stroop stimuli: three training fonts x three sizes (8 inks x 8 words each: 576 stimuli per prompt).
STROOP_FONTS = ("sans", "sans-bold", "mono")
STROOP_SIZES = (0.15, 0.18, 0.2)


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
# congruent-Stroop threshold (both are still measured and reported).
_VIT_THRESHOLDS = {"clean": 0.55, "written_class": 0.25, "held_out_font_written": 0.15, "stroop_colour_ink": 0.80}
VIT_CHECKS: tuple[Check, ...] = tuple(
    dataclasses.replace(c, threshold=_VIT_THRESHOLDS.get(c.key, c.threshold)) for c in CHECKS
    if c.key not in ("probe_minus_zeroshot", "stroop_word_congruent"))
# Each organism's checks, by its built-in name.
CHECKS_BY_ORGANISM: dict[str, tuple[Check, ...]] = {"toyclip": CHECKS, "toyclip-vit": VIT_CHECKS}


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


def _correct_by_stage(predictions: pd.DataFrame) -> pd.DataFrame:
    """Bool [image, stage]: whether each image was classified correctly after each stage."""
    return (predictions.assign(ok=predictions["pred"] == predictions["label"])
            .pivot(index="sample_id", columns="stage", values="ok"))


def paired_difference_ci(first: pd.DataFrame, second: pd.DataFrame, draws: int = 2000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of accuracy(first) - accuracy(second) on the same images (clean-stage
    predictions of two heads), resampling images: pairing removes the shared per-image difficulty."""
    a, b = _correct_by_stage(first)["clean"], _correct_by_stage(second)["clean"]
    if set(a.index) != set(b.index):
        raise ValueError("the two runs scored different images: a paired interval needs the same ones")
    return paired_difference_interval(a.to_numpy(float), b.loc[a.index].to_numpy(float), draws, seed)


def control_ratio_ci(predictions: pd.DataFrame, draws: int = 2000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of the control-word / random-wrong-label drop ratio, resampling images
    (each image keeps its three stages: clean, random-wrong-label, control-word)."""
    correct = _correct_by_stage(predictions)
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


def verdicts(figures: dict[str, dict], checks: Sequence[Check] = CHECKS) -> list[dict[str, Any]]:
    """Each check with its measured value and whether it holds."""
    out = []
    for check in checks:
        value = figures[check.key]["value"]
        out.append({"key": check.key, "label": check.label, "value": value, "ci95": figures[check.key]["ci95"],
                    "op": check.op, "threshold": check.threshold, "met": bool(OPS[check.op](value, check.threshold)),
                    "source": check.source, "unit": check.unit})
    return out


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


# Per unit: how a value, an interval and a threshold are written.
_FORMATS: dict[str, tuple[Callable[[float], str], Callable[[Sequence[float]], str], Callable[[float], str]]] = {
    "percent": (_pct, lambda ci: f"[{_pct(ci[0])}, {_pct(ci[1])}]", _pct),
    "points": (lambda v: f"{100 * v:+.1f} points",
               lambda ci: f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] (paired bootstrap)", lambda t: f"{100 * t:+.0f} points"),
    "ratio": (lambda v: f"{v:.2f}", lambda ci: f"[{ci[0]:.2f}, {ci[1]:.2f}] (bootstrap)", lambda t: f"{t:.2f}"),
}


def markdown(report: dict[str, Any]) -> str:
    """The verdict table of the model card."""
    probe_n = f"; linear probe vs zero-shot on {report['probe_n']}" if report.get("probe_n") else ""
    held = (f", not among the {report['holdout']} validation images held out (`--holdout {report['holdout']}`)"
            if report.get("holdout") else "")
    lines = [f"Model `{report['model']}`, {report['n']} `cifar10-jpeg` test images{held} (seed {report['seed']}{probe_n}), "
             f"Stroop: {report['stroop_stimuli']} stimuli per prompt.", "",
             "| property | measured | 95% CI | threshold | met |", "|---|---|---|---|---|"]
    for v in report["checks"]:
        value, interval, threshold = _FORMATS[v["unit"]]
        ci = interval(v["ci95"]) if v["ci95"] else "-"  # e.g. the sticker lift has no interval
        lines.append(f"| {v['label']} | {value(v['value'])} | {ci} | {v['op']} {threshold(v['threshold'])} | "
                     f"{'yes' if v['met'] else '**no**'} |")
    if "blank_bar" in report.get("figures", {}):
        f = report["figures"]
        lines += ["", f"Covering alone (suite `control-word`, stage `blank-bar`): a blank bar the size of each control "
                  f"word, covering {_pct(f['blank_bar_pixels']['value'])} of the pixels on average (the outlined word: "
                  f"{_pct(f['control_word_pixels']['value'])}), leaves {_pct(f['blank_bar']['value'])} accuracy: "
                  f"{f['blank_bar_ratio']['value']:.2f} of the wrong-label drop."]
    if "words_alone" in report.get("figures", {}):
        words = report["figures"]["words_alone"]
        lines += ["", f"Words alone (suite `words-alone`): the true class name written alone on white is named "
                  f"{_pct(words['value'])} [{_pct(words['ci95'][0])}, {_pct(words['ci95'][1])}] of the time."]
    lines += ["", "Commands:", ""] + [f"    {c}" for c in report["commands"]]
    return "\n".join(lines) + "\n"


def _run_configs(args: argparse.Namespace) -> dict[str, RunConfig]:
    """The ``typobench run`` runs that measure the model, by the name of their folder in ``--out``."""
    out = Path(args.out)
    common = dict(model=args.model, pretrained=args.pretrained, dataset="cifar10-jpeg", data_root=args.data_root,
                  split="test", limit=args.limit, holdout=args.holdout, seed=args.seed, batch_size=args.batch_size,
                  cache_dir=args.cache_dir)
    return {
        "default": RunConfig(**common, suite="default", out=str(out / "default")),
        "held-out-font": RunConfig(**common, suite="held-out-font", out=str(out / "held-out-font")),
        "control-word": RunConfig(**common, suite="control-word", out=str(out / "control-word")),
        "words-alone": RunConfig(**common, suite="words-alone", out=str(out / "words-alone")),
        # The probe is compared with zero-shot on more images (all 10,000 by default): the two heads
        # differ on few images, so the difference needs a larger n than the attack rates.
        "linear-probe": RunConfig(**{**common, "limit": args.probe_eval_limit}, suite=None, head="linear-probe",
                                  probe_train_limit=args.probe_train_limit, out=str(out / "linear-probe")),
        "zeroshot": RunConfig(**{**common, "limit": args.probe_eval_limit}, suite=None, out=str(out / "zeroshot")),
    }


def _run_figures(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """The figures of the runs (``results``: each run's results.json by name), with bootstrap intervals."""
    out = Path(args.out)
    figures = suite_figures(results["default"], results["held-out-font"])
    figures["control_ratio"]["ci95"] = control_ratio_ci(read_predictions(out / "default"))
    figures.update(probe_figures(results["linear-probe"], results["zeroshot"]))
    figures.update(covering_figures(results["control-word"]))
    figures.update(words_alone_figure(results["words-alone"]))
    figures["probe_minus_zeroshot"]["ci95"] = paired_difference_ci(read_predictions(out / "linear-probe"),
                                                                   read_predictions(out / "zeroshot"))
    return figures


def _stroop(args: argparse.Namespace, prompts: Sequence[str]) -> dict[str, Any]:
    """``typobench stroop`` on the model with ``prompts``: StroopResult.to_dict()."""
    session = Session.open(RunConfig(model=args.model, pretrained=args.pretrained, seed=args.seed,
                                     cache_dir=args.cache_dir), data=False)
    return run_stroop(session, prompts, fonts=list(STROOP_FONTS), sizes=list(STROOP_SIZES)).to_dict()


def _model_options(args: argparse.Namespace) -> str:
    """The model as ``typobench`` options take it, without ``--model``: ``toyclip --pretrained FILE``."""
    return args.model + (f" --pretrained {args.pretrained}" if args.pretrained else "")


def _commands(args: argparse.Namespace, prompts: Sequence[str]) -> list[str]:
    """The command lines that reproduce every figure."""
    source = f"--model {_model_options(args)}"

    def data_options(limit: int | None) -> str:
        return f"--dataset cifar10-jpeg --data-root {args.data_root}" + (f" --limit {limit}" if limit else "") + \
            (f" --holdout {args.holdout}" if args.holdout else "") + f" --seed {args.seed}"

    data, probe_data = data_options(args.limit), data_options(args.probe_eval_limit)
    return [
        f"typobench run {source} {data} --suite default",
        f"typobench run {source} {data} --suite held-out-font",
        f"typobench run {source} {data} --suite control-word",
        f"typobench run {source} {data} --suite words-alone",
        f"typobench run {source} {probe_data} --suite none --head linear-probe"
        + (f" --probe-train-limit {args.probe_train_limit}" if args.probe_train_limit else ""),
        f"typobench run {source} {probe_data} --suite none",
        f"typobench stroop {source} " + " ".join(f"--prompt '{p}'" for p in prompts)
        + f" --fonts {','.join(STROOP_FONTS)} --sizes {','.join(map(str, STROOP_SIZES))}",
    ]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run everything, judge every check; the report, also written to ``OUT/measure.json`` and ``.md``."""
    out = Path(args.out)
    checks = organism_checks(args)
    results = {name: execute(config, progress=not args.quiet).results for name, config in _run_configs(args).items()}
    figures = _run_figures(args, results)
    prompts = [WORD_PROMPT, COLOUR_PROMPT, GOH_PROMPT]
    stroop = _stroop(args, prompts)
    figures.update(stroop_figures(stroop["results"]))
    report = {
        "model": _model_options(args),
        "weights_sha256": results["default"]["model"].get("weights_sha256"),
        "n": results["default"]["stages"][0]["n"],
        "holdout": args.holdout,
        "probe_n": figures["probe_minus_zeroshot"]["n"],
        "seed": args.seed,
        "stroop_stimuli": stroop["n_stimuli_per_prompt"],
        "figures": figures,
        "checks": verdicts(figures, checks),
        "all_met": None,
        "commands": _commands(args, prompts),
    }
    report["all_met"] = all(v["met"] for v in report["checks"])
    write_json_atomic(out / "measure.json", report)
    write_text_atomic(out / "measure.md", markdown(report))
    return report


@dataclass
class MeasureOptions:
    """The options of ``python -m typobench.toyclip.measure`` that are not a run's (the others are RunConfig's)."""

    checks: str | None = option(None, "whose thresholds to judge by (default: --model's, or the organism --model's "
                                      "config makes)", choices=tuple(sorted(CHECKS_BY_ORGANISM)))
    probe_eval_limit: int | None = option(None, "test images on which the linear probe and zero-shot are compared "
                                                "(default: all)", minimum=1)


# RunConfig's options this script passes on to its runs, with its own defaults and helps.
RUN_OPTIONS = ("model", "pretrained", "data_root", "limit", "holdout", "probe_train_limit", "seed", "batch_size",
               "cache_dir", "out")
RUN_DEFAULTS = {"model": "toyclip", "data_root": REQUIRED, "limit": 2000, "batch_size": 128, "out": REQUIRED}
RUN_HELPS = {"data_root": "the cifar10-jpeg folder (with test/)",
             "limit": f"class-stratified test images (after --holdout) (default: {RUN_DEFAULTS['limit']})",
             "probe_train_limit": "training images of the linear probe (default: all 50,000)",
             "out": "the folder of the runs, measure.json and measure.md"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m typobench.toyclip.measure", description=__doc__.split("\n\n")[0])
    add_arguments(p, RunConfig, RUN_OPTIONS, defaults=RUN_DEFAULTS, helps=RUN_HELPS, groups={MODEL: p, DATA: p, RUNTIME: p})
    add_arguments(p, MeasureOptions, ("checks", "probe_eval_limit"))
    add_arguments(p, Quiet, ("quiet",))
    return p


def organism_checks(args: argparse.Namespace) -> tuple[Check, ...]:
    """The checks of ``--checks``, else of the organism ``--model`` names (built-in or open_clip name)."""
    organism = args.checks or {v: k for k, v in ORGANISMS.items()}.get(args.model, args.model)
    if organism not in CHECKS_BY_ORGANISM:
        raise SystemExit(f"--model {args.model} is not an organism: say whose thresholds apply with --checks "
                         f"({' or '.join(sorted(CHECKS_BY_ORGANISM))})")
    return CHECKS_BY_ORGANISM[organism]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check(from_namespace(MeasureOptions, args))
    except UsageError as exc:
        parser.error(str(exc))
    report = measure(args)
    print(markdown(report))
    return 0 if report["all_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
