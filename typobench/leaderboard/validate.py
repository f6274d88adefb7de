"""Validation of entries: schema, protocol, published suite, and re-scoring from the per-sample table.

Nothing from a submission is executed or unpickled: an entry is read as UTF-8 JSON (no NaN or
Infinity, no duplicate keys, bounded size), checked field by field, and its numbers are recomputed
from its own predictions. Every failure is one line that names the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..data import sample_hash
from ..errors import UsageError
from .boards import (
    STROOP_DATASET,
    STROOP_METRICS,
    STROOP_SUITE,
    Board,
    Boards,
    label_hash,
    published_suite,
    published_suite_sha256,
)
from .entry import ENTRY_SCHEMA, is_safe_label, model_slug
from .scoring import headline_values, rescore_stroop, rescore_suite

MAX_ENTRY_BYTES = 32 * 1024 * 1024
HEX64 = frozenset("0123456789abcdef")
TOP_FIELDS = ("entry_schema", "board", "protocol_version", "model", "dataset", "suite", "head", "metrics",
              "versions", "run", "submitted", "predictions")
REL_TOL = ABS_TOL = 1e-12


class EntryError(UsageError):
    """An invalid entry: ``field`` names what is wrong (dotted path), the message says why."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


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


# -- reading ---------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise EntryError("", f"not valid JSON: {name} is not a number (numbers must be finite)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise EntryError("", f"not valid JSON for an entry: key '{key}' appears twice in one object")
        out[key] = value
    return out


