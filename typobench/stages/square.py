"""The ``square`` stage: Square Attack (gradient-free, a query budget) on the images of its source stage.

Untargeted. ``attack_on``: "defended" (default) queries the model under test with its defenses (the real,
possibly non-differentiable model: the check on gradient masking); "undefended" makes the images on the model
without its defenses and scores them on the defended one (a transfer attack). Columns: ``attack_success`` (the
attack fooled the model it queried), ``linf``/``l2`` (the perturbation's size), ``attack_loss`` (the margin at
the kept point, > 0: fooled) and ``queries`` (forward passes spent on the sample).
"""

from __future__ import annotations

from typing import Any

from typobench.adversarial.square import square
from typobench.stages.attack_stage import ATTACK_ON, AttackStage

__all__ = ["ATTACK_ON", "SquareStage"]


class SquareStage(AttackStage):
    kind = "square"
    attack = square

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {**super().describe(), "eps": cfg.eps, "norm": cfg.norm, "queries": cfg.queries,
                "p_init": cfg.p_init, "restarts": cfg.restarts, "attack_on": self.attack_on}
