"""Where a run's time goes: wall-clock seconds per part, each second counted once (in the innermost part).

``Buckets.recording(patches)`` wraps the named functions for the duration of a block. A call into a
wrapped function starts its part's clock and pauses the caller's, so a model forward inside a PGD stage
counts as "model", not as "PGD". Time outside every wrapped call is the block's remainder, reported as
``rest``. The wrappers cost about a microsecond per call, far below what they measure.

    buckets = Buckets()
    with buckets.recording([(ImageClassifier, "forward", "model"), (torch.autograd, "grad", "model")]):
        execute(config)
    buckets.runs[-1]  # {"model": 12.3, "rest": 0.4, ...}
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

REST = "rest"

# (owner, attribute, part): the function ``owner.attribute`` counts towards ``part``.
Patch = tuple[object, str, str]


class Buckets:
    """Exclusive seconds per part, one dict per recorded block in ``runs``."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.runs: list[dict[str, float]] = []
        self._stack: list[str] = []
        self._since = 0.0

    def _switch(self, now: float) -> None:
        """Charge the time since the last switch to the part now running."""
        self.runs[-1][self._stack[-1]] = self.runs[-1].get(self._stack[-1], 0.0) + now - self._since
        self._since = now

    def enter(self, part: str) -> None:
        self._switch(self.clock())
        self._stack.append(part)

    def leave(self) -> None:
        self._switch(self.clock())
        self._stack.pop()

    def wrap(self, fn: Callable, part: str) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(part)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        return timed

    @contextmanager
    def recording(self, patches: Sequence[Patch]) -> Iterator[dict[str, float]]:
        """Wrap ``patches`` for the block and record one run; yields that run's dict (filled at the end)."""
        # The attribute as stored (a staticmethod stays one), and whether the owner itself held it.
        originals = [(owner, name, inspect.getattr_static(owner, name), name in vars(owner))
                     for owner, name, _ in patches]
        self.runs.append({})
        self._stack, self._since = [REST], self.clock()
        try:
            for (owner, name, part), (_, _, raw, _) in zip(patches, originals):
                setattr(owner, name, self._wrapped(raw, part))
            yield self.runs[-1]
        finally:
            for owner, name, raw, own in reversed(originals):
                if own:
                    setattr(owner, name, raw)
                else:  # inherited: uncover the base class's again
                    delattr(owner, name)
            self._switch(self.clock())
            self._stack = []

    def _wrapped(self, raw: object, part: str) -> object:
        """``raw`` (a function, staticmethod or classmethod) timed as ``part``, of the same kind."""
        if isinstance(raw, (staticmethod, classmethod)):
            return type(raw)(self.wrap(raw.__func__, part))
        return self.wrap(raw, part)


def shares(parts: dict[str, float]) -> list[tuple[str, float, float]]:
    """(part, seconds, share of the total) from the largest part down."""
    total = sum(parts.values()) or 1.0
    return [(name, seconds, seconds / total) for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1])]


def median_run(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """The recorded run whose total is the median (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: sum(run.values()))
    return ordered[(len(ordered) - 1) // 2]


__all__ = ["REST", "Buckets", "Patch", "median_run", "shares"]
