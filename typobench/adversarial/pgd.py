"""Projected gradient descent (Madry et al. 2018) in [0,1] pixel space, L-inf or L2, with masks.

The attacked model is any callable that takes ``[N,C,H,W]`` pixels in [0,1], normalises them
itself and returns ``[N,K]`` logits (at its own temperature). The caller puts it in eval mode;
the attack never changes the model's mode, device or parameters.

The model must treat the images of a batch independently (true in eval mode): the gradient of
the summed per-image objective is then, per image, the gradient of that image's objective.

Shapes: ``N`` images, ``C`` channels, ``H``x``W`` pixels, ``K`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from typobench.adversarial.common import (AttackResult, as_bool_mask, check_class_tensor, check_logits,
                                          check_positive_int, input_gradient, norms, tiny)
from typobench.core.errors import UsageError

Norm = Literal["linf", "l2"]
Loss = Literal["ce", "margin"]
Region = Literal["everywhere", "inside", "outside"]

__all__ = ["PGDConfig", "PGDResult", "pgd", "region_mask"]


@dataclass(frozen=True)
class PGDConfig:
    """Settings of one PGD attack; all distances are in [0,1] pixel units.

    eps: radius of the perturbation ball (e.g. 8/255 for L-inf); ``math.inf`` means no ball
        (Fort 2021's unbounded attack: the norm's step rule without projection, and no random
        start, since there is no ball to sample from).
    step_size: L-inf: size of the sign step per pixel; L2: length of the step per image.
    steps: gradient steps per restart (0 evaluates the start point only).
    random_start: start uniformly in the L-inf box, or at radius ``U(0,1)*eps`` in a uniformly
        random direction in the L2 ball (as torchattacks does); ignored when eps is inf or 0.
    restarts: independent runs from fresh random starts; the best iterate over all is kept.
        Without a random start every run would repeat the same one, so only one is run.
    loss: "ce" cross-entropy, or "margin" the logit difference (CW-style):
        untargeted ``max_{j!=y} z_j - z_y``, targeted ``z_t - max_{j!=t} z_j``.
    targeted: minimise the loss towards ``targets`` instead of maximising it away from ``labels``.
    eot_draws: forward/backward passes per iterate whose gradients, objectives and logits are averaged
        (Expectation over Transformation, for a randomised model); 1 is plain PGD.
    """

    eps: float
    step_size: float
    steps: int
    norm: Norm = "linf"
    random_start: bool = True
    restarts: int = 1
    loss: Loss = "ce"
    targeted: bool = False
    eot_draws: int = 1

    def __post_init__(self) -> None:
        if not (self.eps >= 0):  # also rejects NaN
            raise UsageError(f"PGD eps must be >= 0 (math.inf for unbounded), got {self.eps}")
        if not (0 < self.step_size < math.inf):
            raise UsageError(f"PGD step_size must be a positive finite number, got {self.step_size}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise UsageError(f"PGD steps must be an integer >= 0, got {self.steps!r}")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise UsageError(f"PGD restarts must be an integer >= 1, got {self.restarts!r}")
        if self.norm not in ("linf", "l2"):
            raise UsageError(f"PGD norm must be 'linf' or 'l2', got {self.norm!r}")
        if self.loss not in ("ce", "margin"):
            raise UsageError(f"PGD loss must be 'ce' or 'margin', got {self.loss!r}")
        check_positive_int(self.eot_draws, "PGD eot_draws")

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.eps)

    @property
    def starts_randomly(self) -> bool:
        return self.random_start and self.bounded and self.eps > 0

    def strengthened(self) -> PGDConfig:
        """Twice the steps and (with a random start) twice the restarts: the convergence check's attack."""
        return replace(self, steps=max(1, 2 * self.steps), restarts=2 * self.restarts)

    def run(self, model: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor,
            generator: torch.Generator | None = None) -> AttackResult:
        """Untargeted PGD as one attack of a worst-case cascade (``typobench.adversarial.cascade``)."""
        result = pgd(model, images, labels, self, generator=generator)
        runs = self.restarts if self.starts_randomly else 1
        n = images.shape[0]
        return AttackResult(adv=result.adv, success=result.success, best_loss=result.best_loss,
                            trace=result.best_loss.float()[:, None],
                            queries=torch.full((n,), runs * (self.steps + 1), dtype=torch.long, device=images.device),
                            grad_zero=torch.zeros(n, dtype=torch.bool, device=images.device))


