"""Board protocols: ``leaderboards/boards.toml`` says what each board measures and how it is shown.

A board is one (data set, suite, head) combination. Its protocol pins the data set (name, split, n,
number of classes, seed and the sample hash of the exact images) and names the published suite
(``attacks/<suite>.toml``, whose sha256 every entry must carry; a board of an earlier version of a suite
names its kept file with ``suite_file``, e.g. ``defend-v1`` for ``attacks/defend-v1.toml``). Its columns say which numbers of an
entry are shown, and ``sort`` which column ranks it. The Stroop board is the one board that is not
an attack suite: its "suite" is Goh et al.'s stimulus design and prompt, hashed by
:func:`stroop_protocol_sha256`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.typographic.stroop import stroop_design
from typobench.shipped import in_source_checkout, shipped_leaderboards_dir
from typobench.suites import published_suite_path, read_suite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LEADERBOARDS_ENV = "TYPOBENCH_LEADERBOARDS_DIR"
ROOT_HELP = (f"leaderboards folder with boards.toml (default: ${LEADERBOARDS_ENV}, else the leaderboards shipped "
             "with typobench)")
BOARDS_FILE = "boards.toml"
ENTRIES_DIR = "entries"
TABLES_DIR = "tables"
STROOP_SUITE = "stroop-goh2021"
STROOP_DATASET = "stroop"

# Column kinds and what they read from an entry's re-scored stage metrics.
COLUMN_KINDS = ("accuracy", "targeted_success", "lift", "mean_targeted_success", "stroop", "clean_cost")
STROOP_METRICS = ("congruent_accuracy", "incongruent_accuracy", "word_named", "neutral_accuracy")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


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


def is_safe_id(text: Any) -> bool:
    """A name usable as one path component: letters, digits, '.', '_', '-'; not '.'/'..'-like."""
    return isinstance(text, str) and SAFE_ID.fullmatch(text) is not None and ".." not in text


@dataclass(frozen=True)
class Column:
    """One number of a board: ``kind`` of ``stage`` (see COLUMN_KINDS), shown as ``label``."""

    key: str
    label: str
    kind: str
    stage: str | None = None
    metric: str | None = None  # stroop: which of STROOP_METRICS
    higher_is_better: bool = True
    note: str = ""

    @property
    def points(self) -> bool:
        """True when the value is a difference of rates (percentage points), not a rate."""
        return self.kind in ("lift", "clean_cost")


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
class Board:
    id: str
    title: str
    kind: str  # "suite" or "stroop"
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
            by_hash = [b for b in found if sha256 and b.kind == "suite" and published_suite_sha256(b) == sha256]
            found = by_hash or [b for b in found if b.suite_file is None] or found
        return found[0] if found else None

    def headline_column(self, key: str) -> HeadlineColumn:
        for column in self.headline:
            if column.key == key:
                return column
        raise KeyError(key)

    def describe(self) -> str:
        return ", ".join(f"{b.id} ({b.dataset.name}, {b.suite}, {b.head})" for b in self.boards.values())


def _get(table: dict, key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise UsageError(f"{where}: missing '{key}'")
        return default
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UsageError(f"{where}: '{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _column(raw: dict, where: str) -> Column:
    column = Column(
        key=_get(raw, "key", str, where),
        label=_get(raw, "label", str, where),
        kind=_get(raw, "kind", str, where),
        stage=_get(raw, "stage", str, where, None),
        metric=_get(raw, "metric", str, where, None),
        higher_is_better=_get(raw, "higher_is_better", bool, where, True),
        note=_get(raw, "note", str, where, ""),
    )
    if column.kind not in COLUMN_KINDS:
        raise UsageError(f"{where}: column '{column.key}' has kind '{column.kind}': use one of {', '.join(COLUMN_KINDS)}")
    if column.kind in ("accuracy", "targeted_success", "lift", "clean_cost") and not column.stage:
        raise UsageError(f"{where}: column '{column.key}' ({column.kind}) needs a 'stage'")
    if column.kind == "stroop" and column.metric not in STROOP_METRICS:
        raise UsageError(f"{where}: column '{column.key}' needs 'metric' = one of {', '.join(STROOP_METRICS)}")
    unknown = set(raw) - {"key", "label", "kind", "stage", "metric", "higher_is_better", "note"}
    if unknown:
        raise UsageError(f"{where}: column '{column.key}' has unknown field(s) {', '.join(sorted(unknown))}")
    return column


def _board(raw: dict, index: int) -> Board:
    where = f"{BOARDS_FILE} board[{index}]"
    board_id = _get(raw, "id", str, where)
    if not is_safe_id(board_id):
        raise UsageError(f"{where}: id '{board_id}' is not a safe name (letters, digits, '.', '_', '-')")
    where = f"{BOARDS_FILE} board '{board_id}'"
    data = _get(raw, "dataset", dict, where)
    dataset = DatasetProtocol(
        name=_get(data, "name", str, where), split=_get(data, "split", str, where), n=_get(data, "n", int, where),
        num_classes=_get(data, "num_classes", int, where), seed=_get(data, "seed", int, where, 0),
        sample_hash=_get(data, "sample_hash", str, where), label_hash=_get(data, "label_hash", str, where),
    )
    kind = _get(raw, "kind", str, where, "suite")
    if kind not in ("suite", "stroop"):
        raise UsageError(f"{where}: kind '{kind}' must be 'suite' or 'stroop'")
    columns = tuple(_column(c, where) for c in _get(raw, "column", list, where))
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise UsageError(f"{where}: column keys repeat: {', '.join(keys)}")
    board = Board(
        id=board_id, title=_get(raw, "title", str, where), kind=kind, suite=_get(raw, "suite", str, where),
        head=_get(raw, "head", str, where), dataset=dataset, columns=columns, sort=_get(raw, "sort", str, where),
        reproduce=_get(raw, "reproduce", str, where, ""), prompt=_get(raw, "prompt", str, where, None),
        description=_get(raw, "description", str, where, ""), suite_file=_get(raw, "suite_file", str, where, None),
    )
    if board.suite_file is not None and (kind != "suite" or not is_safe_id(board.suite_file)):
        raise UsageError(f"{where}: suite_file '{board.suite_file}' must be the name of a file in attacks/ "
                         "(without .toml), on a suite board")
    if board.sort not in keys:
        raise UsageError(f"{where}: sort '{board.sort}' is not one of its columns ({', '.join(keys)})")
    if kind == "stroop" and not board.prompt:
        raise UsageError(f"{where}: a stroop board needs 'prompt'")
    unknown = set(raw) - {"id", "title", "kind", "suite", "head", "dataset", "column", "sort", "reproduce", "prompt",
                          "description", "suite_file"}
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return board


def load_boards(root: str | Path | None = None) -> Boards:
    """Parse ``<root>/boards.toml`` (root: :func:`leaderboards_dir`); every problem is a one-line UsageError."""
    root = Path(root) if root is not None else leaderboards_dir()
    path = root / BOARDS_FILE
    if not path.is_file():
        raise UsageError(f"board protocols '{path}' not found: pass --root (or set ${LEADERBOARDS_ENV}) to a folder "
                         f"with {BOARDS_FILE}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    where = BOARDS_FILE
    boards = [_board(b, i) for i, b in enumerate(_get(raw, "board", list, where))]
    by_id: dict[str, Board] = {}
    for board in boards:
        if board.id in by_id:
            raise UsageError(f"{where}: board id '{board.id}' is given twice")
        key = (board.dataset.name, board.published_name, board.head)
        if any((b.dataset.name, b.published_name, b.head) == key for b in by_id.values()):
            raise UsageError(f"{where}: two boards for ({board.dataset.name}, {board.published_name}, {board.head}): "
                             "give a kept version of a suite its own suite_file")
        by_id[board.id] = board
    headline = []
    for i, entry in enumerate(_get(raw, "headline", list, where, [])):
        w = f"{where} headline[{i}]"
        column = HeadlineColumn(key=_get(entry, "key", str, w), label=_get(entry, "label", str, w),
                                board=_get(entry, "board", str, w), column=_get(entry, "column", str, w))
        if column.board not in by_id:
            raise UsageError(f"{w}: board '{column.board}' is not defined")
        try:
            by_id[column.board].column(column.column)
        except KeyError:
            raise UsageError(f"{w}: board '{column.board}' has no column '{column.column}'") from None
        headline.append(column)
    headline_sort = _get(raw, "headline_sort", str, where, headline[0].key if headline else "")
    if headline and headline_sort not in [h.key for h in headline]:
        raise UsageError(f"{where}: headline_sort '{headline_sort}' is not a headline column")
    return Boards(protocol_version=_get(raw, "protocol_version", int, where), boards=by_id, headline=tuple(headline),
                  headline_sort=headline_sort, path=path, root=root)


# -- published protocols ----------------------------------------------------------------------------


def published_suite_sha256(board: Board) -> str:
    """The sha256 of the board's published suite (:func:`published_suite_file`), or of the Stroop design."""
    if board.kind == "stroop":
        return stroop_protocol_sha256(stroop_design().to_dict(), board.prompt or "")
    return hashlib.sha256(published_suite_file(board).read_bytes()).hexdigest()


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
