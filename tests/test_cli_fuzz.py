"""Hypothesis draws command lines for ``run``, ``defend``, ``sweep`` and ``neurons`` from their own argparse options
(flags, choices, types; valid and invalid values) and holds the CLI to its promise: exit 0, or exit 2
with exactly one line on stderr -- never a traceback, never another status."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from typobench.cli import build_parser, main
from typobench.commands.common import positive_int

PARSERS = {name: parser for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
           for name, parser in action.choices.items()}
# Every drawn command line starts from a small, cheap one (a later drawn option overrides these), so that
# the runs that do start finish in seconds: the tiny built-in model on a few bundled images.
BASE = {"run": ["--model", "tiny-rn", "--device", "cpu", "--quiet", "--limit", "4", "--batch-size", "4",
                "--suite", "none", "--no-neurons"],
        "sweep": ["--model", "tiny-rn", "--device", "cpu", "--quiet", "--limit", "4", "--batch-size", "4",
                  "--suite", "random-wrong-label", "--vary", "text.size=8,12", "--no-plots"],
        "defend": ["--model", "tiny-rn", "--device", "cpu", "--quiet", "--limit", "4", "--batch-size", "4",
                   "--suite", "none", "--no-reading", "--attack-checks", "0"],
        "neurons": ["--device", "cpu", "--quiet", "--ref-limit", "8", "--draws", "2", "--probe-images", "8",
                    "--max-cards", "1", "--fv-steps", "1"]}
# Values for options whose every value would otherwise be slow (a big model, all images, a long
# optimisation) or whose meaning is a name: a valid cheap one and invalid ones.
POOLS = {
    "model": ["tiny-rn", "no-such-model", ""],
    "dataset": ["cifar10-sample", "folder", "no-such-data"],
    "suite": ["none", "random-wrong-label", "no-such-suite"],
    "limit": ["1", "3", "0", "-2", "x"],
    "holdout": ["1", "999", "5000", "0"],
    "probe_train_limit": ["10", "0"],
    "batch_size": ["2", "0", "x"],
    "workers": ["0", "-1", "x"],
    "defenses": ["no-such-defense", "no-such-defense:x=1", ""],
    "vary": ["text.size=8,12", "placement.copies=1", "no.such=1", "text.size", "pgd.eps=1/255"],
    "microscope": ["0", "-1", "x"],
    "heads": ["0", "-1"],
    "fv_natural": ["0", "-1"],
    "probe_images": ["8", "0"],
    "ref_limit": ["8", "0"],
    "draws": ["2", "0"],
    "random_draws": ["1", "0", "-1"],
    "lexicon_words": ["4", "0"],
    "attack_checks": ["0", "4", "-1"],
    "top_k": ["1", "0"],
    "max_events": ["4", "0"],
    "vit_blocks": ["1", "0"],
}
SKIPPED = {"help", "handler", "run_dir", "download"}  # --help exits by design; --download reaches the network


def _values(action: argparse.Action) -> st.SearchStrategy[str]:
    if action.dest in POOLS:
        return st.sampled_from(POOLS[action.dest])
    if action.choices:
        return st.sampled_from([*map(str, action.choices), "no-such-choice"])
    if action.type in (int, positive_int):
        return st.sampled_from(["-1", "0", "2", "x"])
    if action.type is float:
        return st.sampled_from(["-1.5", "0", "0.5", "nan", "x"])
    if action.type is not None:  # a parser of its own (e.g. comma-separated choices)
        return st.sampled_from(["zero", "zero,mean", "failure", "nope", ","])
    return st.sampled_from(["", "no-such-thing", "a b"])


def _option(action: argparse.Action) -> st.SearchStrategy[list[str]]:
    flag = max(action.option_strings, key=len)
    if action.nargs == 0:
        return st.just([flag])
    if action.nargs == "?":
        return st.just([flag]) | _values(action).map(lambda value: [flag, value])
    return _values(action).map(lambda value: [flag, value])


def drawn_options(command: str) -> st.SearchStrategy[list[str]]:
    """Up to four of ``command``'s options, each with a drawn value."""
    options = [a for a in PARSERS[command]._actions if a.option_strings and a.dest not in SKIPPED]
    drawn = st.lists(st.sampled_from(options), max_size=4, unique=True).flatmap(
        lambda chosen: st.tuples(*[_option(a) for a in chosen]))
    return drawn.map(lambda parts: [value for part in parts for value in part])


def _check(argv: list[str], capsys) -> None:
    # logging.basicConfig binds its handler to the sys.stderr of the first call: rebind it to this capture.
    logging.getLogger().handlers.clear()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's --version, or anything else that exits around main's handling
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, (argv, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 0 or (code == 2 and len(lines) == 1 and lines[0].startswith("typobench: error:")), (argv, code, err)


SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    """Drawn --out, --cache-dir and --data-root values are relative: they land in a folder of this test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TYPOBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("command", ["run", "defend", "sweep"])
def test_drawn_run_defend_and_sweep_command_lines_exit_0_or_2_with_one_line(command, workdir, capsys):
    @SETTINGS
    @given(drawn=drawn_options(command))
    def check(drawn):
        with tempfile.TemporaryDirectory(dir=workdir) as folder:  # a drawn --out comes later and wins
            _check([command, *BASE[command], "--out", folder, *drawn], capsys)

    check()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny run with an attack stage, for ``neurons --from``."""
    folder = tmp_path_factory.mktemp("finished")
    assert main(["run", *BASE["run"], "--suite", "random-wrong-label",
                 "--cache-dir", str(folder / "cache"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_drawn_neurons_command_lines_exit_0_or_2_with_one_line(finished_run, workdir, capsys):
    sources = st.sampled_from([str(finished_run), str(workdir / "no-such-run"), str(workdir)])

    @SETTINGS
    @given(source=sources, drawn=drawn_options("neurons"))
    def check(source, drawn):
        with tempfile.TemporaryDirectory(dir=workdir) as folder:
            _check(["neurons", *BASE["neurons"], "--from", source, "--out", folder, *drawn], capsys)

    check()
