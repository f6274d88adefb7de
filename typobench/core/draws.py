"""Which Expectation-over-Transformation draw a forward pass is: the draw index a randomised defense seeds from.

A randomised defense (random resize-and-pad, random JPEG quality) draws its randomness from the image's own
content and :func:`current_draw`, never from a global generator, so the same image gets the same draw
whichever batch, rank or resumed run it is in. An EOT attack averages over ``eot_draw(0)``,
``eot_draw(1)``, ...; everything else (scoring included) runs at draw 0.

The index lives in a :class:`contextvars.ContextVar`: each thread (and task) sees its own, so two attacks
running side by side in threads cannot change each other's draws.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DRAW: ContextVar[int] = ContextVar("typobench_eot_draw", default=0)


def current_draw() -> int:
    """The draw index of the forward pass being run (0 outside any :func:`eot_draw`)."""
    return _DRAW.get()


@contextmanager
def eot_draw(index: int) -> Iterator[int]:
    """Run the body at draw ``index`` (an integer >= 0); the previous index is restored on exit."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"an EOT draw index is an integer >= 0, got {index!r}")
    token = _DRAW.set(index)
    try:
        yield index
    finally:
        _DRAW.reset(token)


__all__ = ["current_draw", "eot_draw"]
