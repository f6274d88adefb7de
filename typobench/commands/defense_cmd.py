"""``typobench defense train-prefix``: learn a Defense-Prefix token on typographic train images, save it."""

from __future__ import annotations

import argparse
import json

from typobench.commands.common import add_model_options, positive_int
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data import load_dataset
from typobench.defenses.prefix import PrefixResult, save_prefix, train_prefix_on_dataset
from typobench.harness.config import limit_dataset
from typobench.models import load_model
from typobench.suites import load_suite

DEFAULT_SUITE, DEFAULT_STAGE = "random-wrong-label", "random-wrong-label"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("defense", help="make what a defense needs (train-prefix: a learned prompt prefix)",
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
    data = train.add_argument_group("training data (choose the prefix on images it will not be scored on)")
    data.add_argument("--dataset", required=True, help="data set name (see `typobench list datasets`)")
    data.add_argument("--data-root", default=None, help="where the data set lives on disk")
    data.add_argument("--split", default="train", help="split to train on (default: train)")
    data.add_argument("--limit", type=positive_int, default=None,
                      help="train on a deterministic class-stratified subset of N images (default: all; they are held "
                           "in memory, so a few thousand)")
    data.add_argument("--classnames", dest="classnames_file", default=None,
                      help="text file with one class name per line (folder data sets)")
    data.add_argument("--suite", default=DEFAULT_SUITE,
                      help=f"suite holding the stage that writes on the images (default: {DEFAULT_SUITE})")
    data.add_argument("--stage", default=DEFAULT_STAGE, help=f"that stage's name (default: {DEFAULT_STAGE})")
    fit = train.add_argument_group("training")
    fit.add_argument("--steps", type=positive_int, default=300, help="Adam steps (default: 300)")
    fit.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    fit.add_argument("--tokens", type=positive_int, default=1,
                     help="prefix length in tokens (default: 1, as in the paper)")
    fit.add_argument("--batch-size", type=positive_int, default=256, help="images per step (default: 256)")
    fit.add_argument("--keep-weight", type=float, default=1.0,
                     help="weight of the term that keeps clean predictions (default: 1.0; 0 = typographic loss only)")
    fit.add_argument("--seed", type=int, default=0,
                     help="seed of the subset, the written words and placements, and the minibatch order (default: 0)")
    fit.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    train.add_argument("--out", required=True, help="the .safetensors file to write")
    train.set_defaults(handler=handle_train_prefix)


def handle_train_prefix(args: argparse.Namespace) -> int:
    if not args.out.endswith(".safetensors"):
        raise UsageError(f"--out '{args.out}' must end in .safetensors (the prefix file's format)")
    suite = load_suite(args.suite)
    attack = next((s for s in suite.stages if s.name == args.stage), None)
    if attack is None:
        raise UsageError(f"suite '{args.suite}' has no stage '{args.stage}': use one of "
                         f"{', '.join(s.name for s in suite.stages)}")
    loaded = load_model(args.model, args.pretrained, device=Runtime.create(args.device).device, seed=args.seed,
                        vision_tower=args.vision_tower)
    dataset = load_dataset(args.dataset, root=args.data_root, split=args.split, transform=loaded.pixel_transform(),
                           classnames_file=args.classnames_file)
    dataset = limit_dataset(dataset, args.limit, args.seed)
    result = train_prefix_on_dataset(loaded, dataset, attack=attack, steps=args.steps, lr=args.lr, seed=args.seed,
                                     tokens=args.tokens, batch_size=args.batch_size, keep_weight=args.keep_weight)
    path = save_prefix(args.out, result)
    print_summary(result, str(path))
    return 0


def print_summary(result: PrefixResult, path: str) -> None:
    meta = result.metadata
    print(f"model    {meta['model_label']}  (weights {meta['model_fingerprint'][:12]})")
    stage = json.loads(meta["attack"]).get("name", "?")
    print(f"data     {meta['dataset']} {meta['split']}: {meta['train_count']} images, written on by stage '{stage}', "
          f"seed {meta['seed']}")
    print(f"prefix   {result.tokens} token(s); loss {float(meta['initial_loss']):.4f} -> {float(meta['final_loss']):.4f} "
          f"on all training images after {meta['steps']} steps")
    print(f"wrote    {path}  (use: --defense prompt:prefix={path})")
