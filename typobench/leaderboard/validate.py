"""Validation of entries: schema, protocol, published suite, and re-scoring from the per-sample table.

Nothing from a submission is executed or unpickled: an entry is read as UTF-8 JSON (no NaN or
Infinity, no duplicate keys, bounded size; :mod:`.entry_reading`), checked field by field
(:mod:`.entry_fields`), and its numbers are recomputed from its own predictions
(:mod:`.rescore_checks`). Every failure is one line that names the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.leaderboard.attack_record import FIELD as ATTACK_FIELD
from typobench.leaderboard.attack_record_checks import check_attack_record
from typobench.leaderboard.protocol import Board, Boards, published_suite_sha256
from typobench.leaderboard.entry import ENTRY_SCHEMA, is_safe_label, model_slug
from typobench.leaderboard.provenance_checks import check_entry_provenance
from typobench.leaderboard.entry_fields import (
    EntryError,
    check_equal,
    check_hex64,
    check_int,
    check_object,
    check_str,
    describe_type,
    show_value,
)
from typobench.leaderboard.entry_reading import read_entry
from typobench.leaderboard.rescore_checks import check_predictions, check_stated_metrics, compare_rescored
from typobench.leaderboard.scoring import headline_values

TOP_FIELDS = ("entry_schema", "board", "protocol_version", "model", "dataset", "suite", "head", "metrics",
              "versions", "run", "submitted", "predictions")


@dataclass
class ValidEntry:
    """A validated entry and its numbers as re-scored from its predictions."""

    path: Path | None
    board: Board
    entry: dict[str, Any]
    stages: list[dict[str, Any]]
    headline: dict[str, dict[str, Any]]

    @property
    def model(self) -> dict[str, Any]:
        return self.entry["model"]


class Validator:
    """Validates entries against one set of board protocols (published hashes are computed once)."""

    def __init__(self, boards: Boards):
        self.boards = boards
        self._published: dict[str, str] = {}
        self._stages: dict[str, list[str]] = {}

    def published_sha256(self, board: Board) -> str:
        if board.id not in self._published:
            self._published[board.id] = published_suite_sha256(board)
        return self._published[board.id]

    def stage_names(self, board: Board) -> list[str]:
        if board.id not in self._stages:
            self._stages[board.id] = board.kind.stage_names(board)
        return self._stages[board.id]

    def validate_file(self, path: str | Path) -> ValidEntry:
        path = Path(path)
        entry = read_entry(path)
        return self.validate(entry, path=path)

    def validate(self, entry: dict[str, Any], *, path: Path | None = None) -> ValidEntry:
        check_object(entry, "", TOP_FIELDS, (ATTACK_FIELD,))
        check_equal(check_int(entry["entry_schema"], "entry_schema"), ENTRY_SCHEMA, "entry_schema",
                    "the schema this typobench reads")
        board_id = check_str(entry["board"], "board")
        if board_id not in self.boards.boards:
            raise EntryError("board", f"unknown board {show_value(board_id)}: boards are {', '.join(self.boards.boards)}")
        board = self.boards.board(board_id)
        check_equal(check_int(entry["protocol_version"], "protocol_version"), self.boards.protocol_version,
                    "protocol_version", "the protocol version of boards.toml")
        self._model(entry["model"])
        if path is not None:
            self._location(entry, board, path)
        self._dataset(entry["dataset"], board)
        check_entry_provenance(entry["model"], entry["dataset"])  # after the data: its split is the board's
        self._suite(entry["suite"], board)
        self._head(entry["head"], board)
        self._versions(entry["versions"])
        self._run(entry["run"], board)
        self._submitted(entry["submitted"])
        if ATTACK_FIELD in entry:
            check_attack_record(entry[ATTACK_FIELD])
        names = self.stage_names(board)
        table = check_predictions(entry["predictions"], entry["dataset"], board, names)
        stated = check_stated_metrics(entry["metrics"], board, names)
        rescored = board.kind.rescore(board, table)
        for mine, theirs in zip(stated, rescored):
            compare_rescored(mine, theirs, f"metrics.stages[{theirs['name']}]")
        headline = headline_values(board, rescored)
        for key, value in headline.items():
            compare_rescored(entry["metrics"]["headline"][key], value, f"metrics.headline.{key}")
        return ValidEntry(path, board, entry, rescored, headline)

    # -- parts --

    def _model(self, model: Any) -> None:
        check_object(model, "model", ("name", "tag", "label", "checkpoint_sha256", "weights_sha256", "random_init"),
                     ("defenses", "defense_sha256", "provenance"))
        if "defenses" in model or "defense_sha256" in model:  # a defended model: both, or neither
            check_hex64(model.get("defense_sha256"), "model.defense_sha256")
            if not isinstance(model.get("defenses"), list) or not all(isinstance(d, str) for d in model["defenses"]):
                raise EntryError("model.defenses", "must be a list of defense specs (strings)")
        for key in ("name", "label"):
            value = check_str(model[key], f"model.{key}", max_len=200)
            if not is_safe_label(value):
                raise EntryError(f"model.{key}", f"{show_value(value)} is not allowed: use letters, digits and "
                                 ". _ - : @ + / = (no '..', no leading '/', no '//')")
        check_str(model["tag"], "model.tag", null=True, max_len=200)
        check_hex64(model["checkpoint_sha256"], "model.checkpoint_sha256", null=True)
        check_hex64(model["weights_sha256"], "model.weights_sha256")
        if not isinstance(model["random_init"], bool):
            raise EntryError("model.random_init", f"must be true or false, got {describe_type(model['random_init'])}")

    def _location(self, entry: dict[str, Any], board: Board, path: Path) -> None:
        expected = f"{board.id}/{model_slug(entry['model']['label'])}.json"
        actual = f"{path.parent.name}/{path.name}"
        if actual != expected:
            raise EntryError("model.label", f"the entry of {show_value(entry['model']['label'])} on board {board.id} "
                             f"belongs in entries/{expected}, not {actual}")

    def _dataset(self, dataset: Any, board: Board) -> None:
        check_object(dataset, "dataset", ("name", "split", "n", "num_classes", "sample_hash"))
        protocol = board.dataset
        why = f"board {board.id}'s protocol"
        check_equal(check_str(dataset["name"], "dataset.name"), protocol.name, "dataset.name", why)
        check_equal(check_str(dataset["split"], "dataset.split"), protocol.split, "dataset.split", why)
        check_equal(check_int(dataset["n"], "dataset.n"), protocol.n, "dataset.n", why)
        check_equal(check_int(dataset["num_classes"], "dataset.num_classes"), protocol.num_classes, "dataset.num_classes", why)
        stated = check_hex64(dataset["sample_hash"], "dataset.sample_hash")
        if stated != protocol.sample_hash:
            raise EntryError("dataset.sample_hash", f"{stated[:12]}... is not the sample of {why} "
                             f"({protocol.sample_hash[:12]}...): evaluate exactly the protocol's images "
                             f"({board.reproduce or 'see leaderboards/README.md'})")

    def _suite(self, suite: Any, board: Board) -> None:
        check_object(suite, "suite", ("name", "sha256", "protocol_version"))
        check_equal(check_str(suite["name"], "suite.name"), board.suite, "suite.name", f"board {board.id}'s suite")
        check_int(suite["protocol_version"], "suite.protocol_version", minimum=1)
        stated = check_hex64(suite["sha256"], "suite.sha256")
        published = self.published_sha256(board)
        if stated != published:
            where = board.kind.published_what(board)
            raise EntryError("suite.sha256", f"{stated[:12]}... is not the sha256 of {where} ({published[:12]}...): "
                             f"{self._fix_for_suite(board, stated)}")

    def _fix_for_suite(self, board: Board, stated: str) -> str:
        """Re-run with the published suite, or, when ``stated`` is a kept version's file, move to its board."""
        for other in self.boards.boards.values():
            if other.id != board.id and (other.kind, other.suite, other.dataset.name, other.head) == \
                    (board.kind, board.suite, board.dataset.name, board.head) and self.published_sha256(other) == stated:
                return (f"that is attacks/{other.published_name}.toml, the suite of board {other.id}: submit it there, "
                        "or re-run with the published suite")
        return "re-run with the published suite"

    def _head(self, stated: Any, board: Board) -> None:
        check_object(stated, "head", ("kind",), ("prompt",))
        check_equal(check_str(stated["kind"], "head.kind"), board.head, "head.kind", f"board {board.id}'s head")
        board.kind.check_head(stated, board)

    def _run(self, run: Any, board: Board) -> None:
        check_object(run, "run", ("created", "config_hash", "seed", "precision", "limit"))
        check_str(run["created"], "run.created", null=True, max_len=40)
        check_hex64(run["config_hash"], "run.config_hash", null=True)
        seed = check_int(run["seed"], "run.seed", null=True)
        if board.kind.pins_seed:
            check_equal(seed, board.dataset.seed, "run.seed", f"board {board.id}'s protocol")
        check_str(run["precision"], "run.precision", null=True, max_len=20)
        check_int(run["limit"], "run.limit", null=True, minimum=1)

    def _versions(self, versions: Any) -> None:
        versions = check_object(versions, "versions", ("typobench",), ("open_clip", "torch", "python", "git_commit"))
        for key, value in versions.items():
            check_str(value, f"versions.{key}", null=key != "typobench", max_len=100)

    def _submitted(self, submitted: Any) -> None:
        submitted = check_object(submitted, "submitted", ("by", "date"))
        by = check_str(submitted["by"], "submitted.by", max_len=100)
        if not by or not by.strip():
            raise EntryError("submitted.by", "is empty: say who submitted the entry (--submitter NAME)")
        try:
            datetime.fromisoformat(check_str(submitted["date"], "submitted.date", max_len=40) or "")
        except ValueError:
            raise EntryError("submitted.date", f"must be an ISO 8601 date, got {show_value(submitted['date'])}") from None


def validate_paths(paths: Sequence[str | Path], boards: Boards) -> tuple[list[ValidEntry], list[tuple[Path, str]]]:
    """Validate every file; returns the valid entries and (path, one-line message) per invalid one."""
    validator = Validator(boards)
    valid, invalid = [], []
    for path in paths:
        path = Path(path)
        try:
            valid.append(validator.validate_file(path))
        except UsageError as exc:
            invalid.append((path, str(exc)))
    return valid, invalid


def entry_files(entries_dir: str | Path) -> list[Path]:
    """Every ``<board>/<model>.json`` under the entries folder, sorted."""
    return sorted(Path(entries_dir).glob("*/*.json"))


# read_entry and EntryError are imported from here by callers that validate entries.
__all__ = ["EntryError", "ValidEntry", "Validator", "entry_files", "read_entry", "validate_paths"]
