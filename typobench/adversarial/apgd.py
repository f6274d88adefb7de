"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"): PGD with momentum whose step size halves at checkpoints when progress stalls, in
L-inf or L2, on the cross-entropy or the DLR loss, untargeted (APGD-CE / APGD-DLR) or targeted at the top
classes by clean logit (APGD-T).

As in AutoAttack, an image counts as broken when the model misclassifies it (also for APGD-T: aiming at a
target is only the route), images misclassified already are not attacked, and every restart runs only on
the images still standing, with APGD-T's target classes side by side in one batch (one sequence of steps). Within a run an image stops as soon as it is broken,
so forward and backward passes are spent on the unbroken subset only.

Shapes: ``N`` images, ``C`` channels, ``H``x``W`` pixels, ``K`` classes, ``T = steps + 1`` iterates per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

import torch
from torch import Tensor

from typobench.adversarial.common import (AttackResult, Best, Model, Norm, check_class_tensor, check_eps,
                                          check_generator, check_images, check_logits, check_norm,
                                          check_positive_int, cross_entropy, dlr, dlr_targeted, fooled,
                                          input_gradient, norms, project, tiny)
from typobench.core.errors import UsageError

Loss = Literal["ce", "dlr"]
LOSSES = ("ce", "dlr")
MOMENTUM = 0.75  # the paper's alpha: weight of the new step against the previous displacement

__all__ = ["APGDConfig", "LOSSES", "apgd", "checkpoints"]


@dataclass(frozen=True)
class APGDConfig:
    """Settings of one APGD attack; distances in [0,1] pixel units.

    eps: radius of the ball (e.g. 8/255 for L-inf, 0.5 for L2). steps: iterations per run.
    restarts: runs from fresh random starts (per target class when targeted) on the unbroken images.
    loss: "ce" or "dlr" (difference of logits ratio; needs K >= 3). targeted: APGD-T, one run per target
        class (the 2nd, 3rd, ... class by clean logit), loss "dlr" = targeted DLR (needs K >= 4, AutoAttack's
        choice) or "ce" = cross-entropy towards the target.
    target_classes: how many target classes APGD-T tries; clamped to K-1 on a data set with fewer classes.
    rho: the step size halves at a checkpoint where fewer than this fraction of the steps since the last one
        raised the objective. eot_draws: forward/backward passes averaged per gradient (EOT).
    """

    eps: float
    norm: Norm = "linf"
    steps: int = 100
    restarts: int = 1
    loss: Loss = "ce"
    targeted: bool = False
    target_classes: int = 9
    rho: float = 0.75
    eot_draws: int = 1

    def __post_init__(self) -> None:
        check_eps(self.eps, "APGD")
        check_norm(self.norm, "APGD")
        check_positive_int(self.steps, "APGD steps")
        check_positive_int(self.restarts, "APGD restarts")
        check_positive_int(self.target_classes, "APGD target_classes")
        check_positive_int(self.eot_draws, "APGD eot_draws")
        if self.loss not in LOSSES:
            raise UsageError(f"APGD loss must be 'ce' or 'dlr', got {self.loss!r}")
        if not isinstance(self.targeted, bool):
            raise UsageError(f"APGD targeted must be True or False, got {self.targeted!r}")
        if not (0 < self.rho < 1):  # also rejects NaN
            raise UsageError(f"APGD rho must be in (0, 1) (the paper uses 0.75), got {self.rho}")

    def strengthened(self) -> APGDConfig:
        """Twice the iterations (queries) and restarts: the convergence check's attack."""
        return replace(self, steps=2 * self.steps, restarts=2 * self.restarts)

    def run(self, model: Model, images: Tensor, labels: Tensor,
            generator: torch.Generator | None = None) -> AttackResult:
        """:func:`apgd` with these settings."""
        return apgd(model, images, labels, self, generator=generator)

    def targets_used(self, num_classes: int) -> int:
        """Target classes APGD-T runs on ``num_classes`` classes (0 when untargeted): a data set has only
        K-1 classes other than the label."""
        return min(self.target_classes, num_classes - 1) if self.targeted else 0

    def clamps_targets(self, num_classes: int) -> bool:
        """Whether ``target_classes`` is more than a data set of ``num_classes`` classes allows."""
        return self.targeted and self.target_classes > num_classes - 1

    def check_classes(self, num_classes: int) -> None:
        """Raise ``UsageError`` if the loss cannot be computed with ``num_classes`` classes."""
        need = (4 if self.loss == "dlr" else 2) if self.targeted else (3 if self.loss == "dlr" else 2)
        if num_classes < need:
            what = f"{'targeted ' if self.targeted else ''}{self.loss.upper()} loss"
            fix = "use loss = 'ce'" if self.loss == "dlr" else "use a data set with more classes"
            raise UsageError(f"APGD's {what} needs at least {need} classes, the model has {num_classes}: {fix}")


