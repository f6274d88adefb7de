"""``typobench leaderboard compare``: a board's entries side by side, each column's difference from one reference
entry paired by image.

Every entry of a board scored the same images, so two entries can be compared image by image: for each column
that is a mean over samples (accuracy, targeted success, lift; its kind's ``per_sample``) the difference
model - reference is taken over the samples both count, with a paired-bootstrap 95% interval
(:func:`typobench.core.metrics.paired_difference_interval`). Pairing removes the shared per-image difficulty, so
the interval is the one to read when asking whether a model differs from the reference. The values come from
validated (re-scored) entries only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from typobench.core.atomic import write_text_atomic
from typobench.core.errors import UsageError, close_matches
from typobench.core.metrics import paired_difference_by_id
from typobench.core.options import option
from typobench.leaderboard.column_kinds import Column
from typobench.leaderboard.boards import ENTRIES_DIR, BoardsRoot, load_boards
from typobench.leaderboard.protocol import Board, Boards, column_label
from typobench.leaderboard.validate import ValidEntry, validate_paths

FRAME_COLUMNS = ("model", "column", "label", "points", "value", "ci95_lo", "ci95_hi", "n", "minus_reference", "minus_lo",
                 "minus_hi", "paired_n")


def pick_entries(entries: Sequence[ValidEntry], board: Board, labels: Sequence[str] | None) -> list[ValidEntry]:
    """The entries of ``board`` named by ``labels`` in that order (all of the board's, by label, when None)."""
    mine = {e.model["label"]: e for e in entries if e.board.id == board.id}
    if not labels:
        return [mine[label] for label in sorted(mine)]
    for label in labels:
        if label not in mine:
            hint = close_matches(label, mine)
            raise UsageError(f"--models {label}: board {board.id} has no entry of that model"
                             f"{' (did you mean ' + ', '.join(hint) + '?)' if hint else ''}; its entries: "
                             f"{', '.join(sorted(mine)) or 'none'}")
    return [mine[label] for label in labels]


def board_named(boards: Boards, board_id: str) -> Board:
    """The board ``board_id`` of ``boards`` (an unknown id is one line with the close matches)."""
    if board_id not in boards.boards:
        hint = close_matches(board_id, boards.boards)
        raise UsageError(f"unknown board '{board_id}'{': did you mean ' + ', '.join(hint) + '?' if hint else ''} "
                         "(`typobench leaderboard build` lists them in leaderboards.md)")
    return boards.board(board_id)


@dataclass
class CompareOptions(BoardsRoot):
    """``typobench leaderboard compare``'s flags besides BOARD and --out, declared once: :func:`run_comparison`'s
    keyword arguments."""

    labels: list[str] | None = option(None, "entries to compare, by model label, in this order (default: every entry "
                                            "of the board)", flag="--models", metavar="LABEL", spaced=True)
    against: str | None = option(None, "the reference entry (default: the first of --models, or of the board's "
                                       "entries by label)", metavar="LABEL")


def run_comparison(board_id: str, labels: Sequence[str] | None = None, against: str | None = None, *,
                   root: str | Path | None = None, out: str | Path | None = None) -> tuple[pd.DataFrame, str, list[Path]]:
    """Validate the entries of ``board_id`` (all must re-score), pick ``labels`` (default: all), compare each with
    ``against`` (default: the first picked). Returns the frame, its Markdown and, with ``out``, the files written
    there (compare.md, compare.csv, compare.png)."""
    boards = load_boards(root)
    board = board_named(boards, board_id)
    folder = (boards.root or Path(".")) / ENTRIES_DIR / board.id
    valid, invalid = validate_paths(sorted(folder.glob("*.json")), boards)
    if invalid:
        path, message = invalid[0]
        raise UsageError(f"{path}: {message} (only validated entries are compared)")
    entries = pick_entries(valid, board, labels)
    if len(entries) < 2 and not against:
        raise UsageError(f"board {board.id} has {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} to compare: "
                         "name at least two with --models")
    reference = pick_entries(valid, board, [against])[0] if against else entries[0]
    if reference not in entries:
        entries = [reference, *entries]
    frame = compare(board, entries, reference)
    text = markdown(frame, board, reference.model["label"])
    files: list[Path] = []
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "compare.md", out / "compare.csv", out / "compare.png"]
        write_text_atomic(files[0], text)
        write_text_atomic(files[1], frame.to_csv(index=False))
        save_picture(files[2], frame, board)
    return frame, text, files


