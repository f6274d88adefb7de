"""A suite's optional ``[neurons]`` table: explain the run's failures by neurons right after it finishes.

::

    [neurons]          # every key optional; the same options as `typobench neurons`
    stages = ["random-wrong-label"]
    top_k = 10
    draws = 20

``typobench run --suite S`` then writes ``neurons.json``, the blame/ablation/card tables and the report
next to ``results.json``, exactly as ``typobench neurons --from RUN_DIR`` would (``--no-neurons`` skips
it). Only method options belong here: where the run lives, the device and caches come from the run.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UsageError
from .fields import Table

# NeuronsConfig fields a suite may set, by the kind of value they take.
_INTEGERS = ("top_k", "draws", "max_events", "ref_limit", "min_group", "heldout_min", "max_cards", "table_k",
             "min_class_images", "length_slack", "vit_blocks")
_NUMBERS = ("tau_image", "tau_text")
_STRING_LISTS = ("stages", "modes", "events")
_STRINGS = ("rank_by",)
NEURON_OPTIONS = (*_INTEGERS, *_NUMBERS, *_STRING_LISTS, *_STRINGS)


def parse_neurons_table(table: Table) -> dict[str, Any]:
    """The ``[neurons]`` table as ``NeuronsConfig`` keyword arguments, checked field by field."""
    from ..neurons.analysis import NeuronsConfig

    options: dict[str, Any] = {}
    for key in _INTEGERS:
        if table.has(key):
            options[key] = table.number(key, integer=True, minimum=0)
    for key in _NUMBERS:
        if table.has(key):
            options[key] = float(table.number(key))
    for key in _STRING_LISTS:
        if table.has(key):
            values = table.list(key)
            if not values or not all(isinstance(v, str) for v in values):
                raise table.error(key, "must be a non-empty list of strings")
            options[key] = list(values) if key == "stages" else tuple(values)
    for key in _STRINGS:
        if table.has(key):
            options[key] = table.str(key)
    table.finish(NEURON_OPTIONS)
    try:
        NeuronsConfig(run_dir="", **options).validate()
    except UsageError as exc:
        # NeuronsConfig speaks in CLI flags (--top-k); a suite author edits TOML keys (neurons.top_k).
        message = re.sub(r"--([a-z-]+)", lambda m: "neurons." + m.group(1).replace("-", "_"), str(exc))
        raise UsageError(f"{table.where}: {message}") from None
    return options


def check_neuron_stages(options: dict[str, Any], stage_names: list[str], where: str) -> None:
    """``stages`` must name attack stages of the same suite."""
    for name in options.get("stages", []):
        if name not in stage_names or name == "clean":
            attack = [s for s in stage_names if s != "clean"]
            raise UsageError(f"{where}: neurons.stages names '{name}', which is not an attack stage of the suite: "
                             f"use {', '.join(attack) or 'an attack stage'}")


def neurons_config(options: dict[str, Any], run_dir: str, *, device: str, cache_dir: str | None,
                   batch_size: int):
    """The ``NeuronsConfig`` for a finished run of a suite with a ``[neurons]`` table."""
    from ..neurons.analysis import NeuronsConfig

    return NeuronsConfig(run_dir=run_dir, device=device, cache_dir=cache_dir, batch_size=batch_size, **options)


__all__ = ["NEURON_OPTIONS", "check_neuron_stages", "neurons_config", "parse_neurons_table"]
