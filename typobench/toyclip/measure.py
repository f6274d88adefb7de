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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.core.options import REQUIRED, add_arguments, check, from_namespace, option
from typobench.experiments.stroop import run_stroop
from typobench.harness.config import DATA, MODEL, RUNTIME, Quiet, RunConfig
from typobench.harness.results import read_predictions
from typobench.harness.run import execute
from typobench.harness.session import Session
from typobench.toyclip.checks import CHECKS_BY_ORGANISM, COLOUR_PROMPT, WORD_PROMPT, Check, verdicts
from typobench.toyclip.figures import (
    control_ratio_ci,
    covering_figures,
    paired_difference_ci,
    probe_figures,
    stroop_figures,
    suite_figures,
    words_alone_figure,
)
from typobench.toyclip.model import ORGANISMS
from typobench.typographic.stroop import GOH_PROMPT

# Stroop stimuli: three training fonts x three sizes (8 inks x 8 words each: 576 stimuli per prompt).
STROOP_FONTS = ("sans", "sans-bold", "mono")
STROOP_SIZES = (0.15, 0.18, 0.2)


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
    if "words_alone" in report.get("figures", {}) and all(v["key"] != "words_alone" for v in report["checks"]):
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
