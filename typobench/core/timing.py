"""Timing helpers shared by the benchmark scripts in ``benchmarks/`` (figures, never timed tests).

Interleaved timing (:func:`timed_interleaved`) runs every compared function in rotating order, so that
the harness and the bare loop it is compared with see the same machine load; :func:`contention_note`
says when that load makes the figures unreliable anyway.
"""

from __future__ import annotations

import os
import pstats
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as text ("n/a" where /proc is missing)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpus() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def rates(seconds: Sequence[float], items: int) -> tuple[float, float]:
    """(median, best) items/second over timed repeats of ``items`` items each."""
    return items / statistics.median(seconds), items / min(seconds)


def ratio(harness_rate: float, bare_rate: float) -> float:
    """Harness throughput as a fraction of the bare loop's (1.0 = no overhead)."""
    return harness_rate / bare_rate


def contention_note(load: str, threads: int, cpus: int) -> str | None:
    """A warning when the machine is busy and torch's threads would fight other jobs for the cores."""
    try:
        one_minute = float(load.split()[0])
    except (ValueError, IndexError):
        return None
    if threads > 1 and one_minute > max(cpus - 1, 1):
        return (f"note: load {one_minute:.2f} on {cpus} cpus with {threads} torch threads: other jobs compete for "
                "the cores and figures can be far off and noisy; try --threads 1")
    return None


def timed_interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of every fn, one warm-up each, then ``repeats`` rounds in rotating order."""

    def sync() -> None:
        if device.type == "cuda":  # CUDA calls return before the work is done
            torch.cuda.synchronize()

    for fn in fns.values():
        fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            sync()
            start = time.perf_counter()
            fns[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def breakdown(stats: pstats.Stats, parts: list[tuple[str, str, str]]) -> list[tuple[str, float, float]]:
    """Cumulative seconds of each (label, file suffix, function) in ``stats`` and its share of the first."""
    found = []
    for label, file_suffix, function in parts:
        seconds = sum(ct for (path, _, name), (_, _, _, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
                      if name == function and path.replace("\\", "/").endswith(file_suffix))
        found.append((label, seconds))
    total = found[0][1] or 1.0
    return [(label, seconds, seconds / total) for label, seconds in found]


__all__ = ["breakdown", "contention_note", "cpus", "loadavg", "rates", "ratio", "timed_interleaved"]
