"""What the ``typobench defense`` tools share: the training/selection data options and their loading."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.options import REQUIRED, add_arguments, option
from typobench.core.runtime import Runtime
from typobench.commands.common import config_from_args
from typobench.data import ImageDataset
from typobench.harness.config import DATA, MODEL, RUNTIME, RunConfig, load_split
from typobench.models import LoadedModel, load_model
from typobench.stages.base import Stage
from typobench.suites import read_suite

DEFAULT_SUITE, DEFAULT_STAGE = "random-wrong-label", "random-wrong-label"


@dataclass
class WrittenStage:
    """The stage of --suite that writes on the tools' images (read by :func:`suite_stage`), declared once."""

    stage: str = option(DEFAULT_STAGE, "that stage's name")


def add_data_options(parser: argparse.ArgumentParser, what: str, stage: bool = True) -> argparse._ArgumentGroup:
    """--dataset (required), --data-root, --split (default train), --limit, --classnames (``RunConfig``'s
    declarations, said of choosing), and --suite/--stage."""
    data = parser.add_argument_group(f"{what} data (choose on images it will not be scored on)")
    add_arguments(parser, RunConfig, ("dataset", "data_root", "split", "limit", "classnames_file"),
                  defaults={"dataset": REQUIRED, "split": "train"}, groups={DATA: data}, helps={
                      "dataset": "data set name (see `typobench list datasets`)",
                      "split": f"split to {what} on (default: train)",
                      "limit": f"{what} on a deterministic class-stratified subset of N images (default: all; they "
                               "are held in memory, so a few thousand)"})
    if stage:
        add_arguments(parser, RunConfig, ("suite",), groups={MODEL: data}, defaults={"suite": DEFAULT_SUITE},
                      helps={"suite": f"suite holding the stage that writes on the images (default: {DEFAULT_SUITE})"})
        add_arguments(parser, WrittenStage, ("stage",), groups={None: data})
    return data


def add_seed_device(group: argparse._ArgumentGroup) -> None:
    add_arguments(group, RunConfig, ("seed", "device"), groups={RUNTIME: group}, helps={
        "seed": "seed of the subset and of the written words and placements (default: 0)"})


def suite_stage(suite_name: str, stage_name: str) -> Stage:
    suite = read_suite(suite_name)
    stage = next((s for s in suite.stages if s.name == stage_name), None)
    if stage is None:
        raise UsageError(f"--stage: suite '{suite_name}' has no stage '{stage_name}': use one of "
                         f"{', '.join(s.name for s in suite.stages)}")
    return stage


def check_out(path: str, suffix: str, what: str) -> None:
    if not path.endswith(suffix):
        raise UsageError(f"--out '{path}' must end in {suffix} ({what})")


def print_learned(meta: dict[str, str], path: str, learned: str, use: str, stage: str | None = None) -> None:
    """What a tool that learns a file on train images prints: the model, the images (written on by ``stage``), the
    ``learned`` line, and the file with the ``--defense`` spec (``use``, e.g. ``prompt:prefix``) that loads it."""
    print(f"model    {meta['model_label']}  (weights {meta['model_fingerprint'][:12]})")
    written = f", written on by stage '{stage}'" if stage else ""
    print(f"data     {meta['dataset']} {meta['split']}: {meta['train_count']} images{written}, seed {meta['seed']}")
    print(learned)
    print(f"wrote    {path}  (use: --defense {use}={path})")


def load_model_data(args: argparse.Namespace, split: str | None = None,
                    limit: Any = "args") -> tuple[LoadedModel, ImageDataset]:
    """The model of --model/--pretrained/--vision-tower and --dataset's ``split`` (default --split) limited to
    ``limit`` (default --limit) images with --seed."""
    loaded = load_model(args.model, args.pretrained, device=Runtime.create(args.device).device, seed=args.seed,
                        vision_tower=args.vision_tower)
    return loaded, load_split(config_from_args(args), loaded, split, limit=args.limit if limit == "args" else limit)


__all__ = ["DEFAULT_STAGE", "DEFAULT_SUITE", "WrittenStage", "add_data_options", "add_seed_device", "check_out",
           "load_model_data", "print_learned", "suite_stage"]
