"""A suite's optional ``[head]`` table: the zero-shot protocol a published evaluation fixes.

Robust-CLIP papers score zero-shot heads with their own prompts and temperature (TeCoA: the single template
"This is a photo of a {}"; FARE: logits = 100 · cos, the OpenAI models' own scale). A suite that reproduces
such a protocol says so here, and every run of it uses exactly that head, whatever the data set's templates
or the model's learned temperature::

    [head]
    templates = ["This is a photo of a {}."]
    logit_scale = 100.0

The table is part of the suite file, so its sha256 (the run's key, a board's protocol) covers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from typobench.core.options import option, read_table
from typobench.suites.fields import Table


def _templates(values: list[str]) -> str | None:
    bad = next((t for t in values if t.count("{}") != 1), None)
    return None if bad is None else f"each template needs one {{}} for the class name, got {bad!r}"


def _temperature(value: float) -> str | None:
    return None if 0 < value < math.inf else f"must be a positive finite scale, got {value}"


@dataclass
class HeadProtocol:
    """The zero-shot head of a suite: ``templates`` replace the data set's, ``logit_scale`` the model's
    temperature (None: keep it)."""

    templates: list[str] | None = option(None, "zero-shot templates, {} for the class name", check=_templates)
    logit_scale: float | None = option(None, "logits = scale x cosine similarity", check=_temperature)

    def describe(self) -> dict[str, Any]:
        return {"templates": self.templates, "logit_scale": self.logit_scale}


def parse_head_table(table: Table) -> HeadProtocol:
    """The ``[head]`` table, checked field by field (``head.templates``, ``head.logit_scale``)."""
    return HeadProtocol(**read_table(table, HeadProtocol))


__all__ = ["HeadProtocol", "parse_head_table"]
