"""``typobench sweep`` (old name: ``ablate``): run a suite over a grid of parameter values; a table and plots."""

from __future__ import annotations

import argparse

import pandas as pd
from tqdm.auto import tqdm

from typobench.core.options import add_arguments, check, from_namespace
from typobench.harness.config import Quiet, RunConfig
from typobench.commands.common import add_model_data_options, config_from_args
from typobench.experiments.sweep import SweepOptions, plan_sweep, run_sweep
from typobench.harness.session import Session

EPILOG = """\
parameter paths (PATH in --vary PATH=V1,V2,...):
  text.KEY / style.KEY   every text stage's style: size, size_range, font, fill, box, opacity, rotation, ...
                         (text.KEY also: words, text, word_list, target)
  placement.KEY          every text stage's placement: policy, n (alias copies), x, y, center_fraction, ...
  pgd.KEY                every pgd stage: eps, step_size, steps, norm, restarts, loss, target, region, ...
  STAGE.GROUP.KEY        one stage, by name, stage.NAME or stage[i]: e.g. pgd-1.pgd.eps, stage[1].style.size
values are parsed like TOML (8, 0.15, true, [0.1,0.2]); anything else is a string (8/255, sans-bold).

examples:
  typobench sweep --suite random-wrong-label --vary text.size=8,12,16 --vary placement.copies=1,2 \\
      --dataset cifar10-jpeg --data-root ../shared/data/cifar10-jpeg --limit 200
  typobench sweep --suite default --vary pgd.eps=1/255,2/255,4/255 --vary pgd.steps=5,10 --out runs/eps
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        aliases=["ablate"],
        help="sweep suite parameters over a grid: a table (CSV, parquet) and plots (old name: ablate)",
        description="Run SUITE at every combination of the --vary values, loading the model, head and data once.\n"
                    "Writes OUT/sweep.csv and OUT/sweep.parquet (one row per grid point x stage: the varied\n"
                    "parameters, accuracy and targeted success with 95% CI and n), OUT/plot-PARAM.png for each\n"
                    "parameter and OUT/heatmap.png for two. Each grid point is saved in OUT/points/ as it\n"
                    "finishes: an interrupted sweep resumes and skips finished points.\n"
                    "`typobench ablate` is the old name of this command.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser, SweepOptions, ["vary"])
    add_model_data_options(parser)
    add_arguments(parser, RunConfig, ("out", "overwrite"), helps={
        "out": "output folder (default: runs/sweep-<model>-<dataset>-<suite>-<hash>)",
        "overwrite": "replace grid points in --out that were computed with another configuration"})
    add_arguments(parser, SweepOptions, ["plots"])
    add_arguments(parser, Quiet, ["quiet"], helps={"quiet": "no progress bar"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = from_namespace(SweepOptions, args)
    check(options)
    config = config_from_args(args)
    plan = plan_sweep(config, options.vary)
    n = len(plan.points)
    print(f"sweep: suite {plan.spec.name}, {n} grid point{'s' * (n != 1)} -> {plan.out_dir}")
    outcome = run_sweep(Session.open(config), plan.spec, plan.points, plan.out_dir, progress=not args.quiet,
                        overwrite=config.overwrite, plots=options.plots, log=tqdm.write)
    if outcome.skipped:
        print(f"{len(outcome.skipped)} of {n} points were finished earlier and not recomputed")
    _print_table(outcome.table)
    for path in outcome.files:
        print(f"wrote {path}")
    return 0


def _print_table(table: pd.DataFrame) -> None:
    """The table in percent: point, stage, accuracy with its CI and n, targeted success and pixels changed
    when measured."""
    if table.empty:
        return
    columns = ["point", "stage", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "n"]
    if table["targeted_success"].notna().any():
        columns += ["targeted_success", "targeted_ci_lo", "targeted_ci_hi"]
    if table["pixel_fraction_mean"].notna().any():
        columns.append("pixel_fraction_mean")
    shown = table[columns].copy()
    for column in columns[2:]:
        if column != "n":
            shown[column] = (100 * shown[column]).round(1)
    print(shown.to_string(index=False, na_rep="-"))
    print("(percent; CI = Wilson 95% interval)")


__all__ = ["register"]
