"""The ``apgd`` stage: Auto-PGD (APGD-CE, APGD-DLR, or APGD-T at the top classes) on the images of its
source stage, at AutoAttack strength. The attack itself is :mod:`typobench.adversarial.apgd`.

``attack_on`` is read as in the ``pgd`` stage: "defended" (an adaptive attack through the model's defenses)
or "undefended" (made on the model without them, scored on the defended one: a transfer attack);
``attack_success`` says whether the attack broke the model it was made on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from typobench.adversarial.apgd import APGDConfig, apgd
from typobench.adversarial.common import AttackResult
from typobench.core.errors import UsageError
from typobench.stages.attack_stage import ATTACK_ON, AttackStage, attack_columns

__all__ = ["ATTACK_ON", "APGDStage", "trace_strings"]

TRACE_POINTS = 11  # iterations of the best-so-far objective a row keeps: start, every 10%, end


class APGDStage(AttackStage):
    kind = "apgd"
    attack = apgd

    def __init__(self, name: str, source: str, config: APGDConfig, attack_on: str = "defended"):
        super().__init__(name, source, config, attack_on)
        self.targets_used: int | None = None  # set by check() when a data set has too few classes

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        out = {**super().describe(), "eps": cfg.eps, "norm": cfg.norm, "steps": cfg.steps,
               "restarts": cfg.restarts, "loss": cfg.loss, "target": "top-k" if cfg.targeted else "untargeted",
               "target_classes": cfg.target_classes, "rho": cfg.rho, "eot_draws": cfg.eot_draws,
               "attack_on": self.attack_on}
        if self.targets_used is not None:
            out["note"] = (f"target_classes {cfg.target_classes} clamped to {self.targets_used}: the data set has "
                           f"only {self.targets_used} classes besides the label")
        return out

    def check(self, classnames: list[str], where: str) -> None:
        try:
            self.config.check_classes(len(classnames))
        except UsageError as exc:
            raise UsageError(f"{where}: stage '{self.name}': {exc}") from None
        self.targets_used = self.config.targets_used(len(classnames)) if self.config.clamps_targets(
            len(classnames)) else None

    def columns(self, images: Tensor, result: AttackResult) -> dict[str, list]:
        return {**attack_columns(images, result), "grad_zero": result.grad_zero.tolist(),
                "loss_trace": trace_strings(result.trace)}


def trace_strings(trace: Tensor) -> list[str]:
    """Per row of ``trace`` ``[N,T]``, the values at up to 11 evenly spaced iterations (first and last
    included) as one space-separated string of ``%.5g`` floats."""
    t = trace.shape[1]
    at = torch.linspace(0, t - 1, min(TRACE_POINTS, t)).round().long().unique()
    return [" ".join("%.5g" % v for v in row) for row in trace[:, at.to(trace.device)].tolist()]
