"""The ``square`` stage: Square Attack (gradient-free, a query budget) on the images of its source stage.

Untargeted. ``attack_on``: "defended" (default) queries the model under test with its defenses (the real,
possibly non-differentiable model: the check on gradient masking); "undefended" makes the images on the model
without its defenses and scores them on the defended one (a transfer attack). Columns: ``attack_success`` (the
attack fooled the model it queried), ``linf``/``l2`` (the perturbation's size), ``attack_loss`` (the margin at
the kept point, > 0: fooled) and ``queries`` (forward passes spent on the sample).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from typobench.adversarial.common import AttackResult
from typobench.adversarial.square import SquareConfig, square
from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.typographic import derive_seed

ATTACK_ON = ("defended", "undefended")


class SquareStage(Stage):
    kind = "square"

    def __init__(self, name: str, source: str, config: SquareConfig, attack_on: str = "defended"):
        super().__init__(name, source)
        self.config = config
        self.attack_on = attack_on

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {**super().describe(), "eps": cfg.eps, "norm": cfg.norm, "queries": cfg.queries,
                "p_init": cfg.p_init, "restarts": cfg.restarts, "attack_on": self.attack_on}

    def strengthened(self) -> SquareStage:
        return SquareStage(self.name, self.source, self.config.strengthened(), attack_on=self.attack_on)

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        # One generator per batch, seeded by the batch's first sample: deterministic under resume.
        generator = torch.Generator(device=images.device)
        generator.manual_seed(derive_seed(ctx.seed, batch.sample_ids[0], f"square:{self.name}"))
        result = square(attacked_model(ctx, self.attack_on), images, batch.labels, self.config, generator=generator)
        return StageOutput(result.adv.detach(), columns=attack_columns(images, result))


def attacked_model(ctx: RunContext, attack_on: str):
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
