"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020), L-inf or L2, as AutoAttack's
``standard`` version runs it.

FAB looks for the *smallest* perturbation that changes the decision: each step linearises the decision
boundary between the true class and one target class at the current point, projects both the current point and
the original image onto that hyperplane (within the [0,1] box, minimal in the attack's norm), moves to a convex
combination of the two projections biased towards the original (``alpha <= alpha_max``) with a small overshoot
(``eta``), and after each adversarial iterate steps back towards the original (``beta``). The targets are the
``target_classes`` classes with the highest clean logits after the true one, tried in that order on the images
still robust; an image counts as broken when an adversarial point within ``eps`` was found.

Shapes: ``N`` images, ``C`` channels, ``H``x``W`` pixels, ``K`` classes, ``D = C*H*W``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from typobench.adversarial.common import (AttackResult, Model, Norm, check_class_tensor, check_eps, check_generator,
                                          check_images, check_logits, check_norm, check_positive_int, input_gradient)
from typobench.core.errors import UsageError

__all__ = ["FABConfig", "fab", "project_hyperplane"]

TRACE_POINTS = 11
FINAL_SEARCH_STEPS = 5  # bisection steps towards the original after each run (each one forward pass)


@dataclass(frozen=True)
class FABConfig:
    """Settings of one FAB-T attack; distances are in [0,1] pixel units.

    eps: the radius within which an adversarial point counts as a success (and the scale of restarts' starts).
    steps: FAB iterations per target class and restart (each one input gradient and one forward pass).
    restarts: runs per target class; the first starts at the image, the others at a random point at eps/2.
    target_classes: how many of the highest-scoring other classes to try (clamped to K-1).
    alpha_max: the largest weight of the original image's projection in a step (in [0, 1]).
    eta: overshoot of the projections (>= 1); beta: the backward step after a success (in (0, 1]).
    """

    eps: float
    norm: Norm = "linf"
    steps: int = 100
    restarts: int = 1
    target_classes: int = 9
    alpha_max: float = 0.1
    eta: float = 1.05
    beta: float = 0.9

    def __post_init__(self) -> None:
        check_eps(self.eps, "FAB")
        check_norm(self.norm, "FAB")
        check_positive_int(self.steps, "FAB steps")
        check_positive_int(self.restarts, "FAB restarts")
        check_positive_int(self.target_classes, "FAB target_classes")
        _check_number(self.alpha_max, "alpha_max", 0.0, 1.0, "in [0, 1] (AutoAttack uses 0.1)")
        _check_number(self.eta, "eta", 1.0, math.inf, ">= 1 and finite (AutoAttack uses 1.05)")
        _check_number(self.beta, "beta", 1e-12, 1.0, "in (0, 1] (AutoAttack uses 0.9)")

    def strengthened(self) -> FABConfig:
        """Twice the iterations (queries) and restarts: the convergence check's attack."""
        return replace(self, steps=2 * self.steps, restarts=2 * self.restarts)

    def run(self, model: Model, images: Tensor, labels: Tensor, generator: torch.Generator | None = None
            ) -> AttackResult:
        """:func:`fab` with this configuration."""
        return fab(model, images, labels, self, generator=generator)


def _check_number(value: object, name: str, low: float, high: float, wanted: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high
    if not ok or (high == math.inf and not math.isfinite(value)):  # type: ignore[arg-type]
        raise UsageError(f"FAB {name} must be a number {wanted}, got {value!r}")


def fab(model: Model, images: Tensor, labels: Tensor, cfg: FABConfig, *,
        generator: torch.Generator | None = None) -> AttackResult:
    """Attack ``model`` with FAB-T and keep, per image, the closest adversarial point found.

    model: maps ``[N,C,H,W]`` pixels in [0,1] to ``[N,K]`` logits (K >= 2), in eval mode, differentiable.
    images: ``[N,C,H,W]`` floating, in [0,1]; labels: ``[N]`` int true classes.
    generator: the only source of randomness (restarts' starts), on ``images.device``.

    Returns an :class:`AttackResult`. ``success`` ``[N]``: misclassified at a point within ``eps`` (an image
    the model already gets wrong counts, at distance 0). ``adv``: that point, the image itself where none was
    found. ``best_loss`` ``[N]`` and ``trace`` ``[N,T]`` are the *negated distance* (in ``cfg.norm``) of the
    closest adversarial point found, ``-inf`` while there is none: ``trace`` holds it after
    ``round(j * steps / 10)`` steps, ``j = 0..10`` (``T <= 11``; the last point after the final search),
    the best over all target classes and restarts at each point. ``queries`` ``[N]``: forward passes
    (a gradient counts as one). ``grad_zero`` ``[N]``: the gradient towards the first target was exactly
    zero or not finite at the image (always False for images not attacked).
    """
    _check(model, images, labels, cfg, generator)
    with torch.no_grad():
        x0 = images.detach()
        logits = model(x0)
        check_logits(labels, logits, "labels")
        k = logits.shape[1]
        if k < 2:
            raise UsageError(f"FAB needs a model with at least 2 classes, got {k}")
        labels = labels.long()
        others = logits.float().masked_fill(F.one_hot(labels, k).bool(), -math.inf)
        ranked = others.argsort(dim=1, descending=True)[:, :min(cfg.target_classes, k - 1)]
        rec = _Record.start(x0, logits.argmax(dim=1) != labels, len(_checkpoints(cfg.steps)))
        targets = ranked.shape[1]
        for r in range(cfg.restarts):
            todo = (rec.dist > cfg.eps).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            # The target classes side by side in one batch (target-major rows): one sequence of steps for
            # all of them, instead of one per target class, which is what bounds the time of few images.
            rows = todo.repeat(targets)
            goal = torch.cat([ranked[todo, t] for t in range(targets)])
            run = _single_run(model, x0[rows], labels[rows], goal, cfg, r > 0, generator)
            n = todo.numel()
            for t in range(targets):
                block = slice(t * n, (t + 1) * n)
                rec.merge(todo, *(part[block] for part in run), first=(t == 0 and r == 0))
    success = rec.dist <= cfg.eps
    adv = torch.where(success[:, None, None, None], rec.adv, x0)
    return AttackResult(adv=adv, success=success, best_loss=-rec.dist, trace=rec.trace, queries=rec.queries,
                        grad_zero=rec.grad_zero)


@dataclass
class _Record:
    """Per image ``[N]``: the closest adversarial point, its distance (inf: none), the trace, queries, grad_zero."""

    adv: Tensor
    dist: Tensor
    trace: Tensor
    queries: Tensor
    grad_zero: Tensor

    @classmethod
    def start(cls, x0: Tensor, wrong: Tensor, points: int) -> _Record:
        dist = torch.where(wrong, 0.0, math.inf).to(torch.float32)
        return cls(x0.clone(), dist, (-dist)[:, None].repeat(1, points),
                   torch.ones_like(wrong, dtype=torch.long), torch.zeros_like(wrong))

    def merge(self, todo: Tensor, adv: Tensor, dist: Tensor, trace: Tensor, used: Tensor, grad_zero: Tensor,
              first: bool) -> None:
        better = dist < self.dist[todo]
        self.adv[todo[better]] = adv[better]
        self.dist[todo] = torch.minimum(self.dist[todo], dist)
        self.trace[todo] = torch.maximum(self.trace[todo], trace)
        self.queries[todo] += used
        if first:
            self.grad_zero[todo] = grad_zero


def _checkpoints(steps: int) -> list[int]:
    """Step counts at which the trace is read: up to 11, evenly spaced from 0 to ``steps``."""
    return sorted({round(j * steps / (TRACE_POINTS - 1)) for j in range(TRACE_POINTS)})


def _distance(delta: Tensor, norm: Norm) -> Tensor:
    """Per-image ``norm`` of ``[M,...]`` as ``[M]`` float32."""
    flat = delta.flatten(1).float()
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


def _start(x0: Tensor, cfg: FABConfig, generator: torch.Generator | None) -> Tensor:
    """A random point at distance eps/2 around each image of ``[M,C,H,W]``, clipped to [0,1]."""
    if cfg.norm == "linf":
        t = 2 * torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype) - 1
    else:
        t = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    scale = _distance(t, cfg.norm).clamp_min(1e-12).to(x0.dtype).view(-1, 1, 1, 1)
    return (x0 + 0.5 * cfg.eps * t / scale).clamp(0.0, 1.0)


def _single_run(model: Model, x0: Tensor, y: Tensor, target: Tensor, cfg: FABConfig, random_start: bool,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """FAB towards one target per image on ``M`` images ``x0`` ``[M,C,H,W]``: returns the closest adversarial
    point ``[M,C,H,W]`` (``x0`` where none), its distance ``[M]`` (inf: none), the trace ``[M,T]``, the forward
    passes spent ``[M]`` and whether the first gradient was zero or not finite ``[M]``."""
    x = _start(x0, cfg, generator) if random_start else x0.clone()
    best, best_dist = x0.clone(), torch.full((x0.shape[0],), math.inf, device=x0.device)
    used = torch.zeros_like(y)
    marks, trace, grad_zero = _checkpoints(cfg.steps), [], torch.zeros_like(y, dtype=torch.bool)

    def towards_target(logits: Tensor) -> Tensor:  # f = z_t - z_y: the boundary is f = 0, adversarial f > 0
        return (logits.gather(1, target[:, None]) - logits.gather(1, y[:, None])).squeeze(1)

    for i in range(cfg.steps):
        if i == marks[len(trace)]:
            trace.append(-best_dist)
        grad, f, _ = input_gradient(model, x, towards_target)
        if i == 0:
            grad_zero = ~torch.isfinite(grad).flatten(1).all(dim=1) | (grad == 0).flatten(1).all(dim=1)
        x = _step(x, x0, grad, f, cfg)
        is_adv = model(x).argmax(dim=1) != y
        used += 2
        dist = _distance(x - x0, cfg.norm)
        better = is_adv & (dist < best_dist)
        best[better], best_dist = x[better], torch.where(better, dist, best_dist)
        # Back towards the original after a success: the next boundary crossing is then closer to it.
        x = torch.where(is_adv[:, None, None, None], x0 + (x - x0) * cfg.beta, x)
    found = torch.isfinite(best_dist)
    best[found], best_dist[found] = _final_search(model, x0[found], best[found], y[found], cfg.norm)
    used[found] += FINAL_SEARCH_STEPS
    while len(trace) < len(marks):
        trace.append(-best_dist)
    return best, best_dist, torch.stack(trace, dim=1), used, grad_zero


def _step(x: Tensor, x0: Tensor, grad: Tensor, f: Tensor, cfg: FABConfig) -> Tensor:
    """One FAB step from ``x`` ``[M,C,H,W]``, with ``grad`` ``[M,C,H,W]`` and value ``f`` ``[M]`` of the
    linearised boundary function at ``x``: both ``x`` and ``x0`` are projected onto the hyperplane, and the
    step goes to their convex combination (weight ``alpha`` on ``x0``'s), overshooting by ``eta``."""
    w = grad.flatten(1).float()
    b = (w * x.flatten(1).float()).sum(dim=1) - f.float()  # the hyperplane {z : <w, z> = b}, i.e. f + <w, z - x> = 0
    d = project_hyperplane(torch.cat([x.flatten(1), x0.flatten(1)]).float(), torch.cat([w, w]), torch.cat([b, b]),
                           cfg.norm)
    d_x, d_0 = d.view(2, *x.shape).to(x.dtype).unbind(0)
    a_x = _distance(d_x, cfg.norm).clamp_min(1e-8)
    a_0 = _distance(d_0, cfg.norm).clamp_min(1e-8)
    alpha = (a_x / (a_x + a_0)).clamp(0.0, cfg.alpha_max).to(x.dtype).view(-1, 1, 1, 1)
    return ((x + cfg.eta * d_x) * (1 - alpha) + (x0 + cfg.eta * d_0) * alpha).clamp(0.0, 1.0)


def project_hyperplane(t: Tensor, w: Tensor, b: Tensor, norm: Norm) -> Tensor:
    """The smallest step ``d`` ``[R,D]`` (in ``norm``) that takes each row of ``t`` ``[R,D]`` (points in [0,1])
    onto the hyperplane ``<w, t + d> = b`` (``w`` ``[R,D]``, ``b`` ``[R]``) while ``t + d`` stays in [0,1].
    Where the box cannot reach the hyperplane, the step to the box corner closest to it.

    Every coordinate moves in the direction that shrinks ``|<w, t> - b|`` by ``min(mu, room)`` (L-inf) or
    ``min(mu |w_i|, room)`` (L2, the KKT form of the box-constrained problem), ``room`` being the distance to
    the box face in that direction; ``<w, d>`` grows piecewise linearly in ``mu``, so the level ``mu`` is found
    exactly by sorting the coordinates' saturation points.
    """
    gap = b - (w * t).sum(dim=1)
    sign = torch.where(gap >= 0, 1.0, -1.0).to(w.dtype)
    w, gap = w * sign[:, None], gap * sign  # now the step must raise <w, d> to gap >= 0
    room = torch.where(w > 0, 1 - t, t)
    aw = w.abs()
    if norm == "linf":
        saturates, slope = room, aw
    else:
        saturates, slope = torch.where(aw > 0, room / aw.clamp_min(1e-30), math.inf), aw * aw
    mu = _level(saturates, aw * room, slope, gap)[:, None]
    size = torch.minimum(mu, room) if norm == "linf" else torch.where(aw > 0, torch.minimum(mu * aw, room), 0.0)
    return torch.sign(w) * size


def _level(saturates: Tensor, full: Tensor, slope: Tensor, gap: Tensor) -> Tensor:
    """The smallest ``mu`` ``[R]`` with ``sum_i (full_i if mu >= saturates_i else mu * slope_i) >= gap``
    (all ``[R,D]``, ``full_i = saturates_i * slope_i``); inf where even all ``full`` fall short."""
    order = saturates.argsort(dim=1)
    at, full, slope = saturates.gather(1, order), full.gather(1, order), slope.gather(1, order)
    saturated = full.cumsum(dim=1) - full  # reached by the coordinates before k
    still = slope.flip(1).cumsum(dim=1).flip(1)  # rate of the coordinates from k on
    reach = saturated + torch.where(still > 0, at * still, 0.0)  # <w, d> at mu = at_k, nondecreasing in k
    k = (reach < gap[:, None]).sum(dim=1)
    kk = k.clamp(max=at.shape[1] - 1)[:, None]
    rate = still.gather(1, kk).squeeze(1)
    mu = torch.where(rate > 0, (gap - saturated.gather(1, kk).squeeze(1)) / rate.clamp_min(1e-30), 0.0)
    return torch.where(k == at.shape[1], math.inf, mu)


def _final_search(model: Model, x0: Tensor, adv: Tensor, y: Tensor, norm: Norm) -> tuple[Tensor, Tensor]:
    """Bisection on the segment from ``x0`` (classified right) to ``adv`` (wrong), both ``[M,C,H,W]``, for the
    point closest to ``x0`` that is still adversarial: returns it ``[M,C,H,W]`` and its distance ``[M]``."""
    low = torch.zeros(x0.shape[0], device=x0.device, dtype=x0.dtype)
    high = torch.ones_like(low)
    for _ in range(FINAL_SEARCH_STEPS):
        mid = (low + high) / 2
        wrong = model(x0 + mid.view(-1, 1, 1, 1) * (adv - x0)).argmax(dim=1) != y
        high, low = torch.where(wrong, mid, high), torch.where(wrong, low, mid)
    out = x0 + high.view(-1, 1, 1, 1) * (adv - x0)
    return out, _distance(out - x0, norm)


def _check(model: Model, images: Tensor, labels: Tensor, cfg: FABConfig, generator: torch.Generator | None) -> None:
    if not isinstance(cfg, FABConfig):
        raise UsageError(f"cfg must be a FABConfig, got {type(cfg).__name__}")
    check_images(model, images, "FAB")
    check_class_tensor(labels, images.shape[0], images.device, "labels")
    check_generator(generator, images)
