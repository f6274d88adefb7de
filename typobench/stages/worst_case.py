"""The ``worst-case`` stage: a list of attacks run in order on the samples still correct (AutoAttack's rule).

Each attack is a ``[[stage.attack]]`` table of its own kind (``pgd``, ``apgd``, ``square``, ``fab``) with that
kind's fields; the stage scores, per sample, the image of the attack that broke it, and its columns say
which attack that was (``broken_by``). Its accuracy is therefore the per-sample worst case over the list.
A text stage followed by the cascade (``source`` = the text stage) attacks the written image with pixels,
as ``pgd`` stages do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from typobench.adversarial.cascade import Attack, worst_case
from typobench.core.errors import UsageError
from typobench.stages.attack_stage import ATTACK_ON, attacked_model
from typobench.stages.base import Batch, RunContext, Stage, StageOutput
from typobench.typographic import derive_seed



def describe_attack(name: str, kind: str, attack: Attack) -> dict[str, Any]:
    """An attack's name, kind and settings, JSON-ready (``inf`` written as a string)."""
    fields = {k: ("inf" if isinstance(v, float) and math.isinf(v) else v)
              for k, v in dataclasses.asdict(attack).items()}  # type: ignore[call-overload]
    return {"name": name, "kind": kind, **fields}


class WorstCaseStage(Stage):
    kind = "worst-case"

    def __init__(self, name: str, source: str, attacks: Sequence[tuple[str, str, Attack]],
                 attack_on: str = "defended", gradient_free: Sequence[str] = ()):
        """``attacks``: ``(name, kind, settings)`` in the order they run; ``gradient_free``: the names of the
        attacks that use no gradient (what the gradient-masking check compares the others with)."""
        super().__init__(name, source)
        self.attacks = list(attacks)
        self.attack_on = attack_on
        self.gradient_free = list(gradient_free)

    def describe(self) -> dict[str, Any]:
        out = {**super().describe(), "attacks": [describe_attack(*a) for a in self.attacks]}
        return out if self.attack_on == "defended" else {**out, "attack_on": self.attack_on}

    def check(self, classnames: list[str], where: str) -> None:
        for name, _, attack in self.attacks:
            check_classes = getattr(attack, "check_classes", None)  # losses such as DLR need enough classes
            if check_classes is not None:
                try:
                    check_classes(len(classnames))
                except UsageError as exc:
                    raise UsageError(f"{where}: stage '{self.name}', attack '{name}': {exc}") from None

    def gradient_free_attacks(self) -> list[str]:
        return list(self.gradient_free)

    def with_eot(self, draws: int) -> WorstCaseStage:
        """Every gradient attack of the cascade that averages no gradients yet averages ``draws`` of them."""
        def eot(attack: Attack) -> Attack:
            if getattr(attack, "eot_draws", None) != 1:  # gradient-free, or told otherwise by the suite
                return attack
            return dataclasses.replace(attack, eot_draws=draws)  # type: ignore[type-var]
        attacks = [(name, kind, eot(attack)) for name, kind, attack in self.attacks]
        return WorstCaseStage(self.name, self.source, attacks, self.attack_on, self.gradient_free)

    def strengthened(self) -> WorstCaseStage:
        """The same cascade with each attack's iterations (or queries) and restarts doubled."""
        stronger = [(name, kind, attack.strengthened()) for name, kind, attack in self.attacks]  # type: ignore[attr-defined]
        return WorstCaseStage(self.name, self.source, stronger, self.attack_on, self.gradient_free)

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        model = attacked_model(ctx, self.attack_on)

        def generator_for(attack_name: str) -> torch.Generator:
            # One generator per batch and attack, seeded by the batch's first sample: deterministic under resume
            # and under any number of processes (batches are the same), whatever the attacks before drew.
            generator = torch.Generator(device=images.device)
            generator.manual_seed(derive_seed(ctx.seed, batch.sample_ids[0], f"worst-case:{self.name}:{attack_name}"))
            return generator

        result = worst_case(model, images, batch.labels, [(n, a) for n, _, a in self.attacks],
                            generator_for=generator_for)
        delta = (result.adv - images).flatten(1)
        columns = {
            "broken_by": result.broken_by,
            "attack_success": result.success.tolist(),
            "queries": result.queries.tolist(),
            "grad_zero": result.grad_zero.tolist(),
            "linf": delta.abs().amax(1).tolist(),
            "l2": delta.norm(dim=1).tolist(),
        }
        return StageOutput(result.adv.detach(), columns=columns)


__all__ = ["ATTACK_ON", "WorstCaseStage", "describe_attack"]
