"""Square Attack (typobench.adversarial.square) and the ``square`` stage: a cross-check against pyautoattack's
SquareAttack on a tiny seeded CNN, the budget, determinism, a non-differentiable model, config errors."""

from __future__ import annotations

import math

import pytest
import torch

from attack_models import (Recorder, Rounded, reference_interval, robust_accuracy, stage_context, trained)
from typobench.adversarial.common import margin
from typobench.adversarial.pgd import PGDConfig, pgd
from typobench.adversarial.square import SquareConfig, square
from typobench.core.errors import UsageError
from typobench.suites import parse_suite


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ cross-check
@pytest.mark.parametrize(("norm", "eps"), [("linf", 8 / 255), ("l2", 3.0)])
def test_robust_accuracy_agrees_with_pyautoattack(norm, eps):
    """Both attacks get 300 forward passes per image (AutoAttack's n_queries=299 plus its initial point)."""
    from pyautoattack.square import SquareAttack

    model, x, y = trained()
    ours = robust_accuracy(model, square(model, x, y, SquareConfig(eps, norm, queries=300), generator=seeded()).adv, y)
    reference = SquareAttack(model, norm={"linf": "Linf", "l2": "L2"}[norm], n_queries=299, eps=eps, seed=0)
    theirs = robust_accuracy(model, reference.perturb(x, y), y)
    print(f"square {norm} eps={eps:.4f}: robust accuracy ours {ours:.3f}, pyautoattack {theirs:.3f}")
    assert 0.1 < theirs < 0.9  # an informative operating point: neither attack trivially wins or loses
    assert abs(ours - theirs) <= reference_interval(ours, theirs, len(y))


