"""What a board is: its data set protocol, its columns, its kind, and the published suite entries must carry.

``leaderboards/boards.toml`` declares the boards (read by :mod:`.boards`). A board is one (data set, suite, head)
combination. Its protocol pins the data set (name, split, n, number of classes, seed and the sample hash of the
exact images) and names the published suite (``attacks/<suite>.toml``, whose sha256 every entry must carry; a
board of an earlier version of a suite names its kept file with ``suite_file``, e.g. ``defend-v1`` for
``attacks/defend-v1.toml``). Its columns say which numbers of an entry are shown, and ``sort`` which column ranks
it. What a kind of board does its own way (a suite run, the Stroop test) is a method of its :class:`BoardKind`
(the kinds are registered in :mod:`.board_kinds`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from typobench.core.errors import UsageError
from typobench.leaderboard.column_kinds import Column
from typobench.suites import published_suite_path, read_suite
from typobench.suites.fields import Table

BOARDS_FILE = "boards.toml"
ENTRIES_DIR = "entries"
TABLES_DIR = "tables"
STROOP_SUITE = "stroop-goh2021"
STROOP_DATASET = "stroop"
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_safe_id(text: Any) -> bool:
    """A name usable as one path component: letters, digits, '.', '_', '-'; not '.'/'..'-like."""
    return isinstance(text, str) and SAFE_ID.fullmatch(text) is not None and ".." not in text


@dataclass(frozen=True)
class DatasetProtocol:
    name: str
    split: str
    n: int
    num_classes: int
    seed: int
    sample_hash: str
    label_hash: str


@dataclass(frozen=True)
class BoardKind:
    """A kind of board (``kind`` in boards.toml): how its entries are made, hashed, re-scored and checked.

    Kinds are equal when they are the same class. The kinds and their registry: :mod:`.board_kinds`.
    """

    name: ClassVar[str]
    run_file: ClassVar[str]  # the file of a run folder that its entries are built from
    sample_columns: ClassVar[tuple[str, ...]] = ()  # per-sample columns of its predictions beyond ids and labels
    stage_columns: ClassVar[tuple[str, ...]] = ()  # optional per-stage columns of its predictions beyond pred
    pins_seed: ClassVar[bool] = False  # whether an entry's run.seed must be the protocol's seed

    def read_fields(self, table: Table) -> dict[str, Any]:
        """Its own fields of a board table of boards.toml (a ``suites.fields.Table``), as keywords of Board."""
        return {}

    def published_sha256(self, board: Board) -> str:
        """The sha256 every entry of ``board`` must carry as ``suite.sha256``."""
        raise NotImplementedError

    def published_what(self, board: Board) -> str:
        """What :meth:`published_sha256` hashes, for messages."""
        raise NotImplementedError

    def stage_names(self, board: Board) -> list[str]:
        """The stages an entry of ``board`` has, in order."""
        raise NotImplementedError

    def rescore(self, board: Board, table: dict[str, Any]) -> list[dict[str, Any]]:
        """The stage metrics re-derived from an entry's compact predictions ``table``."""
        raise NotImplementedError

    def check_stated_stage(self, stage: dict[str, Any], field: str) -> None:
        """The shape of one stated stage of ``metrics.stages`` (raises an ``EntryError`` naming ``field``)."""
        raise NotImplementedError

    def check_head(self, stated: dict[str, Any], board: Board) -> None:
        """Checks of an entry's ``head`` beyond its kind (raises an ``EntryError``)."""


@dataclass(frozen=True)
class Board:
    id: str
    title: str
    kind: BoardKind
    suite: str
    head: str
    dataset: DatasetProtocol
    columns: tuple[Column, ...]
    sort: str
    reproduce: str
    prompt: str | None = None  # stroop only
    description: str = ""
    suite_file: str | None = None  # the published file's name when it is not the suite's name (a kept version)

    @property
    def published_name(self) -> str:
        """The name of the published suite file: ``attacks/<published_name>.toml``."""
        return self.suite_file or self.suite

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(key)

    @property
    def sort_column(self) -> Column:
        return self.column(self.sort)


@dataclass(frozen=True)
class HeadlineColumn:
    key: str
    label: str
    board: str
    column: str