def checkpoints(steps: int) -> dict[int, int]:
    """``{iteration: window}``: after which iterations (1-based) the step size is reviewed, and how many
    iterations since the previous review each covers. The paper's p_0=0, p_1=0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), in whole iterations (each at least 1)."""
    window, shrink, least = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, at = {}, window
    while at <= steps:
        out[at] = window
        window = max(window - shrink, least)
        at += window
    return out


def apgd(model: Model, images: Tensor, labels: Tensor, cfg: APGDConfig, *,
         generator: torch.Generator | None = None) -> AttackResult:
    """Attack ``model`` with APGD (APGD-T when ``cfg.targeted``) and keep, per image, the best iterate.

    model: ``[N,C,H,W]`` pixels in [0,1] -> ``[N,K]`` logits, in eval mode. images: ``[N,C,H,W]`` in [0,1];
    the attack's device and dtype come from here. labels: ``[N]`` int true classes.
    generator: source of the random starts, on the images' device; the same seed gives the same result.

    Returns :class:`AttackResult`; ``trace`` is ``[N, steps+1]`` (start point, then after each step), the
    best objective so far, maximised over runs; images never attacked (misclassified already) carry their
    clean objective. ``queries`` counts forward passes (EOT draws included, 1 for the clean pass).
    """
    _check(model, images, labels, cfg, generator)
    x0, labels = images.detach(), labels.detach().long()
    with torch.no_grad():
        clean = sum(model(x0).detach() for _ in range(cfg.eot_draws)) / cfg.eot_draws
    check_logits(labels, clean, "labels")
    cfg.check_classes(clean.shape[1])
    goals = _goals(cfg, clean)
    book = _Book.start(x0, labels, cfg)
    book.queries += cfg.eot_draws
    broken = fooled(clean, labels)
    clean_obj = _objective(clean, labels, goals[0], cfg).to(book.best.loss.dtype)
    # Only the broken images enter the record now: the others' best is the first iterate of a run.
    book.best.update(x0, broken, torch.where(broken, clean_obj, torch.full_like(clean_obj, -math.inf)))
    for _ in range(cfg.restarts):
        todo = (~book.best.success).nonzero().squeeze(1)
        if todo.numel():
            _run_goals(model, x0, todo, goals, cfg, generator, book)
    return book.result(clean_obj)


def _run_goals(model: Model, x0: Tensor, todo: Tensor, goals: list[Tensor | None], cfg: APGDConfig,
               generator: torch.Generator | None, book: _Book) -> None:
    """One run per goal on the images ``todo`` ``[n]``, all goals side by side in one batch of ``n * len(goals)``.

    AutoAttack runs APGD-T's target classes one after the other, each on the images the earlier ones left;
    side by side, the target classes cost one run's sequence of steps instead of nine (what bounds the time of
    a few surviving images), and every image is still attacked towards every target class, so the worst case
    over them is at least as strong. Each image keeps its best iterate over the goals (success first, then the
    objective, in goal order).
    """
    if len(goals) == 1:
        _run(model, x0, todo, goals[0], cfg, generator, book)
        return
    n = todo.numel()
    rows = todo.repeat(len(goals))  # goal-major: goal k's copies of the images are rows k*n .. (k+1)*n - 1
    stacked = _Book.start(x0[rows], book.labels[rows], cfg)
    _run(model, x0[rows], torch.arange(rows.numel(), device=rows.device),
         torch.cat([goal[todo] for goal in goals]), cfg, generator, stacked)
    for k in range(len(goals)):
        block = slice(k * n, (k + 1) * n)
        part = Best(book.best.adv[todo], book.best.loss[todo], book.best.success[todo])
        part.update(stacked.best.adv[block], stacked.best.success[block], stacked.best.loss[block])
        book.best.adv[todo], book.best.loss[todo], book.best.success[todo] = part.adv, part.loss, part.success
        book.queries[todo] += stacked.queries[block]
        book.grad_zero[todo] |= stacked.grad_zero[block]
        book.trace[todo] = torch.fmax(book.trace[todo], stacked.trace[block])


