"""FAB-T (typobench.adversarial.fab) and the ``fab`` stage: a cross-check against pyautoattack's FABAttack_PT
(targeted) on a tiny seeded CNN, the box-constrained hyperplane projections against scipy's solvers,
determinism, a non-differentiable model, config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from attack_models import Recorder, Rounded, TinyNet, reference_interval, robust_accuracy, stage_context, trained
from typobench.adversarial.fab import FINAL_SEARCH_STEPS, FABConfig, fab, project_hyperplane
from typobench.core.errors import UsageError
from typobench.suites import parse_suite

# Fewer target classes and steps than AutoAttack's 9 x 100 keep the test fast; both sides get the same.
STEPS, TARGETS = 20, 3


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def distance(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


# ------------------------------------------------------------------------------------ cross-check
@pytest.mark.parametrize(("norm", "eps"), [("linf", 5 / 255), ("l2", 0.75)])
def test_robust_accuracy_agrees_with_pyautoattack(norm, eps):
    from pyautoattack.fab_pt import FABAttack_PT

    model, x, y = trained()
    cfg = FABConfig(eps, norm, steps=STEPS, target_classes=TARGETS)
    ours = robust_accuracy(model, fab(model, x, y, cfg, generator=seeded()).adv, y)
    reference = FABAttack_PT(model, norm={"linf": "Linf", "l2": "L2"}[norm], n_iter=STEPS, eps=eps, targeted=True,
                             n_target_classes=TARGETS, seed=0)
    theirs = robust_accuracy(model, reference.perturb(x, y), y)
    print(f"fab-t {norm} eps={eps:.4f}: robust accuracy ours {ours:.3f}, pyautoattack {theirs:.3f}")
    assert 0.1 < theirs < 0.9  # an informative operating point
    assert abs(ours - theirs) <= reference_interval(ours, theirs, len(y))


# ------------------------------------------------------------------------------------ projections
def _lp_linf(t: np.ndarray, w: np.ndarray, gap: float) -> float:
    """min s subject to |d_i| <= s, <w, d> = gap, 0 <= t + d <= 1, as a linear program."""
    from scipy.optimize import linprog

    n = len(t)
    cost = np.r_[np.zeros(n), 1.0]
    upper = np.zeros((2 * n, n + 1))
    upper[np.arange(n), np.arange(n)], upper[np.arange(n), -1] = 1, -1
    upper[n + np.arange(n), np.arange(n)], upper[n + np.arange(n), -1] = -1, -1
    res = linprog(cost, A_ub=upper, b_ub=np.zeros(2 * n), A_eq=np.r_[w, 0.0][None], b_eq=[gap],
                  bounds=[(-a, 1 - a) for a in t] + [(0, None)])
    assert res.status == 0
    return res.fun


def _qp_l2(t: np.ndarray, w: np.ndarray, gap: float) -> float:
    from scipy.optimize import minimize

    res = minimize(lambda d: d @ d, np.zeros(len(t)), jac=lambda d: 2 * d, method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda d: w @ d - gap, "jac": lambda d: w}],
                   bounds=[(-a, 1 - a) for a in t], options={"ftol": 1e-14, "maxiter": 500})
    assert res.success
    return float(np.sqrt(res.fun))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_is_the_smallest_step_onto_the_hyperplane_within_the_box(norm):
    g = seeded(5)
    t = torch.rand(6, 40, generator=g, dtype=torch.float64)
    w = torch.randn(6, 40, generator=g, dtype=torch.float64)
    w[0, :20] = 0  # coordinates the hyperplane ignores must not move
    b = (w * t).sum(1) + torch.randn(6, generator=g, dtype=torch.float64)
    d = project_hyperplane(t, w, b, norm)
    assert torch.allclose(((t + d) * w).sum(1), b, atol=1e-9)
    assert (t + d).min() >= 0 and (t + d).max() <= 1 and (d[0, :20] == 0).all()
    for r in range(6):
        args = (t[r].numpy(), w[r].numpy(), float(b[r] - (w[r] * t[r]).sum()))
        best = _lp_linf(*args) if norm == "linf" else _qp_l2(*args)
        assert float(distance(d[r:r + 1], norm)) == pytest.approx(best, rel=1e-5, abs=1e-9)


def test_projection_out_of_reach_goes_to_the_nearest_corner():
    t = torch.tensor([[0.5, 0.5]])
    d = project_hyperplane(t, torch.tensor([[1.0, -1.0]]), torch.tensor([5.0]), "l2")
    assert torch.equal(t + d, torch.tensor([[1.0, 0.0]]))


# ---------------------------------------------------------------------------------------- results
@pytest.mark.parametrize(("norm", "eps"), [("linf", 6 / 255), ("l2", 0.75)])
def test_adv_is_misclassified_within_eps_and_the_record_is_honest(norm, eps):
    model, x, y = trained()
    x, y = x[:16], y[:16]
    result = fab(model, x, y, FABConfig(eps, norm, steps=10, target_classes=2), generator=seeded())
    size = distance(result.adv - x, norm)
    assert (size <= eps).all() and result.adv.min() >= 0 and result.adv.max() <= 1
    with torch.no_grad():
        wrong = model(result.adv).argmax(1) != y
    assert result.success.any() and (~result.success).any()
    assert torch.equal(result.success, wrong)
    assert torch.equal(result.adv[~result.success], x[~result.success])  # nothing within eps: the image itself
    assert torch.allclose(-result.best_loss[result.success], size[result.success])
    assert (result.best_loss[~result.success] < -eps).all()  # the closest adversarial found lies outside eps
    assert result.trace.shape == (16, 11) and torch.equal(result.trace[:, -1], result.best_loss)
    assert (result.trace[:, 1:] >= result.trace[:, :-1]).all() and (result.trace[:, 0] == -math.inf).all()
    assert not result.grad_zero.any()


def test_queries_are_counted_and_broken_images_are_not_attacked_again():
    model, x, y = trained()
    x, y = x[:8], y[:8].clone()
    y[0] = (y[0] + 1) % 10  # already "wrong": success at distance 0, never attacked
    recorder = Recorder(model)
    cfg = FABConfig(1.0, "l2", steps=5, target_classes=2)
    result = fab(recorder, x, y, cfg, generator=seeded())
    assert recorder.rows == int(result.queries.sum())
    assert result.queries[0] == 1 and result.success[0] and result.best_loss[0] == 0
    assert (result.queries <= 1 + cfg.target_classes * (2 * cfg.steps + FINAL_SEARCH_STEPS)).all()


def test_same_seed_same_result_with_random_restarts():
    model, x, y = trained()
    cfg = FABConfig(3 / 255, steps=5, restarts=2, target_classes=1)
    a, b = (fab(model, x[:8], y[:8], cfg, generator=seeded(1)) for _ in range(2))
    assert torch.equal(a.adv, b.adv) and torch.equal(a.best_loss, b.best_loss) and torch.equal(a.trace, b.trace)


def test_target_classes_are_clamped_for_few_classes():
    model, x, y = trained()
    three = nn.Sequential(model, nn.Linear(10, 3)).eval()  # a 3-class model: at most 2 other classes
    with torch.no_grad():
        y3 = three(x[:8]).argmax(1)
    result = fab(three, x[:8], y3, FABConfig(0.5, "l2", steps=4, target_classes=9), generator=seeded())
    assert (result.queries <= 1 + 2 * (2 * 4 + FINAL_SEARCH_STEPS)).all()
    assert (result.queries > 1 + 1 * (2 * 4 + FINAL_SEARCH_STEPS))[~result.success].all()


def test_fab_is_blind_on_a_non_differentiable_model_and_says_so():
    model, x, y = trained()
    rounded = Rounded(model).eval()
    result = fab(rounded, x[:8], y[:8], FABConfig(12 / 255, steps=5, target_classes=1), generator=seeded())
    assert result.grad_zero.all() and not result.success.any()


# ----------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(eps=-1.0), "eps"), (dict(eps=math.inf), "eps"), (dict(eps=0.1, norm="l1"), "norm"),
    (dict(eps=0.1, steps=0), "steps"), (dict(eps=0.1, restarts=0), "restarts"),
    (dict(eps=0.1, target_classes=0), "target_classes"), (dict(eps=0.1, alpha_max=1.5), "alpha_max"),
    (dict(eps=0.1, eta=0.5), "eta"), (dict(eps=0.1, eta=math.inf), "eta"), (dict(eps=0.1, beta=0.0), "beta"),
    (dict(eps=0.1, beta=True), "beta"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(UsageError, match=field) as info:
        FABConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_call_is_a_usage_error():
    model, x, y = trained()
    with pytest.raises(UsageError, match="eval mode"):
        fab(TinyNet(), x[:2], y[:2], FABConfig(0.1))  # a fresh module is in training mode
    with pytest.raises(UsageError, match="labels"):
        fab(model, x[:2], y[:1], FABConfig(0.1))


# ------------------------------------------------------------------------------------------ stage
SUITE = b'''
name = "fab"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "fab"
kind = "fab"
eps = 0.5
norm = "l2"
steps = 4
target_classes = 2
'''


def test_fab_stage_parses_and_runs_on_a_tiny_model():
    stage = parse_suite(SUITE).stages[1]
    assert stage.config == FABConfig(0.5, "l2", steps=4, target_classes=2)
    ctx, batch = stage_context()
    out = stage.apply(batch.images, batch, ctx)
    assert set(out.columns) == {"attack_success", "linf", "l2", "attack_loss", "queries"}
    assert all(len(column) == 4 for column in out.columns.values())
    assert max(out.columns["l2"]) <= 0.5 + 1e-6
    assert stage.describe()["target_classes"] == 2


@pytest.mark.parametrize(("change", "field"), [
    ((b"steps = 4", b"steps = 0"), "stage[1].steps"),
    ((b"steps = 4", b"steps = 4\nbeta = 0"), "stage[1].beta"),
    ((b"steps = 4", b"steps = 4\neta = 0.5"), "stage[1].eta"),
    ((b"steps = 4", b"steps = 4\nalpha_max = 2"), "stage[1].alpha_max"),
    ((b"target_classes = 2", b"target_classes = 0"), "stage[1].target_classes"),
    ((b"eps = 0.5", b'eps = "inf"'), "stage[1].eps"),
    ((b"steps = 4", b"stpes = 4"), "did you mean steps"),
])
def test_fab_stage_field_errors_name_the_field(change, field):
    with pytest.raises(UsageError) as info:
        parse_suite(SUITE.replace(*change), where="suite fab")
    assert field in str(info.value) and "\n" not in str(info.value)
