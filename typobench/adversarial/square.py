"""Square Attack (Andriushchenko et al. 2020): a score-based, gradient-free random search, L-inf or L2.

Each iteration changes one random square window of every image still unbroken and keeps the change only if
the margin loss improves, so it needs nothing but the model's logits: it attacks the real model even when
that model is not differentiable (quantised inputs, JPEG, randomised defences) and so exposes gradient masking.

Budget: ``queries`` forward passes per image and restart, the initial point included (AutoAttack's
``n_queries=Q`` spends ``Q + 1``); the clean images are evaluated once more, and an image the model already gets
wrong is never queried again. Window positions and signs are drawn per image, every position equally likely
(AutoAttack draws one position per batch and never one touching the last row or column, which on small images
leaves those pixels at their initial value).

Shapes: ``N`` images, ``C`` channels, ``H``x``W`` pixels, ``K`` classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from typobench.adversarial.common import (AttackResult, Best, Model, Norm, check_class_tensor, check_eps,
                                          check_generator, check_images, check_logits, check_norm,
                                          check_positive_int, margin, norms)
from typobench.core.errors import UsageError

__all__ = ["SquareConfig", "square"]

# The paper's schedule: p is halved after these iterations of a 10,000-iteration budget (rescaled to ours).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
TRACE_POINTS = 11


@dataclass(frozen=True)
class SquareConfig:
    """Settings of one Square Attack; distances are in [0,1] pixel units.

    eps: radius of the ``norm`` ball (e.g. 8/255 for L-inf, 0.5 for L2).
    queries: forward passes per image and restart, the initial point included (>= 1).
    p_init: initial fraction of the pixels a window covers, halved along the paper's schedule (0 < p_init <= 1).
    restarts: runs from fresh random starts on the images still unbroken.
    targeted: maximise the margin towards ``targets`` instead of away from the labels.
    """

    eps: float
    norm: Norm = "linf"
    queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1
    targeted: bool = False

    def __post_init__(self) -> None:
        check_eps(self.eps, "Square")
        check_norm(self.norm, "Square")
        check_positive_int(self.queries, "Square queries")
        check_positive_int(self.restarts, "Square restarts")
        if isinstance(self.p_init, bool) or not isinstance(self.p_init, (int, float)) or not (0 < self.p_init <= 1):
            raise UsageError(f"Square p_init must be a number in (0, 1] (AutoAttack uses 0.8), got {self.p_init!r}")
        if not isinstance(self.targeted, bool):
            raise UsageError(f"Square targeted must be true or false, got {self.targeted!r}")

    def strengthened(self) -> SquareConfig:
        """Twice the iterations (queries) and restarts: the convergence check's attack."""
        return replace(self, queries=2 * self.queries, restarts=2 * self.restarts)

    def run(self, model: Model, images: Tensor, labels: Tensor, generator: torch.Generator | None = None,
            targets: Tensor | None = None) -> AttackResult:
        """:func:`square` with this configuration."""
        return square(model, images, labels, self, targets=targets, generator=generator)


