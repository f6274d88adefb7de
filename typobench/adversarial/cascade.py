"""The per-sample worst case over a list of attacks, run in order (AutoAttack's rule, Croce & Hein 2020).

Each attack runs only on the samples every earlier attack left correctly classified; a sample counts as
broken when its adversarial image is misclassified by the model (re-checked here, whatever the attack
reports). Per sample the result says which attack broke it and keeps that attack's image, so the robust
accuracy is the fraction no attack broke: the worst case over the list, at the cost of the forward and
backward passes on the surviving samples only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from typobench.adversarial.common import AttackResult, Model, check_class_tensor, check_images, fooled

CLEAN = "clean"  # ``broken_by`` of a sample the model already misclassifies without any attack
UNBROKEN = ""  # ``broken_by`` of a sample no attack broke


class Attack(Protocol):
    """An attack's settings that can run itself (``PGDConfig``, ``APGDConfig``, ``SquareConfig``, ...)."""

    def run(self, model: Model, images: Tensor, labels: Tensor,
            generator: torch.Generator | None = None) -> AttackResult: ...


@dataclass
class CascadeResult:
    """Per sample, the worst case over the attacks.

    adv: ``[N,C,H,W]`` the image of the attack that broke the sample (the clean image when none did).
    success: ``[N]`` bool, the sample is misclassified (clean or after an attack).
    broken_by: N names: ``"clean"``, the breaking attack's name, or ``""`` (robust).
    queries: ``[N]`` int64, forward passes spent on each sample over all attacks.
    grad_zero: ``[N]`` bool, some gradient attack met a zero or non-finite input gradient on the sample.
    results: per attack name, its ``AttackResult`` on the samples it ran on, and their indices ``[M]``.
    """

    adv: Tensor
    success: Tensor
    broken_by: list[str]
    queries: Tensor
    grad_zero: Tensor
    results: dict[str, tuple[Tensor, AttackResult]]


@torch.no_grad()
def worst_case(model: Model, images: Tensor, labels: Tensor, attacks: Sequence[tuple[str, Attack]], *,
               generator_for: Callable[[str], torch.Generator | None] = lambda name: None) -> CascadeResult:
    """Run ``attacks`` (``(name, attack)`` pairs) in order, each on the samples still correct.

    model: ``[N,C,H,W]`` pixels in [0,1] -> ``[N,K]`` logits, in eval mode.
    images: ``[N,C,H,W]`` in [0,1]; labels: ``[N]`` int. ``generator_for(name)`` gives each attack its own
    seeded generator, so an attack's draws do not depend on how many draws the ones before it made.
    """
    check_images(model, images, "the worst-case cascade")
    check_class_tensor(labels, images.shape[0], images.device, "labels")
    names = [name for name, _ in attacks]
    if len(set(names)) != len(names):
        raise ValueError(f"attack names must be unique, got {names}")
    labels = labels.long()
    adv = images.detach().clone()
    queries = torch.ones(images.shape[0], dtype=torch.long, device=images.device)  # the clean forward pass
    broken = fooled(model(images), labels)
    broken_by = [CLEAN if b else UNBROKEN for b in broken.tolist()]
    grad_zero = torch.zeros_like(broken)
    results: dict[str, tuple[Tensor, AttackResult]] = {}
    for name, attack in attacks:
        todo = (~broken).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        result = attack.run(model, images[todo], labels[todo], generator_for(name))
        # The attack's own verdict is not trusted: its image is scored again on the model under test.
        now_broken = fooled(model(result.adv), labels[todo])
        queries[todo] += result.queries.to(queries.device) + 1
        grad_zero[todo] |= result.grad_zero.to(grad_zero.device)
        hit = todo[now_broken]
        adv[hit] = result.adv[now_broken].to(adv.dtype)
        broken[hit] = True
        for i in hit.tolist():
            broken_by[i] = name
        results[name] = (todo, result)
    return CascadeResult(adv=adv, success=broken, broken_by=broken_by, queries=queries, grad_zero=grad_zero,
                         results=results)


def breakdown(result: CascadeResult, names: Sequence[str]) -> dict[str, Any]:
    """How many samples each attack broke (and how many were wrong clean, how many stayed robust)."""
    counts = {name: result.broken_by.count(name) for name in (CLEAN, *names)}
    return {**counts, "robust": result.broken_by.count(UNBROKEN), "n": len(result.broken_by)}


__all__ = ["CLEAN", "UNBROKEN", "Attack", "CascadeResult", "breakdown", "worst_case"]
