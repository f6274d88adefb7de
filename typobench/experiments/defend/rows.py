"""The rows of a ``typobench defend`` table, and where each defense was chosen.

A row is the model under test with some defenses (``none``: without any). ``--defense`` gives one row;
``;`` inside it composes several defenses in order (``"input:blur=1;ablate:units=layer4:3"``).

What each row's defenses were chosen on, and the refusal of a choice made on the scored images, are the
harness' (``harness.provenance``): every defended session passes that check, a defend row like any run.
A suite's ``[defense]`` tables become a row of their own here: the ``none`` row never carries a defense,
so every clean cost is measured against the model without defenses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from typobench.core.cache import content_key
from typobench.core.errors import UsageError
from typobench.defenses import Defense, create_defense
from typobench.suites import Suite

NONE_LABEL = "none"
COMPOSE = ";"


@dataclass(frozen=True)
class DefenseRow:
    """One row: ``label`` (the spec as given, or ``none``) and its defenses, in order."""

    label: str
    defenses: tuple[Defense, ...]

    @property
    def slug(self) -> str:
        keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.label)
        return keep[:80] or NONE_LABEL


def parse_rows(specs: Sequence[str]) -> list[DefenseRow]:
    """``none`` first, then one row per spec (each spec's ``;``-separated defenses composed in order)."""
    rows = [DefenseRow(NONE_LABEL, ())]
    for spec in specs:
        parts = [part.strip() for part in spec.split(COMPOSE) if part.strip()]
        if not parts:
            raise UsageError(f"--defense '{spec}' is empty: give KIND:KEY=VALUE (see `typobench list defenses`)")
        rows.append(DefenseRow(spec.strip(), tuple(create_defense(part) for part in parts)))
    return _unique(rows)


def suite_row(rows: Sequence[DefenseRow], suite: Suite) -> tuple[list[DefenseRow], Suite]:
    """The suite's ``[defense]`` tables as a row of their own after ``rows``, and the suite without them: were
    they left in the suite, every row -- ``none`` included -- would carry them."""
    if not suite.defenses:
        return list(rows), suite
    label = f"{COMPOSE} ".join(d.spec for d in suite.defenses)
    bare = replace(suite, defenses=[], sha256=content_key(suite=suite.sha256, defenses="moved to a defend row"))
    return _unique([*rows, DefenseRow(label, tuple(suite.defenses))]), bare


def _unique(rows: list[DefenseRow]) -> list[DefenseRow]:
    labels = [row.label for row in rows]
    if len(set(labels)) != len(labels):
        raise UsageError("a --defense is given twice: give each defense row once")
    return rows


__all__ = ["COMPOSE", "NONE_LABEL", "DefenseRow", "parse_rows", "suite_row"]