def square(model: Model, images: Tensor, labels: Tensor, cfg: SquareConfig, *, targets: Tensor | None = None,
           generator: torch.Generator | None = None) -> AttackResult:
    """Attack ``model`` with Square Attack and keep, per image, the best point found.

    model: maps ``[N,C,H,W]`` pixels in [0,1] to ``[N,K]`` logits, in eval mode; never differentiated.
    images: ``[N,C,H,W]`` floating, in [0,1]; the attack's device and dtype come from here.
    labels: ``[N]`` int true classes; targets: ``[N]`` int, required iff ``cfg.targeted``.
    generator: the only source of randomness (on ``images.device``); the same seed gives the same result.

    Returns an :class:`AttackResult`: ``best_loss`` ``[N]`` is the margin at ``adv`` (untargeted
    ``max_{j!=y} z_j - z_y``, targeted ``z_t - max_{j!=t} z_j``; > 0 means the goal is met); ``trace`` ``[N,T]``
    the best margin so far after ``round(j * (queries - 1) / 10)`` iterations, ``j = 0..10`` (duplicates
    dropped, so ``T <= 11``; the best over restarts at each point; images broken by the clean pass hold their
    clean margin); ``queries`` ``[N]`` the forward passes spent on each image; ``grad_zero`` all False.
    """
    _check(model, images, labels, cfg, targets, generator)
    with torch.no_grad():
        x0 = images.detach()
        goal = (targets if cfg.targeted else labels).long()
        logits = model(x0)
        check_logits(goal, logits, "targets" if cfg.targeted else "labels")
        if logits.shape[1] < 2:
            raise UsageError(f"Square needs a model with at least 2 classes, got {logits.shape[1]}")
        clean = _objective(logits, goal, cfg.targeted)
        best = Best.start(x0)
        best.update(x0, _goal_met(logits, goal, cfg.targeted), clean)
        spent = torch.ones(x0.shape[0], dtype=torch.long, device=x0.device)
        trace = clean[:, None].float().repeat(1, len(_checkpoints(cfg.queries - 1)))
        for _ in range(cfg.restarts):
            todo = (~best.success).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            adv, obj, done, used, run_trace = _single_run(model, x0[todo], goal[todo], cfg, generator)
            _merge(best, todo, adv, obj, done)
            spent[todo] += used
            trace[todo] = torch.maximum(trace[todo], run_trace)
    return AttackResult(adv=best.adv, success=best.success, best_loss=best.loss, trace=trace, queries=spent,
                        grad_zero=torch.zeros_like(best.success))


def _merge(best: Best, todo: Tensor, adv: Tensor, obj: Tensor, done: Tensor) -> None:
    """Offer one run's results on the images ``todo`` ``[M]`` to the record of all ``N`` images."""
    x = best.adv.clone()
    x[todo] = adv
    succ = torch.zeros_like(best.success)
    succ[todo] = done
    full = torch.full_like(best.loss, -math.inf)  # images not in this run never improve
    full[todo] = obj.to(full.dtype)
    best.update(x, succ, full)


def _objective(logits: Tensor, goal: Tensor, targeted: bool) -> Tensor:
    """The margin ``[N]`` to maximise, positive once the goal is met (float32 for the record)."""
    m = margin(logits, goal).float()
    return -m if targeted else m


def _goal_met(logits: Tensor, goal: Tensor, targeted: bool) -> Tensor:
    return logits.argmax(dim=1) == goal if targeted else logits.argmax(dim=1) != goal


