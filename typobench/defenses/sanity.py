"""AutoAttack-style sanity flags of a defended classifier (Croce & Hein 2020; Carlini et al. 2019): signs that
its robustness is gradient masking rather than a change of what it sees.

* ``zero_gradients``: most input gradients of the loss are exactly 0 (or there is no gradient at all);
* ``nondeterministic``: two forward passes on the same batch differ (randomised defenses need EOT);
* ``transfer_stronger``: attacked images made on the undefended model fool it more than images attacked
  through the defense itself; an adaptive attack should never be the weaker one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Share of exactly-zero input-gradient entries from which the gradients count as masked ("all or most").
ZERO_GRADIENT_SHARE = 0.5
# Relative difference of two forwards' logits (to the largest logit) beyond which a forward is not deterministic.
FORWARD_TOLERANCE = 1e-4


def gradient_check(classifier: nn.Module, images: Tensor, labels: Tensor) -> dict[str, Any]:
    """How many input-gradient entries of the summed cross-entropy are exactly 0, over ``images`` [N,3,H,W]."""
    pixels = images.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(classifier(pixels).float(), labels.to(pixels.device), reduction="sum")
    if loss.requires_grad:
        grad = torch.autograd.grad(loss, pixels, allow_unused=True)[0]
    else:
        grad = None
    grad = torch.zeros_like(pixels) if grad is None else grad
    zero = grad == 0
    share = float(zero.float().mean())
    return {"flag": share >= ZERO_GRADIENT_SHARE, "zero_share": share,
            "images_all_zero": int(zero.flatten(1).all(1).sum()), "n": len(images)}


@torch.no_grad()
def determinism_check(classifier: nn.Module, images: Tensor) -> dict[str, Any]:
    """Two forward passes on the same ``images``: their largest logit difference and changed predictions."""
    first, second = classifier(images).float(), classifier(images).float()
    diff = float((first - second).abs().max()) if first.numel() else 0.0
    changed = int((first.argmax(1) != second.argmax(1)).sum())
    scale = max(1.0, float(first.abs().max())) if first.numel() else 1.0
    return {"flag": changed > 0 or diff > FORWARD_TOLERANCE * scale, "max_logit_diff": diff,
            "predictions_changed": changed, "n": len(images)}


def transfer_check(adaptive_accuracy: float, transfer_accuracy: float) -> dict[str, Any]:
    """Accuracy under the attack through the defense vs under images attacked on the undefended model."""
    return {"flag": transfer_accuracy < adaptive_accuracy, "adaptive_accuracy": adaptive_accuracy,
            "transfer_accuracy": transfer_accuracy}


# What makes two attack stages the same attack (results.json's stage records), apart from their name and attack_on
# (a key a kind does not have reads as None on both sides).
ATTACK_KEYS = ("kind", "source", "eps", "norm", "step_size", "steps", "restarts", "random_start", "loss", "target",
               "region", "mask_stage", "eot_draws", "target_classes", "rho", "queries", "p_init", "alpha_max", "eta",
               "beta", "attacks")


def transfer_pairs(stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each transfer attack stage (``attack_on = "undefended"``) with the adaptive stage of the same attack, from
    results.json's stage records (descriptions merged with accuracies), and the transfer check of the pair."""
    pairs = []
    for transfer in (s for s in stages if s.get("attack_on") == "undefended"):
        same = lambda s: all(s.get(k) == transfer.get(k) for k in ATTACK_KEYS)
        adaptive = next((s for s in stages if s.get("attack_on", "defended") == "defended" and same(s)), None)
        if adaptive is not None:
            pairs.append({"adaptive": adaptive["name"], "transfer": transfer["name"],
                          **transfer_check(adaptive["accuracy"], transfer["accuracy"])})
    return pairs


def sanity_flags(classifier: nn.Module, images: Tensor, labels: Tensor, *, adaptive_accuracy: float | None = None,
                 transfer_accuracy: float | None = None) -> dict[str, Any]:
    """Every check on one batch (``images`` [N,3,H,W] in [0,1] on the classifier's device, ``labels`` [N]);
    the transfer check only when both accuracies are given. ``flags`` lists the checks that fired. The
    classifier is checked as it is (its mode is the caller's: a run's classifier is in eval mode)."""
    checks: dict[str, Any] = {"zero_gradients": gradient_check(classifier, images, labels),
                              "nondeterministic": determinism_check(classifier, images)}
    if adaptive_accuracy is not None and transfer_accuracy is not None:
        checks["transfer_stronger"] = transfer_check(adaptive_accuracy, transfer_accuracy)
    checks["flags"] = [name for name, check in checks.items() if check["flag"]]
    return checks


__all__ = ["FORWARD_TOLERANCE", "ATTACK_KEYS", "ZERO_GRADIENT_SHARE", "determinism_check", "gradient_check",
           "sanity_flags", "transfer_check", "transfer_pairs"]
