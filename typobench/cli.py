"""``typobench`` command line: one module per subcommand under ``typobench.commands``.

Exit status: 0 done; 2 a usage error (one line naming the thing and the fix, argparse's own errors
included: the usage block is for ``--help``); 1 the environment failed (disk full, no permission: one
line naming the path; finished batches are kept, the same command resumes) or finished work on disk is
inconsistent; 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence

from typobench import __version__
from typobench.commands import COMMANDS
from typobench.core.errors import IntegrityError, UsageError
from typobench.harness.world import World

EXIT_USAGE = 2
EXIT_ENVIRONMENT = 1
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (a ``UsageError``), not the usage block plus a line."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="typobench",
        description="Measure how CLIP-style models fail under typographic and pixel attacks.",
        epilog="Run `typobench COMMAND --help` for the options of each command. Spread one run over processes, "
               "GPUs or nodes with PyTorch's launcher: `torchrun --nproc-per-node N -m typobench run ...`.",
    )
    parser.add_argument("--version", action="version", version=f"typobench {__version__}")
    # Subparsers are built with the parent's class, so every subcommand's errors are one line too.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


class CurrentStderrHandler(logging.StreamHandler):
    """A handler that writes to ``sys.stderr`` as it is when a record is written, not as it was when logging was
    set up: ``main`` called twice in one process (the Python API, tests) after stderr was replaced must not write
    to a stream that is gone."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the current stderr is always used
        pass


def main(argv: Sequence[str] | None = None) -> int:
    # Under torchrun every rank runs this; rank 0 alone prints, every rank exits with the same status.
    world = World.from_env()
    if not world.leader:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- for the life of the process
    # Notices of the library (a damaged cache entry rebuilt, a damaged batch recomputed): one line each.
    logging.basicConfig(format="typobench: %(message)s", level=logging.WARNING if world.leader else logging.ERROR,
                        handlers=[CurrentStderrHandler()])
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args) or 0)
    except UsageError as exc:
        return _fail(world, str(exc), EXIT_USAGE)
    except IntegrityError as exc:
        return _fail(world, str(exc), EXIT_ENVIRONMENT)
    except OSError as exc:
        return _fail(world, environment_message(exc), EXIT_ENVIRONMENT)
    except KeyboardInterrupt:
        print("typobench: interrupted; finished batches are saved, run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(world: World, message: str, status: int) -> int:
    if world.leader:
        print(f"typobench: error: {message}", file=sys.stderr, flush=True)
    # Every rank meets the same error: each leaves with its own status, none is killed by torchrun first.
    world.exit_together(status)
    return status


def environment_message(exc: OSError) -> str:
    """One line for a failure of the machine rather than of the input: what, which path, what to do."""
    path = exc.filename or "a file"
    what = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"cannot write {path}: {what}; free some space and run the same command again to resume"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: {what}; pick a writable --out (or --cache-dir) and run again"
    return f"{path}: {what}"


if __name__ == "__main__":
    sys.exit(main())
