"""Tests for typobench.adversarial.pgd on a tiny seeded conv net (CPU, a few seconds in all)."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.adversarial.pgd import PGDConfig, PGDResult, pgd, region_mask

K = 4  # classes of the synthetic problem
N = 32  # images attacked per test
LINF_EPS = 5 / 255  # about half the test images survive 10 steps at this radius
L2_EPS = 0.5


class TinyNet(nn.Module):
    """A classifier in [0,1] pixel space: it normalises inside forward, like the CLIP wrappers."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.48, 0.46, 0.41]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.27, 0.26, 0.28]).view(1, 3, 1, 1))
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, K)

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean) / self.std
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def synthetic(n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """[n,3,32,32] images in [0,1] whose class is a coloured stripe pattern, plus noise; [n] labels."""
    y = torch.arange(n) % K
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    patterns = torch.stack([torch.sin(xx / 3), torch.sin(yy / 3), torch.sin((xx + yy) / 4), torch.cos((xx - yy) / 4)])
    colours = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    x = 0.5 + 0.12 * patterns[y][:, None] * colours[y][:, :, None, None] + 0.08 * torch.randn(n, 3, 32, 32, generator=g)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained() -> tuple[TinyNet, Tensor, Tensor]:
    """A TinyNet trained for 40 steps (perfect clean accuracy), in eval mode, and N test images."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x_train, y_train = synthetic(256, g)
    for _ in range(40):
        idx = torch.randint(0, 256, (64,), generator=g)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.zero_grad(set_to_none=True)
    x, y = synthetic(N, g)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).all()
    return model, x, y


class Recorder:
    """Wraps a model; keeps every input batch it is called with and the logits it returned."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.inputs: list[Tensor] = []
        self.logits: list[Tensor] = []

    def __call__(self, x: Tensor) -> Tensor:
        out = self.model(x)
        self.inputs.append(x.detach().clone())
        self.logits.append(out.detach().clone())
        return out


def objective(logits: Tensor, goal: Tensor, loss: str, targeted: bool) -> Tensor:
    """An independent per-image objective (higher = stronger attack)."""
    if loss == "ce":
        ce = torch.stack([F.cross_entropy(z[None], t[None]) for z, t in zip(logits, goal)])
        return -ce if targeted else ce
    rows = []
    for z, t in zip(logits, goal):
        others = torch.cat([z[:t], z[t + 1 :]])
        rows.append(z[t] - others.max() if targeted else others.max() - z[t])
    return torch.stack(rows)


def goal_met(logits: Tensor, goal: Tensor, targeted: bool) -> Tensor:
    pred = logits.argmax(1)
    return pred == goal if targeted else pred != goal


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(eps=-1 / 255, step_size=0.1, steps=1),
        dict(eps=math.nan, step_size=0.1, steps=1),
        dict(eps=0.1, step_size=0.0, steps=1),
        dict(eps=0.1, step_size=math.inf, steps=1),
        dict(eps=0.1, step_size=0.1, steps=-1),
        dict(eps=0.1, step_size=0.1, steps=1, restarts=0),
        dict(eps=0.1, step_size=0.1, steps=1, norm="l1"),
        dict(eps=0.1, step_size=0.1, steps=1, loss="dlr"),
    ],
)
def test_bad_config_is_a_usage_error(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        PGDConfig(**kwargs)


def test_bad_inputs_are_usage_errors(trained) -> None:
    model, x, y = trained
    cfg = PGDConfig(eps=LINF_EPS, step_size=1 / 255, steps=1)
    targeted = PGDConfig(eps=LINF_EPS, step_size=1 / 255, steps=1, targeted=True)
    cases = [
        lambda: pgd(model, x, y, targeted),  # targeted without targets
        lambda: pgd(model, x, y, cfg, targets=y),  # targets for an untargeted attack
        lambda: pgd(model, x, y, cfg, mask=torch.ones(N, 1, 16, 16, dtype=torch.bool)),
        lambda: pgd(model, x, y, cfg, mask=torch.ones(2, 1, 32, 32, dtype=torch.bool)),
        lambda: pgd(model, x, y, cfg, mask=torch.full((1, 1, 32, 32), 0.5)),  # soft mask
        lambda: pgd(model, x * 255, y, cfg),  # not [0,1] pixels
        lambda: pgd(model, x, y.float(), cfg),
        lambda: pgd(model, x, y[:-1], cfg),
        lambda: pgd(model, x, y + K, cfg),  # class index out of range
        lambda: region_mask(torch.ones(1, 1, 2, 2, dtype=torch.bool), "around"),  # type: ignore[arg-type]
    ]
    for case in cases:
        with pytest.raises(UsageError) as info:
            case()
        assert "\n" not in str(info.value)
    model.train()
    try:
        with pytest.raises(UsageError, match="eval"):
            pgd(model, x, y, cfg)
    finally:
        model.eval()


# ---------------------------------------------------------------- constraints at every step


@pytest.mark.parametrize(
    "norm,eps,step_size",
    [("linf", LINF_EPS, 2 / 255), ("l2", L2_EPS, 0.2), ("linf", math.inf, 4 / 255), ("l2", math.inf, 2.0)],
)
def test_every_iterate_stays_in_ball_and_pixel_range(trained, norm: str, eps: float, step_size: float) -> None:
    model, x, y = trained
    rec = Recorder(model)
    cfg = PGDConfig(eps=eps, step_size=step_size, steps=6, norm=norm, restarts=2)  # type: ignore[arg-type]
    res = pgd(rec, x, y, cfg, generator=torch.Generator().manual_seed(1))
    # Exactly one forward per iterate: (steps + 1) per restart, nothing recomputed. No random
    # start when unbounded, so the restarts collapse into one run.
    runs = 2 if math.isfinite(eps) else 1
    assert len(rec.inputs) == runs * (cfg.steps + 1)
    for it in rec.inputs + [res.adv]:
        assert it.min() >= 0 and it.max() <= 1
        delta = (it - x).flatten(1)
        dist = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
        if math.isfinite(eps):
            assert (dist <= eps * (1 + 1e-5)).all()
    if math.isfinite(eps):
        # The attack used its budget: the ball constraint is active somewhere, not vacuous.
        final = (rec.inputs[-1] - x).flatten(1)
        used = final.abs().amax(1) if norm == "linf" else final.norm(dim=1)
        assert used.max() >= eps * 0.99
    assert model.fc.weight.grad is None  # gradients were taken w.r.t. the input only


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("region", ["inside", "outside", "everywhere"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("mask_shape", ["n1hw", "11hw", "nchw"])
def test_pixels_outside_mask_never_change(trained, region: str, norm: str, mask_shape: str) -> None:
    model, x, y = trained
    base = torch.zeros(N, 1, 32, 32)
    base[:, :, 8:20, 4:28] = 1.0  # a "text box", as 0/1 float
    if mask_shape == "11hw":
        base = base[:1]
    elif mask_shape == "nchw":
        base = base.expand(N, 3, 32, 32).clone()
        base[:, 1] = 0  # the green channel is never in the mask
    mask = region_mask(base, region)  # type: ignore[arg-type]
    assert mask.dtype == torch.bool and mask.shape == base.shape
    rec = Recorder(model)
    eps = 16 / 255 if norm == "linf" else 2.0  # big enough that clamping to [0,1] happens too
    cfg = PGDConfig(eps=eps, step_size=eps / 2, steps=4, norm=norm, restarts=2)  # type: ignore[arg-type]
    res = pgd(rec, x, y, cfg, mask=mask, generator=torch.Generator().manual_seed(2))
    outside = ~mask.expand_as(x)
    for it in rec.inputs + [res.adv]:
        assert torch.equal(it[outside], x[outside])  # bit-identical, random start included
    # ...and the allowed pixels really were attacked.
    assert (res.adv[~outside] != x[~outside]).float().mean() > 0.5
    if region == "everywhere":
        assert res.success.any()


def test_l2_step_length_is_spent_inside_the_mask(trained) -> None:
    model, x, y = trained
    x = 0.25 + 0.5 * x  # away from 0 and 1, so no clamping shortens the step
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    mask[..., :10, :10] = True
    rec = Recorder(model)
    pgd(rec, x, y, PGDConfig(eps=10.0, step_size=0.2, steps=1, norm="l2", random_start=False), mask=mask)
    step = (rec.inputs[1] - x).flatten(1).norm(dim=1)
    assert torch.allclose(step, torch.full_like(step, 0.2), rtol=1e-4)


def test_region_mask_semantics() -> None:
    base = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert region_mask(base, "everywhere").all()
    assert torch.equal(region_mask(base, "inside"), base.bool())
    assert torch.equal(region_mask(base, "outside"), ~base.bool())


# ---------------------------------------------------------------- best iterate


class Band(nn.Module):
    """Two classes; class 1 wins only while the mean pixel ``s`` is within 0.1 of 0.6.

    logits = [0, 1 - 100 (s - 0.6)^2]; its gradient points towards s = 0.6 from either side, so a
    big step overshoots the band and PGD oscillates across it.
    """

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(s), 1 - 100 * (s - 0.6) ** 2], dim=1)


@pytest.mark.parametrize(
    "step_size,steps,best_level,last_succeeds",
    [
        (0.17, 4, 0.62, False),  # 0.45 -> 0.62 (hit) -> 0.45 (miss) -> 0.62 -> 0.45: last misses
        (0.12, 2, 0.57, True),  # 0.45 -> 0.57 (margin .91) -> 0.69 (hit, but margin .19): last is weaker
    ],
)
def test_keeps_the_best_iterate_not_the_last(step_size: float, steps: int, best_level: float, last_succeeds: bool) -> None:
    model = Band().eval()
    x = torch.full((3, 3, 8, 8), 0.45)
    y = torch.zeros(3, dtype=torch.long)
    rec = Recorder(model)
    cfg = PGDConfig(eps=math.inf, step_size=step_size, steps=steps, loss="margin")
    res = pgd(rec, x, y, cfg)
    last = rec.logits[-1]
    assert bool((last.argmax(1) != y).all()) == last_succeeds
    assert torch.allclose(res.adv, torch.full_like(x, best_level), atol=1e-6)
    assert res.success.all()
    assert (res.steps_to_success == 1).all()
    with torch.no_grad():
        expected = objective(model(res.adv), y, "margin", targeted=False)
    assert torch.allclose(res.best_loss, expected)
    assert (res.best_loss > objective(last, y, "margin", targeted=False)).all()


class Trap(nn.Module):
    """Three classes, true class 0, logits a function of the mean pixel ``s``.

    Cross-entropy of class 0 keeps rising with ``s``, but class 0 is beaten only near s = 0.6:
    at s = 0.6 the attack succeeds (CE 0.94); at s = 0.7 it fails with a higher CE (0.97).
    """

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(s), 0.2 - 50 * (s - 0.6) ** 2, 10 * (s - 0.7) - 0.1], dim=1)


