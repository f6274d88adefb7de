"""What the one-attack pixel stages (``apgd``, ``fab``, ``square``) share: a seeded call of one attack function
of :mod:`typobench.adversarial` on the model the stage attacks, the per-sample columns of its result, and the
variants the harness asks for (twice the budget for the convergence check, EOT against a randomised defense).

A stage of this family declares its ``kind``, its ``attack`` (a function ``(model, images, labels, config, *,
generator) -> AttackResult``) and what it ``describe``\\ s; everything else is here, written once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import Tensor

from typobench.adversarial.common import AttackResult
from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.typographic import derive_seed

# "defended": an adaptive attack through the model's defenses; "undefended": made on the model without them
# and scored on the defended one (a transfer attack).
ATTACK_ON = ("defended", "undefended")


class AttackStage(Stage):
    """One attack with its config; subclasses set ``kind`` and ``attack``."""

    attack: ClassVar[Callable[..., AttackResult]]

    def __init__(self, name: str, source: str, config: Any, attack_on: str = "defended"):
        super().__init__(name, source)
        self.config = config
        self.attack_on = attack_on

    def _with(self, config: Any) -> AttackStage:
        """This stage with another config (what it learnt from ``check``, such as clamped targets, is kept)."""
        other = copy.copy(self)
        other.config = config
        return other

    def strengthened(self) -> AttackStage:
        return self._with(self.config.strengthened())

    def with_eot(self, draws: int) -> AttackStage:
        if getattr(self.config, "eot_draws", None) != 1:  # takes no gradient, or the suite set its own draws
            return self
        return self._with(replace(self.config, eot_draws=draws))

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        # One generator per batch, seeded by the batch's first sample: deterministic under resume.
        generator = torch.Generator(device=images.device)
        generator.manual_seed(derive_seed(ctx.seed, batch.sample_ids[0], f"{self.kind}:{self.name}"))
        attack = type(self).attack  # a plain function stored on the class, not a method
        result = attack(attacked_model(ctx, self.attack_on), images, batch.labels, self.config, generator=generator)
        return StageOutput(result.adv.detach(), columns=self.columns(images, result))

    def columns(self, images: Tensor, result: AttackResult) -> dict[str, list]:
        return attack_columns(images, result)


def attacked_model(ctx: RunContext, attack_on: str) -> Callable[[Tensor], Tensor]:
    """The model an attack queries: ``[N,C,H,W]`` pixels -> ``[N,K]`` float32 logits, under the run's autocast."""
    attacked = ctx.undefended() if attack_on == "undefended" and ctx.undefended else ctx.classifier

    def model(x: Tensor) -> Tensor:
        with ctx.runtime.autocast():
            return attacked(x).float()

    return model


def attack_columns(images: Tensor, result: AttackResult) -> dict[str, list]:
    """Per-sample columns of an attack's result on ``images`` ``[N,C,H,W]``."""
    delta = (result.adv - images).flatten(1).float()
    return {
        "attack_success": result.success.tolist(),
        "linf": delta.abs().amax(1).tolist(),
        "l2": delta.norm(dim=1).tolist(),
        "attack_loss": result.best_loss.float().tolist(),
        "queries": result.queries.tolist(),
    }


__all__ = ["ATTACK_ON", "AttackStage", "attack_columns", "attacked_model"]
