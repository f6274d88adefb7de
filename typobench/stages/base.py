"""Stages: what is done to a batch of images before it is scored.

A run is a list of stages. Each stage reads the images produced by its ``source`` stage
(``"clean"`` by default), transforms them, and is scored on its own; chaining sources gives
alternations (sticker -> PGD -> sticker -> ...). Stages add per-sample columns (e.g. the
attack text, its placement, a target class) that go to predictions.csv.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime


@dataclass
class Batch:
    """One batch of clean data: ``images`` [N,3,H,W] in [0,1] and ``labels`` [N] on the run's device.

    ``text_targets`` [N] is the class of the word already written in each image (real-world
    typographic data sets; -1 where none), or None. ``outputs`` collects each finished stage's
    output for this batch, so later stages can reuse an earlier stage's mask, targets or images.
    """

    images: Tensor
    labels: Tensor
    indices: list[int]
    sample_ids: list[str]
    text_targets: Tensor | None = None
    outputs: dict[str, "StageOutput"] = field(default_factory=dict)


@dataclass
class RunContext:
    """What every stage may use; built once per run."""

    classifier: nn.Module
    classnames: list[str]
    runtime: Runtime
    seed: int
    extras: dict[str, Any] = field(default_factory=dict)
    # The model under test without its defenses (built on first call; None when it has none): what a
    # transfer attack is made on before it is scored on ``classifier``.
    undefended: Callable[[], nn.Module] | None = None


@dataclass
class StageOutput:
    """Transformed images [N,3,H,W]; optional targets [N] (class the attack aims for, -1 = none),
    an optional mask [N,1,H,W] (bool: the pixels the stage wrote, e.g. a sticker), and per-sample
    columns for predictions.csv (lists of length N)."""

    images: Tensor
    targets: Tensor | None = None
    mask: Tensor | None = None
    columns: dict[str, list] = field(default_factory=dict)


class Stage(ABC):
    """A named transformation of the images of its ``source`` stage."""

    kind: str = "stage"
    # Whether its images differ from its source's (the clean stage passes them on unchanged).
    changes_images: bool = True

    def __init__(self, name: str, source: str = "clean"):
        self.name = name
        self.source = source

    def requires(self) -> list[str]:
        """Earlier stages whose outputs this stage reads (its source, masks, targets)."""
        return [self.source]

    def check(self, classnames: list[str], where: str) -> None:
        """Raise ``UsageError`` if the stage cannot run on a data set with these classes."""

    @abstractmethod
    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        """Return the stage's images for ``batch``, starting from ``images`` (the source's output)."""

    def describe(self) -> dict[str, Any]:
        """Every parameter of the stage, for results.json."""
        return {"name": self.name, "kind": self.kind, "source": self.source}

    # What the attack-failure checks ask of a stage (typobench.harness.attack_checks); a stage that attacks
    # pixels answers them, the others keep these defaults.

    def strengthened(self) -> Stage | None:
        """The same attack with its iterations (or queries) and restarts doubled; None for a stage that is
        not a pixel attack. The convergence check runs it on a subsample and compares."""
        return None

    def gradient_free_attacks(self) -> list[str]:
        """Names (``broken_by`` values) of this stage's attacks that use no gradient."""
        return []

    def with_eot(self, draws: int) -> Stage:
        """This stage with gradients averaged over ``draws`` passes where it takes gradients and was not told
        otherwise (EOT against a randomised defense); itself when it takes none."""
        return self


class CleanStage(Stage):
    """The unmodified images: the reference every attack is compared with."""

    kind = "clean"
    changes_images = False

    def __init__(self, name: str = "clean"):
        super().__init__(name, source="clean")

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        # On real-world typographic data the clean image already carries a written word:
        # its class is the target, so "picking the written word" is scored like an attack.
        return StageOutput(images=images, targets=batch.text_targets)


def check_sources(stages: Sequence[Stage]) -> None:
    """Every stage must read only from ``clean`` or earlier stages."""
    seen = {"clean"}
    for stage in stages:
        for needed in stage.requires():
            if needed not in seen:
                raise UsageError(f"stage '{stage.name}' reads from '{needed}', which is not an earlier stage; "
                                 f"use one of: {', '.join(sorted(seen))}")
        if stage.name in seen and stage.name != "clean":
            raise UsageError(f"stage name '{stage.name}' is used twice: give each stage a unique name")
        seen.add(stage.name)


@torch.no_grad()
def score(classifier: nn.Module, images: Tensor, runtime: Runtime) -> Tensor:
    """Logits [N,C] in float32."""
    with runtime.autocast():
        return classifier(images).float()
