"""``typobench submit RESULTS_DIR``: turn a finished run into a validated leaderboard entry file."""

from __future__ import annotations

import argparse

from typobench.core.errors import UsageError
from typobench.leaderboard.attack_record import attack_note
from typobench.leaderboard.boards import ENTRIES_DIR, column_label, load_boards, writable_folder
from typobench.leaderboard.entry import entry_from_run, entry_path, write_entry
from typobench.leaderboard.render import format_value, unit
from typobench.leaderboard.submit import SubmitOptions
from typobench.leaderboard.validate import Validator, read_entry
from typobench.core.options import add_arguments, from_namespace
from typobench.harness.config import RunConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="turn a finished run into a leaderboard entry (validated by re-scoring)",
        description="Build the leaderboard entry of a finished `typobench run` (results.json + predictions.csv) or "
                    "`typobench stroop` (stroop.json + stroop.csv) folder: the board is the one of the run's data set, "
                    "suite and head; the entry embeds the per-sample predictions, is validated exactly as "
                    "`typobench leaderboard validate` does (re-scored), and is written to "
                    "OUT/<board>/<model>.json, ready for a pull request.",
        epilog="example: typobench run --model tiny-rn --suite random-wrong-label --limit 200 --out runs/lb/rwl && "
               "typobench submit runs/lb/rwl --submitter 'Ada Lovelace'",
    )
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="the --out folder of a finished run")
    add_arguments(parser, SubmitOptions, ("submitter", "model_name", "root"))
    add_arguments(parser, RunConfig, ("out", "overwrite"), helps={
        "out": f"entries folder (default: <root>/{ENTRIES_DIR}/)",
        "overwrite": "replace an existing entry of this model on the board"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = from_namespace(SubmitOptions, args)
    boards = load_boards(options.root)
    out_dir = writable_folder(boards, ENTRIES_DIR, args.out, "--out")
    board, entry = entry_from_run(args.results_dir, boards, **options.entry_options())
    path = entry_path(out_dir, board.id, entry["model"]["label"])
    try:
        valid = Validator(boards).validate(entry, path=path)
    except UsageError as exc:
        raise UsageError(f"the run in {args.results_dir} is not a valid entry of board {board.id}: {exc}") from None
    if path.exists() and not args.overwrite:
        try:
            same = read_entry(path).get("model", {}).get("weights_sha256") == entry["model"]["weights_sha256"]
        except UsageError:
            same = False
        what = "an entry of these weights" if same else "an entry of other weights under this model name"
        raise UsageError(f"{path} already holds {what}: pass --overwrite to replace it, or --model-name for another name")
    write_entry(path, entry)
    print(f"board   {board.id}: {board.title}")
    print(f"model   {entry['model']['label']}" + ("  (random weights)" if entry["model"]["random_init"] else ""))
    for column in board.columns:
        label = f"{column_label(board, column)} ({unit(column)})"
        print(f"  {label:<36} {format_value(column, valid.headline[column.key])}")
    if attack_note(entry):
        print(f"attack  {attack_note(entry)}")
    print(f"entry   {path} (validated: every number re-scored from its predictions)")
    print("next    typobench leaderboard build, then add the entry and leaderboards/tables/ to a pull request")
    return 0