def test_a_successful_iterate_beats_a_failing_one_with_higher_loss() -> None:
    model = Trap().eval()
    x = torch.full((2, 3, 8, 8), 0.5)
    y = torch.zeros(2, dtype=torch.long)
    rec = Recorder(model)
    res = pgd(rec, x, y, PGDConfig(eps=math.inf, step_size=0.1, steps=2, loss="ce"))
    z_hit, z_last = rec.logits[1], rec.logits[2]
    assert (z_hit.argmax(1) != y).all() and (z_last.argmax(1) == y).all()
    assert (objective(z_last, y, "ce", False) > objective(z_hit, y, "ce", False)).all()
    assert torch.equal(res.adv, rec.inputs[1])
    assert res.success.all() and (res.steps_to_success == 1).all()


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("targeted", [False, True])
def test_adv_is_the_best_of_all_recorded_iterates(trained, loss: str, targeted: bool) -> None:
    model, x, y = trained
    goal = (y + 1) % K if targeted else y
    rec = Recorder(model)
    # A step as large as the ball makes the iterates jump between corners, so late ones are often worse.
    cfg = PGDConfig(eps=LINF_EPS, step_size=LINF_EPS, steps=5, restarts=3, loss=loss, targeted=targeted)  # type: ignore[arg-type]
    res = pgd(rec, x, y, cfg, targets=goal if targeted else None, generator=torch.Generator().manual_seed(3))
    assert isinstance(res, PGDResult)
    assert len(rec.inputs) == 3 * 6

    objs = [objective(z, goal, loss, targeted) for z in rec.logits]
    hits = [goal_met(z, goal, targeted) for z in rec.logits]
    last_is_worse = 0
    for i in range(N):
        # Success first, then objective; the earliest iterate wins a tie.
        key = [(bool(hits[r][i]), float(objs[r][i]), -r) for r in range(len(rec.inputs))]
        best = max(range(len(key)), key=lambda r: key[r])
        assert torch.equal(res.adv[i], rec.inputs[best][i])
        assert bool(res.success[i]) == key[best][0]
        assert math.isclose(float(res.best_loss[i]), key[best][1], rel_tol=1e-5, abs_tol=1e-6)
        last_is_worse += best != len(key) - 1
        firsts = [k for rs in range(3) for k in range(6) if hits[rs * 6 + k][i]]
        firsts_per_run = [min((k for k in range(6) if hits[rs * 6 + k][i]), default=None) for rs in range(3)]
        found = [f for f in firsts_per_run if f is not None]
        assert int(res.steps_to_success[i]) == (min(found) if found else -1)
        assert bool(res.success[i]) == bool(firsts)
    assert last_is_worse > 0  # the case this test is about did happen

    # The reported outcome is that of adv itself, re-evaluated from scratch.
    with torch.no_grad():
        z = model(res.adv)
    assert torch.equal(res.success, goal_met(z, goal, targeted))
    assert torch.allclose(res.best_loss, objective(z, goal, loss, targeted), rtol=1e-5, atol=1e-6)
    assert res.success.any() and not res.success.all()


