"""``typobench stroop``: Goh et al.'s Stroop test -- is a colour word classified by its ink or by the word?"""

from __future__ import annotations

import argparse

from typobench.core.options import add_arguments, from_namespace
from typobench.harness.config import RunConfig
from typobench.commands.common import add_model_options, add_runtime_options
from typobench.experiments.stroop import StroopConfig, StroopOutcome, execute_stroop, metrics_table
from typobench.harness.config import RunConfig
from typobench.typographic.stroop import (
    DEFAULT_BACKGROUND,
    DEFAULT_NEUTRAL,
    DEFAULT_PALETTE,
    DEFAULT_SIZES,
    GOH_PROMPT,
    hex_colour,
)

_DEFAULT_PALETTE_TEXT = ",".join(f"{name}={hex_colour(rgb)}" for name, rgb in DEFAULT_PALETTE.items())


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

    stimuli = parser.add_argument_group("stimuli and prompts")
    stimuli.add_argument("--prompt", dest="prompts", action="append", default=None, metavar="TEMPLATE",
                         help=f"zero-shot prompt with {{}} for the colour name; repeat for several, each reported "
                              f"separately (default: \"{GOH_PROMPT}\")")
    stimuli.add_argument("--palette", default=None, metavar="NAME=#RRGGBB,...",
                         help="ink colours and class names, in order; a bare NAME uses the default ink or a "
                              f"PIL colour name (default: {_DEFAULT_PALETTE_TEXT})")
    stimuli.add_argument("--words", default=None, metavar="NAME,...",
                         help="colour words to write, each a palette name (default: every palette colour but black)")
    stimuli.add_argument("--neutral", default=DEFAULT_NEUTRAL,
                         help=f"neutral word that names no colour (default: {DEFAULT_NEUTRAL})")
    stimuli.add_argument("--fonts", nargs="+", default=None, metavar="FONT",
                         help="fonts (registry names or .ttf paths; space or comma separated); every font x size "
                              "is a full stimulus set (default: sans)")
    stimuli.add_argument("--sizes", nargs="+", default=None, metavar="SIZE",
                         help="font sizes: a fraction of the image side (0.18) or pixels (14) "
                              f"(default: {', '.join(str(s) for s in DEFAULT_SIZES)})")
    stimuli.add_argument("--background", default=DEFAULT_BACKGROUND,
                         help=f"background colour, a name or #rrggbb (default: {DEFAULT_BACKGROUND})")

    add_runtime_options(parser, workers=False)
    add_arguments(parser, RunConfig, ("out",), helps={"out": "output folder (default: runs/stroop-<model>-<hash>); "
                                                              "stroop.json, stroop.csv, stroop_<i>.png per prompt"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    run = from_namespace(RunConfig, args)  # the model and runtime options this command has
    words = [w for w in args.words.split(",") if w.strip()] if args.words else None
    config = StroopConfig(run, prompts=args.prompts, palette=args.palette, words=words, neutral=args.neutral,
                          fonts=args.fonts, sizes=args.sizes, background=args.background)
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
