"""Board tables: Markdown, CSV and one static HTML page (sortable columns, no network access).

Everything here is a pure function of validated entries (their re-scored numbers) and the board
protocols: building twice from the same entries gives byte-identical files. Ranking and cell text
are in :mod:`.rows`, Markdown and CSV in :mod:`.render_text`, the page in :mod:`.render_html`.
"""

from __future__ import annotations

from collections.abc import Sequence

from typobench.leaderboard.boards import Boards
from typobench.leaderboard.render_html import page
from typobench.leaderboard.render_text import entries_csv, headline_csv, markdown
# format_value and unit are imported from here by `typobench submit` (commands/submit_cmd.py).
from typobench.leaderboard.rows import format_value, unit
from typobench.leaderboard.validate import ValidEntry

__all__ = ["format_value", "render_all", "unit"]


def render_all(boards: Boards, entries: Sequence[ValidEntry], published: dict[str, str]) -> dict[str, str]:
    """File name -> content of every generated table."""
    return {
        "leaderboards.md": markdown(boards, entries, published),
        "leaderboards.csv": entries_csv(boards, entries),
        "headline.csv": headline_csv(boards, entries),
        "index.html": page(boards, entries, published),
    }
