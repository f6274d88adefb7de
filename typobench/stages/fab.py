"""The ``fab`` stage: FAB-T (targeted fast adaptive boundary attack, gradient-based) on its source's images.

The targets are the top ``target_classes`` other classes by clean logit, tried in turn; a sample counts as
broken when FAB found a misclassified point within ``eps``. ``attack_on`` as for the ``pgd`` stage (FAB needs
input gradients: a non-differentiable defended model makes it fail, which ``square`` then exposes).
Columns: ``attack_success``, ``linf``/``l2``, ``attack_loss`` (minus the distance of the closest adversarial
point found, -inf: none) and ``queries`` (forward passes, a gradient counting as one).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from typobench.adversarial.fab import FABConfig, fab
from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.stages.square import ATTACK_ON, attack_columns, attacked_model
from typobench.typographic import derive_seed

__all__ = ["ATTACK_ON", "FABStage"]


class FABStage(Stage):
    kind = "fab"

    def __init__(self, name: str, source: str, config: FABConfig, attack_on: str = "defended"):
        super().__init__(name, source)
        self.config = config
        self.attack_on = attack_on

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {**super().describe(), "eps": cfg.eps, "norm": cfg.norm, "steps": cfg.steps, "restarts": cfg.restarts,
                "target_classes": cfg.target_classes, "alpha_max": cfg.alpha_max, "eta": cfg.eta, "beta": cfg.beta,
                "attack_on": self.attack_on}

    def strengthened(self) -> FABStage:
        return FABStage(self.name, self.source, self.config.strengthened(), attack_on=self.attack_on)

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        # One generator per batch, seeded by the batch's first sample: deterministic under resume.
        generator = torch.Generator(device=images.device)
        generator.manual_seed(derive_seed(ctx.seed, batch.sample_ids[0], f"fab:{self.name}"))
        result = fab(attacked_model(ctx, self.attack_on), images, batch.labels, self.config, generator=generator)
        return StageOutput(result.adv.detach(), columns=attack_columns(images, result))
