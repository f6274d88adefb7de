"""``typobench defense select-greedy``: Dyslexify's greedy unit selection under a clean budget, on train images."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from typobench.core.options import REQUIRED, add_arguments, check, declared, from_namespace
from typobench.harness.config import RUNTIME, RunConfig
from typobench.commands.common import add_model_options
from typobench.commands.defense_tools_common import add_data_options, add_seed_device, check_out, load_model_data, suite_stage
from typobench.defenses.greedy import SELECTION, GreedyOptions, GreedyResult, save_greedy, select_on_dataset

EPILOG = """\
example (choose on 500 train images, score on held-out test images against 20 random sets of the same size):
  typobench defense select-greedy --model toyclip --dataset cifar10-jpeg --data-root DATA --limit 500 --out greedy.json
  typobench defend --model toyclip --dataset cifar10-jpeg --data-root DATA --split test --limit 1000 \\
      --defense ablate:file=greedy.json --random-draws 20
"""


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "select-greedy",
        help="choose units (ResNet channels, ViT attention heads) greedily by typographic gain under a clean budget "
             "(Dyslexify)",
        description="On --split (default train) images, ablate units one at a time, each step adding the one whose "
                    "ablation gives the highest accuracy under a text stage (default: a random wrong class name); "
                    "stop when none raises it, at --max-units, or before a unit that would drop clean accuracy on "
                    "the same images by more than --budget points. Units: a ViT's attention heads (every block), "
                    "else a ResNet's layer4 channels. Writes a JSON file for `--defense ablate:file=FILE` that "
                    "records what it was chosen on (data set, split, sample ids and hash, model fingerprint, options), "
                    "so it is refused on those images or another model.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(parser, heads=False)
    add_data_options(parser, "select")
    groups = add_arguments(parser, GreedyOptions, [d.name for d in declared(GreedyOptions)])
    select = groups[SELECTION]
    add_arguments(parser, RunConfig, ("batch_size",), groups={RUNTIME: select})
    add_seed_device(select)
    add_arguments(parser, RunConfig, ("out",), defaults={"out": REQUIRED}, helps={"out": "the .json file to write"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    check_out(args.out, ".json", "a greedy selection file")
    options = from_namespace(GreedyOptions, args)
    check(options)
    attack = suite_stage(args.suite, args.stage)
    loaded, dataset = load_model_data(args)
    chosen = {**asdict(options), "candidates": list(options.candidates) if options.candidates else None}
    result, selection = select_on_dataset(loaded, dataset, attack=attack, seed=args.seed, batch_size=args.batch_size,
                                          **chosen)
    config = {"suite": args.suite, "stage": args.stage, **chosen, "seed": args.seed, "limit": args.limit}
    path = save_greedy(args.out, result, selection, config)
    print_summary(result, selection, str(path))
    return 0


def print_summary(result: GreedyResult, selection: dict, path: str) -> None:
    print(f"model    {selection['model_label']}  (weights {selection['model_fingerprint'][:12]})")
    print(f"data     {selection['dataset']} {selection['split']}: {selection['n']} images (selection split)")
    print(f"before   clean {result.base['clean_accuracy']:.4f}, typographic {result.base['typographic_accuracy']:.4f}")
    for i, step in enumerate(result.steps, 1):
        print(f"  {i:>2}. {step['unit']:<22} typographic {step['typographic_accuracy']:.4f} "
              f"(+{step['gain']:.4f}), clean {step['clean_accuracy']:.4f}")
    print(f"stopped  {result.stopped}" + ("" if result.units else ": no unit chosen, nothing for ablate to load"))
    print(f"wrote    {path}  (use: --defense ablate:file={path}; these are selection-split numbers: score on "
          "held-out images with `typobench defend`)")