# ---------------------------------------------------------------------------------------- results
@pytest.mark.parametrize(("norm", "eps"), [("linf", 8 / 255), ("l2", 2.0)])
def test_adv_stays_in_the_ball_and_box_and_the_record_is_honest(norm, eps):
    model, x, y = trained()
    x, y = x[:16], y[:16]
    result = square(model, x, y, SquareConfig(eps, norm, queries=60, restarts=2), generator=seeded())
    delta = (result.adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all()
    assert result.adv.min() >= 0 and result.adv.max() <= 1
    with torch.no_grad():
        logits = model(result.adv)
    assert torch.equal(result.success, logits.argmax(1) != y)
    assert torch.allclose(result.best_loss, margin(logits, y), atol=1e-5)
    assert not result.grad_zero.any() and result.adv.dtype == x.dtype


def test_trace_is_the_best_margin_so_far_at_eleven_points():
    model, x, y = trained()
    result = square(model, x[:16], y[:16], SquareConfig(8 / 255, queries=101), generator=seeded())
    assert result.trace.shape == (16, 11) and result.trace.dtype == torch.float32
    assert (result.trace[:, 1:] >= result.trace[:, :-1]).all()
    assert torch.equal(result.trace[:, -1], result.best_loss)


def test_query_budget_is_respected_and_counted_exactly():
    model, x, y = trained()
    x, y = x[:16], y[:16].clone()
    y[:3] = (y[:3] + 1) % 10  # three images the model already gets "wrong": never queried after the clean pass
    recorder = Recorder(model)
    cfg = SquareConfig(8 / 255, queries=40, restarts=2)
    result = square(recorder, x, y, cfg, generator=seeded())
    assert recorder.rows == int(result.queries.sum())
    assert (result.queries <= 1 + cfg.restarts * cfg.queries).all()
    assert (result.queries[:3] == 1).all() and result.success[:3].all() and torch.equal(result.adv[:3], x[:3])
    unbroken = ~result.success
    assert unbroken.any() and (result.queries[unbroken] == 1 + cfg.restarts * cfg.queries).all()


def test_same_seed_same_result_other_seed_other_result():
    model, x, y = trained()
    cfg = SquareConfig(2.0, "l2", queries=30)
    a, b = (square(model, x[:8], y[:8], cfg, generator=seeded(3)) for _ in range(2))
    c = square(model, x[:8], y[:8], cfg, generator=seeded(4))
    assert torch.equal(a.adv, b.adv) and torch.equal(a.trace, b.trace) and torch.equal(a.queries, b.queries)
    assert not torch.equal(a.adv, c.adv)


def test_targeted_square_reaches_the_target():
    model, x, y = trained()
    x, y = x[:16], y[:16]
    targets = (y + 1) % 10
    result = SquareConfig(16 / 255, queries=200, targeted=True).run(model, x, y, seeded(), targets=targets)
    with torch.no_grad():
        pred = model(result.adv).argmax(1)
    assert result.success.any() and torch.equal(result.success, pred == targets)


def test_square_breaks_a_non_differentiable_model_where_pgd_cannot():
    model, x, y = trained()
    rounded = Rounded(model).eval()
    x, y = x[:32], y[:32]
    probe = x.clone().requires_grad_(True)
    rounded(probe).sum().backward()
    assert (probe.grad == 0).all()  # rounding has no gradient: gradient attacks are blind here
    eps = 12 / 255
    blind = pgd(rounded, x, y, PGDConfig(eps=eps, step_size=eps / 4, steps=10, random_start=False))
    found = square(rounded, x, y, SquareConfig(eps, queries=150), generator=seeded())
    print(f"rounded model: PGD breaks {int(blind.success.sum())}/32, Square {int(found.success.sum())}/32")
    assert blind.success.sum() == 0
    assert found.success.sum() >= 8
    with torch.no_grad():
        assert torch.equal(found.success, rounded(found.adv).argmax(1) != y)


# ----------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(eps=0.0), "eps"), (dict(eps=math.nan), "eps"), (dict(eps=math.inf), "eps"),
    (dict(eps=0.1, norm="l1"), "norm"), (dict(eps=0.1, queries=0), "queries"), (dict(eps=0.1, queries=2.5), "queries"),
    (dict(eps=0.1, p_init=0.0), "p_init"), (dict(eps=0.1, p_init=1.5), "p_init"),
    (dict(eps=0.1, restarts=0), "restarts"), (dict(eps=0.1, targeted="yes"), "targeted"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(UsageError, match=field) as info:
        SquareConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_call_is_a_usage_error():
    model, x, y = trained()
    with pytest.raises(UsageError, match="targeted"):
        square(model, x[:2], y[:2], SquareConfig(0.1), targets=y[:2])
    with pytest.raises(UsageError, match="targets"):
        square(model, x[:2], y[:2], SquareConfig(0.1, targeted=True))
    with pytest.raises(UsageError, match="labels"):
        square(model, x[:2], y[:2].float(), SquareConfig(0.1))
    with pytest.raises(UsageError, match="labels"):
        square(model, x[:2], torch.tensor([0, 99]), SquareConfig(0.1))


# ------------------------------------------------------------------------------------------ stage
SUITE = b'''
name = "sq"
[defaults.square]
queries = 20
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "square"
kind = "square"
eps = "8/255"
norm = "linf"
'''


def test_square_stage_parses_and_runs_on_a_tiny_model():
    stage = parse_suite(SUITE).stages[1]
    assert stage.config == SquareConfig(8 / 255, "linf", queries=20)  # the [defaults.square] budget applies
    ctx, batch = stage_context()
    out = stage.apply(batch.images, batch, ctx)
    again = stage.apply(batch.images, batch, ctx)
    assert torch.equal(out.images, again.images)  # the stage's generator is seeded by the run seed and sample
    assert set(out.columns) == {"attack_success", "linf", "l2", "attack_loss", "queries"}
    assert all(len(column) == 4 for column in out.columns.values())
    assert max(out.columns["linf"]) <= 8 / 255 + 1e-6 and max(out.columns["queries"]) <= 21


@pytest.mark.parametrize(("change", "field"), [
    ((b'norm = "linf"', b'norm = "l3"'), "stage[1].norm"),
    ((b'norm = "linf"', b"queries = 0"), "stage[1].queries"),
    ((b'norm = "linf"', b"p_init = 0"), "stage[1].p_init"),
    ((b'norm = "linf"', b"restarts = 1.5"), "stage[1].restarts"),
    ((b'eps = "8/255"', b"eps = 0"), "stage[1].eps"),
    ((b'norm = "linf"', b"querys = 10"), "did you mean queries"),
    ((b'norm = "linf"', b'attack_on = "both"'), "stage[1].attack_on"),
])
def test_square_stage_field_errors_name_the_field(change, field):
    with pytest.raises(UsageError) as info:
        parse_suite(SUITE.replace(*change), where="suite sq")
    assert field in str(info.value) and "\n" not in str(info.value)
