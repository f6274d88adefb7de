"""``typobench submit``'s options, declared once: where the boards are, who submits, the model's name on the board."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typobench.core.options import option
from typobench.leaderboard.boards import BoardsRoot
from typobench.leaderboard.entry import default_submitter


@dataclass
class SubmitOptions(BoardsRoot):
    """``typobench submit``'s flags besides RESULTS_DIR and --out/--overwrite; ``submitter`` and ``model_name`` are
    :func:`~typobench.leaderboard.entry.entry_from_run`'s keyword arguments (:meth:`entry_options`)."""

    submitter: str | None = option(None, "who submits the entry (default: git config user.name)")
    model_name: str | None = option(None, "model name on the board (default: NAME:TAG of the run; needed for local "
                                          "checkpoints whose file name is not a good name)")

    def entry_options(self) -> dict[str, Any]:
        """:func:`entry_from_run`'s keyword arguments (the submitter, when none is given, from git config)."""
        return {"submitter": self.submitter if self.submitter is not None else default_submitter(),
                "model_name": self.model_name}


__all__ = ["SubmitOptions"]
