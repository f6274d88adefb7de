"""Board protocols: ``leaderboards/boards.toml`` says what each board measures and how it is shown.

This module reads the file (:func:`load_boards`, with :mod:`tomllib` and the project's field readers, so that
every problem is one line naming the field); what a board is lives in :mod:`.protocol`, the kinds of board in
:mod:`.board_kinds` and the kinds of column in :mod:`.column_kinds`. The names of those modules that callers use
are importable from here too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.options import option
from typobench.leaderboard.board_kinds import BOARD_KINDS, DEFAULT_KIND, board_kind
from typobench.leaderboard.column_kinds import COLUMN_KINDS, STROOP_METRICS, Column
from typobench.leaderboard.protocol import (
    BOARDS_FILE,
    ENTRIES_DIR,
    STROOP_DATASET,
    STROOP_SUITE,
    TABLES_DIR,
    Board,
    Boards,
    DatasetProtocol,
    HeadlineColumn,
    column_label,
    eps_text,
    is_safe_id,
    label_hash,
    published_suite,
    published_suite_file,
    published_suite_sha256,
    stroop_protocol_sha256,
)
from typobench.shipped import in_source_checkout, shipped_leaderboards_dir
from typobench.suites.fields import Table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LEADERBOARDS_ENV = "TYPOBENCH_LEADERBOARDS_DIR"
ROOT_HELP = (f"leaderboards folder with boards.toml (default: ${LEADERBOARDS_ENV}, else the leaderboards shipped "
             "with typobench)")


@dataclass
class BoardsRoot:
    """``--root``: the leaderboards folder a leaderboard command reads, declared once (the options of ``submit``
    and of ``leaderboard build`` and ``compare`` extend it)."""

    root: str | None = option(None, ROOT_HELP)


def leaderboards_dir() -> Path:
    """``$TYPOBENCH_LEADERBOARDS_DIR``, else the shipped leaderboards (in a checkout: its ``leaderboards/``)."""
    env = os.environ.get(LEADERBOARDS_ENV)
    return Path(env) if env else shipped_leaderboards_dir()


def writable_folder(boards: Boards, subfolder: str, given: str | Path | None, option: str) -> Path:
    """Where a writing command writes: ``given`` (its ``option``), else ``<root>/<subfolder>``.

    The default is refused when the root is the copy shipped inside an installed package, so that no
    command edits site-packages; in a source checkout that copy is the version-controlled one, written on purpose.
    """
    if given:
        return Path(given)
    root = boards.root or Path(".")
    shipped = shipped_leaderboards_dir()
    if root.resolve() == shipped.resolve() and not in_source_checkout(shipped):
        raise UsageError(f"{root / subfolder} belongs to the installed typobench package (read-only): pass "
                         f"{option} FOLDER, or --root FOLDER (a copy of the leaderboards with boards.toml)")
    return root / subfolder


class BoardsTable(Table):
    """A table of boards.toml: its fields named in errors like a suite's, but a number is a TOML number (a
    protocol's n or seed is never a string such as ``"8/255"``) and an integer is written as one."""

    def _parse_number(self, key: str, value: Any, integer: bool) -> Any:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise self.error(key, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        return value


def _column(table: Table) -> Column:
    column = Column(
        key=table.str("key"), label=table.str("label"), kind=table.str("kind", choices=COLUMN_KINDS.names()),
        stage=table.str("stage", None), metric=table.str("metric", None),
        higher_is_better=table.bool("higher_is_better", True), note=table.str("note", ""),
    )
    table.finish(["key", "label", "kind", "stage", "metric", "higher_is_better", "note"])
    measure = column.measure
    if measure.needs_stage and not column.stage:
        raise table.error("stage", f"column '{column.key}' ({column.kind}) needs a 'stage'")
    if measure.metrics and column.metric not in measure.metrics:
        raise table.error("metric", f"column '{column.key}' needs 'metric' = one of {', '.join(measure.metrics)}")
    return column


def _dataset(table: Table) -> DatasetProtocol:
    dataset = DatasetProtocol(
        name=table.str("name"), split=table.str("split"), n=table.number("n", integer=True, minimum=1),
        num_classes=table.number("num_classes", integer=True, minimum=1),
        seed=table.number("seed", 0, integer=True), sample_hash=table.str("sample_hash"),
        label_hash=table.str("label_hash"),
    )
    table.finish()
    return dataset


def _board(raw: Any, index: int) -> Board:
    board_id = BoardsTable(raw, f"board[{index}]", BOARDS_FILE).str("id")
    if not is_safe_id(board_id):
        raise UsageError(f"{BOARDS_FILE} board[{index}]: id '{board_id}' is not a safe name (letters, digits, '.', "
                         "'_', '-')")
    where = f"{BOARDS_FILE} board '{board_id}'"
    table = BoardsTable(raw, "", where)
    table.raw("id")
    kind = board_kind(table.str("kind", DEFAULT_KIND, choices=BOARD_KINDS.names()))
    columns = tuple(_column(BoardsTable(c, f"column[{i}]", where)) for i, c in enumerate(table.list("column")))
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise UsageError(f"{where}: column keys repeat: {', '.join(keys)}")
    dataset = _dataset(BoardsTable(table.raw("dataset"), "dataset", where))
    board = Board(
        id=board_id, title=table.str("title"), kind=kind, suite=table.str("suite"), head=table.str("head"),
        dataset=dataset, columns=columns, sort=table.str("sort"),
        reproduce=table.str("reproduce", ""), description=table.str("description", ""), **kind.read_fields(table),
    )
    table.finish()
    if board.sort not in keys:
        raise UsageError(f"{where}: sort '{board.sort}' is not one of its columns ({', '.join(keys)})")
    return board


def _headline(table: Table, boards: dict[str, Board]) -> HeadlineColumn:
    column = HeadlineColumn(key=table.str("key"), label=table.str("label"), board=table.str("board"),
                            column=table.str("column"))
    table.finish()
    if column.board not in boards:
        raise table.error("board", f"board '{column.board}' is not defined")
    try:
        boards[column.board].column(column.column)
    except KeyError:
        raise table.error("column", f"board '{column.board}' has no column '{column.column}'") from None
    return column


def _boards(raw: Table) -> dict[str, Board]:
    by_id: dict[str, Board] = {}
    for board in (_board(b, i) for i, b in enumerate(raw.list("board"))):
        if board.id in by_id:
            raise UsageError(f"{BOARDS_FILE}: board id '{board.id}' is given twice")
        key = (board.dataset.name, board.published_name, board.head)
        if any((b.dataset.name, b.published_name, b.head) == key for b in by_id.values()):
            raise UsageError(f"{BOARDS_FILE}: two boards for ({board.dataset.name}, {board.published_name}, "
                             f"{board.head}): give a kept version of a suite its own suite_file")
        by_id[board.id] = board
    return by_id


def load_boards(root: str | Path | None = None) -> Boards:
    """Parse ``<root>/boards.toml`` (root: :func:`leaderboards_dir`); every problem is a one-line UsageError."""
    root = Path(root) if root is not None else leaderboards_dir()
    path = root / BOARDS_FILE
    if not path.is_file():
        raise UsageError(f"board protocols '{path}' not found: pass --root (or set ${LEADERBOARDS_ENV}) to a folder "
                         f"with {BOARDS_FILE}")
    try:
        raw = BoardsTable(tomllib.loads(path.read_text(encoding="utf-8")), "", BOARDS_FILE)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    boards = _boards(raw)
    headline = tuple(_headline(BoardsTable(h, f"headline[{i}]", BOARDS_FILE), boards)
                     for i, h in enumerate(raw.list("headline", [])))
    headline_sort = raw.str("headline_sort", headline[0].key if headline else "")
    if headline and headline_sort not in [h.key for h in headline]:
        raise UsageError(f"{BOARDS_FILE}: headline_sort '{headline_sort}' is not a headline column")
    protocol_version = raw.number("protocol_version", integer=True, minimum=1)
    raw.finish()
    return Boards(protocol_version=protocol_version, boards=boards, headline=headline, headline_sort=headline_sort,
                  path=path, root=root)


__all__ = [
    "BOARDS_FILE", "ENTRIES_DIR", "LEADERBOARDS_ENV", "ROOT_HELP", "STROOP_DATASET", "STROOP_METRICS", "STROOP_SUITE",
    "TABLES_DIR", "Board", "Boards", "BoardsRoot", "Column", "DatasetProtocol", "HeadlineColumn", "column_label",
    "eps_text", "is_safe_id", "label_hash", "leaderboards_dir", "load_boards", "published_suite",
    "published_suite_file", "published_suite_sha256", "stroop_protocol_sha256", "writable_folder",
]
