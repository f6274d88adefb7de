"""Options shared by every command that loads a model and a data set: picked from ``RunConfig``'s declarations
(``typobench.core.options``), so that each flag, its help and its default are written once, there."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from typobench.core.options import add_arguments, from_namespace
from typobench.harness.config import DEFAULT_DATASET, DEFAULT_DEMO_LIMIT, DEFAULT_SUITE, RunConfig, defense_help

MODEL_OPTIONS = ("model", "pretrained", "vision_tower")
HEAD_OPTIONS = ("head", "suite", "probe_train_limit", "defenses")
DATA_OPTIONS = ("dataset", "data_root", "split", "download", "classnames_file", "limit", "holdout")
RUNTIME_OPTIONS = ("device", "precision", "batch_size")
STREAMING_OPTIONS = ("workers", "checkpoint_seconds", "attack_checks", "legibility")  # commands that stream data
SEED_AND_CACHE = ("seed", "cache_dir")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser, *, heads: bool = True, defense_help_lead: str | None = None,
                      suite: str = DEFAULT_SUITE) -> None:
    """The model options (with ``heads``: the head, suite and defenses too); ``suite`` is this command's default
    suite, and ``defense_help_lead`` what a --defense is to it."""
    add_arguments(parser, RunConfig, MODEL_OPTIONS + (HEAD_OPTIONS if heads else ()), defaults={"suite": suite},
                  helps={"defenses": defense_help(defense_help_lead)} if defense_help_lead else None)


def add_data_options(parser: argparse.ArgumentParser, *, limit: int | None = None, demo_limit: bool = False,
                     without: Sequence[str] = (), helps: dict[str, str] | None = None) -> None:
    """The data options; ``limit`` is this command's default --limit, and ``demo_limit`` says that its handler
    evaluates DEFAULT_DEMO_LIMIT images of the bundled sample when no --limit is given (only ``run`` does):
    the help states exactly that, nothing the command does not do. ``without``: options this command replaces
    by its own (``benchmark``'s --datasets for --dataset); ``helps``: what an option means to this command."""
    stated = "all" if limit is None else str(limit)
    if demo_limit:
        stated += f"; {DEFAULT_DEMO_LIMIT} for the bundled {DEFAULT_DATASET}, enough for a one-minute demo"
    add_arguments(parser, RunConfig, [name for name in DATA_OPTIONS if name not in without], defaults={"limit": limit},
                  helps={"limit": f"evaluate a deterministic class-stratified subset of N images (default: {stated})",
                         **(helps or {})})


def add_runtime_options(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    add_arguments(parser, RunConfig, RUNTIME_OPTIONS + (STREAMING_OPTIONS if workers else ()) + SEED_AND_CACHE)


def add_model_data_options(parser: argparse.ArgumentParser, *, defense_help_lead: str | None = None,
                           suite: str = DEFAULT_SUITE, limit: int | None = None, demo_limit: bool = False,
                           data_without: Sequence[str] = (), data_helps: dict[str, str] | None = None) -> None:
    """Every option of a run: model and head, data, runtime, with this command's defaults (see above)."""
    add_model_options(parser, defense_help_lead=defense_help_lead, suite=suite)
    add_data_options(parser, limit=limit, demo_limit=demo_limit, without=data_without, helps=data_helps)
    add_runtime_options(parser)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return from_namespace(RunConfig, args)
