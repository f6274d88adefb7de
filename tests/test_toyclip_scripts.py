"""The organism recipe scripts' command lines (``python -m typobench.toyclip.train``, ``measure``, ``robust``,
``robust_measure``): options declared once (``typobench.core.options``), with the flags, defaults and meanings the
model cards and the README quote, so that the quoted commands still run and make the same weights. Parsing only:
nothing here trains or measures."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import shlex
from fractions import Fraction
from pathlib import Path

import pytest

from typobench.core.options import declared
from typobench.harness.config import Quiet
from typobench.toyclip.measure import MeasureOptions
from typobench.toyclip.robust import RobustOptions
from typobench.toyclip.robust_measure import RobustMeasureOptions
from typobench.toyclip.train import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("train", "measure", "robust", "robust_measure")
# The flags each script requires, with placeholder values (a card may leave them out: "... --limit 8000").
REQUIRED = {"train": ["--out", "OUT"], "measure": ["--data-root", "DATA", "--out", "OUT"],
            "robust": ["--loss", "fare", "--out", "OUT"], "robust_measure": ["--data-root", "DATA", "--out", "OUT"]}
# Every option's value when only the required flags are given: the hand-written parsers' defaults, before the
# options were declared (the cards' "the defaults are this recipe").
DEFAULTS = {
    "train": {"data_root": None, "dataset": "cifar10-jpeg", "download": False, "model": "toyclip", "out": "OUT",
              "seed": 0, "steps": 2800, "batch_size": 256, "lr": 0.002, "pct_start": 0.1, "weight_decay": 0.1,
              "grad_clip": 1.0, "threads": 2, "precision": "bf16", "workers": 1, "photo_limit": None, "mixture": "r7",
              "distill_from": None, "distill_weight": 10.0,
              "overrides": [], "log_every": 20, "eval_every": 1400, "checkpoint_every": 100, "fp32": False,
              "no_resume": False, "stop_after": None},
    "measure": {"model": "toyclip", "pretrained": None, "data_root": "DATA", "checks": None, "limit": 2000,
                "holdout": None, "probe_train_limit": None, "probe_eval_limit": None, "seed": 0, "batch_size": 128,
                "cache_dir": None, "out": "OUT", "quiet": False},
    "robust": {"loss": "fare", "out": "OUT", "base": "toyclip", "name": None, "data_root": None, "seed": 0,
               "steps": 600, "batch_size": 128, "lr": 0.0001, "warmup": 0.05, "weight_decay": 0.0001, "grad_clip": 1.0,
               "eps": 2 / 255, "attack_steps": 3, "attack_step_size": 1 / 255, "validation": 2000, "eval_images": 500,
               "eval_every": 0, "photo_limit": None, "threads": 2, "precision": "bf16", "log_every": 10,
               "checkpoint_every": 25, "fp32": False, "no_resume": False, "stop_after": None},
    "robust_measure": {"models": ["toyclip", "toyclip-fare"], "data_root": "DATA", "limit": 500, "apgd_limit": 250,
                       "suites": ["default", "words-alone", "apgd-linf"], "batch_size": 125, "seed": 0,
                       "precision": "bf16", "attack_checks": 16, "out": "OUT"},
}
# Each script's own declared options.
DECLARED = {"train": (TrainOptions,), "measure": (MeasureOptions, Quiet), "robust": (RobustOptions,),
            "robust_measure": (RobustMeasureOptions,)}


def _parser(script: str) -> argparse.ArgumentParser:
    return importlib.import_module(f"typobench.toyclip.{script}").build_parser()


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _quoted_commands() -> list[tuple[str, str]]:
    """(where, command) for each toyclip command the model cards quote (`...`) and the README's code blocks hold."""
    found = []
    for card in sorted((ROOT / "typobench" / "models").glob("*_CARD.md")):
        for match in re.finditer(r"`(python -m typobench\.toyclip\.[^`]+)`", card.read_text()):
            found.append((card.name, " ".join(match.group(1).split())))
    for line in (ROOT / "README.md").read_text().splitlines():
        command = line.split("#")[0].strip()
        if command.startswith("python -m typobench.toyclip.") and "..." not in command:
            found.append(("README.md", command))
    return found


COMMANDS = _quoted_commands()


def test_the_cards_quote_every_script():
    assert {c.split()[2].rsplit(".", 1)[-1] for _, c in COMMANDS} == set(SCRIPTS)
    assert len([c for where, c in COMMANDS if where.endswith("_CARD.md")]) >= 8


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_keeps_its_default(script):
    parsed = vars(_parser(script).parse_args(REQUIRED[script]))
    assert {k: _plain(v) for k, v in parsed.items()} == DEFAULTS[script]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_declared_option_is_a_flag_of_its_script_with_its_declared_default(script):
    flags = {flag: action for action in _parser(script)._actions for flag in action.option_strings}
    for config in DECLARED[script]:
        for item in declared(config):
            action = flags[item.flag]
            assert action.dest == item.name
            if item.default is not dataclasses.MISSING:
                assert _plain(action.default) == _plain(item.default), item.name


