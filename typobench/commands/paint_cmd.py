"""``typobench defense paint-curve``: PAINT's interpolation over an alpha grid, alpha chosen on a selection split."""

from __future__ import annotations

import argparse
from pathlib import Path

from typobench.core.options import REQUIRED, add_arguments, check, from_namespace
from typobench.commands.common import add_model_options, config_from_args
from typobench.commands.defense_tools_common import add_data_options, add_seed_device, load_model_data, suite_stage
from typobench.experiments.paint import CURVE, PaintOptions, describe_split, paint_curve, write_paint
from typobench.harness.config import DATA, RunConfig, limit_dataset, load_split


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "paint-curve",
        help="PAINT over an alpha grid: clean vs typographic accuracy per alpha, alpha chosen on a selection split",
        description="For each alpha, the weights (1-alpha)*model + alpha*checkpoint (the `interpolate` defense): "
                    "clean and typographic accuracy (a text stage, default a random wrong class name) on --split "
                    "(--limit images: where alpha is chosen, the highest typographic accuracy within --budget points "
                    "of the model's clean accuracy) and on --score-split (--score-limit other images: where it is "
                    "reported). With the same split for both, the scored images are the ones --limit does not draw. "
                    "Writes OUT/paint.json, paint.csv, paint.md and paint.png.",
        epilog="example: typobench defense paint-curve --model ViT-B-32:openai --checkpoint patched.safetensors "
               "--alphas 0,0.25,0.5,0.75,1 --dataset cifar10-jpeg --data-root DATA --limit 500 --score-split test "
               "--score-limit 1000 --out runs/paint",
    )
    add_model_options(parser, heads=False)
    data = add_data_options(parser, "choose alpha")
    add_arguments(parser, PaintOptions, ("score_split", "score_limit"), groups={DATA: data})
    curve = add_arguments(parser, PaintOptions, ("checkpoint", "alphas", "budget"))[CURVE]
    add_seed_device(curve)
    add_arguments(parser, RunConfig, ("out",), defaults={"out": REQUIRED}, helps={"out": "output folder"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = from_namespace(PaintOptions, args)
    check(options)
    attack = suite_stage(args.suite, args.stage)
    loaded, selection = load_model_data(args)
    config = config_from_args(args)
    if options.score_split == args.split:
        full = load_split(config, loaded)
        scored = limit_dataset(full, options.score_limit, args.seed, holdout=args.limit or len(full))
    else:
        scored = load_split(config, loaded, options.score_split, limit=options.score_limit)
    checkpoint = options.checkpoint_path
    curve = paint_curve(loaded, checkpoint, options.alpha_values, selection, scored, attack=attack, seed=args.seed,
                        budget=options.budget)
    record = {"model": {"label": loaded.spec.label, "weights_sha256": loaded.fingerprint()},
              "checkpoint": str(checkpoint), "attack": attack.describe(), "seed": args.seed,
              "selection": describe_split(selection), "held_out": describe_split(scored),
              "checkpoint_provenance": "provenance unknown (what the checkpoint was fine-tuned on is not recorded)"}
    paths = write_paint(Path(args.out), curve, record)
    print(paths[2].read_text(), end="")
    for path in paths:
        print(f"wrote {path}")
    return 0
