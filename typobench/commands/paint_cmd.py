"""``typobench defense paint-curve``: PAINT's interpolation over an alpha grid, alpha chosen on a selection split."""

from __future__ import annotations

import argparse
from pathlib import Path

from typobench.core.options import REQUIRED, add_arguments
from typobench.commands.common import add_model_options, config_from_args, positive_int
from typobench.commands.defense_tools_common import add_data_options, add_seed_device, load_model_data, suite_stage
from typobench.core.errors import UsageError
from typobench.experiments.paint import describe_split, paint_curve, write_paint
from typobench.harness.config import RunConfig, limit_dataset, load_split


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
    data.add_argument("--score-split", default="test", help="split the curve is reported on (default: test)")
    data.add_argument("--score-limit", type=positive_int, default=None, help="held-out images (default: all)")
    curve = parser.add_argument_group("curve")
    curve.add_argument("--checkpoint", required=True, help="B: a .safetensors state dict of the same architecture")
    curve.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma-separated alphas in [0, 1] "
                                                                       "(default: 0,0.25,0.5,0.75,1)")
    curve.add_argument("--budget", type=float, default=1.0,
                       help="clean-accuracy drop allowed when choosing alpha, in points (default: 1.0)")
    add_seed_device(curve)
    add_arguments(parser, RunConfig, ("out",), defaults={"out": REQUIRED}, helps={"out": "output folder"})
    parser.set_defaults(handler=handle)


def parse_alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise UsageError(f"--alphas '{text}': expected comma-separated numbers, e.g. 0,0.25,0.5,0.75,1") from None
    if not alphas or any(not 0 <= a <= 1 for a in alphas) or len(set(alphas)) != len(alphas):
        raise UsageError(f"--alphas '{text}': give distinct numbers in [0, 1], e.g. 0,0.25,0.5,0.75,1")
    return alphas


def handle(args: argparse.Namespace) -> int:
    alphas = parse_alphas(args.alphas)
    checkpoint = Path(args.checkpoint).expanduser()
    if checkpoint.suffix != ".safetensors" or not checkpoint.is_file():
        raise UsageError(f"--checkpoint '{checkpoint}' is not an existing .safetensors file: pass one")
    if args.budget < 0:
        raise UsageError(f"--budget {args.budget}: the clean-accuracy drop allowed must be >= 0 points")
    attack = suite_stage(args.suite, args.stage)
    loaded, selection = load_model_data(args)
    config = config_from_args(args)
    if args.score_split == args.split:
        full = load_split(config, loaded)
        scored = limit_dataset(full, args.score_limit, args.seed, holdout=args.limit or len(full))
    else:
        scored = load_split(config, loaded, args.score_split, limit=args.score_limit)
    curve = paint_curve(loaded, checkpoint, alphas, selection, scored, attack=attack, seed=args.seed, budget=args.budget)
    record = {"model": {"label": loaded.spec.label, "weights_sha256": loaded.fingerprint()},
              "checkpoint": str(checkpoint), "attack": attack.describe(), "seed": args.seed,
              "selection": describe_split(selection), "held_out": describe_split(scored),
              "checkpoint_provenance": "provenance unknown (what the checkpoint was fine-tuned on is not recorded)"}
    paths = write_paint(Path(args.out), curve, record)
    print(paths[2].read_text(), end="")
    for path in paths:
        print(f"wrote {path}")
    return 0