STATED = re.compile(r"\(default: ([^;)\s]+)")


def _same(stated: str, default) -> bool:
    if stated == "all":
        return default is None
    if isinstance(default, (tuple, list)):
        return stated == ",".join(map(str, default))
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return float(Fraction(stated)) == default
    return stated == str(default)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_default_stated_in_help_is_the_parsers_default(script):
    parser = _parser(script)
    parsed = vars(parser.parse_args(REQUIRED[script]))  # (a string default goes through the flag's type)
    wrong = []
    for action in parser._actions:
        match = STATED.search(action.help or "")
        if not match or action.dest not in parsed:
            continue
        stated, default = match.group(1).rstrip(","), parsed[action.dest]
        if (default is not None or stated == "all") and not _same(stated, default):
            wrong.append(f"{action.option_strings}: help says {stated!r}, parser has {default!r}")
    assert wrong == []


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}:{c.split()[2]}" for w, c in COMMANDS])
def test_a_quoted_command_parses_and_its_flags_are_in_help_with_their_defaults(where, command):
    words = shlex.split(command)[3:]
    script = command.split()[2].rsplit(".", 1)[-1]
    parser = _parser(script)
    missing = [w for i, w in enumerate(REQUIRED[script]) if i % 2 == 0 and w not in words]
    argv = words + [w for i, w in enumerate(REQUIRED[script]) if REQUIRED[script][i - i % 2] in missing]
    parsed = vars(parser.parse_args(argv))
    helped = " ".join(parser.format_help().split())
    flags = {flag: action for action in parser._actions for flag in action.option_strings}
    for word in (w for w in words if w.startswith("--")):
        assert word in flags and word in helped, f"{where}: {word}"
        action = flags[word]
        default = vars(parser.parse_args(REQUIRED[script]))[action.dest]
        if action.required or default is None or isinstance(default, bool):
            continue
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        assert f"(default: {shown})" in " ".join(action.help.split()), f"{where}: {word}"
    # each value the command gives is the one parsed (a flag's meaning kept: same dest, same type)
    for i, word in enumerate(words):
        if word.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            value = parsed[flags[word].dest]
            given = words[i + 1: next((j for j in range(i + 1, len(words)) if words[j].startswith("--")), len(words))]
            assert _plain(value) == (given if flags[word].nargs == "+" else type(value)(given[0])), f"{where}: {word}"


def test_the_shipped_recipes_are_what_their_card_commands_parse_to():
    """The settings the shipped weights were trained with (recorded in their recipes)."""
    from typobench.toyclip.robust import read_options as robust_options
    from typobench.toyclip.train import read_options as train_options

    train = train_options(_parser("train").parse_args(["--data-root", "D", "--out", "O", "--seed", "0"]))
    assert (train.steps, train.batch_size, train.lr, train.mixture, train.model, train.overrides) == \
        (2800, 256, 2e-3, "r7", "toyclip", ())
    fare = robust_options(_parser("robust").parse_args(shlex.split(
        "--loss fare --out O --data-root D --steps 200 --batch-size 128 --lr 2e-4 --eval-every 100 --eval-images 250 "
        "--seed 0")))
    assert (fare.name, fare.eps, fare.attack_step_size, fare.attack_steps, fare.steps) == \
        ("toyclip-fare", 2 / 255, 1 / 255, 3, 200)


@pytest.mark.parametrize("script, argv, said", [
    ("train", ["--out", "O", "--steps", "0"], "argument --steps: must be a positive integer, got 0"),
    ("train", ["--out", "O", "--mixture", "r99"], "argument --mixture: invalid choice: 'r99'"),
    ("measure", ["--data-root", "D", "--out", "O", "--limit", "0"], "argument --limit: must be a positive integer"),
    ("measure", ["--data-root", "D", "--out", "O", "--checks", "vit"], "argument --checks: invalid choice: 'vit'"),
])
def test_a_bad_value_exits_2_naming_the_flag(capsys, script, argv, said):
    main = importlib.import_module(f"typobench.toyclip.{script}").main
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and said in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["--data-root", "D", "--out", "O", "--suites", "bogus"], "--suites 'bogus' is unknown: use default, words-alone"),
    (["--data-root", "D", "--out", "O", "--apgd-limit", "0"], "argument --apgd-limit: must be a positive integer"),
    (["--data-root", "D", "--out", "O", "--precision", "fp16"], "argument --precision: invalid choice: 'fp16'"),
    (["--out", "O"], "the following arguments are required: --data-root"),
])
def test_robust_measure_refuses_a_bad_value_in_one_line_with_exit_2(capsys, argv, said):
    from typobench.toyclip.robust_measure import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1 and err.startswith("error: ")