@dataclass
class Boards:
    """Everything in boards.toml."""

    protocol_version: int
    boards: dict[str, Board]
    headline: tuple[HeadlineColumn, ...]
    headline_sort: str
    path: Path | None = None
    root: Path | None = None
    published_suites: dict[str, str] = field(default_factory=dict)

    def board(self, board_id: str) -> Board:
        if board_id not in self.boards:
            raise KeyError(board_id)
        return self.boards[board_id]

    def find(self, dataset: str, suite: str, head: str, sha256: str | None = None) -> Board | None:
        """The board of (data set, suite, head); where kept versions of the suite have boards of their own,
        the one whose published file has ``sha256``, else the one of the current file (no ``suite_file``)."""
        found = [b for b in self.boards.values() if (b.dataset.name, b.suite, b.head) == (dataset, suite, head)]
        if len(found) > 1:
            by_hash = [b for b in found if sha256 and published_suite_sha256(b) == sha256]
            found = by_hash or [b for b in found if b.suite_file is None] or found
        return found[0] if found else None

    def made_from(self, run_file: str) -> Board | None:
        """The first board whose entries are built from a run folder's ``run_file`` (its kind's)."""
        return next((b for b in self.boards.values() if b.kind.run_file == run_file), None)

    def headline_column(self, key: str) -> HeadlineColumn:
        for column in self.headline:
            if column.key == key:
                return column
        raise KeyError(key)

    def describe(self) -> str:
        return ", ".join(f"{b.id} ({b.dataset.name}, {b.suite}, {b.head})" for b in self.boards.values())


# -- published protocols ----------------------------------------------------------------------------


def published_suite_sha256(board: Board) -> str:
    """The sha256 of the board's published suite (:func:`published_suite_file`), or of the Stroop design."""
    return board.kind.published_sha256(board)


def published_suite_file(board: Board) -> Path:
    """The file of a suite board's published suite: the shipped ``attacks/<suite_file or suite>.toml``."""
    try:
        return published_suite_path(board.published_name)
    except UsageError as exc:
        raise UsageError(f"board '{board.id}': its published suite is missing ({exc})") from None


def published_suite(board: Board):
    """The parsed published suite of a suite board (stage names, eps for labels); it must be the board's suite."""
    path = published_suite_file(board)
    suite = read_suite(str(path))
    if suite.name != board.suite:
        raise UsageError(f"board '{board.id}': {path.name} is suite '{suite.name}', not '{board.suite}': fix the "
                         "board's suite or suite_file")
    return suite


def stroop_protocol_sha256(design: dict[str, Any], prompt: str) -> str:
    """sha256 of a Stroop design (palette, words, neutral word, fonts by name and file hash, sizes,
    background) and the prompt, as canonical JSON. Font file paths are left out (they are local)."""
    design = dict(design)
    design["fonts"] = [{k: v for k, v in dict(font).items() if k != "path"} for font in design.get("fonts", [])]
    design["sizes"] = [float(s) if isinstance(s, float) else s for s in design.get("sizes", [])]
    payload = json.dumps({"design": design, "prompt": prompt}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def label_hash(sample_ids: Sequence[str], labels: Sequence[int], words: Sequence[int] | None = None) -> str:
    """sha256 of the sorted lines ``sample_id<TAB>label`` (``<TAB>word`` for Stroop): pins the true labels."""
    columns = [sample_ids, labels] if words is None else [sample_ids, labels, words]
    lines = sorted("\t".join(str(v) for v in row) for row in zip(*columns))
    return hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()


def eps_text(eps: float) -> str:
    """``2/255`` for 0.00784..., ``0.5/255`` for 0.00196...; other values as plain numbers."""
    steps = eps * 255
    rounded = round(steps * 8) / 8
    if 0 < rounded <= 64 and abs(steps - rounded) < 1e-9:
        return f"{rounded:g}/255"
    return f"{eps:g}"


def column_label(board: Board, column: Column, label: str | None = None) -> str:
    """The column's label (or ``label``), with ``{eps}`` filled from the published suite's stage."""
    label = column.label if label is None else label
    if "{eps}" not in label:
        return label
    suite = published_suite(board)
    stage = next((s.describe() for s in suite.stages if s.describe()["name"] == column.stage), {})
    eps = {stage["eps"]} if "eps" in stage else {a.get("eps") for a in stage.get("attacks", [])}  # worst-case: its attacks
    return label.replace("{eps}", eps_text(float(eps.pop())) if len(eps) == 1 and None not in eps else "?")