# ---------------------------------------------------------------- goals


def test_targeted_success_means_the_target_class(trained) -> None:
    model, x, y = trained
    targets = (y + 2) % K
    cfg = PGDConfig(eps=12 / 255, step_size=2 / 255, steps=10, targeted=True)
    res = pgd(model, x, y, cfg, targets=targets, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        pred = model(res.adv).argmax(1)
    assert res.success.float().mean() >= 0.5
    assert torch.equal(res.success, pred == targets)
    # An untargeted attack with the same budget succeeds at least as often, and mostly on other classes.
    unt = pgd(model, x, y, PGDConfig(eps=12 / 255, step_size=2 / 255, steps=10), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        pred_u = model(unt.adv).argmax(1)
    assert torch.equal(unt.success, pred_u != y)
    assert unt.success.sum() >= res.success.sum()
    assert (unt.success & (pred_u != targets)).any()  # the goals differ: untargeted lands elsewhere too


def test_margin_loss_sign_matches_success(trained) -> None:
    model, x, y = trained
    for targeted in (False, True):
        goal = (y + 1) % K if targeted else y
        cfg = PGDConfig(eps=LINF_EPS, step_size=1 / 255, steps=8, loss="margin", targeted=targeted)
        res = pgd(model, x, y, cfg, targets=goal if targeted else None, generator=torch.Generator().manual_seed(5))
        assert torch.equal(res.success, res.best_loss > 0)  # no exact ties in float logits


# ---------------------------------------------------------------- randomness, dtype, grad mode


def test_same_seed_same_adv_other_seed_other_adv(trained) -> None:
    model, x, y = trained
    for norm, eps in (("linf", LINF_EPS), ("l2", L2_EPS)):
        cfg = PGDConfig(eps=eps, step_size=eps / 4, steps=3, norm=norm, restarts=2)  # type: ignore[arg-type]
        a = pgd(model, x, y, cfg, generator=torch.Generator().manual_seed(7))
        b = pgd(model, x, y, cfg, generator=torch.Generator().manual_seed(7))
        c = pgd(model, x, y, cfg, generator=torch.Generator().manual_seed(8))
        assert torch.equal(a.adv, b.adv) and torch.equal(a.best_loss, b.best_loss)
        assert not torch.equal(a.adv, c.adv)


def test_dtype_and_device_follow_the_inputs(trained) -> None:
    model, x, y = trained
    model64 = TinyNet().double().eval()
    model64.load_state_dict(model.state_dict())
    x64 = x.double()
    cfg = PGDConfig(eps=L2_EPS, step_size=0.1, steps=3, norm="l2")
    res = pgd(model64, x64, y.int(), cfg, generator=torch.Generator().manual_seed(0))
    assert res.adv.dtype == torch.float64 and res.adv.device == x64.device
    assert res.best_loss.dtype == torch.float64
    assert res.success.dtype == torch.bool and res.steps_to_success.dtype == torch.long
    assert (res.adv - x64).flatten(1).norm(dim=1).max() <= L2_EPS * (1 + 1e-12)
    assert all(p.grad is None for p in model64.parameters())


def test_works_under_no_grad_and_steps_zero_evaluates_the_start(trained) -> None:
    model, x, y = trained
    cfg = PGDConfig(eps=LINF_EPS, step_size=1 / 255, steps=4, random_start=False)
    plain = pgd(model, x, y, cfg)
    with torch.no_grad():
        inside = pgd(model, x, y, cfg)
    assert torch.equal(plain.adv, inside.adv) and plain.success.any()
    zero = pgd(model, x, y, PGDConfig(eps=LINF_EPS, step_size=1 / 255, steps=0, random_start=False))
    assert torch.equal(zero.adv, x) and not zero.success.any()
    assert (zero.steps_to_success == -1).all()


def test_unbounded_moves_pixels_farther_than_a_small_ball(trained) -> None:
    model, x, y = trained
    small = pgd(model, x, y, PGDConfig(eps=4 / 255, step_size=2 / 255, steps=10, random_start=False))
    free = pgd(model, x, y, PGDConfig(eps=math.inf, step_size=2 / 255, steps=10))  # random_start ignored
    free_dist = (free.adv - x).abs().flatten(1).amax(1)
    small_dist = (small.adv - x).abs().flatten(1).amax(1)
    assert (small_dist <= 4 / 255 + 1e-6).all()
    assert (free_dist > 8 / 255).all()  # far outside any small ball
    assert free.success.all() and small.success.sum() < N
    assert free.adv.min() >= 0 and free.adv.max() <= 1


# ---------------------------------------------------------------- agreement with torchattacks


def _torchattacks():
    try:
        import torchattacks
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip("torchattacks is not installed (pip install --no-deps torchattacks==3.5.1)")
    return torchattacks


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_agrees_with_torchattacks(trained, norm: str) -> None:
    ta = _torchattacks()
    model, x, y = trained
    if norm == "linf":
        eps, step = LINF_EPS, 1 / 255
        theirs_attack = ta.PGD(model, eps=eps, alpha=step, steps=10, random_start=False)
    else:
        eps, step = L2_EPS, 0.1
        theirs_attack = ta.PGDL2(model, eps=eps, alpha=step, steps=10, random_start=False)
    theirs = theirs_attack(x, y)
    assert not model.training
    rec = Recorder(model)
    ours = pgd(rec, x, y, PGDConfig(eps=eps, step_size=step, steps=10, norm=norm, random_start=False))  # type: ignore[arg-type]

    # Same step rule: our last iterate is torchattacks' output (they return only the last one).
    last = rec.inputs[-1]
    if norm == "linf":
        assert torch.equal(last, theirs)
    else:
        assert torch.allclose(last, theirs, atol=1e-6)
    with torch.no_grad():
        acc_last = (model(last).argmax(1) == y).sum()
        acc_theirs = (model(theirs).argmax(1) == y).sum()
    acc_ours = (~ours.success).sum()
    assert acc_last == acc_theirs
    # Keeping the best iterate can only make ours stronger, and on this problem not by much.
    assert acc_ours <= acc_theirs <= acc_ours + 2
    assert 0 < acc_ours < N
