"""``typobench run``: evaluate a model on a data set and write results.json + predictions.csv."""

from __future__ import annotations

import argparse

from ..report import print_run_summary
from ..run import execute
from .common import add_model_data_options, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="evaluate a model (default: the built-in demo) and write results",
        description="Evaluate a model on a data set with a zero-shot or linear-probe head. With no arguments: "
                    "the built-in default model on the bundled cifar10-sample, offline.",
        epilog="example: typobench run --model ViT-B-32:openai --dataset imagenet --data-root ~/imagenet/val "
               "--limit 1000 --out runs/vitb32",
    )
    add_model_data_options(parser)
    parser.add_argument("--out", default=None, help="output folder (default: runs/<model>-<dataset>-<head>-<hash>)")
    parser.add_argument("--overwrite", action="store_true", help="replace finished results of another configuration")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    outcome = execute(config_from_args(args), progress=not args.quiet)
    print_run_summary(outcome)
    return 0
