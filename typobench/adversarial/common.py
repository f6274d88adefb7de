"""What every attack of this package shares: input checks, norms and projections, losses, the per-image
best-iterate record, and the (optionally EOT-averaged) input gradient.

The attacked model is any callable that takes ``[N,C,H,W]`` pixels in [0,1], normalises them itself and
returns ``[N,K]`` logits. The caller puts it in eval mode; no attack changes the model's mode, device or
parameters, and every attack takes its device and dtype from the images.

Shapes: ``N`` images, ``C`` channels, ``H``x``W`` pixels, ``K`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from typobench.core.draws import eot_draw
from typobench.core.errors import UsageError

Model = Callable[[Tensor], Tensor]
Norm = Literal["linf", "l2"]
NORMS = ("linf", "l2")


# ----------------------------------------------------------------------------------------------- norms
def norms(t: Tensor) -> Tensor:
    """Per-image L2 norms of ``[N,...]`` as ``[N,1,1,1]``."""
    return t.flatten(1).norm(p=2, dim=1).view(-1, 1, 1, 1)


def tiny(t: Tensor) -> float:
    """The smallest positive normal number of ``t``'s dtype: a divisor that is never zero."""
    return torch.finfo(t.dtype).tiny


def project(x: Tensor, x0: Tensor, eps: float, norm: Norm) -> Tensor:
    """``x`` moved into the ``norm`` ball of radius ``eps`` around ``x0`` and into [0,1] (new tensor).

    L2: images outside the ball are scaled back towards ``x0``; clamping to [0,1] afterwards moves every
    pixel towards ``x0`` (which is in [0,1]), so it cannot leave the ball again.
    """
    delta = x - x0
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / norms(delta).clamp_min(tiny(delta))).clamp(max=1.0)
    return (x0 + delta).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------- losses
def cross_entropy(logits: Tensor, goal: Tensor) -> Tensor:
    """Per-image cross-entropy ``[N]`` of ``[N,K]`` logits against ``[N]`` classes."""
    return F.cross_entropy(logits, goal, reduction="none")


def margin(logits: Tensor, goal: Tensor) -> Tensor:
    """``max_{j != goal} z_j - z_goal`` per image ``[N]`` (positive: misclassified away from ``goal``)."""
    z_goal = logits.gather(1, goal[:, None]).squeeze(1)
    z_other = logits.masked_fill(F.one_hot(goal, logits.shape[1]).bool(), -math.inf).amax(dim=1)
    return z_other - z_goal


def dlr(logits: Tensor, labels: Tensor) -> Tensor:
    """Difference of logits ratio (Croce & Hein 2020), untargeted, per image ``[N]``:
    ``-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)``; invariant to shifting and scaling the logits.
    Needs at least 3 classes."""
    ranked = logits.sort(dim=1, descending=True).values
    return margin(logits, labels) / (ranked[:, 0] - ranked[:, 2]).clamp_min(1e-12)


def dlr_targeted(logits: Tensor, labels: Tensor, targets: Tensor) -> Tensor:
    """Targeted DLR per image ``[N]``: ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` (to maximise).
    Needs at least 4 classes."""
    ranked = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, labels[:, None]).squeeze(1)
    z_t = logits.gather(1, targets[:, None]).squeeze(1)
    scale = (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3])).clamp_min(1e-12)
    return -(z_y - z_t) / scale


def fooled(logits: Tensor, labels: Tensor, targets: Tensor | None = None) -> Tensor:
    """``[N]`` bool: the goal is met (untargeted: ``argmax != label``; targeted: ``argmax == target``)."""
    pred = logits.argmax(dim=1)
    return pred != labels if targets is None else pred == targets


