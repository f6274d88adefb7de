"""``typobench run``: evaluate a model on a data set and write results.json + predictions.csv."""

from __future__ import annotations

import argparse

from typobench.harness.report import print_run_summary
from typobench.harness.config import DEFAULT_DATASET, DEFAULT_DEMO_LIMIT
from typobench.harness.run import execute
from typobench.neurons.after_run import explain_run
from typobench.core.options import add_arguments
from typobench.harness.config import Quiet, RunConfig
from typobench.commands.common import add_model_data_options, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="evaluate a model (default: the built-in demo) and write results",
        description="Evaluate a model on a data set with a zero-shot or linear-probe head, through an attack "
                    "suite. With no arguments: the trained demo model toyclip on 200 images of the bundled "
                    "cifar10-sample with the default suite, offline, in about a minute.",
        epilog="example: typobench run --model ViT-B-32:openai --dataset imagenet --data-root ~/imagenet/val "
               "--limit 1000 --out runs/vitb32",
    )
    add_model_data_options(parser, demo_limit=True)
    add_arguments(parser, RunConfig, ("out", "overwrite", "neurons"))
    add_arguments(parser, Quiet, ["quiet"])
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.limit is None and args.dataset == DEFAULT_DATASET:
        args.limit = DEFAULT_DEMO_LIMIT
        print(f"built-in default: {DEFAULT_DEMO_LIMIT} images of {DEFAULT_DATASET} (pass --limit 1000 for all of it)")
    config = config_from_args(args)
    outcome = execute(config, progress=not args.quiet)
    # The suite's [neurons] analysis, in the run's session (nothing is loaded again); by rank 0 alone
    # when the run was spread over processes.
    if config.neurons and outcome.session.world.leader:
        outcome.neurons = explain_run(outcome, progress=not args.quiet)
    print_run_summary(outcome)
    return 0
