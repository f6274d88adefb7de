"""``typobench ablate``: run a suite over a grid of parameter values; a table and plots per sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm.auto import tqdm

from ..ablation import Bench, default_sweep_dir, expand_grid, load_spec, override, parse_vary, run_sweep
from ..errors import UsageError
from .common import add_model_data_options, config_from_args

EPILOG = """\
parameter paths (PATH in --vary PATH=V1,V2,...):
  text.KEY / style.KEY   every text stage's style: size, size_range, font, fill, box, opacity, rotation, ...
                         (text.KEY also: words, text, word_list, target)
  placement.KEY          every text stage's placement: policy, n (alias copies), x, y, center_fraction, ...
  pgd.KEY                every pgd stage: eps, step_size, steps, norm, restarts, loss, target, region, ...
  STAGE.GROUP.KEY        one stage, by name, stage.NAME or stage[i]: e.g. pgd-1.pgd.eps, stage[1].style.size
values are parsed like TOML (8, 0.15, true, [0.1,0.2]); anything else is a string (8/255, sans-bold).

examples:
  typobench ablate --suite random-wrong-label --vary text.size=8,12,16 --vary placement.copies=1,2 \\
      --dataset cifar10-jpeg --data-root ../shared/data/cifar10-jpeg --limit 200
  typobench ablate --suite default --vary pgd.eps=1/255,2/255,4/255 --vary pgd.steps=5,10 --out runs/eps
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="sweep suite parameters over a grid: a table (CSV, parquet) and plots",
        description="Run SUITE at every combination of the --vary values, loading the model, head and data once.\n"
                    "Writes OUT/ablation.csv and OUT/ablation.parquet (one row per grid point x stage: the varied\n"
                    "parameters, accuracy and targeted success with 95% CI and n), OUT/plot-PARAM.png for each\n"
                    "parameter and OUT/heatmap.png for two. Each grid point is saved in OUT/points/ as it\n"
                    "finishes: an interrupted sweep resumes and skips finished points.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--vary", action="append", default=[], metavar="PATH=V1,V2,...",
                        help="a suite parameter and its values (repeat for a grid; see below)")
    add_model_data_options(parser)
    parser.add_argument("--out", default=None,
                        help="output folder (default: runs/ablate-<model>-<dataset>-<suite>-<hash>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace grid points in --out that were computed with another configuration")
    parser.add_argument("--no-plots", action="store_true", help="write the table only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config.suite is None:
        raise UsageError("ablate needs a suite to vary: pass --suite NAME or a .toml path")
    if not args.vary:
        raise UsageError("nothing to vary: pass --vary PATH=V1,V2,... (e.g. --vary text.size=8,12,16)")
    config.validate()
    spec = load_spec(config.suite)
    vary = [parse_vary(option) for option in args.vary]
    points = expand_grid(vary)
    for point in points:  # every grid point checked before the model is loaded
        override(spec, point)
    out_dir = Path(config.out) if config.out else default_sweep_dir(config, spec, vary)
    print(f"ablate: suite {spec.name}, {len(points)} grid point{'s' * (len(points) != 1)} -> {out_dir}")
    bench = Bench.from_config(config)
    outcome = run_sweep(bench, spec, points, out_dir, progress=not args.quiet, overwrite=config.overwrite,
                        plots=not args.no_plots, log=tqdm.write)
    if outcome.skipped:
        print(f"{len(outcome.skipped)} of {len(points)} points were finished earlier and not recomputed")
    _print_table(outcome.table)
    for path in outcome.files:
        print(f"wrote {path}")
    return 0


def _print_table(table) -> None:
    if table.empty:
        return
    columns = ["point", "stage", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "n"]
    if table["targeted_success"].notna().any():
        columns += ["targeted_success", "targeted_ci_lo", "targeted_ci_hi"]
    if table["pixel_fraction_mean"].notna().any():
        columns.append("pixel_fraction_mean")
    shown = table[columns].copy()
    for column in columns[2:]:
        if column not in ("n",):
            shown[column] = (100 * shown[column]).round(1)
    print(shown.to_string(index=False, na_rep="-"))
    print("(percent; CI = Wilson 95% interval)")


__all__ = ["register"]
