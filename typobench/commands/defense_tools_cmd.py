"""``typobench defense``: the tool group that makes the files a ``--defense`` spec names (``train-prefix`` here:
learn a Defense-Prefix token on typographic train images; ``select-greedy``, ``train-projection``, ``paint-curve`` in
their modules). Running a suite on defended models is ``typobench defend`` (``defend_cmd``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from typobench.commands import greedy_cmd, paint_cmd, projection_cmd
from typobench.commands.common import add_model_options
from typobench.commands.defense_tools_common import (
    add_data_options,
    check_out,
    load_model_data,
    print_learned,
    suite_stage,
)
from typobench.core.options import REQUIRED, add_arguments, check, declared, from_namespace
from typobench.defenses.prefix import PrefixResult, PrefixTraining, save_prefix, train_prefix_on_dataset
from typobench.harness.config import RUNTIME, RunConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("defense", help="make what a defense needs (train-prefix, select-greedy, ...)",
                                   description="Tools that make the files a `--defense` spec names.")
    actions = parser.add_subparsers(dest="defense_action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train-prefix",
        help="learn a Defense-Prefix token (Azuma & Matsui 2023) on typographic train images",
        description="Learn one token embedding (or --tokens T) placed just before the class name in every zero-shot "
                    "prompt, the model frozen. A text stage of a suite (default: the random-wrong-label stage, a wrong "
                    "class name written on each image) is drawn on TRAIN images with the renderer of `typobench run`; "
                    "the loss is cross-entropy of those images towards their true class plus --keep-weight x the KL "
                    "between clean predictions with plain and with prefixed prompts. Writes a small safetensors file "
                    "(the prefix, the loss per step, and the model fingerprint, class names, data hash, seed and "
                    "options) for `--defense prompt:prefix=FILE.safetensors`; it refuses to load on another model.",
        epilog="example: typobench defense train-prefix --model toyclip --dataset cifar10-jpeg --data-root "
               "../shared/data/cifar10-jpeg --split train --limit 2000 --steps 300 --out prefix.safetensors",
    )
    add_model_options(train, heads=False)
    add_data_options(train, "train")
    fit = add_arguments(train, PrefixTraining, [d.name for d in declared(PrefixTraining)])["training"]
    add_arguments(train, RunConfig, ("batch_size", "seed", "device"), groups={RUNTIME: fit},
                  defaults={"batch_size": 256}, helps={
                      "batch_size": "images per step (default: 256)",
                      "seed": "seed of the subset, the written words and placements, and the minibatch order "
                              "(default: 0)"})
    add_arguments(train, RunConfig, ("out",), defaults={"out": REQUIRED},
                  helps={"out": "the .safetensors file to write"})
    train.set_defaults(handler=handle_train_prefix)
    greedy_cmd.register(actions)
    projection_cmd.register(actions)
    paint_cmd.register(actions)


def handle_train_prefix(args: argparse.Namespace) -> int:
    check_out(args.out, ".safetensors", "the prefix file's format")
    attack = suite_stage(args.suite, args.stage)
    loaded, dataset = load_model_data(args)
    training = from_namespace(PrefixTraining, args)
    check(training)
    result = train_prefix_on_dataset(loaded, dataset, attack=attack, seed=args.seed, batch_size=args.batch_size,
                                     **asdict(training))
    path = save_prefix(args.out, result)
    print_summary(result, str(path))
    return 0


def print_summary(result: PrefixResult, path: str) -> None:
    meta = result.metadata
    print_learned(meta, path, f"prefix   {result.tokens} token(s); loss {float(meta['initial_loss']):.4f} -> "
                              f"{float(meta['final_loss']):.4f} on all training images after {meta['steps']} steps",
                  "prompt:prefix", stage=json.loads(meta["attack"]).get("name", "?"))
