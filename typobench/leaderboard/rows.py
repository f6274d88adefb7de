"""Board rows: entries ranked by a board's (or the headline's) sort column, and their cells as text.

Shared by every output format (:mod:`.render_text`, :mod:`.render_html`). A cell is a headline value
of an entry: ``{"value": fraction or None, "ci95": [low, high], "n": ..., "stages": ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from typobench.leaderboard.attack_record import attack_note
from typobench.leaderboard.provenance import provenance_note
from typobench.leaderboard.boards import Board, Boards, Column, column_label
from typobench.leaderboard.validate import ValidEntry

DASH = "–"


@dataclass
class Row:
    """One ranked line of a board."""

    rank: int | None
    entry: ValidEntry
    values: dict[str, dict[str, Any]]


@dataclass
class HeadlineRow:
    rank: int | None
    label: str
    weights_sha256: str
    random_init: bool
    values: dict[str, dict[str, Any] | None]


def _sort_key(value: float | None, higher_is_better: bool, label: str) -> tuple:
    if value is None:
        return (1, 0.0, label)
    return (0, -value if higher_is_better else value, label)


def _ranks(values: Sequence[float | None]) -> list[int | None]:
    """Competition ranking (1, 2, 2, 4) over values already in rank order; no value, no rank."""
    ranks: list[int | None] = []
    for i, value in enumerate(values):
        if value is None:
            ranks.append(None)
        elif i and values[i - 1] == value:
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks


def board_rows(board: Board, entries: Sequence[ValidEntry]) -> list[Row]:
    """The board's entries sorted by its declared column (missing values last, ties by model label)."""
    column = board.sort_column
    mine = [e for e in entries if e.board.id == board.id]
    mine.sort(key=lambda e: _sort_key(e.headline[column.key]["value"], column.higher_is_better, e.model["label"]))
    ranks = _ranks([e.headline[column.key]["value"] for e in mine])
    return [Row(rank, e, e.headline) for rank, e in zip(ranks, mine)]


def headline_rows(boards: Boards, entries: Sequence[ValidEntry]) -> list[HeadlineRow]:
    """One row per model (label, weights and defenses): each headline column from that model's entry on its board."""
    rows: dict[tuple[str, str, str | None], HeadlineRow] = {}
    for entry in entries:
        key = (entry.model["label"], entry.model["weights_sha256"], entry.model.get("defense_sha256"))
        row = rows.setdefault(key, HeadlineRow(None, key[0], key[1], entry.model["random_init"],
                                               {h.key: None for h in boards.headline}))
        for h in boards.headline:
            if h.board == entry.board.id:
                row.values[h.key] = entry.headline[h.column]
    if not boards.headline:
        return []
    sort = boards.headline_column(boards.headline_sort)
    better = boards.board(sort.board).column(sort.column).higher_is_better

    def value(row: HeadlineRow) -> float | None:
        cell = row.values[sort.key]
        return None if cell is None else cell.get("value")

    ordered = sorted(rows.values(), key=lambda r: _sort_key(value(r), better, r.label))
    for rank, row in zip(_ranks([value(r) for r in ordered]), ordered):
        row.rank = rank
    return ordered


# -- formatting ----------------------------------------------------------------------------------


def unit(column: Column) -> str:
    return "pp" if column.points else "%"


def format_value(column: Column, cell: dict[str, Any] | None, *, with_ci: bool = True) -> str:
    if not cell or cell.get("value") is None:
        return DASH
    value = 100 * cell["value"]
    text = f"{value:+.1f}" if column.points else f"{value:.1f}"
    ci = cell.get("ci95")
    if with_ci and ci:
        text += f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return text


def cell_title(column: Column, cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("value") is None:
        return "no value"
    parts = [f"{format_value(column, cell, with_ci=False)} {unit(column)}"]
    if cell.get("ci95"):
        method = f"paired-bootstrap 95% CI against {cell['reference']}" if cell.get("reference") else "95% Wilson CI"
        parts.append(f"{method} {100 * cell['ci95'][0]:.1f}-{100 * cell['ci95'][1]:.1f}")
    if cell.get("n") is not None:
        parts.append(f"n = {cell['n']}")
    if cell.get("stages") is not None:
        parts.append(f"mean over {cell['stages']} targeted stages")
    return ", ".join(parts)


def model_text(model: dict[str, Any], entry: dict[str, Any] | None = None) -> str:
    """The model cell: its label, random weights, what a defended model's defenses were chosen on, and how the
    entry's attacks went (approximated backward passes, attack-failure flags)."""
    notes = [note for note in ("random weights" if model["random_init"] else "", provenance_note(model),
                               attack_note(entry or {})) if note]
    return model["label"] + "".join(f" ({note})" for note in notes)


def submitted_date(entry: ValidEntry) -> str:
    """The entry's submission date as YYYY-MM-DD."""
    return str(entry.entry["submitted"]["date"])[:10]


def headline_source_column(boards: Boards, key: str) -> Column:
    """The board column that headline column ``key`` is taken from."""
    h = boards.headline_column(key)
    return boards.board(h.board).column(h.column)


def headline_labels(boards: Boards) -> dict[str, str]:
    """Headline labels, with ``{eps}`` filled from the published suite like board column labels."""
    out = {}
    for h in boards.headline:
        board = boards.board(h.board)
        out[h.key] = column_label(board, board.column(h.column), h.label)
    return out