def _goals(cfg: APGDConfig, clean: Tensor) -> list[Tensor | None]:
    """The target of each APGD-T pass, ``[N]`` each (the 2nd, 3rd, ... class by clean logit), or ``[None]``."""
    if not cfg.targeted:
        return [None]
    order = clean.argsort(dim=1, descending=True)
    return [order[:, rank] for rank in range(1, cfg.targets_used(clean.shape[1]) + 1)]


def _objective(logits: Tensor, labels: Tensor, goal: Tensor | None, cfg: APGDConfig) -> Tensor:
    """Per-image objective ``[N]`` to maximise, from ``[N,K]`` logits, ``[N]`` labels and targets."""
    if goal is None:
        return cross_entropy(logits, labels) if cfg.loss == "ce" else dlr(logits, labels)
    return dlr_targeted(logits, labels, goal) if cfg.loss == "dlr" else -cross_entropy(logits, goal)


@dataclass
class _Book:
    """What the attack has found over all runs, per image of the batch (all ``[N]`` but adv and trace)."""

    best: Best
    labels: Tensor
    trace: Tensor  # [N,T] float32, NaN where no run has been yet
    queries: Tensor
    grad_zero: Tensor
    eot_draws: int

    @classmethod
    def start(cls, x0: Tensor, labels: Tensor, cfg: APGDConfig) -> _Book:
        n, dev = x0.shape[0], x0.device
        return cls(Best.start(x0), labels, torch.full((n, cfg.steps + 1), math.nan, device=dev),
                   torch.zeros(n, dtype=torch.long, device=dev), torch.zeros(n, dtype=torch.bool, device=dev),
                   cfg.eot_draws)

    def record(self, idx: Tensor, x: Tensor, logits: Tensor, obj: Tensor) -> Tensor:
        """Offer the iterates ``x`` ``[n,C,H,W]`` of images ``idx`` ``[n]``; returns ``[n]`` bool broken."""
        succ = fooled(logits, self.labels[idx])
        # Best's rule (success first, then the objective) applied to the subset.
        part = Best(self.best.adv[idx], self.best.loss[idx], self.best.success[idx])
        part.update(x, succ, obj)
        self.best.adv[idx], self.best.loss[idx], self.best.success[idx] = part.adv, part.loss, part.success
        self.queries[idx] += self.eot_draws
        return succ

    def merge(self, run_trace: Tensor, idx: Tensor) -> None:
        """Fold one run's ``[n,T]`` trace (NaN after an image stopped) into the batch's, by the maximum."""
        # Best-so-far never decreases, so carrying the last value forward is a running maximum.
        rows = run_trace.nan_to_num(nan=-math.inf).cummax(dim=1).values
        self.trace[idx] = torch.fmax(self.trace[idx], rows)

    def result(self, clean_obj: Tensor) -> AttackResult:
        never = self.trace.isnan().all(dim=1)
        trace = torch.where(never[:, None], clean_obj.float()[:, None], self.trace)
        return AttackResult(self.best.adv, self.best.success, self.best.loss, trace, self.queries, self.grad_zero)


@dataclass
class _State:
    """One run's iterates, for the images still standing (every tensor's first dimension is theirs)."""

    idx: Tensor  # [n] positions in the batch
    x0: Tensor
    labels: Tensor
    goal: Tensor | None
    x: Tensor  # current iterate [n,C,H,W]
    x_prev: Tensor  # the one before: the momentum term is x - x_prev
    grad: Tensor
    f: Tensor  # objective at x [n]
    x_max: Tensor  # highest-objective iterate of the run, where a halving restarts from
    g_max: Tensor
    f_max: Tensor
    f_check: Tensor  # f_max at the previous checkpoint
    eta: Tensor  # step size [n,1,1,1]
    ups: Tensor  # steps that raised the objective since the previous checkpoint [n]
    halved: Tensor  # the step size was halved at the previous checkpoint [n] bool

    def keep(self, rows: Tensor) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                setattr(self, f.name, value[rows])


