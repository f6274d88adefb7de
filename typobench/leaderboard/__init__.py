"""Leaderboards: entries built from finished runs, validated by re-scoring, rendered as boards.

* ``leaderboards/boards.toml`` -- the board protocols (:mod:`.boards` reads them into :mod:`.protocol`'s
  boards); what each kind of board and of column does its own way: :mod:`.board_kinds`, :mod:`.column_kinds`.
* ``typobench submit RUN_DIR`` -- a run folder -> one entry JSON (:func:`entry_from_run`), validated.
* ``typobench leaderboard validate`` -- schema, protocol, published suite hash, and every stated number
  re-derived from the entry's own per-sample predictions (:class:`Validator`).
* ``typobench leaderboard build`` -- Markdown, CSV and a static HTML page (:func:`build`).
"""

from typobench.leaderboard.boards import Board, Boards, Column, leaderboards_dir, load_boards, published_suite_sha256, stroop_protocol_sha256
from typobench.leaderboard.build import BuildOutcome, build
from typobench.leaderboard.entry import ENTRY_SCHEMA, dumps_entry, entry_from_run, entry_path, model_slug, write_entry
from typobench.leaderboard.scoring import headline_values, predictions_frame, rescore_stroop, rescore_suite
from typobench.leaderboard.entry_fields import EntryError
from typobench.leaderboard.entry_reading import parse_entry_text, read_entry
from typobench.leaderboard.validate import ValidEntry, Validator, entry_files, validate_paths

__all__ = [
    "ENTRY_SCHEMA",
    "Board",
    "Boards",
    "BuildOutcome",
    "Column",
    "EntryError",
    "ValidEntry",
    "Validator",
    "build",
    "dumps_entry",
    "entry_files",
    "entry_from_run",
    "entry_path",
    "headline_values",
    "leaderboards_dir",
    "load_boards",
    "model_slug",
    "parse_entry_text",
    "predictions_frame",
    "published_suite_sha256",
    "read_entry",
    "rescore_stroop",
    "rescore_suite",
    "stroop_protocol_sha256",
    "validate_paths",
    "write_entry",
]