@dataclass
class PGDResult:
    """What PGD found, per image.

    adv: ``[N,C,H,W]`` the most successful iterate over all steps and restarts (a successful one
        if any, then the highest objective), same dtype and device as the input images.
    success: ``[N]`` bool, the goal is met by ``adv``: untargeted ``argmax != label``,
        targeted ``argmax == target``.
    best_loss: ``[N]`` the objective at ``adv`` (higher = stronger attack; for a targeted attack
        it is the negated loss towards the target).
    steps_to_success: ``[N]`` int64, the fewest gradient steps after which an iterate of some
        restart met the goal (0: the start point already did), -1 if none ever did.
    """

    adv: Tensor
    success: Tensor
    best_loss: Tensor
    steps_to_success: Tensor


def region_mask(base: Tensor, region: Region) -> Tensor:
    """Turn a base mask (e.g. where text was drawn) into the mask of pixels PGD may change.

    base: bool or 0/1 float, any shape (typically ``[N,1,H,W]``). Returns a bool tensor of the
    same shape: all True ("everywhere"), ``base`` ("inside") or its complement ("outside").
    """
    b = as_bool_mask(base)
    if region == "everywhere":
        return torch.ones_like(b)
    if region == "inside":
        return b
    if region == "outside":
        return ~b
    raise UsageError(f"mask region must be 'everywhere', 'inside' or 'outside', got {region!r}")