def _run(model: Model, x0_all: Tensor, todo: Tensor, goal_all: Tensor | None, cfg: APGDConfig,
         generator: torch.Generator | None, book: _Book) -> None:
    """One APGD run from a random start on images ``todo`` ``[n]``; each stops once broken."""
    x0, labels = x0_all[todo], book.labels[todo]
    goal = None if goal_all is None else goal_all[todo]
    x = _random_start(x0, cfg, generator)
    grad, obj, logits = _evaluate(model, x, labels, goal, cfg)
    flat = grad.flatten(1)
    book.grad_zero[todo] |= (flat == 0).all(dim=1) | ~flat.isfinite().all(dim=1)
    s = _State(todo, x0, labels, goal, x, x, grad, obj, x, grad, obj, obj,
               torch.full((x.shape[0], 1, 1, 1), 2 * cfg.eps, dtype=x.dtype, device=x.device),
               torch.zeros_like(todo), torch.ones_like(todo, dtype=torch.bool))
    trace = torch.full((x0_all.shape[0], cfg.steps + 1), math.nan, device=x.device)
    trace[todo, 0] = obj.float()
    broken = book.record(todo, x, logits, obj)
    reviews = checkpoints(cfg.steps)
    for i in range(1, cfg.steps + 1):
        s.keep(~broken)
        if not s.idx.numel():
            break
        x = _step(s, cfg, first=i == 1)
        grad, obj, logits = _evaluate(model, x, s.labels, s.goal, cfg)
        s.x_prev, s.x, s.grad = s.x, x, grad
        s.ups = s.ups + (obj > s.f)
        s.f = obj
        better = obj > s.f_max
        s.x_max, s.g_max = _where(better, x, s.x_max), _where(better, grad, s.g_max)
        s.f_max = torch.where(better, obj, s.f_max)
        trace[s.idx, i] = s.f_max.float()
        broken = book.record(s.idx, x, logits, obj)
        if i in reviews:
            _review(s, reviews[i], cfg.rho)
    book.merge(trace[todo], todo)


def _where(rows: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Per image ``[n]`` bool: ``a`` where true, else ``b`` (both ``[n,C,H,W]``)."""
    return torch.where(rows.view(-1, *([1] * (a.dim() - 1))), a, b)


def _review(s: _State, window: int, rho: float) -> None:
    """A checkpoint: halve the step of the images that stalled and send them back to their best iterate.

    Stalled: fewer than ``rho`` of the ``window`` steps since the last checkpoint raised the objective, or
    the step size was not halved last time and the best objective has not risen since.
    """
    stalled = (s.ups < rho * window) | (~s.halved & (s.f_check >= s.f_max))
    s.eta = torch.where(stalled.view(-1, 1, 1, 1), s.eta / 2, s.eta)
    s.x, s.grad = _where(stalled, s.x_max, s.x), _where(stalled, s.g_max, s.grad)
    # The next step is compared with the point it starts from, which is now the best one.
    s.f = torch.where(stalled, s.f_max, s.f)
    s.halved, s.f_check, s.ups = stalled, s.f_max, torch.zeros_like(s.ups)


def _step(s: _State, cfg: APGDConfig, first: bool) -> Tensor:
    """The next iterate ``[n,C,H,W]``: a projected gradient step ``z``, then (after the first step) the
    momentum mix ``x + a (z - x) + (1 - a) (x - x_prev)``, projected again."""
    if cfg.norm == "linf":
        direction = s.grad.sign()
    else:  # L2: the step has length eta along the normalised gradient
        direction = s.grad / norms(s.grad).clamp_min(tiny(s.grad))
    z = project(s.x + s.eta * direction, s.x0, cfg.eps, cfg.norm)
    if first:
        return z
    return project(s.x + MOMENTUM * (z - s.x) + (1 - MOMENTUM) * (s.x - s.x_prev), s.x0, cfg.eps, cfg.norm)


def _random_start(x0: Tensor, cfg: APGDConfig, generator: torch.Generator | None) -> Tensor:
    """A random point ``[n,C,H,W]`` of the ball: uniform in the L-inf box, or on the L2 sphere (as AutoAttack)."""
    if cfg.norm == "linf":
        u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        delta = (2 * u - 1) * cfg.eps
    else:
        t = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        delta = t / norms(t).clamp_min(tiny(t)) * cfg.eps
    return (x0 + delta).clamp(0.0, 1.0)


def _evaluate(model: Model, x: Tensor, labels: Tensor, goal: Tensor | None,
              cfg: APGDConfig) -> tuple[Tensor, Tensor, Tensor]:
    """``(grad [n,C,H,W], objective [n], logits [n,K])`` at ``x``, averaged over ``cfg.eot_draws`` draws."""
    return input_gradient(model, x, lambda logits: _objective(logits, labels, goal, cfg), cfg.eot_draws)


def _check(model: Model, images: Tensor, labels: Tensor, cfg: APGDConfig,
           generator: torch.Generator | None) -> None:
    if not isinstance(cfg, APGDConfig):
        raise UsageError(f"cfg must be an APGDConfig, got {type(cfg).__name__}")
    check_images(model, images, "APGD")
    check_class_tensor(labels, images.shape[0], images.device, "labels")
    check_generator(generator, images)
