"""What ``--help`` says a default is, is what the command uses: read off the argparse parsers the CLI
builds, and, for the options whose default a handler decides (--limit, --suite), off the configuration that
reaches the session."""

from __future__ import annotations

import argparse
import re

import pytest

from typobench.cli import build_parser, main
from typobench.harness.session import Session

STATED = re.compile(r"\(default: ([^;)\s]+)")
# Words a help may use for a default value.
WORDS = {"all": None, "off": 0}


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its full name, aliases left out."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub not in found.values():
                    found[f"{prefix}{name}"] = sub
                    found.update(_subparsers(sub, f"{prefix}{name} "))
    return found


COMMANDS = _subparsers(build_parser())


def _stated(action: argparse.Action) -> str | None:
    match = STATED.search(action.help or "")
    return match.group(1).rstrip(",") if match else None


def _same(stated: str, default) -> bool:
    if stated in WORDS:
        return WORDS[stated] == default
    if isinstance(default, (tuple, list)):
        return stated == ",".join(map(str, default))
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return float(stated) == default
    return stated == str(default)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_default_stated_in_help_is_the_parsers_default(command):
    wrong = []
    for action in COMMANDS[command]._actions:
        stated = _stated(action)
        # A None default is decided later, from other options (described in words): the test below checks those.
        if stated is None or (action.default is None and stated not in WORDS):
            continue
        if not _same(stated, action.default):
            wrong.append(f"{action.option_strings}: help says {stated!r}, parser has {action.default!r}")
    assert wrong == []


class Opened(Exception):
    """Raised by the patched Session.open: the configuration a command would run with."""


def _limit_stated(command: str, dataset: str) -> int | None:
    """The --limit that ``command --help`` says is used when none is given, on ``dataset``."""
    text = next(a for a in COMMANDS[command]._actions if "--limit" in a.option_strings).help
    bundled = re.search(r"; (\d+) for the bundled (\S+)", text)
    if bundled and bundled.group(2).rstrip(",") == dataset:
        return int(bundled.group(1))
    stated = STATED.search(text).group(1)
    return WORDS[stated] if stated in WORDS else int(stated)


@pytest.mark.parametrize("command, extra", [("run", []), ("sweep", ["--vary", "text.size=8,12"]), ("defend", []),
                                            ("search-text", [])])
def test_the_limit_and_suite_help_states_are_the_ones_a_command_runs_with(command, extra, monkeypatch, capsys):
    def opened(config, **kwargs):
        raise Opened(config)

    monkeypatch.setattr(Session, "open", staticmethod(opened))
    for dataset in ("cifar10-sample", "folder"):
        with pytest.raises(Opened) as caught:
            main([command, "--model", "tiny-rn", "--dataset", dataset, *extra])
        config = caught.value.args[0]
        assert config.limit == _limit_stated(command, dataset), (command, dataset)
        suite = next(a for a in COMMANDS[command]._actions if "--suite" in a.option_strings)
        assert config.suite == _stated(suite)


def test_notices_go_to_stderr_as_it_is_now_not_as_it_was_when_logging_was_set_up(monkeypatch) -> None:
    """`main` sets logging up once per process; a later call (the API, the next test) may have another stderr,
    and a notice must reach that one, not the closed stream of the first call."""
    import io
    import logging
    import sys

    from typobench.cli import CurrentStderrHandler

    handler = CurrentStderrHandler()
    record = logging.LogRecord("typobench", logging.WARNING, __file__, 1, "a notice", None, None)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    handler.emit(record)
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    handler.emit(record)
    assert second.getvalue() == "a notice\n"