# -------------------------------------------------------------------------------------------- gradients
def input_gradient(model: Model, x: Tensor, objective: Callable[[Tensor], Tensor],
                   eot_draws: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """The gradient of ``objective(model(x))`` ``[N]`` with respect to ``x``, averaged over ``eot_draws``
    forward passes (Expectation over Transformation, Athalye et al. 2018). Pass ``k`` runs inside
    ``eot_draw(k)``: a randomised defense seeds its draw from the image and ``k``, so draw 0 is the one
    scoring sees and the draws are the same whichever batch an image is in. Returns
    ``(grad [N,C,H,W], objective [N], logits [N,K])`` averaged over the draws, all detached. Parameters get no ``.grad``; works under an outer ``torch.no_grad()``.
    """
    grad = torch.zeros_like(x)
    total_obj: Tensor | None = None
    total_logits: Tensor | None = None
    for k in range(eot_draws):
        with torch.enable_grad(), eot_draw(k):
            xr = x.detach().requires_grad_(True)
            logits = model(xr)
            obj = objective(logits)
            # Seeding with ones is the gradient of the summed objective, i.e. per image its own.
            (g,) = torch.autograd.grad(obj, xr, grad_outputs=torch.ones_like(obj))
        grad += g.detach()
        total_obj = obj.detach() if total_obj is None else total_obj + obj.detach()
        total_logits = logits.detach() if total_logits is None else total_logits + logits.detach()
    assert total_obj is not None and total_logits is not None
    return grad / eot_draws, total_obj / eot_draws, total_logits / eot_draws


# --------------------------------------------------------------------------------------- best iterate
@dataclass
class Best:
    """Per image, the best iterate seen (a successful one first, then the highest objective)."""

    adv: Tensor
    loss: Tensor
    success: Tensor

    @classmethod
    def start(cls, x0: Tensor) -> Best:
        n = x0.shape[0]
        return cls(x0.clone(), torch.full((n,), -math.inf, device=x0.device),
                   torch.zeros(n, dtype=torch.bool, device=x0.device))

    @torch.no_grad()
    def update(self, x: Tensor, succ: Tensor, obj: Tensor) -> None:
        obj = obj.to(self.loss.dtype)
        better = (succ & ~self.success) | ((succ == self.success) & (obj > self.loss))
        self.adv[better] = x.detach()[better]
        self.loss = torch.where(better, obj, self.loss)
        self.success = self.success | succ


@dataclass
class AttackResult:
    """What an attack found, per image.

    adv: ``[N,C,H,W]`` the best iterate (a successful one if any), same dtype and device as the images.
    success: ``[N]`` bool, the goal is met by ``adv`` on the attacked model.
    best_loss: ``[N]`` the attack's objective at ``adv`` (higher = stronger).
    trace: ``[N,T]`` float32, the best objective so far after each of the attack's T iterations
        (over restarts, the best at the same iteration index): mean over images is the convergence curve.
    queries: ``[N]`` int64, forward passes spent on each image.
    grad_zero: ``[N]`` bool, the input gradient was exactly zero or not finite at the start point
        (a sign of gradient masking); all False for gradient-free attacks.
    """

    adv: Tensor
    success: Tensor
    best_loss: Tensor
    trace: Tensor
    queries: Tensor
    grad_zero: Tensor


# ------------------------------------------------------------------------------------------ checking
def as_bool_mask(mask: Tensor) -> Tensor:
    if mask.dtype == torch.bool:
        return mask
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise UsageError("mask must be bool or 0/1-valued; threshold a soft mask first (e.g. mask > 0.5)")
    return mask != 0


def check_images(model: Model, images: Tensor, who: str) -> None:
    """Eval mode, a floating ``[N,C,H,W]`` tensor of pixels in [0,1]."""
    if isinstance(model, torch.nn.Module) and any(m.training for m in model.modules()):
        raise UsageError(f"{who} needs the model in eval mode: call model.eval() before attacking")
    if images.dim() != 4 or not images.is_floating_point():
        raise UsageError(f"images must be a floating [N,C,H,W] tensor, got {images.dtype} {tuple(images.shape)}")
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        raise UsageError("images must be pixels in [0,1] (the model normalises them itself)")


def check_class_tensor(t: Tensor, n: int, device: torch.device, name: str) -> None:
    if t.shape != (n,) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise UsageError(f"{name} must be an integer [N]=[{n}] tensor, got {t.dtype} {tuple(t.shape)}")
    if t.device != device:
        raise UsageError(f"{name} are on {t.device} but images are on {device}")


def check_logits(goal: Tensor, logits: Tensor, name: str) -> None:
    if logits.dim() != 2 or logits.shape[0] != goal.shape[0]:
        raise UsageError(f"model must return [N,K] logits, got {tuple(logits.shape)} for N={goal.shape[0]}")
    if goal.numel() and not bool(((goal >= 0) & (goal < logits.shape[1])).all()):
        raise UsageError(f"{name} must be class indices in [0, {logits.shape[1]})")


def check_generator(generator: torch.Generator | None, images: Tensor) -> None:
    if generator is not None and torch.device(generator.device).type != images.device.type:
        raise UsageError(f"generator is on {generator.device} but images are on {images.device}")


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_eps(eps: float, who: str) -> None:
    if not (0 < eps < math.inf):  # also rejects NaN
        raise UsageError(f"{who} eps must be a positive finite number (e.g. 8/255), got {eps}")


def check_norm(norm: str, who: str) -> None:
    if norm not in NORMS:
        raise UsageError(f"{who} norm must be 'linf' or 'l2', got {norm!r}")


__all__ = ["AttackResult", "Best", "Model", "NORMS", "Norm", "as_bool_mask", "check_class_tensor", "check_eps",
           "check_generator", "check_images", "check_logits", "check_norm", "check_positive_int",
           "cross_entropy", "dlr", "dlr_targeted", "fooled", "input_gradient", "margin", "norms", "project", "tiny"]