def parse_entry_text(data: bytes) -> dict[str, Any]:
    """An entry's bytes as a JSON object, or an EntryError saying what is malformed and where."""
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError("", f"file is {len(data)} bytes, more than the {MAX_ENTRY_BYTES} an entry may have")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntryError("", f"not UTF-8 text (byte {exc.start}): an entry is a JSON file") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise EntryError("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise EntryError("", "not valid JSON for an entry: nested too deeply") from None
    if not isinstance(obj, dict):
        raise EntryError("", f"an entry is a JSON object, got a {type(obj).__name__}")
    return obj


def read_entry(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_ENTRY_BYTES:
            raise EntryError("", f"file is {size} bytes, more than the {MAX_ENTRY_BYTES} an entry may have")
        data = path.read_bytes()
    except OSError as exc:
        raise EntryError("", f"cannot be read ({exc.strerror or exc})") from None
    return parse_entry_text(data)


# -- field checks ----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return "a list" if isinstance(value, list) else "an object"


def _object(value: Any, field: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EntryError(field, f"must be an object, got {_kind(value)}")
    for key in required:
        if key not in value:
            raise EntryError(f"{field}.{key}" if field else key, "is missing")
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        raise EntryError(f"{field}.{unknown[0]}" if field else unknown[0], "is not a field of an entry (schema "
                         f"{ENTRY_SCHEMA}); remove it")
    return value


def _str(value: Any, field: str, *, null: bool = False, max_len: int = 500) -> str | None:
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise EntryError(field, f"must be a string{' or null' if null else ''}, got {_kind(value)}")
    if len(value) > max_len:
        raise EntryError(field, f"is {len(value)} characters long, at most {max_len} allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise EntryError(field, "contains control characters")
    return value


def _int(value: Any, field: str, *, null: bool = False, minimum: int | None = None) -> int | None:
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntryError(field, f"must be an integer{' or null' if null else ''}, got {_kind(value)}")
    if minimum is not None and value < minimum:
        raise EntryError(field, f"must be >= {minimum}, got {value}")
    return value


def _number(value: Any, field: str, *, null: bool = False) -> float | None:
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EntryError(field, f"must be a number{' or null' if null else ''}, got {_kind(value)}")
    return value


def _hex64(value: Any, field: str, *, null: bool = False) -> str | None:
    text = _str(value, field, null=null)
    if text is not None and (len(text) != 64 or not set(text) <= HEX64):
        raise EntryError(field, f"must be a sha256 (64 lower-case hex digits), got {_show(text)}")
    return text


def _equal(value: Any, expected: Any, field: str, why: str) -> None:
    if value != expected:
        raise EntryError(field, f"is {_show(value)} but {why} is {_show(expected)}")


def _rate(value: Any, field: str) -> None:
    """``{value, ci95, n}`` with numbers as numbers."""
    _object(value, field, ("value", "ci95", "n"))
    _number(value["value"], f"{field}.value", null=True)
    _ci(value["ci95"], f"{field}.ci95")
    _int(value["n"], f"{field}.n", minimum=0)


def _ci(value: Any, field: str) -> None:
    if not isinstance(value, list) or len(value) != 2:
        raise EntryError(field, f"must be a list of two numbers, got {_kind(value)}")
    for i, bound in enumerate(value):
        _number(bound, f"{field}[{i}]")


def _int_list(value: Any, field: str, n: int, low: int, high: int) -> list[int]:
    if not isinstance(value, list):
        raise EntryError(field, f"must be a list of integers, got {_kind(value)}")
    if len(value) != n:
        raise EntryError(field, f"has {len(value)} values, the data set has n = {n}")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item < high:
            raise EntryError(f"{field}[{i}]", f"must be an integer in [{low}, {high - 1}], got {_kind(item)}")
    return value


# -- the whole entry -------------------------------------------------------------------------------


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
            self._stages[board.id] = (["stroop"] if board.kind == "stroop"
                                      else [s.describe()["name"] for s in published_suite(board).stages])
        return self._stages[board.id]

    def validate_file(self, path: str | Path) -> ValidEntry:
        path = Path(path)
        entry = read_entry(path)
        return self.validate(entry, path=path)

    def validate(self, entry: dict[str, Any], *, path: Path | None = None) -> ValidEntry:
        _object(entry, "", TOP_FIELDS)
        _equal(_int(entry["entry_schema"], "entry_schema"), ENTRY_SCHEMA, "entry_schema",
               "the schema this typobench reads")
        board_id = _str(entry["board"], "board")
        if board_id not in self.boards.boards:
            raise EntryError("board", f"unknown board {_show(board_id)}: boards are {', '.join(self.boards.boards)}")
        board = self.boards.board(board_id)
        _equal(_int(entry["protocol_version"], "protocol_version"), self.boards.protocol_version, "protocol_version",
               "the protocol version of boards.toml")
        self._model(entry["model"])
        if path is not None:
            self._location(entry, board, path)
        self._dataset(entry["dataset"], board)
        self._suite(entry["suite"], board)
        self._head(entry["head"], board)
        versions = _object(entry["versions"], "versions", ("typobench",), ("open_clip", "torch", "python", "git_commit"))
        for key, value in versions.items():
            _str(value, f"versions.{key}", null=key != "typobench", max_len=100)
        self._run(entry["run"], board)
        submitted = _object(entry["submitted"], "submitted", ("by", "date"))
        by = _str(submitted["by"], "submitted.by", max_len=100)
        if not by or not by.strip():
            raise EntryError("submitted.by", "is empty: say who submitted the entry (--submitter NAME)")
        try:
            datetime.fromisoformat(_str(submitted["date"], "submitted.date", max_len=40) or "")
        except ValueError:
            raise EntryError("submitted.date", f"must be an ISO 8601 date, got {_show(submitted['date'])}") from None
        names = self.stage_names(board)
        table = self._predictions(entry["predictions"], entry["dataset"], board, names)
        stated = self._stated_metrics(entry["metrics"], board, names)
        rescored = rescore_stroop(table) if board.kind == "stroop" else rescore_suite(table, board.dataset.num_classes)
        for mine, theirs in zip(stated, rescored):
            _compare(mine, theirs, f"metrics.stages[{theirs['name']}]")
        headline = headline_values(board, rescored)
        for key, value in headline.items():
            _compare(entry["metrics"]["headline"][key], value, f"metrics.headline.{key}")
        return ValidEntry(path, board, entry, rescored, headline)

    # -- parts --

    def _model(self, model: Any) -> None:
        _object(model, "model", ("name", "tag", "label", "checkpoint_sha256", "weights_sha256", "random_init"))
        for key in ("name", "label"):
            value = _str(model[key], f"model.{key}", max_len=200)
            if not is_safe_label(value):
                raise EntryError(f"model.{key}", f"{_show(value)} is not allowed: use letters, digits and "
                                 ". _ - : @ + / = (no '..', no leading '/', no '//')")
        _str(model["tag"], "model.tag", null=True, max_len=200)
        _hex64(model["checkpoint_sha256"], "model.checkpoint_sha256", null=True)
        _hex64(model["weights_sha256"], "model.weights_sha256")
        if not isinstance(model["random_init"], bool):
            raise EntryError("model.random_init", f"must be true or false, got {_kind(model['random_init'])}")

    def _location(self, entry: dict[str, Any], board: Board, path: Path) -> None:
        expected = f"{board.id}/{model_slug(entry['model']['label'])}.json"
        actual = f"{path.parent.name}/{path.name}"
        if actual != expected:
            raise EntryError("model.label", f"the entry of {_show(entry['model']['label'])} on board {board.id} "
                             f"belongs in entries/{expected}, not {actual}")

    def _dataset(self, dataset: Any, board: Board) -> None:
        _object(dataset, "dataset", ("name", "split", "n", "num_classes", "sample_hash"))
        protocol = board.dataset
        why = f"board {board.id}'s protocol"
        _equal(_str(dataset["name"], "dataset.name"), protocol.name, "dataset.name", why)
        _equal(_str(dataset["split"], "dataset.split"), protocol.split, "dataset.split", why)
        _equal(_int(dataset["n"], "dataset.n"), protocol.n, "dataset.n", why)
        _equal(_int(dataset["num_classes"], "dataset.num_classes"), protocol.num_classes, "dataset.num_classes", why)
        stated = _hex64(dataset["sample_hash"], "dataset.sample_hash")
        if stated != protocol.sample_hash:
            raise EntryError("dataset.sample_hash", f"{stated[:12]}... is not the sample of {why} "
                             f"({protocol.sample_hash[:12]}...): evaluate exactly the protocol's images "
                             f"({board.reproduce or 'see leaderboards/README.md'})")

    def _suite(self, suite: Any, board: Board) -> None:
        _object(suite, "suite", ("name", "sha256", "protocol_version"))
        _equal(_str(suite["name"], "suite.name"), board.suite, "suite.name", f"board {board.id}'s suite")
        _int(suite["protocol_version"], "suite.protocol_version", minimum=1)
        stated = _hex64(suite["sha256"], "suite.sha256")
        published = self.published_sha256(board)
        if stated != published:
            where = "the Stroop design and prompt of this typobench" if board.kind == "stroop" \
                else f"the published suite attacks/{board.suite}.toml"
            raise EntryError("suite.sha256", f"{stated[:12]}... is not the sha256 of {where} ({published[:12]}...): "
                             "re-run with the published suite")

    def _head(self, head: Any, board: Board) -> None:
        _object(head, "head", ("kind",), ("prompt",))
        _equal(_str(head["kind"], "head.kind"), board.head, "head.kind", f"board {board.id}'s head")
        if board.kind == "stroop":
            _equal(_str(head.get("prompt"), "head.prompt"), board.prompt, "head.prompt", f"board {board.id}'s prompt")
        elif "prompt" in head:
            raise EntryError("head.prompt", "is only a field of Stroop entries; remove it")

    def _run(self, run: Any, board: Board) -> None:
        _object(run, "run", ("created", "config_hash", "seed", "precision", "limit"))
        _str(run["created"], "run.created", null=True, max_len=40)
        _hex64(run["config_hash"], "run.config_hash", null=True)
        seed = _int(run["seed"], "run.seed", null=True)
        if board.kind == "suite":
            _equal(seed, board.dataset.seed, "run.seed", f"board {board.id}'s protocol")
        _str(run["precision"], "run.precision", null=True, max_len=20)
        _int(run["limit"], "run.limit", null=True, minimum=1)

    def _predictions(self, table: Any, dataset: dict[str, Any], board: Board, names: list[str]) -> dict[str, Any]:
        stroop = board.kind == "stroop"
        _object(table, "predictions", ("sample_ids", "label", "stages", *(("word",) if stroop else ())))
        n, classes = dataset["n"], dataset["num_classes"]
        ids = table["sample_ids"]
        if not isinstance(ids, list) or len(ids) != n:
            raise EntryError("predictions.sample_ids", f"must list the n = {n} sample ids, got "
                             f"{len(ids) if isinstance(ids, list) else _kind(ids)}")
        for i, sample_id in enumerate(ids):
            _str(sample_id, f"predictions.sample_ids[{i}]", max_len=1000)
        if len(set(ids)) != n:
            raise EntryError("predictions.sample_ids", "repeat a sample id: each sample appears once")
        if sample_hash(ids) != dataset["sample_hash"]:
            raise EntryError("dataset.sample_hash", f"is {dataset['sample_hash'][:12]}... but the submitted sample ids "
                             f"hash to {sample_hash(ids)[:12]}...")
        _int_list(table["label"], "predictions.label", n, 0, classes)
        if stroop:
            _int_list(table["word"], "predictions.word", n, -1, classes)
        labels = label_hash(ids, table["label"], table["word"] if stroop else None)
        if labels != board.dataset.label_hash:
            raise EntryError("predictions.label", f"the true labels{' and words' if stroop else ''} hash to "
                             f"{labels[:12]}..., not to board {board.id}'s protocol ({board.dataset.label_hash[:12]}...)")
        stages = table["stages"]
        if not isinstance(stages, dict):
            raise EntryError("predictions.stages", f"must be an object (stage name -> columns), got {_kind(stages)}")
        if list(stages) != names:
            raise EntryError("predictions.stages", f"are {', '.join(map(str, stages)) or 'none'} but the suite's stages "
                             f"are {', '.join(names)}")
        for name, columns in stages.items():
            field = f"predictions.stages[{name}]"
            _object(columns, field, ("pred",), () if stroop else ("target",))
            _int_list(columns["pred"], f"{field}.pred", n, 0, classes)
            if "target" in columns:
                _int_list(columns["target"], f"{field}.target", n, -1, classes)
        return table

    def _stated_metrics(self, metrics: Any, board: Board, names: list[str]) -> list[dict[str, Any]]:
        _object(metrics, "metrics", ("stages", "headline"))
        stages = metrics["stages"]
        if not isinstance(stages, list):
            raise EntryError("metrics.stages", f"must be a list, got {_kind(stages)}")
        stated_names = [s.get("name") if isinstance(s, dict) else None for s in stages]
        if stated_names != names:
            raise EntryError("metrics.stages", f"are {', '.join(map(str, stated_names)) or 'none'} but the suite's "
                             f"stages are {', '.join(names)}")
        for stage in stages:
            field = f"metrics.stages[{stage['name']}]"
            if board.kind == "stroop":
                _object(stage, field, ("name", *STROOP_METRICS))
                for key in STROOP_METRICS:
                    _rate(stage[key], f"{field}.{key}")
            else:
                _object(stage, field, ("name", "accuracy", "ci95", "n"), ("targeted_success",))
                _number(stage["accuracy"], f"{field}.accuracy", null=True)
                _ci(stage["ci95"], f"{field}.ci95")
                _int(stage["n"], f"{field}.n", minimum=0)
                if "targeted_success" in stage:
                    _rate(stage["targeted_success"], f"{field}.targeted_success")
        headline = metrics["headline"]
        keys = [c.key for c in board.columns]
        if not isinstance(headline, dict) or list(headline) != keys:
            got = ", ".join(headline) if isinstance(headline, dict) else _kind(headline)
            raise EntryError("metrics.headline", f"are {got or 'none'} but board {board.id}'s columns are "
                             f"{', '.join(keys)}")
        for key, value in headline.items():
            field = f"metrics.headline.{key}"
            _object(value, field, ("value",), ("ci95", "n", "stages"))
            _number(value["value"], f"{field}.value", null=True)
            if "ci95" in value:
                _ci(value["ci95"], f"{field}.ci95")
            for count in ("n", "stages"):
                if count in value:
                    _int(value[count], f"{field}.{count}", minimum=0)
        return stages


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _compare(stated: Any, rescored: Any, field: str) -> None:
    """Stated numbers against those re-derived from the predictions; the first difference names its field."""
    if isinstance(rescored, Mapping):
        for key in stated:
            if key not in rescored:
                raise EntryError(f"{field}.{key}", "is stated but the submitted predictions do not give it")
        for key, value in rescored.items():
            if key not in stated:
                raise EntryError(f"{field}.{key}", f"is missing; the submitted predictions give {_show(value)}")
            _compare(stated[key], value, f"{field}.{key}")
    elif isinstance(rescored, (list, tuple)):
        for i, (mine, theirs) in enumerate(zip(stated, rescored)):
            _compare(mine, theirs, f"{field}[{i}]")
    elif (stated != rescored) if isinstance(rescored, str) else not _same_number(stated, rescored):
        raise EntryError(field, f"is {_show(stated)} but the submitted predictions give {_show(rescored)}: "
                         "stated numbers must be re-derivable from the entry's own predictions")


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


__all__ = ["EntryError", "ValidEntry", "Validator", "entry_files", "parse_entry_text", "read_entry",
           "validate_paths", "STROOP_DATASET", "STROOP_SUITE"]