def pgd(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    cfg: PGDConfig,
    *,
    targets: Tensor | None = None,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PGDResult:
    """Attack ``model`` with PGD and keep, per image, the best iterate seen.

    model: maps ``[N,C,H,W]`` pixels in [0,1] to ``[N,K]`` logits; must be in eval mode.
    images: ``[N,C,H,W]`` floating, in [0,1]; device and dtype of the attack come from here.
    labels: ``[N]`` int, true classes (the goal of an untargeted attack; unused when targeted).
    targets: ``[N]`` int, required iff ``cfg.targeted``.
    mask: ``[N|1, C|1, H, W]`` bool or 0/1 float; only pixels where it is true are perturbed,
        the others stay bit-identical to ``images``. None means everywhere.
    generator: source of the random start, on ``images.device``; the same seed gives the same
        result. None uses torch's global generator.

    Each restart evaluates ``steps + 1`` iterates (start point, then after each step), one
    forward pass each (``eot_draws`` each with EOT), and takes ``steps`` input gradients; nothing else is
    run on the model.
    Works under an outer ``torch.no_grad()``: gradients are enabled locally.
    """
    _check_inputs(model, images, labels, cfg, targets, mask, generator)
    x0 = images.detach()
    goal = (targets if cfg.targeted else labels).detach().long()  # cross_entropy and gather want int64
    # Expanded once: torch.where needs the full shape anyway, and so does the L2 norm of a masked grad.
    keep = None if mask is None else as_bool_mask(mask).expand_as(x0)
    best = _Best.start(x0)
    for _ in range(cfg.restarts if cfg.starts_randomly else 1):
        _restart(model, x0, goal, cfg, keep, generator, best)
    assert best.loss is not None  # steps + 1 >= 1 evaluations always happen
    return PGDResult(adv=best.adv, success=best.success, best_loss=best.loss, steps_to_success=best.first_success)


@dataclass
class _Best:
    """Per image, the best iterate seen over all restarts (success first, then the objective), and the
    first step at which any restart succeeded (-1: never)."""

    adv: Tensor
    loss: Tensor | None  # created at the first evaluation, in the logits' dtype
    success: Tensor
    first_success: Tensor
    labels_checked: bool = False

    @classmethod
    def start(cls, x0: Tensor) -> _Best:
        n = x0.shape[0]
        return cls(x0.clone(), None, torch.zeros(n, dtype=torch.bool, device=x0.device),
                   torch.full((n,), -1, dtype=torch.long, device=x0.device))

    @torch.no_grad()
    def update(self, x: Tensor, succ: Tensor, obj: Tensor) -> None:
        if self.loss is None:
            self.loss = torch.full_like(obj, -math.inf)
        # Success first, then the objective: a successful iterate is never replaced by a failing one.
        better = (succ & ~self.success) | ((succ == self.success) & (obj > self.loss))
        self.adv[better] = x.detach()[better]
        self.loss = torch.where(better, obj, self.loss)
        self.success = self.success | succ

    def merge_first_success(self, run_first: Tensor) -> None:
        first = self.first_success
        self.first_success = torch.where(first < 0, run_first,
                                         torch.where(run_first < 0, first, torch.minimum(first, run_first)))


def _restart(model: Callable[[Tensor], Tensor], x0: Tensor, goal: Tensor, cfg: PGDConfig, keep: Tensor | None,
             generator: torch.Generator | None, best: _Best) -> None:
    """One run of PGD from a (random) start: ``steps + 1`` evaluations, ``steps`` input gradients."""
    x = _start(x0, cfg, keep, generator)
    run_first = torch.full((x0.shape[0],), -1, dtype=torch.long, device=x0.device)
    for k in range(cfg.steps + 1):
        last = k == cfg.steps
        if cfg.eot_draws > 1:  # a separate path, so that plain PGD's stays bit for bit as it was
            x, succ = _eot_iterate(model, x, x0, goal, cfg, keep, best, last)
            run_first = torch.where((run_first < 0) & succ, torch.full_like(run_first, k), run_first)
            continue
        # The final iterate is only evaluated, so it needs no graph.
        with torch.set_grad_enabled(not last):
            if not last:
                x = x.detach().requires_grad_(True)
            logits = model(x)
            if not best.labels_checked:  # one host sync per call, to turn an index error into a usage error
                check_logits(goal, logits, "targets" if cfg.targeted else "labels")
                best.labels_checked = True
            obj = _objective(logits, goal, cfg)
        with torch.no_grad():
            pred = logits.detach().argmax(dim=1)
            succ = pred == goal if cfg.targeted else pred != goal
            best.update(x, succ, obj.detach())
            run_first = torch.where((run_first < 0) & succ, torch.full_like(run_first, k), run_first)
        if last:
            break
        # Gradient w.r.t. the input only: parameters get no .grad, and the graph is freed here.
        # Seeding with ones is the gradient of the summed objective, i.e. per image its own.
        (grad,) = torch.autograd.grad(obj, x, grad_outputs=torch.ones_like(obj))
        with torch.no_grad():
            x = _step(x.detach(), grad, x0, cfg, keep)
    best.merge_first_success(run_first)


def _eot_iterate(model: Callable[[Tensor], Tensor], x: Tensor, x0: Tensor, goal: Tensor, cfg: PGDConfig,
                 keep: Tensor | None, best: _Best, last: bool) -> tuple[Tensor, Tensor]:
    """One EOT iterate: evaluate ``x`` ``[N,C,H,W]`` on ``cfg.eot_draws`` draws of a randomised model (success
    and objective of the averaged logits and objectives) and, unless ``last``, step along the averaged
    gradient. Returns ``(next iterate, [N] bool success of x)``."""
    def objective(logits: Tensor) -> Tensor:
        if not best.labels_checked:  # before the objective indexes the logits with the goal classes
            check_logits(goal, logits, "targets" if cfg.targeted else "labels")
            best.labels_checked = True
        return _objective(logits, goal, cfg)

    if last:  # the final iterate is only evaluated: no graph
        with torch.no_grad():
            logits = sum(model(x).detach() for _ in range(cfg.eot_draws)) / cfg.eot_draws
        grad, obj = None, objective(logits)
    else:
        grad, obj, logits = input_gradient(model, x, objective, cfg.eot_draws)
    with torch.no_grad():
        pred = logits.argmax(dim=1)
        succ = pred == goal if cfg.targeted else pred != goal
        best.update(x, succ, obj)
        return (x if grad is None else _step(x.detach().clone(), grad, x0, cfg, keep)), succ


def _objective(logits: Tensor, goal: Tensor, cfg: PGDConfig) -> Tensor:
    """Per-image objective ``[N]`` to maximise, from ``[N,K]`` logits and ``[N]`` goal classes."""
    if cfg.loss == "ce":
        ce = F.cross_entropy(logits, goal, reduction="none")
        return -ce if cfg.targeted else ce
    z_goal = logits.gather(1, goal[:, None]).squeeze(1)
    is_goal = F.one_hot(goal, logits.shape[1]).bool()
    z_other = logits.masked_fill(is_goal, -math.inf).amax(dim=1)
    return z_goal - z_other if cfg.targeted else z_other - z_goal


def _start(x0: Tensor, cfg: PGDConfig, keep: Tensor | None, generator: torch.Generator | None) -> Tensor:
    """The start point ``[N,C,H,W]``: ``x0`` or a random point of the ball around it (masked, in [0,1])."""
    if not cfg.starts_randomly:
        return x0.clone()
    if cfg.norm == "linf":
        u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        delta = (2 * u - 1) * cfg.eps
    else:
        direction = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        if keep is not None:  # draw the direction inside the mask so its norm is the norm that counts
            direction = direction * keep
        radius = torch.rand((x0.shape[0], 1, 1, 1), generator=generator, device=x0.device, dtype=x0.dtype)
        delta = direction / norms(direction).clamp_min(tiny(x0)) * radius * cfg.eps
    return _finish(x0 + delta, x0, keep)


def _step(x: Tensor, grad: Tensor, x0: Tensor, cfg: PGDConfig, keep: Tensor | None) -> Tensor:
    """One ascent step from ``x`` along ``grad`` (both ``[N,C,H,W]``), projected back to the ball.

    ``x`` is a fresh detached iterate owned by the loop and ``grad`` is not reused, so both are
    updated in place: a step is the hot path of every attack and allocating ~7 full-size tensors
    per step costs as much as a small model's forward pass.
    """
    if keep is not None:  # the L2 step length is spent only where pixels may change
        grad = grad.mul_(keep)
    if cfg.norm == "linf":
        x.add_(grad.sign_(), alpha=cfg.step_size)
        if cfg.bounded:
            # x0 + clamp(x - x0): the same arithmetic, bit for bit, as the usual out-of-place form.
            x = x.sub_(x0).clamp_(-cfg.eps, cfg.eps).add_(x0)
    else:
        x.add_(grad.div_(norms(grad).clamp_min(tiny(x))), alpha=cfg.step_size)
        if cfg.bounded:
            delta = x.sub_(x0)
            # Scale down only the images outside the ball; clamping to [0,1] below moves every
            # pixel towards x0 (which is in [0,1]), so it cannot leave the ball again.
            scale = (cfg.eps / norms(delta).clamp_min(tiny(delta))).clamp(max=1.0)
            x = delta.mul_(scale).add_(x0)
    return _finish(x, x0, keep)


def _finish(x: Tensor, x0: Tensor, keep: Tensor | None) -> Tensor:
    """Clamp to [0,1] (in place) and restore the pixels outside the mask bit for bit."""
    x = x.clamp_(0.0, 1.0)
    return x if keep is None else torch.where(keep, x, x0)


def _check_inputs(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    cfg: PGDConfig,
    targets: Tensor | None,
    mask: Tensor | None,
    generator: torch.Generator | None,
) -> None:
    if not isinstance(cfg, PGDConfig):
        raise UsageError(f"cfg must be a PGDConfig, got {type(cfg).__name__}")
    if isinstance(model, torch.nn.Module) and any(m.training for m in model.modules()):
        raise UsageError("PGD needs the model in eval mode: call model.eval() before attacking")
    if images.dim() != 4 or not images.is_floating_point():
        raise UsageError(f"images must be a floating [N,C,H,W] tensor, got {images.dtype} {tuple(images.shape)}")
    n = images.shape[0]
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        raise UsageError("images must be pixels in [0,1] (the model normalises them itself)")
    check_class_tensor(labels, n, images.device, "labels")
    if cfg.targeted:
        if targets is None:
            raise UsageError("a targeted PGD attack needs targets=[N] class indices")
        check_class_tensor(targets, n, images.device, "targets")
    elif targets is not None:
        raise UsageError("targets were given but cfg.targeted is False; set targeted=True or drop targets")
    if mask is not None:
        n_, c, h, w = images.shape
        ok = (
            mask.dim() == 4
            and mask.shape[0] in (1, n_)
            and mask.shape[1] in (1, c)
            and tuple(mask.shape[2:]) == (h, w)
        )
        if not ok:
            raise UsageError(f"mask shape {tuple(mask.shape)} does not fit images {tuple(images.shape)}: use [N|1, C|1, H, W]")
        if mask.device != images.device:
            raise UsageError(f"mask is on {mask.device} but images are on {images.device}")
    if generator is not None and cfg.starts_randomly and torch.device(generator.device).type != images.device.type:
        raise UsageError(f"generator is on {generator.device} but images are on {images.device}")
