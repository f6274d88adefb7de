"""``typobench leaderboard build|validate|compare``: check entries by re-scoring them; regenerate the tables;
compare a board's entries paired by image."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from typobench.leaderboard.boards import ENTRIES_DIR, TABLES_DIR, BoardsRoot, load_boards
from typobench.leaderboard.build import BuildOptions, build
from typobench.leaderboard.compare import CompareOptions, run_comparison
from typobench.leaderboard.validate import entry_files, validate_paths
from typobench.core.options import add_arguments, from_namespace
from typobench.harness.config import Quiet, RunConfig

EXIT_INVALID = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        help="validate leaderboard entries (re-scored) and build the tables",
        description="Leaderboards: one JSON entry per (board, model) under leaderboards/entries/. `validate` checks "
                    "entries (schema, board protocol, published suite hash, and every stated number re-scored from "
                    "the entry's own per-sample predictions); `build` validates them all and regenerates Markdown, "
                    "CSV and HTML tables.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser("validate", help="validate entry files (default: every entry)",
                               description="Validate entries; prints one line per entry, exits 1 if any is invalid.")
    check.add_argument("files", nargs="*", metavar="FILE", help=f"entry files (default: <root>/{ENTRIES_DIR}/*/*.json)")
    add_arguments(check, BoardsRoot, ("root",))
    add_arguments(check, Quiet, ("quiet",), helps={"quiet": "print only invalid entries"})
    check.set_defaults(handler=handle_validate)

    make = actions.add_parser("build", help="validate every entry and regenerate the tables",
                              description="Validate every entry, then write leaderboards.md, leaderboards.csv, "
                                          "headline.csv and index.html (sortable, works offline). Writes nothing "
                                          "when an entry is invalid.")
    add_arguments(make, BuildOptions, ("root", "entries_dir"))
    add_arguments(make, RunConfig, ("out",), helps={"out": f"tables folder (default: <root>/{TABLES_DIR}/)"})
    add_arguments(make, BuildOptions, ("check",))
    make.set_defaults(handler=handle_build)

    side = actions.add_parser(
        "compare", help="a board's entries side by side: each column minus a reference entry, paired by image",
        description="Validate the entries of BOARD, then print each column's value per model with its 95% interval "
                    "and its difference from the reference model, paired by image (bootstrap 95% interval, over the "
                    "samples both count): the question 'does this model differ from that one on these images?'. "
                    "Columns that are not a mean over images (mean targeted success, Stroop rates, clean cost) get "
                    "no paired difference.",
        epilog="example: typobench leaderboard compare cifar10-sample.robust-clip.zeroshot --against toyclip "
               "--out runs/robust-compare")
    side.add_argument("board", metavar="BOARD", help="board id (as in boards.toml and leaderboards.md)")
    add_arguments(side, CompareOptions, ("labels", "against", "root"))
    add_arguments(side, RunConfig, ("out",), helps={"out": "also write compare.md, compare.csv and compare.png there"})
    side.set_defaults(handler=handle_compare)


def _report_invalid(invalid: list[tuple[Path, str]]) -> None:
    for path, message in invalid:
        print(f"typobench: error: {path}: {message}", file=sys.stderr)


def handle_validate(args: argparse.Namespace) -> int:
    boards = load_boards(from_namespace(BoardsRoot, args).root)
    files = [Path(f) for f in args.files] or entry_files((boards.root or Path(".")) / ENTRIES_DIR)
    if not files:
        print(f"no entries under {(boards.root or Path('.')) / ENTRIES_DIR}")
        return 0
    valid, invalid = validate_paths(files, boards)
    if not args.quiet:
        for entry in valid:
            print(f"ok    {entry.path}  ({entry.board.id}, {entry.model['label']})")
    _report_invalid(invalid)
    print(f"{len(valid)} valid, {len(invalid)} invalid" if invalid else f"{len(valid)} entries valid",
          file=sys.stderr if invalid else sys.stdout)
    return EXIT_INVALID if invalid else 0


def handle_compare(args: argparse.Namespace) -> int:
    _, text, files = run_comparison(args.board, **asdict(from_namespace(CompareOptions, args)), out=args.out)
    print(text, end="")
    for path in files:
        print(f"wrote {path}")
    return 0


def handle_build(args: argparse.Namespace) -> int:
    options = from_namespace(BuildOptions, args)
    outcome = build(**asdict(options), out_dir=args.out)
    if outcome.invalid:
        _report_invalid(outcome.invalid)
        print(f"nothing written: {len(outcome.invalid)} invalid entr{'y' if len(outcome.invalid) == 1 else 'ies'}",
              file=sys.stderr)
        return EXIT_INVALID
    if options.check:
        for path in outcome.stale:
            print(f"typobench: error: {path} is out of date: run `typobench leaderboard build`", file=sys.stderr)
        if not outcome.stale:
            print(f"tables up to date ({len(outcome.entries)} entries)")
        return EXIT_INVALID if outcome.stale else 0
    print(f"{len(outcome.entries)} entries valid; wrote:")
    for path in outcome.files:
        print(f"  {path}")
    return 0
