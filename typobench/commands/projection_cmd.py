"""``typobench defense train-projection``: learn the ``project`` defense's projection on train images."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from typobench.core.options import REQUIRED, add_arguments, check, declared, from_namespace
from typobench.harness.config import MODEL, RunConfig
from typobench.commands.common import add_model_options
from typobench.commands.defense_tools_common import (
    add_data_options,
    add_seed_device,
    check_out,
    load_model_data,
    print_learned,
    suite_stage,
)
from typobench.defenses.projection import (
    SUITE,
    ProjectionOptions,
    ProjectionResult,
    ProjectionStages,
    learn_projection,
    save_projection,
)


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "train-projection",
        help="learn a projection of the image embedding that removes spelling (after Materzynska et al. 2022)",
        description="On --split (default train) images, embed the photos and their true class names written alone on "
                    "white (the words-alone suite's blank and text stages); remove the --rank directions that carry "
                    "the written class most per unit of the photos' class (a generalised eigenproblem of the two "
                    "between-class scatters). Writes a safetensors file for `--defense project:file=FILE` with the "
                    "model fingerprint and the sample ids it was learned on, so it is refused on those images.",
        epilog="example: typobench defense train-projection --model toyclip --dataset cifar10-jpeg --data-root DATA "
               "--limit 1000 --rank 4 --out projection.safetensors",
    )
    add_model_options(parser, heads=False)
    data = add_data_options(parser, "learn", stage=False)
    add_arguments(parser, RunConfig, ("suite",), groups={MODEL: data}, defaults={"suite": SUITE},
                  helps={"suite": f"suite with the blank and text stages (default: {SUITE})"})
    add_arguments(parser, ProjectionStages, ("blank_stage", "text_stage"), groups={None: data})
    fit = add_arguments(parser, ProjectionOptions, [d.name for d in declared(ProjectionOptions)])["projection"]
    add_seed_device(fit)
    add_arguments(parser, RunConfig, ("out",), defaults={"out": REQUIRED},
                  helps={"out": "the .safetensors file to write"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    check_out(args.out, ".safetensors", "the projection file's format")
    stages = from_namespace(ProjectionStages, args)
    blank, text = suite_stage(args.suite, stages.blank_stage), suite_stage(args.suite, stages.text_stage)
    options = from_namespace(ProjectionOptions, args)
    check(options)
    loaded, dataset = load_model_data(args)
    result = learn_projection(loaded, dataset, blank=blank, text=text, seed=args.seed, **asdict(options))
    path = save_projection(args.out, result)
    print_summary(result, str(path))
    return 0


def print_summary(result: ProjectionResult, path: str) -> None:
    meta = result.metadata
    print_learned(meta, path, f"removed  {meta['rank']} directions: written words keep "
                              f"{float(meta['words_scatter_kept']):.1%} of their class scatter, photos "
                              f"{float(meta['photos_scatter_kept']):.1%} (on these train images)", "project:file")
