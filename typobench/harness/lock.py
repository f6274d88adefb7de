"""One run at a time in an output folder: an exclusive lock held for the whole run.

The lock is an OS file lock (``filelock``: ``flock`` on POSIX), so the kernel releases it when its
process dies: a killed run never leaves a folder blocked. Beside it, the holder writes who it is, so the
run that is refused can say which process holds the folder.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from typobench.core.atomic import write_json_atomic
from typobench.core.errors import UsageError

LOCK_FILE = ".typobench.lock"
OWNER_FILE = ".typobench.lock.owner"


@contextmanager
def output_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold ``out_dir`` for the duration of the block; a second holder gets a one-line UsageError."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out '{out_dir}' is a file, not a folder: pass a folder path")
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UsageError(f"{out_dir} is in use by another typobench run ({_owner(out_dir)}): wait for it to "
                         "finish, or pass another --out") from None
    try:
        for stale in out_dir.glob(".*.tmp"):  # temporary files of a run that was killed while writing
            stale.unlink(missing_ok=True)
        write_json_atomic(out_dir / OWNER_FILE, {"pid": os.getpid(), "host": socket.gethostname()})
        yield out_dir
    finally:
        (out_dir / OWNER_FILE).unlink(missing_ok=True)
        lock.release()


def _owner(out_dir: Path) -> str:
    try:
        owner = json.loads((out_dir / OWNER_FILE).read_text())
        return f"process {owner['pid']} on {owner['host']}"
    except (OSError, ValueError, KeyError):
        return "process unknown"


__all__ = ["LOCK_FILE", "output_lock"]
