"""The ``fab`` stage: FAB-T (targeted fast adaptive boundary attack, gradient-based) on its source's images.

The targets are the top ``target_classes`` other classes by clean logit, tried in turn; a sample counts as
broken when FAB found a misclassified point within ``eps``. ``attack_on`` as for the ``pgd`` stage (FAB needs
input gradients: a non-differentiable defended model makes it fail, which ``square`` then exposes).
Columns: ``attack_success``, ``linf``/``l2``, ``attack_loss`` (minus the distance of the closest adversarial
point found, -inf: none) and ``queries`` (forward passes, a gradient counting as one).
"""

from __future__ import annotations

from typing import Any

from typobench.adversarial.fab import fab
from typobench.stages.attack_stage import ATTACK_ON, AttackStage

__all__ = ["ATTACK_ON", "FABStage"]


class FABStage(AttackStage):
    kind = "fab"
    attack = fab

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {**super().describe(), "eps": cfg.eps, "norm": cfg.norm, "steps": cfg.steps, "restarts": cfg.restarts,
                "target_classes": cfg.target_classes, "alpha_max": cfg.alpha_max, "eta": cfg.eta, "beta": cfg.beta,
                "attack_on": self.attack_on}
