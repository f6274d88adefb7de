"""A suite's optional ``[neurons]`` table: explain the run's failures by neurons right after it finishes.

The options of a neurons analysis (``NeuronsConfig``) are declared here, with the suite format that
carries them: ``typobench neurons`` and the ``typobench.neurons`` package read them from here.

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
from dataclasses import asdict, dataclass
from typing import Any

from typobench.core.errors import UsageError
from typobench.suites.fields import Table

EVENT_KINDS = ("failure", "lift", "hijack")
ABLATION_MODES = ("zero", "mean")
RANK_BY = ("added", "diff", "attacked")


@dataclass
class NeuronsConfig:
    run_dir: str
    stages: list[str] | None = None
    top_k: int = 10
    draws: int = 20
    vocab: str | None = None
    out: str | None = None
    rank_by: str = "added"
    modes: tuple[str, ...] = ABLATION_MODES
    events: tuple[str, ...] = EVENT_KINDS
    max_events: int = 1000
    ref_limit: int = 500
    min_group: int = 5
    heldout_min: int = 10
    max_cards: int = 30
    table_k: int = 20
    tau_image: float = 1.0
    tau_text: float = 2.0
    min_class_images: int = 3
    length_slack: int = 1
    vit_blocks: int = 1
    device: str = "auto"
    batch_size: int = 64
    seed: int | None = None
    cache_dir: str | None = None
    sparse_probe: bool = False  # an L1 probe on the layer's units, swept to ~probe_per_class neurons per class
    probe_per_class: float = 3.0
    probe_images: int = 2000  # clean images of the run, split into a train and a held-out half
    atlas: bool = False  # a static HTML site of the analysis in atlas/
    microscope: int = 0  # feature visualizations and word views of the K most blamed neurons (0: none)
    fv_steps: int = 256  # optimisation steps of each feature visualization
    fv_natural: int = 0  # data-set images for the FV excitation ratio's percentile (0: the reference images)
    heads: int = 0  # ViT towers: blame, ablate (top K) and card the attention heads of the last vit_blocks blocks

    # Where and how fast the analysis runs and where it writes: not what it finds.
    _NOT_METHOD = ("run_dir", "out", "device", "cache_dir", "batch_size", "atlas")

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-ready (neurons.json's ``config``)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def same_method(self, recorded: dict[str, Any]) -> bool:
        """Whether a neurons.json ``config`` was made with these method options (``seed`` None: the run's)."""
        mine = {k: v for k, v in self.to_dict().items()
                if k not in self._NOT_METHOD and not (k == "seed" and v is None)}
        return all(recorded.get(k) == v for k, v in mine.items())

    def validate(self) -> None:
        for name in ("top_k", "draws", "max_events", "ref_limit", "min_group", "heldout_min", "table_k", "min_class_images",
                     "vit_blocks", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        if self.length_slack < 0:
            raise UsageError(f"--length-slack must be >= 0, got {self.length_slack}")
        if self.probe_images < 4 or self.probe_per_class <= 0:
            raise UsageError(f"--probe-images must be >= 4 and --probe-per-class > 0, got {self.probe_images} and "
                             f"{self.probe_per_class}")
        if self.max_cards < 0:
            raise UsageError(f"--max-cards must be >= 0, got {self.max_cards}")
        for name in ("microscope", "fv_natural", "heads"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0 (0: off / the reference images), "
                                 f"got {getattr(self, name)}")
        if self.fv_steps < 1:
            raise UsageError(f"--fv-steps must be a positive integer, got {self.fv_steps}")
        if self.rank_by not in RANK_BY:
            raise UsageError(f"--rank-by '{self.rank_by}' is unknown: use {', '.join(RANK_BY)}")
        for mode in self.modes:
            if mode not in ABLATION_MODES:
                raise UsageError(f"--modes '{mode}' is unknown: use {', '.join(ABLATION_MODES)}")
        for kind in self.events:
            if kind not in EVENT_KINDS:
                raise UsageError(f"--events '{kind}' is unknown: use {', '.join(EVENT_KINDS)}")


# NeuronsConfig fields a suite may set, by the kind of value they take.
_INTEGERS = ("top_k", "draws", "max_events", "ref_limit", "min_group", "heldout_min", "max_cards", "table_k",
             "min_class_images", "length_slack", "vit_blocks", "microscope", "fv_steps", "fv_natural", "heads",
             "probe_images")
_NUMBERS = ("tau_image", "tau_text", "probe_per_class")
_BOOLEANS = ("sparse_probe", "atlas")
_STRING_LISTS = ("stages", "modes", "events")
_STRINGS = ("rank_by",)
NEURON_OPTIONS = (*_INTEGERS, *_NUMBERS, *_BOOLEANS, *_STRING_LISTS, *_STRINGS)


def parse_neurons_table(table: Table) -> dict[str, Any]:
    """The ``[neurons]`` table as ``NeuronsConfig`` keyword arguments, checked field by field."""
    options: dict[str, Any] = {}
    for key in _INTEGERS:
        if table.has(key):
            options[key] = table.number(key, integer=True, minimum=0)
    for key in _NUMBERS:
        if table.has(key):
            options[key] = float(table.number(key))
    for key in _BOOLEANS:
        if table.has(key):
            options[key] = table.bool(key)
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
    return NeuronsConfig(run_dir=run_dir, device=device, cache_dir=cache_dir, batch_size=batch_size, **options)


__all__ = ["ABLATION_MODES", "EVENT_KINDS", "NEURON_OPTIONS", "NeuronsConfig", "RANK_BY", "check_neuron_stages", "neurons_config", "parse_neurons_table"]
