"""``typobench stroop``: Goh et al.'s Stroop test -- is a colour word classified by its ink or by the word?"""

from __future__ import annotations

import argparse

from typobench.commands.common import add_model_options, add_runtime_options
from typobench.core.options import add_arguments, declared, from_namespace
from typobench.experiments.stroop import StroopConfig, StroopOutcome, execute_stroop, metrics_table
from typobench.harness.config import RunConfig
from typobench.typographic.stroop import hex_colour


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stroop",
        help="Stroop test: colour words in another ink, classified zero-shot by ink colour",
        description="Goh et al.'s Stroop stimuli: every palette colour as ink x every colour word (all palette "
                    "colours but black) plus a neutral word, centred on a plain background at the model's input "
                    "size, classified zero-shot by ink colour. Reports congruent and incongruent accuracy, the rate "
                    "at which an incongruent stimulus is named by its word, and neutral-word accuracy, per prompt.",
        epilog="example: typobench stroop --model ViT-B-32:openai --prompt \"my favorite word, written in the color {}\" "
               "--prompt \"a photo of the color {}\"",
    )
    add_model_options(parser, heads=False)

    add_arguments(parser, StroopConfig, [d.name for d in declared(StroopConfig)])
    add_runtime_options(parser, workers=False)
    add_arguments(parser, RunConfig, ("out",), helps={"out": "output folder (default: runs/stroop-<model>-<hash>); "
                                                              "stroop.json, stroop.csv, stroop_<i>.png per prompt"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # the model and runtime options this command has, then the Stroop ones
    config = from_namespace(StroopConfig, args, run=from_namespace(RunConfig, args))
    print_summary(execute_stroop(config))
    return 0


def print_summary(outcome: StroopOutcome) -> None:
    result, files = outcome.result, outcome.files
    model = result.model or {}
    counts = result.to_dict()["counts"]
    design = result.design
    print(f"model   {model.get('label')}" + ("  (RANDOM WEIGHTS: a test model, scores at chance)" if model.get("random_init") else ""))
    print(f"stimuli {len(result.stimuli)} per prompt: {len(design.palette)} inks x {len(design.columns)} words, "
          f"{len(design.fonts)} font(s) x {len(design.sizes)} size(s), {result.image_size[1]}x{result.image_size[0]} "
          f"on {hex_colour(design.background)}  ({counts['congruent']} congruent, {counts['incongruent']} incongruent, "
          f"{counts['neutral']} neutral)")
    print()
    print(metrics_table(result))
    print()
    print(f"results {files['json']}")
    print(f"        {files['csv']}")
    for i in range(len(result.prompts)):
        print(f"        {files[f'png_{i}']}")