def paired_difference(column: Column, entry: ValidEntry, reference: ValidEntry) -> dict[str, Any]:
    """``{value, ci95, n}`` of ``entry`` minus ``reference`` on ``column`` over the samples both count (value None
    when the column is not a mean over samples or no sample counts for both)."""
    mine = column.measure.per_sample(column, entry.entry["predictions"])
    theirs = column.measure.per_sample(column, reference.entry["predictions"])
    if mine is None or theirs is None:
        return {"value": None}
    ids = sorted(set(mine) & set(theirs))
    return paired_difference_by_id(mine, theirs, ids) if ids else {"value": None}


def compare(board: Board, entries: Sequence[ValidEntry], reference: ValidEntry) -> pd.DataFrame:
    """One row per entry and column of ``board``: the entry's (re-scored) value with its interval, and its
    paired difference from ``reference`` (empty for the reference itself)."""
    rows = []
    columns = [c for c in board.columns if not c.measure.compares_entries]  # clean cost is itself a comparison
    for entry in entries:
        for column in columns:
            cell = entry.headline.get(column.key, {"value": None})
            ci = cell.get("ci95") or [None, None]
            diff = {"value": None} if entry is reference else paired_difference(column, entry, reference)
            diff_ci = diff.get("ci95") or [None, None]
            rows.append((entry.model["label"], column.key, column_label(board, column), column.points, cell.get("value"),
                         ci[0], ci[1], cell.get("n"),
                         diff["value"], diff_ci[0], diff_ci[1], diff.get("n")))
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def _pct(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * value:.1f}"


def _points(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * value:+.1f}"


def markdown(frame: pd.DataFrame, board: Board, reference: str) -> str:
    """One line per column and model: value [95% interval] and the paired difference from ``reference``."""
    lines = [f"{board.title}: each model minus {reference}, paired by image (bootstrap 95% interval)", "",
             "| column | model | value | 95% interval | n | minus " + reference + " (points) | paired 95% interval | paired n |",
             "|---|---|---|---|---|---|---|---|"]
    for row in frame.itertuples(index=False):
        interval = f"[{_pct(row.ci95_lo)}, {_pct(row.ci95_hi)}]" if row.ci95_lo is not None and not pd.isna(row.ci95_lo) else ""
        paired = f"[{_points(row.minus_lo)}, {_points(row.minus_hi)}]" if row.minus_lo is not None and not pd.isna(row.minus_lo) else ""
        n = "" if row.n is None or pd.isna(row.n) else int(row.n)
        paired_n = "" if row.paired_n is None or pd.isna(row.paired_n) else int(row.paired_n)
        value = f"{_points(row.value)} pts" if row.points else f"{_pct(row.value)}%"
        lines.append(f"| {row.label} | {row.model} | {value} | {interval} | {n} | {_points(row.minus_reference)} "
                     f"| {paired} | {paired_n} |")
    return "\n".join(lines) + "\n"


def save_picture(path: str | Path, frame: pd.DataFrame, board: Board) -> None:
    """Grouped bars: one group per column, one bar per model, with each value's 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(frame["model"]))
    columns = list(dict.fromkeys(frame["label"]))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(columns) + 2), 4.2))
    for i, model in enumerate(models):
        rows = frame[frame["model"] == model].set_index("label").reindex(columns)
        values = 100 * rows["value"].astype(float)
        lo = (values - 100 * rows["ci95_lo"].astype(float)).clip(lower=0).fillna(0)
        hi = (100 * rows["ci95_hi"].astype(float) - values).clip(lower=0).fillna(0)
        ax.bar(np.arange(len(columns)) + (i - (len(models) - 1) / 2) * width, values, width, yerr=[lo, hi],
               capsize=2, label=model)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(columns)), [c.replace(" (", "\n(") for c in columns], fontsize=7)
    ax.set_ylabel("% (lift: points)")
    ax.set_title(board.title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


__all__ = ["CompareOptions", "board_named", "compare", "markdown", "paired_difference", "pick_entries", "run_comparison",
           "save_picture"]
