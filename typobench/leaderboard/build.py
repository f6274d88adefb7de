"""``typobench leaderboard build``: validate every entry, then regenerate the tables from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from typobench.core.atomic import write_text_atomic
from typobench.core.options import option
from typobench.leaderboard.boards import ENTRIES_DIR, TABLES_DIR, Boards, BoardsRoot, load_boards, writable_folder
from typobench.leaderboard.clean_cost import fill_clean_costs
from typobench.leaderboard.render import render_all
from typobench.leaderboard.validate import ValidEntry, Validator, entry_files, validate_paths


@dataclass
class BuildOptions(BoardsRoot):
    """``typobench leaderboard build``'s flags besides --out, declared once: :func:`build`'s keyword arguments."""

    entries_dir: str | None = option(None, f"entries folder (default: <root>/{ENTRIES_DIR}/)", flag="--entries",
                                     metavar="ENTRIES")
    check: bool = option(False, "write nothing; exit 1 if the tables on disk differ from a fresh build")


@dataclass
class BuildOutcome:
    entries: list[ValidEntry]
    invalid: list[tuple[Path, str]]
    files: dict[Path, str] = field(default_factory=dict)  # path -> content
    stale: list[Path] = field(default_factory=list)  # with check=True: files that differ from a fresh build


def published_hashes(boards: Boards) -> dict[str, str]:
    validator = Validator(boards)
    return {board_id: validator.published_sha256(board) for board_id, board in boards.boards.items()}


def build(root: str | Path | None = None, *, entries_dir: str | Path | None = None, out_dir: str | Path | None = None,
          check: bool = False) -> BuildOutcome:
    """Validate all entries under ``entries_dir`` and write (or, with ``check``, compare) the tables.

    Nothing is written when an entry is invalid: a board never shows a number that failed re-scoring.
    """
    boards = load_boards(root)
    base = boards.root or Path(".")
    entries_dir = Path(entries_dir) if entries_dir else base / ENTRIES_DIR
    # check only compares, so it may read the installed package's tables; writing them is refused.
    out_dir = Path(out_dir or base / TABLES_DIR) if check else writable_folder(boards, TABLES_DIR, out_dir, "--out")
    entries, invalid = validate_paths(entry_files(entries_dir), boards)
    outcome = BuildOutcome(entries, invalid)
    if invalid:
        return outcome
    fill_clean_costs(entries)  # the one column that compares two entries (a defense and its bare model)
    for name, content in render_all(boards, entries, published_hashes(boards)).items():
        path = out_dir / name
        outcome.files[path] = content
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                outcome.stale.append(path)
        else:
            write_text_atomic(path, content)
    return outcome
