"""Measure robust organisms against toyclip, paired on the same held-out images: ``python -m typobench.toyclip.robust_measure``.

Every figure comes from ``typobench run`` on CIFAR-10 *test* images of the ``cifar10-jpeg`` folder (none of which
trained or chose a recipe: the robust recipes were chosen on a split of CIFAR-10 train): the ``default`` and
``words-alone`` suites on ``--limit`` images and the ``apgd-linf`` suite (APGD-CE then APGD-T at L-inf 2/255 and
4/255) on ``--apgd-limit`` of them. Each model's stage accuracy (Wilson 95% interval) and its paired difference
from the first model (bootstrap over images) are written to ``OUT/measure.json`` and ``OUT/measure.md``. Runs
resume: measuring again in the same folder re-reads finished runs.

    python -m typobench.toyclip.robust_measure --models toyclip toyclip-fare --data-root ../shared/data/cifar10-jpeg \\
        --limit 500 --apgd-limit 250 --out runs/robust-measure
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.core.metrics import paired_difference_interval
from typobench.core.options import REQUIRED, add_arguments, check, declared, from_namespace, option
from typobench.harness.config import DATA, MODEL, RUNTIME, RunConfig
from typobench.harness.results import read_predictions
from typobench.harness.run import execute
from typobench.toyclip.figures import correct_by_stage
from typobench.toyclip.robust import _Parser

SUITES = ("default", "words-alone", "apgd-linf")
# (suite, stage, label) of the table, in order.
ROWS = (("default", "clean", "clean zero-shot accuracy"),
        ("default", "true-label-sticker", "true-label sticker: accuracy"),
        ("default", "random-wrong-label", "random wrong label: accuracy"),
        ("default", "control-word", "control word: accuracy"),
        ("default", "pgd-linf-2", "PGD-10 L-inf 2/255: accuracy"),
        ("words-alone", "words-alone", "class word alone on white: named"),
        ("apgd-linf", "clean", "clean (APGD images)"),
        ("apgd-linf", "apgd-linf-2", "APGD-CE + APGD-T L-inf 2/255: robust accuracy"),
        ("apgd-linf", "apgd-linf-4", "APGD-CE + APGD-T L-inf 4/255: robust accuracy"))


@dataclass
class RobustMeasureOptions:
    """The options of ``python -m typobench.toyclip.robust_measure`` that are not a run's (those are RunConfig's)."""

    models: tuple[str, ...] = option(("toyclip", "toyclip-fare"), "built-in names; the first is the reference of "
                                     "the paired differences", spaced=True)
    apgd_limit: int = option(250, "test images of the apgd-linf suite", minimum=1)
    suites: tuple[str, ...] = option(SUITES, f"suites to run, of {', '.join(SUITES)}", choices=SUITES, spaced=True)


# RunConfig's options this script passes on to its runs, with its own defaults and helps.
RUN_OPTIONS = ("data_root", "limit", "batch_size", "seed", "attack_checks", "out")
RUN_DEFAULTS = {"data_root": REQUIRED, "limit": 500, "batch_size": 125, "attack_checks": 16, "out": REQUIRED}
RUN_HELPS = {"data_root": "the cifar10-jpeg folder",
             "limit": f"test images of the default and words-alone suites (default: {RUN_DEFAULTS['limit']})",
             "attack_checks": "samples the attack-failure checks re-attack with twice the budget (predictions "
                              "unchanged)",
             "out": "the folder of the runs, measure.json and measure.md"}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m typobench.toyclip.robust_measure", description=__doc__.split("\n\n")[0])
    flat = {MODEL: p, DATA: p, RUNTIME: p}
    add_arguments(p, RobustMeasureOptions, [item.name for item in declared(RobustMeasureOptions)])
    add_arguments(p, RunConfig, RUN_OPTIONS, defaults=RUN_DEFAULTS, helps=RUN_HELPS, groups=flat)
    # RunConfig's --precision also offers fp16, which this script never did: no per-command narrowing of a
    # declared option's choices, so the flag stays written here.
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"),
                   help="autocast precision of the runs (default: bf16)")
    return p


def read_options(args: argparse.Namespace) -> RobustMeasureOptions:
    """The script's own options from the parsed flags, checked (a ``UsageError`` names the flag)."""
    options = from_namespace(RobustMeasureOptions, args)
    check(options)
    return options


def _config(args: argparse.Namespace, model: str, suite: str) -> RunConfig:
    limit = args.apgd_limit if suite == "apgd-linf" else args.limit
    return RunConfig(model=model, dataset="cifar10-jpeg", data_root=args.data_root, split="test", limit=limit,
                     suite=suite, seed=args.seed, batch_size=args.batch_size, precision=args.precision,
                     attack_checks=args.attack_checks,
                     out=str(Path(args.out) / model / suite))


def _stage(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in results["stages"] if s["name"] == name)


def figures(args: argparse.Namespace, results: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, suite, stage): accuracy, its interval, and the paired difference from the first model."""
    rows, reference = [], args.models[0]
    for suite, stage, label in ROWS:
        if suite not in args.suites:
            continue
        ref_ok = correct_by_stage(read_predictions(Path(args.out) / reference / suite))[stage]
        for model in args.models:
            s = _stage(results[(model, suite)], stage)
            row = {"model": model, "suite": suite, "stage": stage, "label": label, "accuracy": s["accuracy"],
                   "ci95": s["ci95"], "n": s["n"]}
            if "targeted_success" in s:
                row["written_class"] = {k: s["targeted_success"][k] for k in ("value", "ci95", "n")}
            if model != reference:
                ok = correct_by_stage(read_predictions(Path(args.out) / model / suite))[stage]
                ok = ok.loc[ref_ok.index]
                row["minus_reference"] = {"value": float(ok.mean() - ref_ok.mean()),
                                          "ci95": paired_difference_interval(ok.to_numpy(float), ref_ok.to_numpy(float))}
            rows.append(row)
    return rows


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def markdown(rows: list[dict[str, Any]], reference: str) -> str:
    lines = [f"| figure | model | value | 95% interval | n | minus {reference} (paired, 95% interval) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        diff = r.get("minus_reference")
        diff_text = "-" if diff is None else (f"{100 * diff['value']:+.1f} pts "
                                              f"[{100 * diff['ci95'][0]:+.1f}, {100 * diff['ci95'][1]:+.1f}]")
        lines.append(f"| {r['label']} | {r['model']} | {_pct(r['accuracy'])} | [{_pct(r['ci95'][0])}, "
                     f"{_pct(r['ci95'][1])}] | {r['n']} | {diff_text} |")
        if "written_class" in r:
            w = r["written_class"]
            lines.append(f"| random wrong label: classified as the written class | {r['model']} | {_pct(w['value'])} | "
                         f"[{_pct(w['ci95'][0])}, {_pct(w['ci95'][1])}] | {w['n']} | - |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        read_options(args)
        results = {(model, suite): execute(_config(args, model, suite), progress=False).results
                   for suite in args.suites for model in args.models}
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = figures(args, results)
    out = Path(args.out)
    write_json_atomic(out / "measure.json", {"models": args.models, "limit": args.limit,
                                             "apgd_limit": args.apgd_limit, "rows": rows,
                                             "command": " ".join(["python -m typobench.toyclip.robust_measure",
                                                                  *sys.argv[1:]])})
    write_text_atomic(out / "measure.md", markdown(rows, args.models[0]))
    print(markdown(rows, args.models[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
