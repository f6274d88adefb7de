"""The kinds of board (``kind`` in ``leaderboards/boards.toml``), the one place a kind is registered.

* ``suite`` (the default): a ``typobench run`` of a published attack suite (``attacks/<suite>.toml``) on the
  board's data set; re-scored with the run's own ``summarise_stages``. The defense boards are suite boards of the
  ``defend`` suite, whose ``clean_cost`` column compares two entries (:mod:`.column_kinds`, :mod:`.clean_cost`).
* ``stroop``: a ``typobench stroop`` run of Goh et al.'s stimulus design with the board's prompt; its "suite" is
  the design and prompt, hashed by :func:`stroop_protocol_sha256`.

What code does differently per kind is a method or a declared attribute of its class (:class:`BoardKind`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from typobench.core.registry import Registry
from typobench.typographic.stroop import STROOP_JSON, stroop_design
from typobench.harness.results import RESULTS_FILE
from typobench.leaderboard.column_kinds import STROOP_METRICS, STROOP_STAGE
from typobench.leaderboard.entry_fields import (
    EntryError,
    check_ci,
    check_equal,
    check_int,
    check_number,
    check_object,
    check_rate,
    check_str,
)
from typobench.leaderboard.protocol import (
    Board,
    BoardKind,
    is_safe_id,
    published_suite,
    published_suite_file,
    stroop_protocol_sha256,
)
from typobench.leaderboard.scoring import NESTED_STAGE_RATES, rescore_stroop, rescore_suite
from typobench.leaderboard.stage_columns import STAGE_COLUMNS
from typobench.suites.fields import Table

BOARD_KINDS: Registry[type[BoardKind]] = Registry("board kind")
DEFAULT_KIND = "suite"


def _register(cls: type[BoardKind]) -> type[BoardKind]:
    return BOARD_KINDS.add(cls.name, cls)


def board_kind(name: str) -> BoardKind:
    """The kind called ``name`` (an unknown name is a UsageError with the close matches)."""
    return BOARD_KINDS.get(name)()


@_register
class SuiteBoard(BoardKind):
    """Entries of ``typobench run --suite S``: one stage per stage of the published suite file."""

    name = "suite"
    run_file = RESULTS_FILE
    stage_columns = tuple(STAGE_COLUMNS)
    pins_seed = True

    def read_fields(self, table: Table) -> dict[str, Any]:
        suite_file = table.str("suite_file", None)
        if suite_file is not None and not is_safe_id(suite_file):
            raise table.error("suite_file", f"'{suite_file}' must be the name of a file in attacks/ (without .toml)")
        return {"suite_file": suite_file}

    def published_sha256(self, board: Board) -> str:
        return hashlib.sha256(published_suite_file(board).read_bytes()).hexdigest()

    def published_what(self, board: Board) -> str:
        return f"the published suite attacks/{board.published_name}.toml"

    def stage_names(self, board: Board) -> list[str]:
        return [s.describe()["name"] for s in published_suite(board).stages]

    def rescore(self, board: Board, table: dict[str, Any]) -> list[dict[str, Any]]:
        return rescore_suite(table, board.dataset.num_classes)

    def check_stated_stage(self, stage: dict[str, Any], field: str) -> None:
        rates = ("targeted_success", *NESTED_STAGE_RATES)
        check_object(stage, field, ("name", "accuracy", "ci95", "n"), rates)
        check_number(stage["accuracy"], f"{field}.accuracy", null=True)
        check_ci(stage["ci95"], f"{field}.ci95")
        check_int(stage["n"], f"{field}.n", minimum=0)
        for key in rates:
            if key in stage:
                check_rate(stage[key], f"{field}.{key}")

    def check_head(self, stated: dict[str, Any], board: Board) -> None:
        if "prompt" in stated:
            raise EntryError("head.prompt", "is only a field of Stroop entries; remove it")


@_register
class StroopBoard(BoardKind):
    """Entries of ``typobench stroop``: the board's prompt on Goh et al.'s stimuli, one "stage" of Stroop rates;
    the predictions carry each stimulus's word (-1: the neutral word) beside its ink (the label)."""

    name = "stroop"
    run_file = STROOP_JSON
    sample_columns = ("word",)

    def read_fields(self, table: Table) -> dict[str, Any]:
        prompt = table.str("prompt")
        if not prompt:
            raise table.error("prompt", "a stroop board needs a prompt")
        return {"prompt": prompt}

    def published_sha256(self, board: Board) -> str:
        return stroop_protocol_sha256(stroop_design().to_dict(), board.prompt or "")

    def published_what(self, board: Board) -> str:
        return "the Stroop design and prompt of this typobench"

    def stage_names(self, board: Board) -> list[str]:
        return [STROOP_STAGE]

    def rescore(self, board: Board, table: dict[str, Any]) -> list[dict[str, Any]]:
        return rescore_stroop(table)

    def check_stated_stage(self, stage: dict[str, Any], field: str) -> None:
        check_object(stage, field, ("name", *STROOP_METRICS))
        for key in STROOP_METRICS:
            check_rate(stage[key], f"{field}.{key}")

    def check_head(self, stated: dict[str, Any], board: Board) -> None:
        check_equal(check_str(stated.get("prompt"), "head.prompt"), board.prompt, "head.prompt",
                    f"board {board.id}'s prompt")


__all__ = ["BOARD_KINDS", "DEFAULT_KIND", "StroopBoard", "SuiteBoard", "board_kind"]
