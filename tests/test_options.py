"""Options declared once (``typobench.core.options``): one dataclass field gives the flag, its help and default,
the suite-TOML key, the checks and the keyword argument."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from typobench.cli import build_parser, main
from typobench.commands import neurons_cmd
from typobench.core.errors import UsageError
from typobench.core.options import add_arguments, check, declared, from_namespace, option, read_table
from typobench.commands.defense_tools_common import WrittenStage
from typobench.defenses.projection import ProjectionStages
from typobench.experiments.paint import PaintOptions
from typobench.experiments.sweep import SweepOptions
from typobench.experiments.text_search import SearchOptions
from typobench.harness.config import Quiet, RunConfig
from typobench.leaderboard.boards import BoardsRoot
from typobench.leaderboard.build import BuildOptions
from typobench.leaderboard.compare import CompareOptions
from typobench.leaderboard.submit import SubmitOptions
from typobench.suites import neurons_option, parse_suite

from test_suites import MINIMAL
from typobench.suites.fields import Table
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.heads.survey import HeadSurveyOptions

SUITE = MINIMAL + b"[neurons]\n"  # test_suites' minimal suite with an empty [neurons] table


@dataclass
class WithKnob(NeuronsConfig):
    """NeuronsConfig with one more option, declared in this one place only."""

    new_knob: int = option(7, "a knob a later version adds", minimum=1, group="method")


def _help(command: str) -> str:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return sub.format_help()


def test_a_field_declared_once_is_a_flag_a_suite_key_a_keyword_and_a_check(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(neurons_cmd, "NeuronsConfig", WithKnob)
    monkeypatch.setattr(neurons_option, "NeuronsConfig", WithKnob)
    # CLI help, with the default written from the declaration
    text = " ".join(_help("neurons").split())
    assert "--new-knob NEW_KNOB a knob a later version adds (default: 7)" in text
    # CLI value -> the config the command runs with
    seen = {}

    def fake_analyze(config, progress=True):
        seen["config"] = config
        raise UsageError("stop here")

    monkeypatch.setattr(neurons_cmd, "analyze", fake_analyze)
    assert main(["neurons", "--from", str(tmp_path), "--new-knob", "3"]) == 2
    assert seen["config"].new_knob == 3
    assert main(["neurons", "--from", str(tmp_path), "--new-knob", "0"]) == 2
    assert "argument --new-knob: must be a positive integer, got 0" in capsys.readouterr().err
    # a suite's [neurons] table, checked and named as the suite writes it
    assert parse_suite(SUITE + b"new_knob = 5\n").neurons == {"new_knob": 5}
    with pytest.raises(UsageError, match=r"^suite mini: neurons\.new_knob must be a positive integer, got 0$"):
        parse_suite(SUITE + b"new_knob = 0\n")
    # the Python API's keyword argument and its check, named as the command line writes it
    assert WithKnob(run_dir="r", new_knob=4).new_knob == 4
    with pytest.raises(UsageError, match="^--new-knob must be a positive integer, got -1$"):
        WithKnob(run_dir="r", new_knob=-1).validate()


def _parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in command.split():
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    return parser


@pytest.mark.parametrize("config, command", [
    (RunConfig, "run"), (NeuronsConfig, "neurons"), (SearchOptions, "search-text"), (SweepOptions, "sweep"),
    (SubmitOptions, "submit"), (BoardsRoot, "leaderboard validate"), (BuildOptions, "leaderboard build"),
    (CompareOptions, "leaderboard compare"), (PaintOptions, "defense paint-curve"),
    (WrittenStage, "defense train-prefix"), (ProjectionStages, "defense train-projection"), (Quiet, "run"), (Quiet, "sweep"), (Quiet, "leaderboard validate"),
    (HeadSurveyOptions, "heads")])
def test_every_declared_option_is_a_flag_of_its_command_with_its_declared_default(config, command):
    parser = _parser(command)
    flags = {flag: action for action in parser._actions for flag in action.option_strings}
    for item in declared(config):
        action = flags[item.flag]
        assert action.dest == item.name
        if item.default is not dataclasses.MISSING:
            assert action.default == item.default or (item.kind is list and list(action.default or []) ==
                                                      list(item.default or [])), item.name


def test_the_checks_name_the_option_as_each_input_form_writes_it():
    with pytest.raises(UsageError, match="^--batch-size must be a positive integer, got 0$"):
        RunConfig(batch_size=0).validate()
    with pytest.raises(UsageError, match="^--checkpoint-every must be >= 0, got -1"):
        RunConfig(checkpoint_seconds=-1).validate()
    with pytest.raises(UsageError, match="^--head 'probe' is unknown: use zeroshot, linear-probe$"):
        RunConfig(head="probe").validate()
    with pytest.raises(UsageError, match=r"^s: neurons\.probe_per_class must be > 0, got 0.0$"):
        read_table(Table({"probe_per_class": 0}, "neurons", "s"), NeuronsConfig)
    with pytest.raises(UsageError, match="unknown field neurons.device"):  # not a method option: not in a suite
        read_table(Table({"device": "cpu"}, "neurons", "s"), NeuronsConfig)


def test_a_comma_list_and_a_repeated_flag_parse_to_the_declared_kinds():
    parser = argparse.ArgumentParser()
    add_arguments(parser, NeuronsConfig, ["run_dir", "stages", "modes"])
    config = from_namespace(NeuronsConfig, parser.parse_args(["--from", "r", "--stage", "a", "--stage", "b",
                                                              "--modes", "mean"]))
    assert (config.stages, config.modes) == (["a", "b"], ("mean",))
    check(config)
    with pytest.raises(SystemExit):
        parser.parse_args(["--from", "r", "--modes", "half"])


@pytest.mark.parametrize("line, said", [
    (["search-text", "--top-k", "0"], "argument --top-k: must be a positive integer, got 0"),
    (["defense", "paint-curve", "--checkpoint", "no-such.safetensors", "--dataset", "cifar10-sample", "--out", "o"],
     "argument --checkpoint: 'no-such.safetensors' is not an existing .safetensors file"),
    (["defense", "paint-curve", "--budget", "-1", "--checkpoint", "x", "--dataset", "d", "--out", "o"],
     "argument --budget: -1.0: the clean-accuracy drop allowed must be >= 0 points"),
    (["defense", "paint-curve", "--alphas", "0,0", "--checkpoint", "x", "--dataset", "d", "--out", "o"],
     "argument --alphas: expected distinct comma-separated numbers in [0, 1]"),
])
def test_a_command_s_own_declared_options_are_checked_as_the_flag_is_parsed(line, said, capsys):
    assert main(line) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1, err


def test_the_python_keyword_is_the_declared_field_and_checked_the_same(tmp_path):
    checkpoint = tmp_path / "b.safetensors"
    checkpoint.write_bytes(b"")
    assert PaintOptions(checkpoint=str(checkpoint), alphas="0,0.5").alpha_values == [0.0, 0.5]
    check(PaintOptions(checkpoint=str(checkpoint)))
    with pytest.raises(UsageError, match=r"^--budget -2\.0: the clean-accuracy drop allowed must be >= 0 points$"):
        check(PaintOptions(checkpoint=str(checkpoint), budget=-2.0))