def _single_run(model: Model, x0: Tensor, goal: Tensor, cfg: SquareConfig, generator: torch.Generator | None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One run on ``M`` unbroken images ``x0`` ``[M,C,H,W]``: returns the best point ``[M,C,H,W]``, its margin
    ``[M]``, goal met ``[M]``, forward passes spent ``[M]`` and the margin trace ``[M,T]``."""
    x_best = (_init_linf if cfg.norm == "linf" else _init_l2)(x0, cfg.eps, generator)
    logits = model(x_best)
    obj, done = _objective(logits, goal, cfg.targeted), _goal_met(logits, goal, cfg.targeted)
    used = torch.ones_like(goal)
    n_iter = cfg.queries - 1
    marks = _checkpoints(n_iter)
    trace = [obj.clone()]
    for i in range(n_iter):
        todo = (~done).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        p = _p_at(i, n_iter, cfg.p_init)
        step = _step_linf if cfg.norm == "linf" else _step_l2
        x_new = step(x0[todo], x_best[todo], p, cfg.eps, generator)
        logits = model(x_new)
        new_obj, new_done = _objective(logits, goal[todo], cfg.targeted), _goal_met(logits, goal[todo], cfg.targeted)
        better = (new_obj > obj[todo]) | new_done  # the paper keeps a change only if the loss improves
        keep = todo[better]
        x_best[keep] = x_new[better]
        obj[keep], done[keep] = new_obj[better], new_done[better]
        used[todo] += 1
        if len(trace) < len(marks) and i + 1 == marks[len(trace)]:
            trace.append(obj.clone())
    while len(trace) < len(marks):  # stopped early: every image is broken, nothing changes any more
        trace.append(obj.clone())
    return x_best, obj, done, used, torch.stack(trace, dim=1)


def _checkpoints(n_iter: int) -> list[int]:
    """Iteration counts at which the trace is read: up to 11, evenly spaced from 0 to ``n_iter``."""
    return sorted({round(j * n_iter / (TRACE_POINTS - 1)) for j in range(TRACE_POINTS)})


def _p_at(i: int, n_iter: int, p_init: float) -> float:
    """The fraction of pixels the window covers at iteration ``i`` of ``n_iter`` (the paper's schedule)."""
    scaled = int(i / n_iter * 10000)
    return p_init / 2 ** sum(scaled > b for b in _HALVINGS)


def _side(p: float, x: Tensor, smallest: int, odd: bool) -> int:
    """The window's side: a square of about ``p`` of an image's pixels, at least ``smallest``, at most H, W."""
    h, w = x.shape[2:]
    s = max(int(round(math.sqrt(p * h * w))), smallest)
    if odd and s % 2 == 0:  # the L2 pattern is centred on a pixel
        s += 1
    return min(s, h, w)


def _windows(n: int, s: int, h: int, w: int, like: Tensor, generator: torch.Generator | None
             ) -> tuple[Tensor, Tensor, Tensor]:
    """A random ``s``x``s`` window per image: its mask ``[n,1,H,W]`` bool and top-left corner ``[n]``, ``[n]``."""
    vh = torch.randint(0, h - s + 1, (n,), generator=generator, device=like.device)
    vw = torch.randint(0, w - s + 1, (n,), generator=generator, device=like.device)
    rows, cols = torch.arange(h, device=like.device), torch.arange(w, device=like.device)
    in_rows = (rows >= vh[:, None]) & (rows < vh[:, None] + s)
    in_cols = (cols >= vw[:, None]) & (cols < vw[:, None] + s)
    return in_rows[:, None, :, None] & in_cols[:, None, None, :], vh, vw


def _signs(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform random +-1 of ``shape`` in ``like``'s dtype."""
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)


# ------------------------------------------------------------------------------------------------- L-inf
def _init_linf(x0: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """Vertical stripes: one random +-eps per image, channel and column ``[N,C,1,W]``, clipped to [0,1]."""
    n, c, _, w = x0.shape
    return (x0 + eps * _signs((n, c, 1, w), x0, generator)).clamp(0.0, 1.0)


def _step_linf(x0: Tensor, x_best: Tensor, p: float, eps: float, generator: torch.Generator | None) -> Tensor:
    """A candidate ``[M,C,H,W]``: one window per image set to ``x0 +- eps`` (one sign per channel)."""
    n, c, h, w = x0.shape
    s = _side(p, x0, 1, odd=False)
    inside, _, _ = _windows(n, s, h, w, x0, generator)
    corner = (x0 + eps * _signs((n, c, 1, 1), x0, generator)).clamp(0.0, 1.0)
    return torch.where(inside, corner, x_best)


# ---------------------------------------------------------------------------------------------------- L2
def _rectangles(a: int, b: int, like: Tensor) -> Tensor:
    """``[a,b]`` concentric rectangles around the centre, ring ``k`` adding ``1/(k+1)^2``, unit L2 norm."""
    i = (torch.arange(a, device=like.device) - a // 2).abs()
    j = (torch.arange(b, device=like.device) - b // 2).abs()
    ring = torch.maximum(i[:, None], j[None, :])
    rings = max(a // 2 + 1, b // 2 + 1)
    weights = 1.0 / (torch.arange(rings, device=like.device, dtype=like.dtype) + 1) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[d] = sum of the rings that cover Chebyshev distance d
    out = tail[ring]
    return out / out.norm().clamp_min(1e-12)


def _eta(n: int, s: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """The paper's ``[n,s,s]`` L2 window pattern: a positive and a negative half, unit norm, transposed for a
    random half of the images (so the halves lie side by side or one above the other)."""
    pattern = torch.cat([_rectangles(s // 2, s, like), -_rectangles(s - s // 2, s, like)])
    pattern = pattern / pattern.norm().clamp_min(1e-12)
    flip = torch.randint(0, 2, (n, 1, 1), generator=generator, device=like.device).bool()
    return torch.where(flip, pattern.T, pattern)


def _place(pattern: Tensor, vh: Tensor, vw: Tensor, inside: Tensor) -> Tensor:
    """Each image's ``[s,s]`` pattern of ``[n,s,s]`` written at its window, zero elsewhere: ``[n,1,H,W]``."""
    n, s, _ = pattern.shape
    h, w = inside.shape[2:]
    ri = (torch.arange(h, device=vh.device) - vh[:, None]).clamp(0, s - 1)
    ci = (torch.arange(w, device=vw.device) - vw[:, None]).clamp(0, s - 1)
    full = pattern[torch.arange(n, device=vh.device)[:, None, None], ri[:, :, None], ci[:, None, :]]
    return full[:, None] * inside


def _init_l2(x0: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """A grid of ``H//5``-pixel windows, each with the pattern and a random sign per channel, scaled to
    norm ``eps`` and clipped to [0,1]."""
    n, c, h, w = x0.shape
    s = max(h // 5, 1)
    delta = torch.zeros_like(x0)
    top0, left0 = (h - s * (h // s)) // 2, (w - s * (w // s)) // 2
    for top in range(top0, top0 + s * (h // s), s):
        for left in range(left0, left0 + s * (w // s), s):
            patch = _eta(n, s, x0, generator)[:, None] * _signs((n, c, 1, 1), x0, generator)
            delta[:, :, top:top + s, left:left + s] += patch
    return (x0 + delta / norms(delta).clamp_min(1e-12) * eps).clamp(0.0, 1.0)


def _channel_norms(t: Tensor) -> Tensor:
    """Per image and channel L2 norms of ``[N,C,H,W]`` as ``[N,C,1,1]``."""
    return t.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()


def _step_l2(x0: Tensor, x_best: Tensor, p: float, eps: float, generator: torch.Generator | None) -> Tensor:
    """A candidate ``[M,C,H,W]``: the perturbation's mass in two random windows moves into the first one,
    reshaped by the pattern (plus the unused budget), then the whole perturbation is rescaled to norm eps."""
    n, c, h, w = x0.shape
    s = _side(p, x0, 3, odd=True)
    delta = x_best - x0
    first, vh, vw = _windows(n, s, h, w, x0, generator)
    second, _, _ = _windows(n, s, h, w, x0, generator)
    both = first | second
    unused = (eps ** 2 - norms(delta) ** 2).clamp_min(0.0) / c  # budget left, shared by the channels
    mass = _channel_norms(delta * both)
    new = _place(_eta(n, s, x0, generator), vh, vw, first) * _signs((n, c, 1, 1), x0, generator)
    new = new + delta * first / (_channel_norms(delta * first) + 1e-12)
    new = new / (_channel_norms(new) + 1e-12) * (unused + mass ** 2).sqrt()
    delta = delta * ~both + new
    return (x0 + delta / norms(delta).clamp_min(1e-12) * eps).clamp(0.0, 1.0)


def _check(model: Model, images: Tensor, labels: Tensor, cfg: SquareConfig, targets: Tensor | None,
           generator: torch.Generator | None) -> None:
    if not isinstance(cfg, SquareConfig):
        raise UsageError(f"cfg must be a SquareConfig, got {type(cfg).__name__}")
    check_images(model, images, "Square")
    check_class_tensor(labels, images.shape[0], images.device, "labels")
    if cfg.targeted:
        if targets is None:
            raise UsageError("a targeted Square attack needs targets=[N] class indices")
        check_class_tensor(targets, images.shape[0], images.device, "targets")
    elif targets is not None:
        raise UsageError("targets were given but cfg.targeted is False; set targeted=True or drop targets")
    check_generator(generator, images)
