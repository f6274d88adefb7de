"""The ``pgd`` stage: projected gradient descent on the images of its source stage.

Targets: ``untargeted``, ``wrong-label`` (a random wrong class per sample, seeded by sample id),
a class name, or ``same-as:STAGE`` (the targets of an earlier stage, so an alternation keeps
aiming at one class). ``region`` restricts the perturbation to inside/outside the mask written by
``mask_stage`` (a text stage's sticker), so "PGD on the sticker only" is one option.

``attack_on``: "defended" (default) differentiates through the model under test with its defenses (an
adaptive attack); "undefended" makes the images on the model without its defenses and scores them on the
defended one (a transfer attack). ``pgd_success`` says whether the attack fooled the model it was made on.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.adversarial.pgd import PGDConfig, pgd, region_mask
from typobench.stages.attack_stage import ATTACK_ON, attacked_model
from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.typographic import derive_seed, sample_rng

REGIONS = ("everywhere", "inside", "outside")


class PGDStage(Stage):
    kind = "pgd"

    def __init__(self, name: str, source: str, config: PGDConfig, target: str = "untargeted",
                 region: str = "everywhere", mask_stage: str | None = None, attack_on: str = "defended"):
        super().__init__(name, source)
        self.config = config
        self.target = target
        self.region = region
        self.mask_stage = mask_stage
        self.attack_on = attack_on

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        out = {**super().describe(), "eps": cfg.eps if math.isfinite(cfg.eps) else "inf", "norm": cfg.norm,
               "step_size": cfg.step_size, "steps": cfg.steps, "restarts": cfg.restarts,
               "random_start": cfg.random_start, "loss": cfg.loss, "target": self.target,
               "region": self.region, "mask_stage": self.mask_stage}
        if cfg.eot_draws != 1:  # only an EOT stage says so, as with attack_on below
            out["eot_draws"] = cfg.eot_draws
        # Only a transfer stage says so: the descriptions (and run keys) of adaptive stages stay as they were.
        return out if self.attack_on == "defended" else {**out, "attack_on": self.attack_on}

    def with_eot(self, draws: int) -> PGDStage:
        if self.config.eot_draws != 1:
            return self
        return PGDStage(self.name, self.source, replace(self.config, eot_draws=draws), self.target, self.region,
                        self.mask_stage, self.attack_on)

    def strengthened(self) -> PGDStage:
        return PGDStage(self.name, self.source, self.config.strengthened(), self.target, self.region, self.mask_stage,
                        self.attack_on)

    def requires(self) -> list[str]:
        needed = super().requires()
        if self.mask_stage:
            needed.append(self.mask_stage)
        if self.target.startswith("same-as:"):
            needed.append(self.target.split(":", 1)[1])
        return needed

    def check(self, classnames: list[str], where: str) -> None:
        special = self.target in ("untargeted", "wrong-label") or self.target.startswith("same-as:")
        if not special and self.target not in classnames:
            raise UsageError(f"{where}: stage '{self.name}' targets class '{self.target}', which this data set "
                             "does not have: run the suite on the data set it was written for")

    def _targets(self, batch: Batch, ctx: RunContext) -> Tensor | None:
        device = batch.labels.device
        if self.target == "untargeted":
            return None
        if self.target.startswith("same-as:"):
            earlier = batch.outputs[self.target.split(":", 1)[1]].targets
            if earlier is None:
                raise UsageError(f"stage '{self.name}': {self.target} has no targets to reuse")
            return earlier
        if self.target == "wrong-label":
            k = len(ctx.classnames)
            picks = []
            for sample_id, label in zip(batch.sample_ids, batch.labels.tolist()):
                wrong = int(sample_rng(ctx.seed, sample_id, stream=f"target:{self.name}").integers(k - 1))
                picks.append(wrong + (wrong >= label))
            return torch.tensor(picks, device=device)
        return torch.full_like(batch.labels, ctx.classnames.index(self.target))

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        targets = self._targets(batch, ctx)
        mask = None
        if self.region != "everywhere":
            mask = region_mask(batch.outputs[self.mask_stage].mask, self.region)
        # One generator per batch, seeded by the batch's first sample: deterministic under resume.
        generator = torch.Generator(device=images.device)
        generator.manual_seed(derive_seed(ctx.seed, batch.sample_ids[0], f"pgd:{self.name}"))

        model = attacked_model(ctx, self.attack_on)

        result = pgd(model, images, batch.labels, self.config, targets=targets, mask=mask, generator=generator)
        delta = (result.adv - images).flatten(1)
        columns = {
            "pgd_success": result.success.tolist(),
            "linf": delta.abs().amax(1).tolist(),
            "l2": delta.norm(dim=1).tolist(),
        }
        return StageOutput(result.adv.detach(), targets=targets, mask=mask, columns=columns)
